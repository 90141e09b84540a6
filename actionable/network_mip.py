"""A model's network inside a mixed-integer program: affine layers exactly, ReLUs as big-M, the goal as rows.

``layers`` flattens a ``TorchModel``'s network into the layers a program can hold exactly (Linear,
ReLU, the library's Standardize / ColumnMap / BinaryLogits, identities) or says, in words, which layer
it cannot (``"the network has tanh units"``). ``encode`` carries the canonical columns (affine forms of the
program's variables) through them as a ``Vector`` (a matrix and an offset): an affine layer composes, a
ReLU whose input keeps one sign on the box is that side, and an unstable one gets a value variable and a
binary with big-M rows whose constants come from interval propagation over the variables' boxes.
``require_goal`` asks ``Goal.margin(out) >= margin`` (a class: the target logit minus every other
logit; a probability of two classes: their logit difference; a regression bound: the value's distance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from actionable.affine import Form, NotAffine
from actionable.goals import Goal
from actionable.mip import MAX_VALUE, Mip
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.models.trees import Log, TreeEnsemble
from actionable.tree_mip import encode_trees

__all__ = ["SUPPORTED", "Vector", "encode", "layers", "require_goal"]

SUPPORTED = "Linear, ReLU, Standardize, ColumnMap, BinaryLogits, TreeEnsemble, Log and identity layers"
_NAMES = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Softmax: "softmax", nn.LeakyReLU: "leaky ReLU"}


@dataclass(frozen=True)
class Vector:
    """Values ``matrix @ x + offset`` over the program's first ``matrix.shape[1]`` variables."""

    matrix: np.ndarray
    offset: np.ndarray
    probabilities: bool = False  # the values are probabilities whose logs are the logits (a forest)

    def pad(self, n: int) -> np.ndarray:
        out = np.zeros((self.matrix.shape[0], n))
        out[:, : self.matrix.shape[1]] = self.matrix
        return out

    def span(self, mip: Mip) -> tuple[np.ndarray, np.ndarray]:
        lb = np.asarray(mip.lb)[: self.matrix.shape[1]]
        ub = np.asarray(mip.ub)[: self.matrix.shape[1]]
        pos, neg = np.clip(self.matrix, 0, None), np.clip(self.matrix, None, 0)
        return self.offset + pos @ lb + neg @ ub, self.offset + pos @ ub + neg @ lb

    def row(self, i: int) -> Form:
        terms = {int(v): float(c) for v, c in enumerate(self.matrix[i]) if c != 0.0}
        return Form(float(self.offset[i]), terms)


def layers(model: TorchModel) -> list[nn.Module] | str:
    """The network as a flat list of layers a program holds exactly, or why it cannot be held."""
    out: list[nn.Module] = []
    stack: list[nn.Module] = [model.network]
    while stack:
        module = stack.pop(0)
        if isinstance(module, nn.Sequential):
            stack = list(module) + stack
            continue
        if (isinstance(module, nn.Dropout) and not module.training) or isinstance(
            module, nn.Identity | nn.Flatten
        ):
            continue
        if isinstance(
            module, nn.Linear | nn.ReLU | L.Standardize | L.ColumnMap | L.BinaryLogits | TreeEnsemble | Log
        ):
            out.append(module)
            continue
        for kind, name in _NAMES.items():
            if isinstance(module, kind):
                return f"the network has {name} units (a program holds only {SUPPORTED})"
        return f"the network has a layer of type {type(module).__name__} (a program holds only {SUPPORTED})"
    return out


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.asarray(t.detach().to(torch.float64).cpu().numpy())


def encode(mip: Mip, network: Sequence[nn.Module], columns: Sequence[Form]) -> Vector:
    """The network's outputs on canonical columns given as forms (ReLUs add variables and rows)."""
    n = mip.n
    matrix = np.zeros((len(columns), n))
    for i, form in enumerate(columns):
        for v, c in form.terms.items():
            matrix[i, v] = c
    vec = Vector(matrix, np.asarray([f.const for f in columns], dtype=float))
    for layer in network:
        if isinstance(layer, nn.Linear):
            w = _numpy(layer.weight)
            b = _numpy(layer.bias) if layer.bias is not None else np.zeros(w.shape[0])
            vec = Vector(w @ vec.matrix, w @ vec.offset + b)
        elif isinstance(layer, L.Standardize):
            mean, std = _numpy(layer.mean), _numpy(layer.std)
            vec = Vector(vec.matrix / std[:, None], (vec.offset - mean) / std)
        elif isinstance(layer, L.ColumnMap):
            index = layer.index.cpu().numpy()
            scale, shift = _numpy(layer.scale), _numpy(layer.shift)
            vec = Vector(vec.matrix[index] * scale[:, None], vec.offset[index] * scale + shift)
        elif isinstance(layer, TreeEnsemble):
            vec = Vector(*encode_trees(mip, layer, vec.matrix, vec.offset))
        elif isinstance(layer, Log):
            vec = Vector(vec.matrix, vec.offset, probabilities=True)
        elif isinstance(layer, L.BinaryLogits):
            vec = Vector(
                np.vstack([np.zeros_like(vec.matrix), vec.matrix]), np.hstack([0 * vec.offset, vec.offset])
            )
        else:
            vec = _relu(mip, vec)
    return vec


