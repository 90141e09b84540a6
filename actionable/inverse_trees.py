"""Inverse classification on a tree ensemble, exactly: one mixed-integer program per person and budget.

A tree model is piecewise constant, so projected gradient descent has nothing to follow. Its probability
is instead linear in the leaves an input reaches (``tree_mip``), so the best change within the budget is a
mixed-integer program (HiGHS through ``scipy.optimize.milp``): per direct feature a new value (a whole
number where the feature is integer or binary and ``rounding`` is on) with its rise and fall, the weighted
L1 cost of the rises and falls at most the budget, the ensemble's leaves, and an indirect model (when
given, and a network a program holds: linear, ReLU, trees) carried through as rows. Both directions of
every feature are searched (``ambiguous`` applies to gradient descent only).

Each person gets two solves in "tight" mode (values kept a safe margin off every threshold, so the plan
routes through the trees as the program says): the least risk (log-odds of the unfavourable outcome, or its
averaged probability for a forest), then the least cost among changes of that risk. ``inverse_polish`` then
moves each real-valued change back to the nearest point of its cell (exactly, by the model itself: the
margin costs nothing) and keeps the best of that, no change and the previous budget's answer, so the
answer is never worse than doing nothing and never worse at a larger budget. A third solve in "relax" mode
(every real change feasible) bounds the risk from below: when the model's exact probability after the
change meets that bound, the record's certificate is ``optimal`` (for the probability; the cost is the
least the second solve found). With an indirect model the record reports its predictions rounded and
clipped, which the program does not model, so the certificate then says so instead of claiming optimality.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from actionable.affine import Form
from actionable.errors import ConfigError
from actionable.goals import Goal
from actionable.mip import MAX_VALUE, Mip, Mode, Solved
from actionable.models import TorchModel
from actionable.models.trees import TreeEnsemble
from actionable.network_mip import Vector, encode, layers
from actionable.schema import Feature

__all__ = ["Answer", "LeafInversion", "Solution"]

GAP = 1e-9  # relative gap asked of HiGHS for both objectives
OVERSPEND = 1e-9  # relative: how far past the budget a change may cost (the gradient solver's tolerance)


@dataclass(frozen=True)
class Answer:
    """One row's program: its change (raw units), the relaxed bound on the risk (``-inf``: not proved) and
    why nothing was proved (empty when it was)."""

    change: np.ndarray
    bound: float
    reason: str
    relaxed: np.ndarray | None = None  # the relaxed program's own change (values may sit on thresholds)


@dataclass(frozen=True)
class Solution:
    """Per budget: the changes in scaled units (rows x direct features) and each row's certificate."""

    delta: torch.Tensor
    certificates: list[dict[str, Any]]


def _risk(out: Vector, goal: Goal, mip: Mip) -> Form:
    """What the program minimises: the unfavourable log-odds, or the averaged unfavourable probability."""
    width = out.matrix.shape[0]
    padded = Vector(out.pad(mip.n), out.offset, out.probabilities)
    if out.probabilities:
        return padded.row(goal.index).times(-1.0).plus(Form(1.0))
    if width != 2:
        raise ConfigError(
            f"invert: this tree model has {width} classes whose probabilities come from a softmax of its "
            "leaf sums, which is not linear in the leaves; inverse classification on trees supports "
            "binary classifiers and forests (averaged probabilities). Use synthesize with a goal instead."
        )
    return padded.row(1 - goal.index).plus(padded.row(goal.index), -1.0)


