"""Held-out quality of a model fitted on a user's table: the train/test split and the test metrics.

``holdout`` splits row positions 80/20, stratified by class where every class has two or more rows;
``held_out_metrics`` scores a fitted model on the held-out rows: accuracy for a classifier (labels compared
as text, as the fit compares them: classes "0" / "1" against CSV numbers 0 / 1), R^2 for a regressor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from actionable.models import TorchModel

__all__ = ["held_out_metrics", "holdout"]


def holdout(
    y: pd.Series, *, regression: bool, seed: int, test_size: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row positions of a table with labels ``y`` (stratified unless a class is too rare)."""
    from sklearn.model_selection import train_test_split

    rare = not regression and int(y.map(str).value_counts().min()) < 2  # too few to stratify the split
    train, test = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=None if regression or rare else y
    )
    return np.asarray(train), np.asarray(test)


def held_out_metrics(model: TorchModel, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """``{"test_r2": ...}`` for a regressor, ``{"test_accuracy": ...}`` for a classifier, on rows ``X``."""
    if model.task == "regression":
        residual = y.to_numpy(np.float64) - model.predict(X)
        centred = y.to_numpy(np.float64) - y.mean()
        return {"test_r2": float(1 - residual @ residual / (centred @ centred))}
    predicted = [str(label) for label in model.predict(X)]
    truth = [str(label) for label in y]
    return {"test_accuracy": float(np.mean(np.array(predicted) == np.array(truth)))}
