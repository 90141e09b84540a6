"""The exact finish of inverse classification on a tree model: what the programs of ``inverse_trees`` return,
made as cheap as its cell allows and never worse than doing nothing.

The tight program keeps values a margin off every threshold so that its plan routes as it says; the margin
grows with the threshold (0.5 units at 50,000), so its answer can overspend, and a row that close to a
threshold cannot even stay where it is. ``Finisher`` therefore moves each real-valued change back toward
the start to the nearest point where the model, evaluated exactly, is still as good (every point where a
tree input the feature moves crosses a split threshold, and its float neighbours, are the candidates),
rounds the change away from zero to the fewest digits that keep both (a change a person can act on),
and then keeps, per row, the best of that answer, no change, and the previous budget's answer (less
unfavourable, then cheaper), all judged on the rows reported (indirect predictions settled).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from actionable.goals import Goal
from actionable.inverse_trees import OVERSPEND, LeafInversion, Solution
from actionable.models import TorchModel
from actionable.schema import DTYPE

__all__ = ["Finisher", "Problem"]

TIE = 1e-12  # probabilities this close are equally good (then the cheaper change wins)


class Problem(Protocol):
    """What the finish needs of ``InverseProblem``."""

    model: TorchModel
    goal: Goal
    span: torch.Tensor

    def state(self, x0: torch.Tensor, delta: torch.Tensor) -> torch.Tensor: ...

    def settle(self, x: torch.Tensor) -> torch.Tensor: ...


class Finisher:
    """Exact finishing of one problem's tree programs (see the module's text)."""

    def __init__(self, problem: Problem, leaves: LeafInversion) -> None:
        self.problem, self.leaves, self.pre = problem, leaves, leaves.pre
        tree = leaves.tree
        self.splits = {col: _variants(t, tree.float32) for col, t in tree.splits().items()}

    def unfavourable(self, x0: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The model's probability of the unfavourable outcome on the reported rows after raw changes."""
        p = self.problem
        with torch.no_grad():
            out = p.model(p.settle(p.state(x0, raw / p.span)))
            return 1.0 - p.goal.probability(out)

    def crossings(self, x0: torch.Tensor, change: np.ndarray, j: int) -> np.ndarray:
        """The changes of feature ``j`` (others as in ``change``) where a tree input it moves crosses a
        split threshold, with their float neighbours (one row ``x0``)."""
        p = self.problem
        raw = torch.as_tensor(change, dtype=DTYPE)[None]
        unit = torch.zeros_like(raw)
        unit[0, j] = 1.0
        with torch.no_grad():
            z = self.pre(p.state(x0, raw / p.span))[0].numpy()
            slope = self.pre(p.state(x0, (raw + unit) / p.span))[0].numpy() - z
        found = [np.array([0.0, float(change[j])])]
        for col, thresholds in self.splits.items():
            if slope[col] != 0.0:
                found.append(float(change[j]) + (thresholds - z[col]) / slope[col])
        u = np.concatenate(found)
        return np.unique(np.concatenate([u, *(np.nextafter(u, side) for side in (np.inf, -np.inf))]))

    def _tried(self, x0: torch.Tensor, change: np.ndarray, j: int, u: np.ndarray) -> np.ndarray:
        tried = np.repeat(change[None], len(u), axis=0)
        tried[:, j] = u
        return self.unfavourable(x0.expand(len(u), -1), torch.as_tensor(tried, dtype=DTYPE)).numpy()

    def nearest(self, x0: torch.Tensor, change: np.ndarray, j: int) -> float:
        """Feature ``j``'s change moved toward zero as far as the model stays as good (one row ``x0``)."""
        target = float(change[j])
        u = self.crossings(x0, change, j)
        u = u[(u * np.sign(target) >= 0) & (np.abs(u) <= abs(target))]
        values = self._tried(x0, change, j, u)
        now = float(self.unfavourable(x0, torch.as_tensor(change, dtype=DTYPE)[None])[0])
        good = u[values <= now + TIE]
        return float(good[np.argmin(np.abs(good))]) if len(good) else target

    def tidy(
        self, x0: torch.Tensor, change: np.ndarray, j: int, budget: float, low: float, high: float
    ) -> float:
        """Feature ``j``'s change rounded away from zero to the fewest significant digits (5 to 15) that
        keep the model as good and the budget: a change a person can act on rather than a cell's float
        edge, at most 1e-4 (relative) dearer."""
        target = float(change[j])
        if target == 0.0:
            return 0.0
        digits = np.arange(5, 16)
        step = 10.0 ** (np.floor(np.log10(abs(target))) - digits + 1)
        u = np.append(np.sign(target) * np.ceil(abs(target) / step) * step, target)
        u = u[(u >= low) & (u <= high)]  # the target itself always is
        values = self._tried(x0, change, j, u)
        now = float(self.unfavourable(x0, torch.as_tensor(change, dtype=DTYPE)[None])[0])
        for k, candidate in enumerate(u):
            trial = change.copy()
            trial[j] = candidate
            if values[k] <= now + TIE and self.leaves.spend(trial) <= budget * (1 + OVERSPEND):
                return float(candidate)
        return target

    def push(self, x0: torch.Tensor, change: np.ndarray, j: int, low: float, high: float) -> float:
        """Feature ``j``'s change moved, within a window of the margin, to the side of the thresholds it
        sits on that the model likes best (the relaxed program's values may sit exactly on them)."""
        target = float(change[j])
        width = 1e-4 * (1.0 + abs(target) + abs(float(x0[0, self.leaves.cols[j]])))
        u = self.crossings(x0, change, j)
        u = u[(np.abs(u - target) <= width) & (u >= low) & (u <= high)]
        if not len(u):
            return target
        values = self._tried(x0, change, j, u)
        best = u[values <= values.min() + TIE]
        return float(best[np.argmin(np.abs(best))])

    def solve(
        self, x0: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: list[float]
    ) -> dict[float, Solution]:
        """Every row of a chunk at every budget (ascending): changes in scaled units and certificates.
        ``lower`` / ``upper``: the box of each change in scaled units."""
        span = self.problem.span
        rows, low, high = x0.numpy(), (lower * span).numpy(), (upper * span).numpy()
        real = [j for j, whole in enumerate(self.leaves.whole) if not whole]
        previous = torch.zeros(len(rows), len(self.leaves.cols), dtype=DTYPE)
        out = {}
        for level in levels:
            answers = [self.leaves.row(rows[i], low[i], high[i], level) for i in range(len(rows))]
            raw = np.array([a.change for a in answers]).reshape(len(rows), -1)
            for i, j in ((i, j) for i in range(len(rows)) for j in real if raw[i, j] != 0.0):
                raw[i, j] = self.nearest(x0[i : i + 1], raw[i], j)
                raw[i, j] = self.tidy(x0[i : i + 1], raw[i], j, level, float(low[i, j]), float(high[i, j]))
            options = [torch.as_tensor(raw, dtype=DTYPE), torch.zeros_like(previous), previous]
            chosen, unfavourable = self._best(x0, options)
            p_after = unfavourable.tolist()
            for i, answer in enumerate(answers):
                if answer.relaxed is not None and not self.leaves.proved(p_after[i], answer):
                    chosen[i], p_after[i] = self._relaxed(
                        x0[i : i + 1], chosen[i], answer.relaxed, low[i], high[i], level
                    )
            trivial = np.logical_or(~(high > low).any(axis=1), level <= 0)
            certificates = [
                self.leaves.certificate(p_after[i], answers[i], bool(trivial[i])) for i in range(len(rows))
            ]
            out[level] = Solution(chosen / span, certificates)
            previous = chosen
        return out

    def _relaxed(
        self,
        x0: torch.Tensor,
        chosen: torch.Tensor,
        relaxed: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        budget: float,
    ) -> tuple[torch.Tensor, float]:
        """One row's answer against the relaxed program's change, pushed off and then back to its cell's
        nearest point: the better of them, within the budget, and its unfavourable probability."""
        change = relaxed.copy()
        real = [j for j, whole in enumerate(self.leaves.whole) if not whole]
        for j in real:
            change[j] = self.push(x0, change, j, float(low[j]), float(high[j]))
        for j in (j for j in real if change[j] != 0.0):
            change[j] = self.nearest(x0, change, j)
            change[j] = self.tidy(x0, change, j, budget, float(low[j]), float(high[j]))
        options = [chosen[None]]
        if self.leaves.spend(change) <= budget * (1 + OVERSPEND):
            options.append(torch.as_tensor(change, dtype=DTYPE)[None])
        best, p = self._best(x0, options)
        return best[0], float(p[0])

    def _best(self, x0: torch.Tensor, options: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the least unfavourable of the raw changes, the cheapest among equals, and its
        unfavourable probability."""
        best = options[0].clone()
        p_best = self.unfavourable(x0, best)
        cost_best = torch.tensor([self.leaves.spend(c) for c in best.numpy()], dtype=DTYPE)
        for option in options[1:]:
            p = self.unfavourable(x0, option)
            cost = torch.tensor([self.leaves.spend(c) for c in option.numpy()], dtype=DTYPE)
            take = (p < p_best - TIE) | ((p <= p_best + TIE) & (cost < cost_best))
            best[take], p_best[take], cost_best[take] = option[take], p[take], cost[take]
        return best, p_best


def _variants(thresholds: np.ndarray, float32: bool) -> np.ndarray:
    """Each threshold and the values where a split on it flips: its float64 neighbours and, when the
    ensemble casts to float32, the midpoint to the next float32 (where rounding starts to go right)."""
    out = [thresholds, np.nextafter(thresholds, np.inf), np.nextafter(thresholds, -np.inf)]
    if float32:
        above = np.nextafter(thresholds.astype(np.float32), np.float32(np.inf)).astype(np.float64)
        middle = (thresholds + above) / 2
        out += [middle, np.nextafter(middle, np.inf), np.nextafter(middle, -np.inf)]
    return np.concatenate(out)
