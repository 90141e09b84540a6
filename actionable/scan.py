"""Exact scans of plan parameters: what the continuous optimisation cannot see, checked exactly.

The Carlini-Wagner optimisation works on a relaxation: whole-number parameters and features are rounded
only afterwards, conditions are smoothed, and a local minimum may miss a cheaper or any passing plan. A
scan looks at one parameter of one step at a time (the others held), over its whole box at once, with the
exact check (``Verifier.exact``): every value of a whole-number parameter whose box holds at most
``exact_up_to`` values, else ``points`` evenly spaced values and as many at geometric distances from
the parameter's initial value; between the cheapest passing value and its
failing neighbours, bisection finds the boundary (where the plan just still passes), the cheapest point on
a monotone path. A pair (sequence, person) with a single parameter is thereby solved exactly on its grid
without any gradient step. Pairs with more are optimised first; where the answer passes, each parameter is
then bisected toward its no-change value. The value in hand is always a candidate, so a scan never makes
a plan worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from actionable.program import Program
from actionable.schema import DTYPE
from actionable.verify import Exact, Verifier

__all__ = ["ScanConfig", "Scanner", "preference"]

FLAGS = ("passes", "ok", "reach")  # what a bisection keeps true: the whole check, the conditions, the margin
PAIRS_PER_PASS = 1 << 15  # candidate rows per exact evaluation: bounds memory (pairs x candidates x width)


@dataclass(frozen=True)
class ScanConfig:
    """How finely to scan: all values of whole-number boxes up to ``exact_up_to`` values, else ``points``
    values; ``bisect`` halvings toward the boundary; ``sweeps`` passes over the parameters of
    multi-parameter pairs;
    ``repair``: values per parameter scanned for a multi-parameter pair the optimiser left failing (a
    subsample of its grid; 0: no repair; the escalation for people still without a plan scans the whole
    grid), in ``repair_sweeps`` passes (a precondition of a later step may need an earlier step's parameter
    first); ``trade_points``: values per parameter in ``trade``'s two-parameter scans; ``exact_product``:
    a sequence whose parameters are all whole numbers scanned in full, with at most this many combinations
    together, is enumerated instead (``exhaustive``); ``worth``: a
    passing multi-parameter pair is bisected only when it costs at most this many times its person's best
    plan so far (the others cannot become the best by one step's shrinking in practice; the final plans
    are traded and polished anyway), and only the ``per_person`` cheapest of a person's."""

    points: int = 48
    exact_up_to: int = 256
    bisect: int = 24
    sweeps: int = 1
    repair: int = 12
    repair_sweeps: int = 2
    trade_points: int = 24
    exact_product: int = 1024
    worth: float = 2.0
    per_person: int = 8


