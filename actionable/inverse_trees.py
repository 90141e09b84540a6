"""Inverse classification on a tree ensemble, exactly: one mixed-integer program per person and budget.

A tree model is piecewise constant, so projected gradient descent has nothing to follow. Its probability
is instead linear in the leaves an input reaches (``tree_mip``), so the best change within the budget is a
mixed-integer program (HiGHS through ``scipy.optimize.milp``): per direct feature a new value (a whole
number where the feature is integer or binary and ``rounding`` is on) with its rise and fall, the weighted
L1 cost of the rises and falls at most the budget, the ensemble's leaves, and an indirect model (when
given, and a network a program holds: linear, ReLU, trees) carried through as rows. Both directions of
every feature are searched (``ambiguous`` applies to gradient descent only).

Each person gets two solves in "tight" mode (the plan routes through the trees as the program says):
the least risk (log-odds of the unfavourable outcome, or its averaged probability for a forest), then the
least cost among changes of that risk, so nobody is told to spend budget that buys nothing. A third solve
in "relax" mode (every real change feasible) bounds the risk from below: when the model's exact
probability after the change meets that bound, the record's certificate is ``optimal``. With an indirect
model the record reports its predictions rounded and clipped, which the program does not model, so the
certificate then says so instead of claiming optimality.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from actionable.affine import Form
from actionable.errors import ConfigError
from actionable.goals import Goal
from actionable.mip import Mip, Mode, Solved
from actionable.models import TorchModel
from actionable.network_mip import Vector, encode, layers
from actionable.schema import DTYPE, Feature

__all__ = ["LeafInversion", "Solution"]

GAP = 1e-9  # relative gap asked of HiGHS for both objectives


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
        self.whole = [f.is_whole and rounding for f in direct]
        self.cost_up = [f.cost_up or 0.0 for f in direct]
        self.cost_down = [f.cost_down or 0.0 for f in direct]
        self.time_limit = time_limit
        self.probabilities = False  # whether the ensemble's outputs are averaged probabilities (a forest)

    # ------------------------------------------------------------------------------ one program
    def program(
        self, mode: Mode, x0: np.ndarray, low: np.ndarray, high: np.ndarray, budget: float
    ) -> tuple[Mip, Form, Form, list[int]]:
        """The program for one row: (program, risk, cost, index of each direct feature's new value)."""
        mip = Mip(mode)
        values, cost = [], Form(0.0)
        for j, col in enumerate(self.cols):
            lo, hi = x0[col] + low[j], x0[col] + high[j]
            value = mip.var(lo, hi, integer=self.whole[j])
            rise, fall = mip.var(0.0, max(high[j], 0.0)), mip.var(0.0, max(-low[j], 0.0))
            mip.require(value.plus(rise, -1.0).plus(fall), x0[col], x0[col])  # value = x0 + rise - fall
            cost = cost.plus(rise, self.cost_up[j]).plus(fall, self.cost_down[j])
            values.append(next(iter(value.terms)))
        mip.require(cost, hi=budget)  # not narrowed: a change may cost the budget exactly (see ``fit``)
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

    def row(
        self, x0: np.ndarray, low: np.ndarray, high: np.ndarray, budget: float
    ) -> tuple[np.ndarray, float, str]:
        """The best change of one row (raw units), the relaxed program's bound on its risk, and why no
        proof (empty when the bound is proved)."""
        started = time.perf_counter()

        def left() -> float:
            return max(self.time_limit - (time.perf_counter() - started), 1e-3)

        mip, risk, cost, values = self.program("tight", x0, low, high, budget)
        first = mip.solve(risk, gap=GAP, time_limit=left())
        if first.x is None:
            return np.zeros(len(self.cols)), -math.inf, f"the program found no change ({first.status})"
        best = first
        mip.require(risk, hi=first.value + 1e-9 * (1.0 + abs(first.value)))
        cheapest = mip.solve(cost, gap=GAP, time_limit=left())
        if cheapest.x is not None:
            best = cheapest
        change = np.asarray([best.x[v] for v in values]) - x0[self.cols]  # type: ignore[index]
        change = self.fit(np.clip(np.where(self.whole, np.round(change), change), low, high), budget)
        if first.status != "optimal":
            return change, -math.inf, f"the solver stopped at its time limit ({self.time_limit:g} s)"
        relaxed, risk, _, _ = self.program("relax", x0, low, high, budget)
        proof: Solved = relaxed.solve(risk, gap=GAP, time_limit=left())
        if proof.status != "optimal":
            return (
                change,
                -math.inf,
                f"the proof did not finish ({proof.status}; time limit {self.time_limit:g} s)",
            )
        return change, proof.bound, ""

    def fit(self, change: np.ndarray, budget: float) -> np.ndarray:
        """The solver's change within the budget exactly: real changes shrunk by the solver's tolerance
        when they overspend (far less than the margin that keeps them off every threshold)."""
        whole = np.asarray(self.whole)
        up, down = np.asarray(self.cost_up), np.asarray(self.cost_down)
        spent = up * np.clip(change, 0, None) + down * np.clip(-change, 0, None)
        real = float(spent[~whole].sum())
        if real > 0 and float(spent.sum()) > budget:
            factor = min(max((budget - float(spent[whole].sum())) / real, 0.0), 1.0)
            change = np.where(whole, change, change * factor)
        return change

    # ------------------------------------------------------------------------------ a chunk
    def solve(
        self,
        x0: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
        span: torch.Tensor,
        levels: list[float],
        exact: Any,
    ) -> dict[float, Solution]:
        """Every row at every budget. ``lower`` / ``upper``: the box of each change in scaled units;
        ``exact``: the model's unfavourable probability of changed rows (scaled changes -> per row)."""
        rows, spans = x0.numpy(), span.numpy()
        low, high = (lower * span).numpy(), (upper * span).numpy()
        out = {}
        for level in levels:
            changes, bounds, reasons = [], [], []
            for i in range(len(rows)):
                change, bound, reason = self.row(rows[i], low[i], high[i], level)
                changes.append(change)
                bounds.append(bound)
                reasons.append(reason)
            delta = torch.as_tensor(np.asarray(changes).reshape(len(rows), -1) / spans, dtype=DTYPE)
            p_after = exact(delta).tolist() if len(rows) else []
            certificates = [
                self._certificate(p, b, why) for p, b, why in zip(p_after, bounds, reasons, strict=True)
            ]
            out[level] = Solution(delta, certificates)
        return out

    def _certificate(self, p_after: float, bound: float, reason: str) -> dict[str, Any]:
        """What the relaxed program proved about the row's unfavourable probability after the change."""
        if self.indirect is not None:
            reason = reason or (
                "the indirect model's predictions are rounded and clipped after the program, which it does "
                "not model"
            )
        if reason:
            return {"kind": "none", "reason": reason}
        floor = bound if self.probabilities else _sigmoid(bound)
        if p_after > floor + 1e-7 * (1.0 + abs(floor)):
            return {
                "kind": "none",
                "reason": f"the exact probability {p_after:.6g} is above the bound {floor:.6g}",
            }
        return {
            "kind": "optimal",
            "bound": floor,
            "gap": max(p_after - floor, 0.0),
            "reason": "no change within the budget makes the unfavourable outcome less likely (a mixed-integer "
            "program over the trees' leaves, HiGHS)",
        }


def _sigmoid(z: float) -> float:
    if z == math.inf:
        return 1.0
    if z == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
