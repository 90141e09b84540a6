"""The models of generated problems: fitted on synthetic data labelled by a random rule with noise.

``fit_model`` returns what a user would pass: a fitted scikit-learn ``LogisticRegression`` or
``MLPClassifier`` (each activation) or, asked for by name, a tree model (``TREE_FAMILIES``), alone on the schema's canonical columns or as a ``Pipeline`` of a
``ColumnTransformer`` (``StandardScaler`` for numbers, ``OneHotEncoder`` for categories) and the model,
or a torch ReLU network (``nn.Sequential``) whose input scaling is folded into its first layer.
The labels are a random linear rule of the min-max scaled features with noise, with a random
interaction term, so the models are neither trivial nor perfect.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable.inner import one_thread
from actionable.schema import DTYPE, Schema

__all__ = ["FAMILIES", "TREE_FAMILIES", "fit_model", "training_frame"]

FAMILIES: tuple[str, ...] = ("logistic", "mlp-relu", "mlp-tanh", "mlp-logistic", "mlp-identity", "torch-relu")
# tree ensembles, drawn only when asked for by name (the seeds of FAMILIES keep their problems)
TREE_FAMILIES: tuple[str, ...] = ("tree", "forest", "boosting", "histgb")
TRAINING_ROWS = 400


def training_frame(rng: np.random.Generator, schema: Schema, n: int) -> pd.DataFrame:
    """``n`` raw rows drawn uniformly over the schema's bounds (whole numbers and levels where asked)."""
    columns: dict[str, Any] = {}
    for f in schema.features:
        lo, hi = f.bounds
        if f.is_category:
            columns[f.name] = rng.choice(np.asarray(f.levels, dtype=object), size=n)
        elif f.is_whole:
            columns[f.name] = rng.integers(int(lo), int(hi) + 1, size=n)
        else:
            columns[f.name] = np.round(rng.uniform(lo, hi, size=n), 3)
    return pd.DataFrame(columns)


def _weights(rng: np.random.Generator, schema: Schema) -> np.ndarray:
    """The rule's weights per canonical column: a feature that may move one way mostly helps that way
    (80%), so that a good share of people can be helped and a share cannot; some weights are 0."""
    w = rng.normal(0, 1, size=schema.width) * (rng.random(schema.width) < 0.85)
    for f in schema.features:
        if f.is_direct and not f.is_category and f.direction != "both":
            col = schema.slice(f.name).start
            helps = (f.direction == "increase") == (rng.random() < 0.8)
            w[col] = abs(w[col]) if helps else -abs(w[col])
    return w


def _labels(rng: np.random.Generator, schema: Schema, frame: pd.DataFrame, favourable: int) -> np.ndarray:
    """A random rule: weights on the min-max scaled features (a value per level), a product term, noise."""
    x = schema.encode(frame).numpy()
    lo, hi = (b.numpy() for b in schema.bounds_tensor())
    span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
    u = (x - np.where(np.isfinite(lo), lo, 0.0)) / span
    score = u @ _weights(rng, schema)
    i, j = rng.choice(u.shape[1], size=2)
    score += rng.normal(0, 1) * u[:, i] * u[:, j]
    score += rng.normal(0, 0.15 * (score.std() + 1e-9), size=len(score))
    good = score > np.quantile(score, float(rng.uniform(0.35, 0.65)))
    return np.where(good, favourable, 1 - favourable)


def _sklearn(rng: np.random.Generator, family: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if family in TREE_FAMILIES:
        return _trees(rng, family, seed)
    if family == "logistic":
        return LogisticRegression(C=float(rng.choice([0.3, 1.0, 10.0])), max_iter=2000)
    width = int(rng.integers(4, 13))
    layers = (width,) if rng.random() < 0.6 else (width, width)
    activation = family.removeprefix("mlp-")
    return MLPClassifier(
        layers, activation=activation, solver="lbfgs", alpha=1e-3, max_iter=400, random_state=seed
    )


def _trees(rng: np.random.Generator, family: str, seed: int) -> Any:
    """A small tree model: a decision tree, a random forest, gradient boosting or histogram boosting."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    depth = int(rng.integers(3, 6))
    if family == "tree":
        return DecisionTreeClassifier(max_depth=depth, random_state=seed)
    if family == "forest":
        return RandomForestClassifier(int(rng.integers(8, 25)), max_depth=depth, random_state=seed)
    if family == "boosting":
        return GradientBoostingClassifier(
            n_estimators=int(rng.integers(15, 40)), max_depth=3, random_state=seed
        )
    return HistGradientBoostingClassifier(
        max_iter=int(rng.integers(15, 40)), max_leaf_nodes=8, random_state=seed
    )


def _pipeline(schema: Schema, estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in schema.features if not f.is_category]
    categories = [f for f in schema.features if f.is_category]
    parts: list[tuple[str, Any, list[str]]] = [("num", StandardScaler(), numeric)]
    if categories:
        encoder = OneHotEncoder(categories=[list(f.levels) for f in categories])
        parts.append(("cat", encoder, [f.name for f in categories]))
    return Pipeline([("columns", ColumnTransformer(parts)), ("model", estimator)])


def _torch(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, seed: int) -> nn.Sequential:
    """A two-hidden-layer ReLU network trained full-batch with Adam; the scaling folded into layer one."""
    width = int(rng.integers(6, 17))
    mean, std = x.mean(0), x.std(0) + 1e-6
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        first = nn.Linear(x.shape[1], width, dtype=DTYPE)
        net = nn.Sequential(
            first,
            nn.ReLU(),
            nn.Linear(width, width, dtype=DTYPE),
            nn.ReLU(),
            nn.Linear(width, 2, dtype=DTYPE),
        )
        inputs = torch.as_tensor((x - mean) / std, dtype=DTYPE)
        target = torch.as_tensor(y, dtype=torch.int64)
        optimiser = torch.optim.Adam(net.parameters(), lr=0.02, weight_decay=1e-4)
        for _ in range(300):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(net(inputs), target)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
    with torch.no_grad():  # W (x - m) / s + b = (W / s) x + (b - W m / s)
        scale = torch.as_tensor(1 / std, dtype=DTYPE)
        shift = torch.as_tensor(mean, dtype=DTYPE)
        first.bias.sub_(first.weight @ (shift * scale))
        first.weight.mul_(scale)
    return net


def fit_model(rng: np.random.Generator, schema: Schema, family: str, pipeline: bool, seed: int) -> Any:
    """The fitted model of a problem (see the module's docstring); classes (0, 1) in this order.

    Fitted on one thread (BLAS and torch): on these small problems waiting threads cost more than they share.
    """
    from threadpoolctl import threadpool_limits

    with one_thread(1), threadpool_limits(1):
        return _fit(rng, schema, family, pipeline, seed)


def _fit(rng: np.random.Generator, schema: Schema, family: str, pipeline: bool, seed: int) -> Any:
    frame = training_frame(rng, schema, TRAINING_ROWS)
    favourable = schema.target.favourable if schema.target is not None else 1
    y = _labels(rng, schema, frame, int(favourable))  # type: ignore[arg-type]
    if family == "torch-relu":
        return _torch(rng, schema.encode(frame).numpy(), y, seed)
    estimator = _sklearn(rng, family, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of a deliberately short fit
        if pipeline:
            return _pipeline(schema, estimator).fit(frame, y)
        canonical = pd.DataFrame(schema.encode(frame).numpy(), columns=list(schema.columns))
        return estimator.fit(canonical, y)
