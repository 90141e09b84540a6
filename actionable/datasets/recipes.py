"""How each bundled dataset's default models are fitted (``actionable train --dataset NAME``).

German 2x40 ReLU (the AAAI 2020 architecture), Adult 2x50 ReLU, Student: Lash et al.'s regular model
(15 ReLU, softmax, min-max inputs) and indirect model (10 ReLU -> ReLU outputs), California: the blog's
``MLPRegressor(200, logistic)`` and a ``LinearRegression`` on standardised inputs, converted exactly.
Quick, Draw!: a small 1-D convolutional recogniser over the 128 stroke slots (the paper's has three
convolutions of 8 filters, kernel 5, then Dense 1024; ours pools by 4 and has Dense 64, so it trains in
seconds on 2 cores and ships small; its last layer gives logits, not ReLU outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from actionable.models import TorchModel, as_model
from actionable.models.training import (
    ConvRecipe,
    Recipe,
    fit_classifier,
    fit_conv_classifier,
    fit_indirect,
    minmax_bounds,
)

__all__ = [
    "ADULT",
    "GERMAN",
    "QUICKDRAW",
    "STUDENT_INDIRECT",
    "STUDENT_REGULAR",
    "TRAINERS",
    "quality",
    "train_defaults",
]

if TYPE_CHECKING:
    from actionable.datasets import Dataset

GERMAN = Recipe(hidden=(40, 40), epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-3, dropout=0.5, seed=0)
ADULT = Recipe(hidden=(50, 50), epochs=10, batch_size=256, lr=1e-3, weight_decay=1e-4, dropout=0.2, seed=0)
STUDENT_REGULAR = Recipe(hidden=(15,), scaling="minmax", epochs=75, batch_size=64, lr=1e-3, seed=0)
STUDENT_INDIRECT = Recipe(hidden=(10,), scaling="minmax", epochs=320, batch_size=64, lr=1e-3, seed=0)
QUICKDRAW = ConvRecipe(
    length=128, channels=4, filters=(8, 8, 8), kernel=5, pool=4, hidden=(64,), epochs=20, seed=0
)


def quality(model: TorchModel, data: Dataset) -> dict[str, float]:
    """Test-set accuracy (classification) or R^2 (regression: of the target, or of the indirect features)."""
    if model.task == "classification":
        predicted = model.predict(data.X_test)
        return {"test_accuracy": float(np.mean(predicted == data.y_test.to_numpy(dtype=object)))}
    target = data.schema.target.name if data.schema.target else None
    truth = data.y_test if model.outputs == (target,) else data.X_test[list(model.outputs)]
    actual = truth.to_numpy(np.float64).reshape(len(truth), -1)
    residual = actual - model.predict(data.X_test).reshape(actual.shape)
    centred = actual - actual.mean(0)
    r2 = 1 - (residual**2).sum(0) / (centred**2).sum(0)
    return {"test_r2": float(r2.mean())}


def _classifier(recipe: Recipe) -> Callable[[Dataset], dict[str, TorchModel]]:
    def train(data: Dataset) -> dict[str, TorchModel]:
        return {"mlp": fit_classifier(data.schema, data.X_train, data.y_train, recipe)}

    return train


def _student(data: Dataset) -> dict[str, TorchModel]:
    regular = fit_classifier(data.schema, data.X_train, data.y_train, STUDENT_REGULAR)
    bounds = minmax_bounds(data.schema, data.X_train)
    indirect = fit_indirect(data.schema, data.X_train, STUDENT_INDIRECT, bounds=bounds)
    return {"regular": regular, "indirect": indirect}


def _quickdraw(data: Dataset) -> dict[str, TorchModel]:
    return {"conv": fit_conv_classifier(data.schema, data.X_train, data.y_train, QUICKDRAW)}


def _california(data: Dataset) -> dict[str, TorchModel]:
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    estimators: dict[str, Any] = {
        "mlp": MLPRegressor(hidden_layer_sizes=(200,), activation="logistic", max_iter=300, random_state=0),
        "linear": LinearRegression(),
    }
    models = {}
    for name, estimator in estimators.items():
        pipeline = make_pipeline(StandardScaler(), estimator).fit(data.X_train, data.y_train)
        model = as_model(pipeline, data.schema)
        model.provenance.update(
            {
                "trainer": f"scikit-learn {type(estimator).__name__} on StandardScaler",
                "params": {k: str(v) for k, v in estimator.get_params().items()},
            }
        )
        models[name] = model
    return models


TRAINERS: dict[str, Callable[[Dataset], dict[str, TorchModel]]] = {
    "german": _classifier(GERMAN),
    "adult": _classifier(ADULT),
    "student": _student,
    "california": _california,
    "quickdraw": _quickdraw,
}


def train_defaults(data: Dataset) -> dict[str, TorchModel]:
    """Fit a dataset's default models and record their test quality in each model's provenance."""
    models = TRAINERS[data.name](data)
    for model in models.values():
        model.provenance.update({"dataset": data.name, "metrics": quality(model, data)})
    return models
