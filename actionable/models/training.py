"""Fitting the default networks: for users who come without a model, and for the bundled datasets.

Every network is made of closed-set layers (a scaler in front, so inputs stay in raw units) and is seeded
and deterministic, so ``actionable train`` reproduces the shipped weights on the same machine type.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable._version import __version__
from actionable.errors import ConfigError, DataError
from actionable.models import layers as L
from actionable.models.core import TorchModel
from actionable.schema import DTYPE, Schema

__all__ = [
    "ConvRecipe",
    "Progress",
    "Recipe",
    "Scaling",
    "check_target",
    "fit_classifier",
    "fit_conv_classifier",
    "fit_indirect",
    "fit_regressor",
    "minmax_bounds",
]

Scaling = Literal["standard", "minmax"]
Progress = Callable[[int, int], None]
"""Called after each epoch as ``progress(done, total)``: epochs done, epochs in all."""


@dataclass(frozen=True)
class Recipe:
    """How to fit one network: architecture, input scaling and the optimiser's settings."""

    hidden: tuple[int, ...] = (40, 40)
    activation: Literal["relu", "tanh", "logistic"] = "relu"
    scaling: Scaling = "standard"
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    dropout: float = 0.0
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if any(h < 1 for h in self.hidden) or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(
                f"train: hidden sizes, epochs and batch_size must be >= 1 and lr > 0; got {self}."
            )
        if self.activation not in ("relu", "tanh", "logistic"):
            raise ConfigError(f"train: activation {self.activation!r}; use 'relu', 'tanh' or 'logistic'.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"train: dropout must be in [0, 1); got {self.dropout}.")


def check_target(schema: Schema, frame: pd.DataFrame, target: str, *, where: str = "train") -> pd.Series:
    """The label column of a training table, checked before any split or fit: it is not a feature, it is the
    schema's [target] (when one is declared), no value is missing, a regression target is numeric, and a
    classification target holds two or more of the schema's classes. ``DataError`` names rows and values."""
    if target in schema:
        raise ConfigError(f"{where}: --target {target!r} is a feature of the schema; give the label column.")
    declared = schema.target.name if schema.target is not None else None
    if declared is not None and target != declared:
        raise ConfigError(
            f"{where}: --target {target!r} is not the schema's [target] name {declared!r}; pass --target "
            f"{declared} or change [target] name."
        )
    if target not in frame.columns:
        raise DataError(
            f"{where}: target column {target!r} is not in the data; columns are {list(frame.columns)}."
        )
    y = frame[target]
    missing = np.flatnonzero(y.isna().to_numpy())
    if len(missing):
        raise DataError(
            f"{where}: the target column {target!r} is missing in {len(missing)} row(s) (rows "
            f"{missing[:5].tolist()}); fill or drop them."
        )
    if schema.target is not None and schema.target.is_regression:
        numbers = pd.to_numeric(y, errors="coerce")
        bad = np.flatnonzero(numbers.isna().to_numpy())
        if len(bad):
            raise DataError(
                f"{where}: a regression target must be numbers; row {int(bad[0])} of {target!r} holds "
                f"{y.iloc[int(bad[0])]!r}."
            )
        return numbers.astype("float64")
    classes = schema.target.classes if schema.target is not None else ()
    if classes:
        known = {str(c) for c in classes}
        strangers = [i for i, v in enumerate(y) if str(v) not in known]
        if strangers:
            raise DataError(
                f"{where}: row {strangers[0]} of {target!r} holds {y.iloc[strangers[0]]!r}, not one of the "
                f"schema's classes {list(classes)} ({len(strangers)} such row(s)); fix the data or the [target] "
                "classes."
            )
    seen = pd.unique(y.map(str))
    if len(seen) < 2:
        raise DataError(
            f"{where}: every row of {target!r} is {y.iloc[0]!r}; a classifier needs rows of two or more classes."
        )
    return y


def fit_classifier(
    schema: Schema,
    X: pd.DataFrame,
    y: pd.Series | Sequence[Any],
    recipe: Recipe = Recipe(),
    *,
    classes: Sequence[Any] | None = None,
    provenance: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> TorchModel:
    """A seeded MLP classifier on the canonical tensor (softmax cross-entropy; logits out); ``progress``
    hears after each epoch (epochs done, epochs)."""
    x = schema.encode(X)
    labels = pd.Series(list(y))
    if labels.isna().any():
        raise DataError("train: the target column has missing values; drop those rows first.")
    if classes is None:
        classes = schema.target.classes if schema.target is not None and schema.target.classes else None
    classes = tuple(classes) if classes is not None else tuple(sorted(pd.unique(labels).tolist(), key=str))
    lookup = {str(c): i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in labels} - set(lookup))
    if unknown:
        raise DataError(f"train: target values {unknown[:5]} are not among the classes {list(classes)}.")
    if len(classes) < 2:
        raise DataError(
            f"train: the target has a single class {list(classes)}; a classifier needs two or more."
        )
    codes = torch.as_tensor([lookup[str(v)] for v in labels], dtype=torch.int64)
    scaler = _scaler(schema, x, recipe.scaling)
    net = _fit(x, codes, scaler, len(classes), recipe, nn.CrossEntropyLoss(), progress=progress)
    info = {"trainer": "actionable.training.fit_classifier", "recipe": asdict(recipe), "version": __version__}
    return TorchModel(
        net, schema, task="classification", classes=classes, provenance=info | (provenance or {})
    )


def fit_regressor(
    schema: Schema,
    X: pd.DataFrame,
    y: pd.Series | Sequence[float],
    recipe: Recipe = Recipe(),
    *,
    provenance: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> TorchModel:
    """A seeded MLP regressor on the canonical tensor (mean squared error on the standardised target);
    ``progress`` hears after each epoch (epochs done, epochs)."""
    x = schema.encode(X)
    target = torch.tensor(np.asarray(y, dtype=np.float64)).reshape(len(x), -1)
    mean, std = target.mean(0), _unit_if_constant(target.std(0))
    scaler = _scaler(schema, x, recipe.scaling)
    net = _fit(x, (target - mean) / std, scaler, target.shape[1], recipe, nn.MSELoss(), progress=progress)
    net.append(L.ColumnMap(torch.arange(target.shape[1]), std, mean))
    name = schema.target.name if schema.target is not None else "output"
    info = {"trainer": "actionable.training.fit_regressor", "recipe": asdict(recipe), "version": __version__}
    return TorchModel(net, schema, task="regression", outputs=(name,), provenance=info | (provenance or {}))


def fit_indirect(
    schema: Schema,
    X: pd.DataFrame,
    recipe: Recipe = Recipe(hidden=(10,)),
    *,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    provenance: dict[str, Any] | None = None,
) -> TorchModel:
    """The indirect model of Lash et al.: predicts the indirect features from the fixed and direct ones.

    Inputs and outputs are min-max scaled by ``bounds`` (default: the schema's), the output layer is ReLU
    as in the original, and the result is mapped back to raw units, so the model reads and writes raw units.
    """
    indirect = [f for f in schema.features if f.mutability == "indirect"]
    if not indirect:
        raise ConfigError("train: the schema has no indirect features, so there is no indirect model to fit.")
    if any(f.kind == "category" for f in indirect):
        raise ConfigError(
            "train: indirect category features are not supported; declare them binary or numeric."
        )
    x = schema.encode(X)
    lo, hi = bounds if bounds is not None else schema.bounds_tensor()
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    inputs = torch.nonzero(~schema.mask("indirect")).flatten()
    outputs = torch.as_tensor([schema.slice(f.name).start for f in indirect])
    scaler = L.ColumnMap(inputs, 1 / span[inputs], -lo[inputs] / span[inputs])
    target = (x[:, outputs] - lo[outputs]) / span[outputs]
    net = _fit(x, target, scaler, len(indirect), recipe, nn.MSELoss(), out_activation=L.ReLU())
    net.append(L.ColumnMap(torch.arange(len(indirect)), span[outputs], lo[outputs]))
    info = {"trainer": "actionable.training.fit_indirect", "recipe": asdict(recipe), "version": __version__}
    return TorchModel(
        net,
        schema,
        task="regression",
        outputs=tuple(f.name for f in indirect),
        provenance=info | (provenance or {}),
    )


def minmax_bounds(schema: Schema, X: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    """Per canonical column min and max of a frame (the training ranges Lash et al. scale by)."""
    x = schema.encode(X)
    return x.min(0).values, x.max(0).values


def _unit_if_constant(std: torch.Tensor) -> torch.Tensor:
    """Standard deviations with 1 for columns constant in training (as scikit-learn's StandardScaler does).

    A tiny divisor would blow up any row that later has a value there, such as a category level absent
    from the training data, into an output of 1e12.
    """
    return torch.where(std > 1e-8 * std.abs().max().clamp_min(1.0), std, torch.ones_like(std))


def _scaler(schema: Schema, x: torch.Tensor, scaling: Scaling) -> L.Layer:
    if scaling == "standard":
        return L.Standardize(x.mean(0), _unit_if_constant(x.std(0)))
    if scaling == "minmax":
        lo, hi = x.min(0).values, x.max(0).values
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return L.ColumnMap(torch.arange(schema.width), 1 / span, -lo / span)
    raise ConfigError(f"train: scaling {scaling!r}; use 'standard' or 'minmax'.")


def _fit(
    x: torch.Tensor,
    y: torch.Tensor,
    scaler: L.Layer,
    n_out: int,
    recipe: Recipe,
    loss_fn: nn.Module,
    out_activation: L.Layer | None = None,
    progress: Progress | None = None,
) -> nn.Sequential:
    """Mini-batch Adam on a seeded MLP; dropout layers are used in training only and not kept."""
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    width = int(scaler(x[:1]).shape[1])
    sizes = [width, *recipe.hidden, n_out]
    body: list[nn.Module] = []
    kept: list[L.Layer] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        linear = L.Linear(a, b).to(DTYPE)
        body.append(linear)
        kept.append(linear)
        if i < len(sizes) - 2:
            act = L.ACTIVATIONS[recipe.activation]()
            body.append(act)
            kept.append(act)
            if recipe.dropout:
                body.append(nn.Dropout(recipe.dropout))
    if out_activation is not None:
        body.append(out_activation)
        kept.append(out_activation)
    train_net = nn.Sequential(*body)
    _train(train_net, scaler(x).detach(), y, loss_fn, recipe, generator, progress)
    return nn.Sequential(scaler, *kept).to(DTYPE)


def _train(
    net: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    recipe: Recipe | ConvRecipe,
    generator: torch.Generator,
    progress: Progress | None = None,
) -> None:
    """Seeded mini-batch Adam over shuffled batches; leaves ``net`` in eval mode. ``progress`` hears
    ``(epochs done, epochs)`` after each epoch."""
    optimiser = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = len(z)
    for epoch in range(recipe.epochs):
        net.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(net(z[batch]), y[batch])
            loss.backward()
            optimiser.step()
        if progress is not None:
            progress(epoch + 1, recipe.epochs)
    net.eval()


# ------------------------------------------------------------------------------ 1-D convolutions
@dataclass(frozen=True)
class ConvRecipe:
    """A small 1-D convolutional classifier over slot-major columns (``length`` slots x ``channels``).

    Convolutions keep the length (zero padding), a max-pool shrinks it, then Linear + ReLU layers.
    """

    length: int
    channels: int
    filters: tuple[int, ...] = (8, 8, 8)
    kernel: int = 5
    pool: int = 4
    hidden: tuple[int, ...] = (64,)
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        sizes = (self.length, self.channels, self.kernel, self.pool, self.epochs, self.batch_size)
        if min(sizes) < 1 or any(f < 1 for f in (*self.filters, *self.hidden)) or self.lr <= 0:
            raise ConfigError(f"train: sizes, epochs and batch_size must be >= 1 and lr > 0; got {self}.")
        if self.kernel % 2 == 0:
            raise ConfigError(
                f"train: kernel must be odd so convolutions keep the length; got {self.kernel}."
            )


def fit_conv_classifier(
    schema: Schema,
    X: pd.DataFrame,
    y: pd.Series | Sequence[Any],
    recipe: ConvRecipe,
    *,
    provenance: dict[str, Any] | None = None,
) -> TorchModel:
    """A seeded 1-D convolutional classifier on the canonical tensor (raw columns in, logits out)."""
    x = schema.encode(X)
    if x.shape[1] != recipe.length * recipe.channels:
        raise ConfigError(
            f"train: the schema has {x.shape[1]} columns; a {recipe.length} x {recipe.channels} sequence "
            "needs exactly that many (slot-major)."
        )
    classes = schema.target.classes if schema.target is not None and schema.target.classes else None
    classes = tuple(classes) if classes else tuple(sorted(pd.unique(pd.Series(list(y))).tolist(), key=str))
    lookup = {str(c): i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in y} - set(lookup))
    if unknown or len(classes) < 2:
        raise DataError(
            f"train: target values {unknown[:5]} / classes {list(classes)}: need >= 2 known classes."
        )
    codes = torch.as_tensor([lookup[str(v)] for v in y], dtype=torch.int64)
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    layers: list[nn.Module] = [L.Sequence1d(recipe.length, recipe.channels)]
    width = recipe.channels
    for filters in recipe.filters:
        layers += [L.Conv1d(width, filters, recipe.kernel, padding=recipe.kernel // 2), L.ReLU()]
        width = filters
    layers += [L.MaxPool1d(recipe.pool), L.Flatten()]
    width *= recipe.length // recipe.pool
    for hidden in recipe.hidden:
        layers += [L.Linear(width, hidden), L.ReLU()]
        width = hidden
    layers.append(L.Linear(width, len(classes)))
    net = nn.Sequential(*layers).to(DTYPE)
    _train(net, x, codes, nn.CrossEntropyLoss(), recipe, generator)
    info = {
        "trainer": "actionable.training.fit_conv_classifier",
        "recipe": asdict(recipe),
        "version": __version__,
    }
    return TorchModel(
        net, schema, task="classification", classes=classes, provenance=info | (provenance or {})
    )