class LeafInversion:
    """The programs of one model, schema and indirect model; ``solve`` answers a chunk at every budget."""

    def __init__(
        self,
        model: TorchModel,
        goal: Goal,
        direct: list[Feature],
        cols: torch.Tensor,
        indirect: tuple[TorchModel, torch.Tensor] | None,
        *,
        rounding: bool,
        time_limit: float,
    ) -> None:
        network = layers(model)
        if isinstance(network, str):
            raise ConfigError(f"invert: this tree model cannot be written as a program: {network}.")
        self.network, self.goal, self.direct = network, goal, direct
        for at, layer in enumerate(network):
            if isinstance(layer, TreeEnsemble):
                self.tree = layer
                self.pre = nn.Sequential(*network[:at])  # the affine layers in front of the trees
                break
        else:
            raise ConfigError("invert: this model holds no tree ensemble a program can read.")
        self.cols = cols.tolist()
        self.indirect: tuple[list[Any], list[int]] | None = None
        if indirect is not None:
            g, g_cols = indirect
            g_network = layers(g)
            if isinstance(g_network, str):
                raise ConfigError(
                    f"invert: on a tree model the indirect model must be one a program holds (linear, ReLU "
                    f"or trees): {g_network}."
                )
            self.indirect = (g_network, g_cols.tolist())
        for f in direct:
            if max(abs(f.bounds[0]), abs(f.bounds[1])) > MAX_VALUE:
                raise ConfigError(
                    f"invert: direct feature {f.name!r} has bounds {list(f.bounds)}, beyond +-{MAX_VALUE:g}: too "
                    "large for the exact program on a tree model (its big-M constants); rescale the feature "
                    "(for example to thousands) in the data, the schema and the model."
                )
        self.whole = [f.is_whole and rounding for f in direct]
        self.cost_up = [f.cost_up or 0.0 for f in direct]
        self.cost_down = [f.cost_down or 0.0 for f in direct]
        self.time_limit = time_limit
        self.probabilities = False  # whether the ensemble's outputs are averaged probabilities (a forest)

    # ------------------------------------------------------------------------------ one program
    def program(
        self, mode: Mode, x0: np.ndarray, low: np.ndarray, high: np.ndarray, budget: float
    ) -> tuple[Mip, Form, Form, list[int]]:
        """The program for one row: (program, risk, cost, index of each direct feature's new value). The
        budget row is scaled by the budget, so the solver's tolerance on it is relative."""
        mip = Mip(mode)
        values, cost = [], Form(0.0)
        for j, col in enumerate(self.cols):
            lo, hi = x0[col] + low[j], x0[col] + high[j]
            value = mip.var(lo, hi, integer=self.whole[j])
            rise, fall = mip.var(0.0, max(high[j], 0.0)), mip.var(0.0, max(-low[j], 0.0))
            mip.require(value.plus(rise, -1.0).plus(fall), x0[col], x0[col])  # value = x0 + rise - fall
            cost = cost.plus(rise, self.cost_up[j]).plus(fall, self.cost_down[j])
            values.append(next(iter(value.terms)))
        mip.require(cost.times(1.0 / budget), hi=1.0)  # not narrowed: a change may cost the budget exactly
        columns = [Form(float(v)) for v in x0]
        for j, col in enumerate(self.cols):
            columns[col] = Form(0.0, {values[j]: 1.0})
        if self.indirect is not None:
            g_network, g_cols = self.indirect
            predicted = encode(mip, g_network, columns)
            for i, col in enumerate(g_cols):
                columns[col] = Vector(predicted.pad(mip.n), predicted.offset).row(i)
        out = encode(mip, self.network, columns)
        self.probabilities = out.probabilities
        return mip, _risk(out, self.goal, mip), cost, values

    def spend(self, change: np.ndarray) -> float:
        """The exact cost of a change (raw units)."""
        up, down = np.asarray(self.cost_up), np.asarray(self.cost_down)
        return float((up * np.clip(change, 0, None) + down * np.clip(-change, 0, None)).sum())

    def row(self, x0: np.ndarray, low: np.ndarray, high: np.ndarray, budget: float) -> Answer:
        """The best change of one row by the programs (see the module's text); never over the budget."""
        zero = np.zeros(len(self.cols))
        if budget <= 0 or not bool(np.any(high > low)):
            return Answer(zero, -math.inf, "")  # nothing can change: no change is the answer (see polish)
        started = time.perf_counter()
        try:
            change, first = self._tight(x0, low, high, budget, started)
            if change is not None and self.spend(change) > budget * (1 + OVERSPEND):  # the solver's tolerance
                change, first = self._tight(x0, low, high, budget * (1 - 1e-6), started)
            if change is None and first == "time":
                why = f"the solver stopped at its time limit ({self.time_limit:g} s) before it found a change"
                return Answer(zero, -math.inf, why)
            if change is None or self.spend(change) > budget * (1 + OVERSPEND):
                return Answer(zero, -math.inf, f"the program found no change within the budget ({first})")
            if first != "optimal":
                return Answer(
                    change, -math.inf, f"the solver stopped at its time limit ({self.time_limit:g} s)"
                )
            relaxed, risk, _, values = self.program("relax", x0, low, high, budget)
            proof: Solved = relaxed.solve(risk, gap=GAP, time_limit=self._left(started))
        except OverflowError as error:  # a value of the indirect model or of a hidden unit beyond 1e9
            return Answer(zero, -math.inf, f"the program's values are too large to solve safely ({error})")
        if proof.status != "optimal":
            why = f"the proof did not finish ({proof.status}; time limit {self.time_limit:g} s)"
            return Answer(change, -math.inf, why)
        other = None
        if proof.x is not None:
            other = np.asarray([proof.x[v] for v in values]) - x0[self.cols]
            other = np.clip(np.where(self.whole, np.round(other), other), low, high)
        return Answer(change, proof.bound, "", other)

    def _left(self, started: float) -> float:
        return max(self.time_limit - (time.perf_counter() - started), 1e-3)

    def _tight(
        self, x0: np.ndarray, low: np.ndarray, high: np.ndarray, budget: float, started: float
    ) -> tuple[np.ndarray | None, str]:
        """The tight program's least risk, then its least cost: (change or None, status of the first)."""
        mip, risk, cost, values = self.program("tight", x0, low, high, budget)
        first = mip.solve(risk, gap=GAP, time_limit=self._left(started))
        if first.x is None:
            return None, first.status
        best = first
        mip.require(risk, hi=first.value + 1e-9 * (1.0 + abs(first.value)))
        cheapest = mip.solve(cost, gap=GAP, time_limit=self._left(started))
        if cheapest.x is not None:
            best = cheapest
        change = np.asarray([best.x[v] for v in values]) - x0[self.cols]  # type: ignore[index]
        return np.clip(np.where(self.whole, np.round(change), change), low, high), first.status

    def proved(self, p_after: float, answer: Answer) -> bool:
        """Whether the relaxed bound proves ``p_after`` (an unfavourable probability) the least possible."""
        floor = answer.bound if self.probabilities else _sigmoid(answer.bound)
        return not answer.reason and p_after <= floor + 1e-7 * (1.0 + abs(floor))

    def certificate(self, p_after: float, answer: Answer, trivial: bool) -> dict[str, Any]:
        """What the relaxed program proved about the row's unfavourable probability after the change
        (``trivial``: nothing could change, so no change is optimal)."""
        if trivial:
            return {
                "kind": "optimal",
                "bound": p_after,
                "gap": 0.0,
                "reason": "nothing can change within the budget",
            }
        reason = answer.reason
        if self.indirect is not None:
            reason = reason or (
                "the indirect model's predictions are rounded and clipped after the program, which it does "
                "not model"
            )
        if reason:
            return {"kind": "none", "reason": reason}
        floor = answer.bound if self.probabilities else _sigmoid(answer.bound)
        if not self.proved(p_after, answer):
            return {
                "kind": "none",
                "reason": f"the exact probability {p_after:.6g} is above the bound {floor:.6g}",
            }
        return {
            "kind": "optimal",
            "bound": floor,
            "gap": max(p_after - floor, 0.0),
            "reason": "no change within the budget makes the unfavourable outcome less likely (a mixed-integer "
            "program over the trees' leaves, HiGHS); the cost is the least a second program found for it",
        }


def _sigmoid(z: float) -> float:
    if z == math.inf:
        return 1.0
    if z == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
