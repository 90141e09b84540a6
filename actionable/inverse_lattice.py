"""The whole-number part of inverse classification: exact rounding and a local search on the lattice.

Integer and binary direct features are solved continuously first; ``round_whole`` then picks the best of
every feasible floor / ceil choice, and ``polish_whole`` walks the whole-number lattice (unit moves, pair
trades, on small problems three-feature moves) while the objective falls within bounds and budget. It is
a mixin of ``InverseProblem``, which provides the state, objective, cost and the per-feature tensors.
"""

from __future__ import annotations

import itertools
import math

import torch

from actionable.inverse_config import TOLERANCE, InverseConfig
from actionable.schema import DTYPE, Feature

__all__ = ["WholeLattice"]


class WholeLattice:
    """Rounding and lattice search over the direct features (scaled units); mixed into ``InverseProblem``."""

    config: InverseConfig
    direct: list[Feature]
    cols: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    whole: torch.Tensor
    span: torch.Tensor
    cost_up: torch.Tensor
    cost_down: torch.Tensor
    unit_up: torch.Tensor
    unit_down: torch.Tensor

    def state(self, x0: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def objective(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def settle(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def cost(self, raw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def round_whole(
        self, x0: torch.Tensor, delta: torch.Tensor, budget: torch.Tensor, fallback: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The best feasible rounding of the integer / binary changes, or a fallback (all feasible).

        Every fractional change may go toward the start (never costlier) or one unit further (if within
        bounds and budget); all such choices of up to ``max_round`` features (those farthest from whole)
        are enumerated at once, the rest go toward the start.
        """
        n, k = delta.shape
        raw = delta * self.span
        whole = self.whole.expand(n, k)
        toward = torch.where(whole, torch.trunc(raw + torch.sign(raw) * 1e-9), raw)
        frac = torch.where(whole, (raw - toward).abs(), torch.zeros_like(raw))
        frac = torch.where(frac > 1e-9, frac, torch.zeros_like(frac))
        picks = min(int((frac > 0).sum(-1).max()) if n else 0, self.config.max_round)
        order = torch.argsort(torch.minimum(frac, 1 - frac), dim=-1, descending=True)[:, :picks]
        choices = torch.tensor(list(itertools.product((0.0, 1.0), repeat=picks)), dtype=DTYPE)
        choices = choices.reshape(2**picks, picks)
        away = torch.zeros(n, len(choices), k, dtype=DTYPE)
        if picks:
            chosen = (choices[None, :, :] * (frac.gather(-1, order) > 0)[:, None, :].to(DTYPE)).to(DTYPE)
            away.scatter_(-1, order[:, None, :].expand(-1, len(choices), -1), chosen)
        cand_raw = toward[:, None, :] + away * torch.sign(raw)[:, None, :]
        x_start = x0[:, self.cols][:, None, :]
        inside = ((x_start + cand_raw >= self.lo - 1e-9) & (x_start + cand_raw <= self.hi + 1e-9)).all(-1)
        cand = torch.cat([cand_raw / self.span, *(f[:, None, :] for f in fallback)], dim=1)
        inside = torch.cat([inside, torch.ones(n, len(fallback), dtype=torch.bool)], dim=1)
        spent = self.cost(cand * self.span)
        ok = inside & (spent <= budget[:, None] * (1 + TOLERANCE) + 1e-12)
        with torch.no_grad():
            m = cand.shape[1]
            f = self.objective(self.settle(self.state(x0.repeat_interleave(m, 0), cand.reshape(n * m, k))))
            f = f.reshape(n, m)
        f = torch.where(ok, f, torch.inf)
        best = f.argmin(-1)
        return cand[torch.arange(n), best], f[torch.arange(n), best]

    def polish_whole(
        self,
        x0: torch.Tensor,
        delta: torch.Tensor,
        value: torch.Tensor,
        budget: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
    ) -> torch.Tensor:
        """Greedy local search on the whole-number lattice, from the rounded solution and from each
        "whole budget on one feature" corner: move one or two integer / binary features (a trade moves
        one by a unit and another by what that unit's price buys) while the objective falls and bounds,
        directions and budget hold; on small problems the best end point then also tries three-feature
        moves. Rows stay independent, so a batch gives the same answers as one row at a time."""
        n, k = delta.shape
        unit = torch.where(self.whole, 1 / self.span, torch.zeros_like(self.span))
        singles = torch.cat([torch.diag(unit), -torch.diag(unit)])[torch.cat([self.whole, self.whole])]
        if not len(singles) or not n:
            return delta
        trades = self._trades()
        moves = torch.cat([singles, trades])
        starts = torch.cat([delta[:, None, :], self._corners(budget, lower, upper)], dim=1)
        s = starts.shape[1]
        flat = starts.reshape(n * s, k)
        with torch.no_grad():
            values = self.objective(self.settle(self.state(x0.repeat_interleave(s, 0), flat)))
        values = torch.where(
            self._feasible(
                flat,
                budget.repeat_interleave(s),
                lower.repeat_interleave(s, 0),
                upper.repeat_interleave(s, 0),
            ),
            values,
            torch.inf,
        )
        values[::s] = torch.minimum(values[::s], value)  # the rounded solution's own value
        ends, values = self._descend_lattice(
            x0.repeat_interleave(s, 0),
            flat,
            values,
            budget.repeat_interleave(s),
            lower.repeat_interleave(s, 0),
            upper.repeat_interleave(s, 0),
            moves,
        )
        pick = values.reshape(n, s).argmin(-1)
        best = ends.reshape(n, s, k)[torch.arange(n), pick]
        if int(self.whole.sum()) <= 8:  # small problems: also a trade plus a unit move (three features)
            triples = (trades[:, None, :] + singles[None, :, :]).reshape(-1, k)
            triples = torch.unique(triples[(triples != 0).sum(-1) == 3], dim=0)
            value = values.reshape(n, s)[torch.arange(n), pick]
            best, _ = self._descend_lattice(
                x0, best, value, budget, lower, upper, torch.cat([moves, triples])
            )
        return best

    def _corners(self, budget: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """Per row, one start per whole feature and direction: as far as the budget and bounds allow,
        rounded toward no change (scaled units, shape n x starts x k)."""
        n, k = lower.shape
        starts = []
        for j in range(k):
            if not bool(self.whole[j]):
                continue
            for side, price, room in (
                (1, self.unit_up[j], upper[:, j]),
                (-1, self.unit_down[j], lower[:, j]),
            ):
                reach = budget / price if float(price) > 0 else torch.full_like(budget, torch.inf)
                amount = torch.minimum(room.abs(), reach) * self.span[j]
                start = torch.zeros(n, k, dtype=DTYPE)
                start[:, j] = side * torch.floor(amount + 1e-9) / self.span[j]
                if bool(start.any()):  # a forbidden direction gives no start
                    starts.append(start)
        return torch.stack(starts, dim=1) if starts else torch.zeros(n, 0, k, dtype=DTYPE)

    def _feasible(
        self, delta: torch.Tensor, budget: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
    ) -> torch.Tensor:
        slack = 1e-9 / self.span
        inside = ((delta >= lower - slack) & (delta <= upper + slack)).all(-1)
        return inside & (self.cost(delta * self.span) <= budget * (1 + TOLERANCE) + 1e-12)

    def _descend_lattice(
        self,
        x0: torch.Tensor,
        delta: torch.Tensor,
        value: torch.Tensor,
        budget: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
        moves: torch.Tensor,
        rounds: int = 50,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Best-improvement moves until no move helps; only rows that moved last round are re-examined."""
        delta, value = delta.clone(), value.clone()
        active = torch.arange(len(delta))
        m = len(moves)
        for _ in range(rounds):
            if not len(active):
                break
            cand = delta[active, None, :] + moves[None, :, :]
            ok = self._feasible(cand, budget[active, None], lower[active, None, :], upper[active, None, :])
            f = torch.full((len(active), m), torch.inf, dtype=DTYPE)
            row, move = torch.nonzero(ok, as_tuple=True)  # evaluate the feasible moves only
            with torch.no_grad():
                f[row, move] = self.objective(self.settle(self.state(x0[active[row]], cand[row, move])))
            best, pick = f.min(-1)
            better = best < value[active] - 1e-12
            rows = active[better]
            delta[rows] = cand[better, pick[better]]
            value[rows] = best[better]
            active = rows
        return delta, value

    def _trades(self) -> torch.Tensor:
        """Pair moves on the whole-number lattice (scaled units): one feature by one unit, another by one
        unit or by the units its price buys (so a costly step can be traded for many cheap ones)."""
        whole = [j for j in range(len(self.direct)) if bool(self.whole[j])]
        if len(whole) > 12:  # keep the neighbourhood small: plain unit pairs only
            whole = whole[:12]
        price = {1: self.cost_up.tolist(), -1: self.cost_down.tolist()}
        span = self.span.tolist()
        rows: set[tuple[float, ...]] = set()
        for i, j in itertools.permutations(whole, 2):
            for si, sj in itertools.product((1, -1), repeat=2):
                ci, cj = price[si][i], price[sj][j]  # per raw unit: one unit of i buys ci / cj of j
                ratio = ci / cj if cj > 0 else 1.0
                for units in {1, max(1, math.floor(ratio)), max(1, math.ceil(ratio))}:
                    move = [0.0] * len(self.direct)
                    move[i], move[j] = si / span[i], sj * units / span[j]
                    rows.add(tuple(move))
        if not rows:
            return torch.zeros(0, len(self.direct), dtype=DTYPE)
        return torch.tensor(sorted(rows), dtype=DTYPE)
