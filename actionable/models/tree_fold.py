"""A Pipeline's scalers folded into a tree ensemble's thresholds, so a split reads the canonical column itself.

A scaler followed by trees is exact only if it rounds as scikit-learn does: ``(x - mean) / scale`` and
``x * (1 / scale) - mean / scale`` differ by an ulp, and a row whose scaled value lies on a threshold (a
HistGradientBoosting threshold can be a data value) then takes the other branch. Each column's map ``g``
(scikit-learn's own operations in order, then the float32 rounding of a float32 ensemble) is monotone, so
``g(x) <= t`` is ``x <= t'`` for the largest float64 ``t'`` it holds at, found by bisection over the
float64s, or ``x >= ...`` (children swapped) when ``g`` decreases: the folded ensemble compares raw float64
values and is exact for every finite input (but one whose ``g`` overflows to NaN, ``inf * 0``, which
scikit-learn would send down the missing branch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from actionable.models.trees import TreeEnsemble

__all__ = ["Ops", "apply_ops", "fold"]

Ops = tuple[tuple[str, float], ...]  # ("sub" | "div" | "mul" | "add", value), applied in order
BIG = np.finfo(np.float64).max
_SIGN = np.uint64(1 << 63)


def apply_ops(x: np.ndarray, ops: Ops, float32: bool) -> np.ndarray:
    """``g(x)``: the operations in float64, in order, each rounded as numpy rounds it; float32 at the end."""
    out = np.asarray(x, np.float64).copy()
    with np.errstate(over="ignore", invalid="ignore"):
        for op, v in ops:
            if op == "sub":
                out -= v
            elif op == "add":
                out += v
            elif op == "mul":
                out *= v
            else:
                out /= v
        return out.astype(np.float32).astype(np.float64) if float32 else out


def _order(x: np.ndarray) -> np.ndarray:
    """float64 -> uint64 in the same order (a bijection on non-NaN values)."""
    bits = x.view(np.uint64)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def _unorder(k: np.ndarray) -> np.ndarray:
    bits = np.where(k & _SIGN, k & ~_SIGN, ~k)
    return bits.astype(np.uint64).view(np.float64)


def _last_in(ops: Ops, t: np.ndarray, float32: bool, rising: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold t: the largest float64 x in [-BIG, BIG] that goes left, where left is g(x) <= t if
    g rises and g(x) > t if it falls (the last x that goes right); and where no x goes left at all."""

    def left(x: np.ndarray) -> np.ndarray:
        g = apply_ops(x, ops, float32)
        out: np.ndarray = g <= t if rising else g > t
        return out

    lo, hi = _order(np.full(len(t), -BIG)), _order(np.full(len(t), BIG))
    none, full = ~left(_unorder(lo)), left(_unorder(hi))
    for _ in range(64):  # left(lo) holds and left(hi) does not, unless none or full
        mid = lo + (hi - lo) // np.uint64(2)
        ok = left(_unorder(mid))
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(none | full, BIG, _unorder(lo)), none


def fold(ensemble: TreeEnsemble, ops: Sequence[Ops]) -> TreeEnsemble:
    """``ensemble`` reading ``g_j(x_j)`` for each input column j -> the same ensemble reading ``x_j``."""
    own = torch.arange(len(ensemble.left))
    inner = (ensemble.left != own).numpy()
    feature = ensemble.feature.numpy()
    threshold = ensemble.threshold.numpy().copy()
    left, right = ensemble.left.numpy().copy(), ensemble.right.numpy().copy()
    missing = ensemble.missing_left.numpy().copy()
    for column in np.unique(feature[inner]):
        chain = ops[int(column)]
        nodes = np.flatnonzero(inner & (feature == column))
        sign = float(np.prod([np.sign(v) for op, v in chain if op in ("mul", "div")] or [1.0]))
        if sign == 0:  # a constant g (a one-hot level the schema lacks): always or never left
            c = apply_ops(np.zeros(1), chain, ensemble.float32)[0]
            cut, none = np.full(len(nodes), BIG), ~(c <= threshold[nodes])
        else:
            cut, none = _last_in(chain, threshold[nodes], ensemble.float32, rising=sign > 0)
        threshold[nodes] = cut
        # a falling g goes left past the cut, so the children swap; so do they where nothing goes left
        # (x <= BIG for every finite x then reaches the other child)
        swap = nodes[none != (sign < 0)]
        left[swap], right[swap] = right[swap], left[swap]
        missing[swap] = 1 - missing[swap]
    return TreeEnsemble(
        ensemble.feature,
        torch.as_tensor(threshold),
        torch.as_tensor(left),
        torch.as_tensor(right),
        torch.as_tensor(missing),
        ensemble.value,
        ensemble.roots,
        ensemble.base,
        ensemble.cover,
        inputs=ensemble.inputs,
        float32=False,
        depth=ensemble.depth,
    )
