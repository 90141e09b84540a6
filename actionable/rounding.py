"""How a whole-number feature is made whole after an action: ``nearest``, ``floor`` or ``ceil``.

An integer or binary feature stays a whole number after every action, so an effect that yields a fraction
(``priors / 2``, a duration scaled to keep an instalment) is rounded as declared: ``rounding`` on the
feature (schema) or on the action (catalogue; it wins for that action's effects), ``nearest`` by default.
``nearest`` sends halves away from zero (2.5 -> 3, -2.5 -> -3), not to even as ``torch.round`` does
(which sends 3 / 2 and 5 / 2 both to 2). ``floor`` and ``ceil`` first read a value within ``SNAP`` of a
whole number as that number, so float noise (``2.9999999999999996`` for 3) never floors to 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch

__all__ = ["ROUNDINGS", "SNAP", "RoundingMode", "make_whole", "make_whole_columns", "whole_number"]

RoundingMode = Literal["nearest", "floor", "ceil"]
ROUNDINGS: tuple[str, ...] = get_args(RoundingMode)
SNAP = 1e-9  # a value this close to a whole number is that number for floor and ceil


def make_whole(values: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """``values`` made whole numbers by ``mode`` (elementwise; infinities and NaN stay as they are).

    ``x - trunc(x)`` is exact in floating point, so a half is recognised exactly (``floor(x + 0.5)``
    would send 0.49999999999999994 to 1)."""
    whole = torch.trunc(values)
    half_up = (values - whole).abs() >= 0.5
    nearest = whole + torch.where(half_up, torch.sign(values), torch.zeros_like(values))
    if mode == "nearest":
        return nearest
    snapped = torch.where((values - nearest).abs() <= SNAP, nearest, values)
    if mode == "floor":
        return torch.floor(snapped)
    if mode == "ceil":
        return torch.ceil(snapped)
    raise ValueError(f"rounding {mode!r}: use one of {list(ROUNDINGS)}")


def make_whole_columns(values: torch.Tensor, modes: Sequence[str]) -> torch.Tensor:
    """Each column (last dimension) of ``values`` made whole by its own mode."""
    if len(set(modes)) == 1:
        return make_whole(values, modes[0])
    columns = [make_whole(values[..., j], mode) for j, mode in enumerate(modes)]
    return torch.stack(columns, -1) if columns else values


def whole_number(value: float, mode: str = "nearest") -> float:
    """One number made whole by ``mode`` (as ``make_whole``)."""
    return float(make_whole(torch.tensor(value, dtype=torch.float64), mode))
