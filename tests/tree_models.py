"""scikit-learn tree models packed by hand into ``TreeEnsemble`` models (the tests' own small converter, read
from the fitted arrays as shap reads them), behind a ColumnMap the tests choose, so TreeSHAP's mapping from
the ensemble's inputs back to raw features is exercised with duplicated, scaled and shifted columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable import Feature, Schema, Target
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.models.trees import Log, Tree, pack

__all__ = ["INDEX", "SCALE", "SHIFT", "column_map", "frame", "packed", "schema", "to_raw"]

# z = x[:, INDEX] * SCALE + SHIFT over the canonical columns income, age, job=a, job=b, job=c, owner:
# income read twice (once mirrored), the job block reordered, owner last
INDEX = np.array([0, 1, 4, 2, 3, 5, 0])
SCALE = np.array([0.5, 1.0, 1.0, 1.0, 1.0, 1.0, -2.0])
SHIFT = np.array([1.0, -18.0, 0.0, 0.0, 0.0, 0.0, 3.0])
RAW = (0, 1, 2, 2, 2, 3)  # canonical column -> raw feature (the job block summed)


def schema(classes: tuple[str, ...] | None = ("no", "yes")) -> Schema:
    """Four features of every kind; a classifier's classes, or (None) a regression of ``amount``."""
    target = Target("amount", above=50.0) if classes is None else Target("approved", classes[-1], classes)
    return Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct"),
            Feature("age", "integer", (18, 80)),
            Feature("job", "category", levels=("a", "b", "c"), mutability="direct"),
            Feature("owner", "binary", (0, 1), mutability="direct"),
        ),
        target,
    )


def frame(n: int, seed: int, decimals: int | None = 1) -> pd.DataFrame:
    """Raw rows; ``decimals``: income rounded (values land exactly on midpoint thresholds), or not."""
    rng = np.random.default_rng(seed)
    income = rng.uniform(0, 100, n)
    return pd.DataFrame(
        {
            "income": income if decimals is None else income.round(decimals),
            "age": rng.integers(18, 81, n),
            "job": rng.choice(["a", "b", "c"], n),
            "owner": rng.integers(0, 2, n),
        }
    )


def column_map(s: Schema, X: pd.DataFrame) -> np.ndarray:
    """The ensemble's inputs z for raw rows (numpy, independently of ColumnMap)."""
    x = s.encode(X).numpy()
    return x[:, INDEX] * SCALE + SHIFT


def to_raw(phi: np.ndarray) -> np.ndarray:
    """Values per ensemble input -> per raw feature, by plain loops (the oracle's own mapping)."""
    out = np.zeros((len(phi), 4))
    for j, canonical in enumerate(INDEX):
        out[:, RAW[canonical]] += phi[:, j]
    return out


def _sk_tree(t: Any, value: np.ndarray) -> Tree:
    missing = getattr(t, "missing_go_to_left", np.ones(t.node_count, np.uint8))
    return Tree(
        t.feature, t.threshold, t.children_left, t.children_right, missing, value, t.weighted_n_node_samples
    )


def _trees(est: Any) -> tuple[list[Tree], np.ndarray, bool, int]:
    """The hand-packed trees, base, float32 rounding and output count of a fitted estimator."""
    name = type(est).__name__
    if name.startswith("HistGradientBoosting"):
        k = len(est._predictors[0])
        trees = []
        for iteration in est._predictors:
            for c, p in enumerate(iteration):
                nodes = p.nodes
                leaf = nodes["is_leaf"].astype(bool)
                value = np.zeros((len(nodes), k))
                value[:, c] = nodes["value"]
                feature = np.where(leaf, -1, nodes["feature_idx"])
                trees.append(
                    Tree(
                        feature,
                        nodes["num_threshold"],
                        nodes["left"],
                        nodes["right"],
                        nodes["missing_go_to_left"],
                        value,
                        nodes["count"].astype(float),
                    )
                )
        return trees, np.ravel(est._baseline_prediction), False, k
    if name.startswith("GradientBoosting"):
        k = est.estimators_.shape[1]
        trees = []
        for row in est.estimators_:
            for c, reg in enumerate(row):
                value = np.zeros((reg.tree_.node_count, k))
                value[:, c] = reg.tree_.value[:, 0, 0] * est.learning_rate
                trees.append(_sk_tree(reg.tree_, value))
        base = est._raw_predict_init(np.zeros((1, est.n_features_in_)))[0]
        return trees, base, True, k
    n = len(est.estimators_)
    trees = []
    for member in est.estimators_:
        v = member.tree_.value[:, 0, :]
        v = v / v.sum(1, keepdims=True) if name.endswith("Classifier") else v
        trees.append(_sk_tree(member.tree_, v / n))
    return trees, np.zeros(trees[0].value.shape[1]), True, trees[0].value.shape[1]


def packed(est: Any, s: Schema, *, cover: bool = True) -> TorchModel:
    """A fitted scikit-learn tree model (fitted on ``column_map`` rows) as a TorchModel on ``s``."""
    trees, base, float32, k = _trees(est)
    if not cover:
        trees = [Tree(t.feature, t.threshold, t.left, t.right, t.missing_left, t.value) for t in trees]
    ensemble = pack(trees, base, inputs=len(INDEX), float32=float32)
    columns = L.ColumnMap(torch.as_tensor(INDEX), torch.as_tensor(SCALE), torch.as_tensor(SHIFT))
    layers: list[nn.Module] = [columns, ensemble]
    classifier = hasattr(est, "classes_")
    if classifier and type(est).__name__.startswith("RandomForest"):
        layers.append(Log())
    elif classifier and k == 1:
        layers.append(L.BinaryLogits())
    if classifier:
        classes = tuple(str(c) for c in est.classes_)
        return TorchModel(nn.Sequential(*layers), s, task="classification", classes=classes)
    return TorchModel(nn.Sequential(*layers), s, task="regression", outputs=("amount",))