def _relu(mip: Mip, vec: Vector) -> Vector:
    """``max(0, a)`` per unit: the zero or the identity where the sign is known, else big-M rows."""
    lo, hi = vec.span(mip)
    widest = float(np.max(np.abs(np.concatenate([lo, hi])), initial=0.0))
    if not math.isfinite(widest) or widest > MAX_VALUE:
        raise OverflowError(f"a hidden unit ranges up to {widest:.3g}, too large for safe big-M constants")
    lo, hi = lo - 1e-7 * (1 + np.abs(lo)), hi + 1e-7 * (1 + np.abs(hi))  # sound against rounding
    matrix, offset = vec.matrix.copy(), vec.offset.copy()
    matrix[hi <= 0] = 0.0
    offset[hi <= 0] = 0.0
    unstable = np.nonzero((lo < 0) & (hi > 0))[0]
    if not len(unstable):
        return Vector(matrix, offset)
    values = [next(iter(mip.var(0.0, float(hi[i])).terms)) for i in unstable]
    binaries = [next(iter(mip.var(0.0, 1.0, integer=True).terms)) for _ in unstable]
    n, k = mip.n, len(unstable)
    a = Vector(vec.matrix[unstable], vec.offset[unstable]).pad(n)
    eh, ed = np.zeros((k, n)), np.zeros((k, n))
    eh[np.arange(k), values] = 1.0
    ed[np.arange(k), binaries] = 1.0
    low, up, b = lo[unstable][:, None], hi[unstable][:, None], vec.offset[unstable]
    inf, zero = np.full(k, math.inf), np.zeros(k)
    mip.require_block(eh - a, -b, zero, inf)  # h >= a
    mip.require_block(eh - a - low * ed, -b, -inf, -low[:, 0])  # h <= a - low (1 - d)
    mip.require_block(eh - up * ed, zero, -inf, zero)  # h <= up d
    out = np.zeros((len(offset), n))
    out[:, : matrix.shape[1]] = matrix
    out[unstable] = eh
    offset[unstable] = 0.0
    return Vector(out, offset)


def require_goal(mip: Mip, goal: Goal, out: Vector, margin: float, precise: bool) -> None:
    """Rows for ``Goal.margin(out) >= margin``; ``precise``: the model computes in float64 (a float32
    model is allowed a wider tolerance for its own rounding)."""
    width = out.matrix.shape[0]
    pairs: list[tuple[Form, float]] = []
    if out.probabilities:  # log p_a - log p_b >= need  <=>  p_a - exp(need) p_b >= 0
        pairs = _probability_pairs(goal, out, margin, width)
    elif goal.kind == "class":
        target = out.row(goal.index)
        pairs = [(target.plus(out.row(j), -1.0), margin) for j in range(width) if j != goal.index]
    elif goal.kind == "probability":
        if width != 2:
            raise NotAffine(f"a probability goal over {width} classes is not linear in the logits")
        p = float(goal.threshold) * math.exp(margin)  # type: ignore[arg-type]
        if p >= 1:
            mip.infeasible = "the probability the goal asks is out of reach"
            return
        diff = out.row(goal.index).plus(out.row(1 - goal.index), -1.0)
        pairs = [(diff, math.log(p / (1 - p)))]
    else:
        value = out.row(goal.index)
        sign = 1.0 if goal.kind == "above" else -1.0
        pairs = [(value.times(sign).plus(Form(-sign * float(goal.threshold))), margin)]  # type: ignore[arg-type]
    if mip.infeasible is not None:
        return
    for form, need in pairs:
        # rows scaled to unit coefficients: logits scaled by 1e40 (same decisions) stay within HiGHS's range
        scale = max((abs(c) for c in form.terms.values()), default=1.0)
        row, low = form.times(1.0 / scale), need / scale
        slack = (1e-9 if precise else 1e-5) * (1.0 + mip.size(row))
        mip.require(row, low - slack if mip.mode == "relax" else low + slack, tighten=True)


def _probability_pairs(goal: Goal, out: Vector, margin: float, width: int) -> list[tuple[Form, float]]:
    """The goal's rows where the outputs are probabilities (their logs the logits): each a form >= 0."""
    target = out.row(goal.index)
    if goal.kind == "class":
        return [(target.plus(out.row(j), -math.exp(margin)), 0.0) for j in range(width) if j != goal.index]
    if goal.kind == "probability" and width == 2:
        p = float(goal.threshold) * math.exp(margin)  # type: ignore[arg-type]
        if p >= 1:
            return [(Form(-1.0), 0.0)]
        return [(target.plus(out.row(1 - goal.index), -p / (1 - p)), 0.0)]
    raise NotAffine(f"a {goal.kind} goal on a forest's {width} averaged probabilities is not linear")
