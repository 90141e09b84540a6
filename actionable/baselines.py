"""The reference points of an explanation: baselines of the exact methods and scales of the gradient.

``training_mean`` and ``standard_deviations`` compute them from a frame of training rows;
``resolve_baseline`` and ``resolve_scale`` check what a caller passes to ``attribute`` and turn it into
tensors, with a ``DataError`` or ``ConfigError`` that names the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.errors import ConfigError, DataError, did_you_mean
from actionable.schema import DTYPE, Schema

__all__ = ["resolve_baseline", "resolve_scale", "standard_deviations", "training_mean"]


def training_mean(schema: Schema, frame: pd.DataFrame) -> np.ndarray:
    """The mean row of ``frame`` in the canonical encoding (category blocks hold level frequencies)."""
    return schema.encode(frame).mean(0).numpy()


def standard_deviations(schema: Schema, frame: pd.DataFrame) -> pd.Series:
    """Per-feature standard deviation of ``frame`` (population, as StandardScaler); 1.0 for categories.

    A category's attribution is the sum over its block, so "one step" is a change of level. A column
    constant in ``frame`` (a few rows, say) has no spread: its scale is 1.0, one raw unit, as in training.
    """
    clean = schema.validate(frame)
    values = {
        f.name: 1.0 if f.is_category else float(clean[f.name].to_numpy(np.float64).std())
        for f in schema.features
    }
    values = {name: sd if sd > 0 else 1.0 for name, sd in values.items()}
    return pd.Series(values, name="sd")


def resolve_baseline(
    schema: Schema,
    x: torch.Tensor,
    baseline: Any,
    method: str,
    keep: Sequence[int] | None = None,
    inputs: int | None = None,
) -> tuple[torch.Tensor, str]:
    """The baseline as canonical rows (one per row of ``x``) and a short description (``attribute``'s
    ``baseline``: None or "zeros", "mean" of ``x``, raw rows, or canonical rows). ``keep``: the positions
    of ``x``'s rows among the caller's ``inputs`` rows (a baseline of one row per input is cut to them)."""
    if method in ("gradient", "gradient_x_input") or baseline is None or _is(baseline, "zeros"):
        return torch.zeros_like(x), "zeros"
    if _is(baseline, "mean"):
        return x.mean(0, keepdim=True).expand_as(x), "mean of X"
    if isinstance(baseline, pd.Series | Mapping):
        baseline = pd.DataFrame([dict(baseline)])
    if isinstance(baseline, pd.DataFrame):
        missing = [n for n in schema.names if n not in baseline.columns]
        extra = [str(c) for c in baseline.columns if c not in schema]
        if missing or extra:
            raise DataError(
                f"attribute: the baseline's columns do not match the schema: missing {missing}, unknown "
                f"{extra}. Give rows with exactly the schema's features {list(schema.names)}."
            )
        b = schema.encode(baseline)
    elif isinstance(baseline, torch.Tensor | np.ndarray | list | tuple):
        try:
            b = torch.as_tensor(np.asarray(baseline, dtype=np.float64))
        except (TypeError, ValueError):
            raise DataError("attribute: the baseline array is not numeric; give canonical rows.") from None
        b = b[None, :] if b.ndim == 1 else b
        if b.ndim != 2 or b.shape[1] != schema.width:
            raise DataError(
                f"attribute: the baseline has shape {tuple(b.shape)}; canonical rows have {schema.width} "
                f"columns ({', '.join(schema.columns[:4])}, ...)."
            )
    else:
        raise ConfigError(
            f"attribute: baseline of type {type(baseline).__name__}; use None, 'zeros', 'mean', raw rows "
            "(a DataFrame) or canonical rows (an array)."
        )
    if not torch.isfinite(b).all():
        raise DataError("attribute: the baseline holds NaN or infinite values.")
    if len(b) == 1:
        return b.expand_as(x), "given row"
    n = len(x) if inputs is None else inputs
    if len(b) != n:
        raise DataError(f"attribute: the baseline has {len(b)} rows; give 1 row or one per row of X ({n}).")
    return (b if keep is None else b[list(keep)]), "given rows"  # cut to the valid rows' baselines


def _is(value: Any, word: str) -> bool:
    if isinstance(value, str) and value not in ("zeros", "mean"):
        raise ConfigError(
            f"attribute: baseline {value!r} is not known; use 'zeros', 'mean', or rows."
            + did_you_mean(value, ("zeros", "mean"))
        )
    return isinstance(value, str) and value == word


def resolve_scale(schema: Schema, scale: pd.Series | Sequence[float]) -> torch.Tensor:
    """``attribute``'s ``scale`` (one standard deviation per feature) as a checked tensor."""
    if isinstance(scale, pd.Series):
        missing = [n for n in schema.names if n not in scale.index]
        if missing:
            raise DataError(
                f"attribute: scale lacks features {missing}; give one standard deviation per schema feature."
            )
        values = [float(scale[n]) for n in schema.names]
    else:
        values = [float(v) for v in scale]
        if len(values) != len(schema):
            raise DataError(f"attribute: scale has {len(values)} values for {len(schema)} features.")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise DataError(f"attribute: scale values must be finite and > 0; got {values}.")
    return torch.as_tensor(values, dtype=DTYPE)
