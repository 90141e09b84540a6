"""What an attribution explains, shared by every method: the model as a ``TorchModel``, the rows (bad ones
kept in place), the output explained, and values summed from canonical columns back to raw features."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.errors import ConfigError, DataError, ModelError, did_you_mean
from actionable.goals import resolve_goal
from actionable.models import TorchModel, as_model
from actionable.rows import read_rows
from actionable.schema import DTYPE, Schema

__all__ = ["explained_output", "explained_rows", "in_place", "per_raw_feature", "wrap_model"]


def wrap_model(model: Any, schema: Schema | None, where: str = "attribute") -> TorchModel:
    """The ``TorchModel`` behind ``model`` (a fitted estimator is converted on ``schema``)."""
    if isinstance(model, TorchModel):
        return model
    if schema is None:
        raise ConfigError(
            f"{where}: pass schema= to explain a {type(model).__name__} (or wrap it with as_model first)."
        )
    try:
        return as_model(model, schema)
    except ModelError as exc:
        raise ModelError(
            f"{exc} {where}: these methods need a differentiable model or a tree ensemble; a gradient-free "
            "path (occlusion / sampling) is planned but not available yet."
        ) from None


def in_place(a: torch.Tensor, good: Sequence[int], n: int) -> np.ndarray:
    """The valid rows' values at their input positions, NaN at the others."""
    out = np.full((n, *a.shape[1:]), math.nan)
    out[list(good)] = a.detach().numpy()
    return out


def explained_rows(net: TorchModel, X: Any) -> tuple[torch.Tensor, tuple[int, ...], Mapping[int, str]]:
    """The canonical rows explained, their positions in ``X`` and, for a raw frame, the rows that do not fit
    the schema (position -> message; they are reported in place, not raised)."""
    if isinstance(X, pd.DataFrame) and len(X):
        batch = read_rows(net.schema, X, "attribute")
        return batch.x, batch.good, batch.errors
    x = net.encode(X).to(DTYPE)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"attribute: X must hold at least one row; got shape {tuple(x.shape)}.")
    if x.shape[1] != net.schema.width:
        raise DataError(
            f"attribute: X has {x.shape[1]} columns; the schema's canonical encoding has {net.schema.width}. "
            "Give a raw DataFrame with the schema's features, or canonical rows."
        )
    return x, tuple(range(len(x))), {}


def per_raw_feature(schema: Schema, values: torch.Tensor) -> torch.Tensor:
    """Canonical columns -> raw features: each one-hot block summed to its category feature."""
    owner = torch.as_tensor([schema.position(f.name) for f in schema.features for _ in range(f.width)])
    out = torch.zeros(values.shape[0], len(schema), dtype=values.dtype)
    return out.index_add_(1, owner, values)


def explained_output(model: TorchModel, target: Any) -> tuple[int, str]:
    """The explained output column and its name."""
    names = [str(c) for c in (model.classes or model.outputs)]
    if target is None and model.task == "regression":
        return 0, names[0]
    if target is None:
        favourable = model.schema.target.favourable if model.schema.target is not None else None
        if favourable is None:
            raise ConfigError(
                f"attribute: the schema names no favourable class; pass target= (one of {names})."
            )
        goal = resolve_goal(model, {"class": favourable})
        return goal.index, names[goal.index]
    labels = model.classes or model.outputs
    for i, c in enumerate(labels):
        if c == target or str(c) == str(target):
            return i, names[i]
    if isinstance(target, int | np.integer) and not isinstance(target, bool) and 0 <= target < len(names):
        return int(target), names[int(target)]
    raise ConfigError(
        f"attribute: target {target!r} is neither one of the model's outputs {names} nor an index below "
        f"{len(names)}." + did_you_mean(target, names)
    )