class Scanner:
    """Exact one-parameter-at-a-time scans for one compiled program and verifier."""

    FULL = 1 << 30  # ScanConfig.repair: every grid value

    def __init__(self, verifier: Verifier, config: ScanConfig | None = None) -> None:
        self.verifier, self.program = verifier, verifier.program
        self.config = config or ScanConfig()
        self.values, self.exhaustive, self.lengths = _grids(self.program, self.config)
        self.halvings, self.resolution = _halvings(self.program, self.config)
        counts = [a.n_params for a in self.program.acts] + [0]  # the last row: no-op
        self.n_params = torch.as_tensor(counts, dtype=torch.int64)

    def grid(self, actions: torch.Tensor, i: int, most: int | None = None) -> torch.Tensor:
        """Per pair (``actions``: its action at the step), the values of slot ``i`` scanned: all, or at
        most ``most`` spread evenly over its own grid (ends included)."""
        values = self.values[actions, i]
        if most is None or most >= values.shape[1]:
            return values
        spread = torch.linspace(0, 1, most, dtype=DTYPE)[None, :] * (self.lengths[actions, i, None] - 1)
        return values.gather(1, spread.round().long())

    def active(self, ids: torch.Tensor) -> torch.Tensor:
        """Per pair, step and slot: whether that parameter exists (pairs x steps x slots)."""
        index = self.program.rows(ids)
        slots = torch.arange(self.program.slots)
        return slots[None, None, :] < self.n_params[index][:, :, None]

    def coordinates(self, ids: torch.Tensor) -> torch.Tensor:
        """Per pair, how many parameters its sequence has."""
        return self.active(ids).sum((1, 2))

    def refine(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        people: torch.Tensor | None = None,
        best: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``params`` improved one coordinate at a time: a single-parameter pair over its whole grid (exact
        on it); a pair with more that fails (rounding lost the margin, a local minimum) one pass of grid
        scans (``repair`` values each), each parameter toward passing; then every passing one ``sweeps``
        passes of bisection from each parameter toward its no-change value (the cheapest point that passes).
        With ``people`` (each pair's person) and ``best`` (each person's best cost so far), only passing
        pairs within ``worth`` times their person's best (this batch included) are bisected."""
        params = self.program.round(ids, params)
        active = self.active(ids)
        single = active.sum((1, 2)) <= 1
        _, _, init = self.program.boxes(ids)
        for j in range(ids.shape[1]):
            for i in range(self.program.slots):
                rows = torch.nonzero(active[:, j, i] & single).flatten()
                if len(rows):
                    params[rows] = self.coordinate(ids[rows], x0[rows], params[rows], j, i)
        multi = torch.nonzero(~single).flatten()
        if not len(multi):
            return params
        every = self.verifier.exact(ids, x0, params)  # what the repairs change is checked again below
        failing = repaired = _to_repair(self.config, every, multi, people, best)
        for sweep in range(self.config.repair_sweeps):  # repair: each parameter over its grid, toward passing
            if sweep and len(failing):  # a pair the last sweep mended needs no other
                failing = failing[~self.verifier.exact(ids[failing], x0[failing], params[failing]).passes]
            for j in range(ids.shape[1]):
                for i in range(self.program.slots):
                    mine = failing[active[failing, j, i]]
                    if len(mine):
                        # every change is bisected: a later step's precondition may hold only past some value
                        params[mine] = self.coordinate(
                            ids[mine], x0[mine], params[mine], j, i, self.config.repair
                        )
        if len(repaired):
            again = self.verifier.exact(ids[repaired], x0[repaired], params[repaired])
            every = Exact(*(t.index_put((repaired,), u) for t, u in zip(every, again, strict=True)))
        rows = _worth(self.config, every, multi, people, best)
        for _ in range(self.config.sweeps):
            for j in range(ids.shape[1]):
                for i in range(self.program.slots):
                    mine = rows[active[rows, j, i]]
                    if len(mine):
                        toward = init[mine, j, i]
                        params[mine] = self.bisect(ids[mine], x0[mine], params[mine], j, i, toward)
        return params

    def coordinate(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        j: int,
        i: int,
        most: int | None = None,
        islands: bool = True,
    ) -> torch.Tensor:
        """The best value of parameter ``i`` of step ``j`` for each pair, the others held (``most``: how
        many of its grid's values are tried; all by default; ``islands``: bisect changes of the conditions
        and of the margin too, not only of passing)."""
        actions = ids[:, j]
        grid = self.grid(actions, i, most)  # pairs x values
        candidates = torch.cat([params[:, j, i : i + 1], grid], dim=1)
        exact = self._try(ids, x0, params, j, i, candidates)
        chosen_by = preference(exact)
        choice = chosen_by.argmin(1)
        pick = torch.arange(len(ids))
        out = params.clone()
        out[:, j, i] = candidates[pick, choice]
        whole = self.exhaustive[actions, i]  # every value tried: no bisection needed
        whole = whole if most is None else whole & (self.lengths[actions, i] <= most)
        # between neighbouring grid values where passing changes, the boundary: the passing set need not
        # be one interval (a model is not monotone; a rounded effect steps), so every change is bisected;
        # so is every change of validity or of the margin alone (a passing island inside one grid cell,
        # between a value that misses the margin and one that breaks a condition)
        held = exact.cost[pick, choice].where(exact.passes[pick, choice], torch.tensor(math.inf, dtype=DTYPE))
        flags = {
            "passes": exact.passes[:, 1:],
            "ok": exact.ok[:, 1:],
            "reach": exact.margin[:, 1:] >= self.verifier.margin,
        }
        rows, k, code = _changes(list(flags.values()) if islands else [flags["passes"]], whole)
        if not len(rows):
            return out
        inside_first = torch.stack(list(flags.values()))[code, rows, k]
        start = params[rows].clone()
        start[:, j, i] = torch.where(inside_first, grid[rows, k], grid[rows, k + 1])
        outside = torch.where(inside_first, grid[rows, k + 1], grid[rows, k])
        found, cost_of = self.search(ids[rows], x0[rows], start, j, i, outside, code)
        lowest = held.scatter_reduce(0, rows, cost_of, reduce="amin")
        better = (cost_of == lowest[rows]) & (cost_of < held[rows])
        out[rows[better]] = found[better]
        return out

    def _try(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, j: int, i: int, values: torch.Tensor
    ) -> Exact:
        """The exact check of every pair at every value of its coordinate (pairs x values)."""
        return self.try_values(ids, x0, params, [(j, i)], values[:, :, None])

    def try_values(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        coords: list[tuple[int, int]],
        values: torch.Tensor,
    ) -> Exact:
        """The exact check of every pair at every candidate (``values``: pairs x candidates x coordinates,
        the values of the steps and slots ``coords`` together), as pairs x candidates."""
        pairs, k = values.shape[:2]
        per = max(1, PAIRS_PER_PASS // k)
        parts: list[Exact] = []
        for start in range(0, pairs, per):
            block = slice(start, start + per)
            n = len(values[block])
            trial = params[block].repeat_interleave(k, 0)
            for c, (j, i) in enumerate(coords):
                trial[:, j, i] = values[block, :, c].reshape(-1)
            rep_ids = ids[block].repeat_interleave(k, 0)
            trial = self.program.round(rep_ids, trial)
            # the columns no parameter moves are the same for every candidate of a pair: computed once
            per_step, xs = self.program.static_states(x0[block], self.program.dispatch(ids[block]))
            static = (
                [[t.repeat_interleave(k, 0) for t in step] for step in per_step],
                xs.repeat_interleave(k, 0),
            )
            got = self.verifier.exact(rep_ids, x0[block].repeat_interleave(k, 0), trial, static)
            got = got._replace(state=got.state[:, :0])  # the states are not needed: never concatenated
            parts.append(Exact(*(t.reshape(n, k, *t.shape[1:]) for t in got)))
        return Exact(*(torch.cat(p) for p in zip(*parts, strict=True)))

    def bisect(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        j: int,
        i: int,
        other: torch.Tensor,
        by: str = "passes",
    ) -> torch.Tensor:
        """Toward ``other`` from the value in ``params``: the boundary of ``by`` ("passes", "ok": the
        conditions, bounds and directions hold, "reach": the margin is reached), true at the start and
        false at ``other``; every passing point met is kept where it is cheaper."""
        code = torch.full((len(ids),), FLAGS.index(by), dtype=torch.int64)
        return self.search(ids, x0, params, j, i, other, code)[0]

    def search(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        j: int,
        i: int,
        other: torch.Tensor,
        code: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``bisect`` with a flag per pair (``code``: an index into ``FLAGS``), and each pair's halvings
        only as many as its own interval needs at the parameter's resolution; the best parameters found
        and their verified cost (infinity where none passed)."""
        if not len(ids):
            return params.clone(), torch.zeros(0, dtype=DTYPE)
        inside, outside = params[:, j, i].clone(), other.clone()
        best = params.clone()
        start = self.verifier.exact(ids, x0, params)
        best_cost = torch.where(start.passes, start.cost, math.inf)
        actions = ids[:, j]
        step, most = self.resolution[actions, i], self.halvings[actions, i]
        width = ((outside - inside).abs() / step.clamp(min=1e-300)).clamp(min=1.0, max=2.0**62)
        left = torch.where(step > 0, torch.minimum(torch.log2(width).ceil().long() + 1, most), most)
        kept, static = torch.arange(0), None
        while len(live := torch.nonzero(left > 0).flatten()):
            if static is None or len(kept) > 2 * len(live):  # the fixed columns of the pairs evaluated
                kept = live  # (a pair done is evaluated on while most are not: one more halving is harmless)
                static = self.program.static_states(x0[kept], self.program.dispatch(ids[kept]))
            middle = params[kept].clone()
            middle[:, j, i] = (inside[kept] + outside[kept]) / 2
            middle = self.program.round(ids[kept], middle)
            got = self.verifier.exact(ids[kept], x0[kept], middle, static)
            sides = torch.stack([got.passes, got.ok, got.margin >= self.verifier.margin])
            side = sides[code[kept], torch.arange(len(kept))]
            inside[kept] = torch.where(side, middle[:, j, i], inside[kept])
            outside[kept] = torch.where(side, outside[kept], middle[:, j, i])
            better = got.passes & (got.cost < best_cost[kept])
            best[kept[better]] = middle[better]
            best_cost[kept[better]] = got.cost[better]
            left[kept] -= 1
        return best, best_cost


def _to_repair(
    config: ScanConfig,
    every: Exact,
    multi: torch.Tensor,
    people: torch.Tensor | None,
    best: torch.Tensor | None,
) -> torch.Tensor:
    """The failing ``multi`` pairs worth a repair (``every``: the exact check of every pair): all of them
    where a pair's person has no passing plan yet (this batch's included); else those whose cost where the
    optimiser left them is under ``worth`` x the person's best (a repair moves toward passing, which
    rarely makes a plan cheaper)."""
    if not config.repair:
        return multi[:0]
    failing = multi[~every.passes[multi]]
    if people is None or best is None or not len(failing):
        return failing
    bar = config.worth * _lowest(every, people, best)[people[failing]]
    return failing[~(every.cost[failing] >= bar)]  # NaN costs are repaired: the bar says nothing


def _worth(
    config: ScanConfig,
    every: Exact,
    candidates: torch.Tensor,
    people: torch.Tensor | None,
    best: torch.Tensor | None,
) -> torch.Tensor:
    """The ``candidates`` (pair indices) that pass (``every``: the exact check of every pair) and cost at
    most ``worth`` x their person's best, at most ``per_person`` of them per person (the cheapest)."""
    chosen = candidates[every.passes[candidates]]
    if people is None or best is None:
        return chosen
    cost = torch.where(every.passes, every.cost, math.inf)
    chosen = chosen[cost[chosen] <= config.worth * _lowest(every, people, best)[people[chosen]]]
    order = chosen[torch.argsort(cost[chosen], stable=True)]  # cheapest first, then by person
    order = order[torch.argsort(people[order], stable=True)]
    first = torch.searchsorted(people[order], people[order], right=False)
    return order[torch.arange(len(order)) - first < config.per_person]


def _lowest(exact: Exact, people: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Per person, the cheapest of ``best`` and the passing pairs of ``exact`` (``people``: each pair's)."""
    cost = torch.where(exact.passes, exact.cost, math.inf)
    return best.clone().scatter_reduce(0, people, cost, reduce="amin")


def _changes(
    flags: list[torch.Tensor], whole: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each flag (pairs x values) changes between neighbouring grid values, for pairs whose grid is
    not every value (``whole``): the pairs, the left neighbours and which flag (an index into ``FLAGS``)."""
    rows, ks, codes = [], [], []
    for code, flag in enumerate(flags):
        r, k = torch.nonzero((flag[:, :-1] ^ flag[:, 1:]) & ~whole[:, None], as_tuple=True)
        rows.append(r)
        ks.append(k)
        codes.append(torch.full_like(r, code))
    return torch.cat(rows), torch.cat(ks), torch.cat(codes)


def _grid(lo: float, hi: float, init: float, points: int) -> torch.Tensor:
    """``points`` even steps over the box, and as many at geometric distances from the initial value (the
    cheap changes are usually small ones, which an even grid over a wide box steps over), sorted."""
    even = torch.linspace(lo, hi, points, dtype=DTYPE)
    reach = max(hi - init, init - lo, 0.0)
    if reach <= 0:
        return even
    distances = reach * torch.logspace(-6, 0, points // 2, base=10, dtype=DTYPE)
    near = torch.cat([init - distances, init + distances]).clamp(lo, hi)
    grid: torch.Tensor = torch.unique(torch.cat([even, near]))
    return grid


def preference(exact: Exact) -> torch.Tensor:
    """Which value to keep: the cheapest passing one; where none passes, the one nearest to passing (its
    objective: cost plus 10 x the missing margin plus 10 for a failed condition), never a passing one's
    worse."""
    key = torch.where(exact.passes, exact.cost, 1e12 + exact.objective)
    return torch.nan_to_num(key, nan=math.inf)


def _grids(program: Program, config: ScanConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per action and slot, the values scanned (padded by repeating the last), whether they are
    every value the parameter can take (then no bisection is needed), and how many there are."""
    width = 1
    grids: dict[tuple[int, int], torch.Tensor] = {}
    for a, action in enumerate(program.acts):
        for i, param in enumerate(action.params):
            lo, hi = param.bounds
            if param.kind == "integer" and math.floor(hi) - math.ceil(lo) + 1 <= config.exact_up_to:
                grid = torch.arange(math.ceil(lo), math.floor(hi) + 1, dtype=DTYPE)
            else:
                grid = _grid(lo, hi, float(param.init), config.points)  # type: ignore[arg-type]
            grids[a, i] = grid
            width = max(width, len(grid))
    values = torch.zeros(len(program.acts) + 1, program.slots, width, dtype=DTYPE)
    exhaustive = torch.zeros(len(program.acts) + 1, program.slots, dtype=torch.bool)
    lengths = torch.ones(len(program.acts) + 1, program.slots, dtype=torch.int64)
    for (a, i), grid in grids.items():
        lengths[a, i] = len(grid)
        values[a, i, : len(grid)] = grid
        values[a, i, len(grid) :] = grid[-1]
        param = program.acts[a].params[i]
        lo, hi = param.bounds
        every = math.floor(hi) - math.ceil(lo) + 1  # whole numbers in the box
        exhaustive[a, i] = param.kind == "integer" and every <= config.exact_up_to
    return values, exhaustive, lengths


def _halvings(program: Program, config: ScanConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per action and slot, the bisection steps that reach its grid (whole numbers, the resolution) across
    its whole box, at most ``config.bisect``, and that resolution (0 for a real parameter without one: every
    bisection halves its interval ``config.bisect`` times)."""
    out = torch.zeros(len(program.acts) + 1, program.slots, dtype=torch.int64)
    resolution = torch.ones(len(program.acts) + 1, program.slots, dtype=DTYPE)
    for a, action in enumerate(program.acts):
        for i, param in enumerate(action.params):
            lo, hi = param.bounds
            step = 1.0 if param.kind == "integer" else param.resolution
            needed = math.ceil(math.log2(max((hi - lo) / step, 1.0))) + 1 if step else config.bisect
            out[a, i] = min(needed, config.bisect)
            resolution[a, i] = step or 0.0  # 0: no resolution, every halving (a share of the interval)
    return out, resolution
