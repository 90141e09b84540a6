"""The exhaustive oracle: the cheapest plan of a catalogue per person, by enumeration, for measuring a search.

``solve_exhaustively`` tries every canonical sequence (``search.canonical_levels``: one order per class of
commuting orders) of at most ``max_length`` actions with every parameter combination: every value of a
whole-number box (or resolution grid) of at most ``grid`` values, and for a real or wider box ``grid``
points (its no-change value included) refined by one-dimensional root finding
(``scipy.optimize.elementwise.find_root``, Chandrupatla's bracketing method, vectorised) between adjacent
grid points where the goal margin crosses ``margin`` or validity (bounds, conditions, costs) changes, one
parameter axis at a time with the others on their grid. A candidate passes under the engine's exact
semantics, by design (it measures the *search*, not the replay): ``Program.rollout(..., exact=True)`` ok,
every step cost finite and >= 0 (``verify.proper_costs``), the model's decision favourable
(``Goal.satisfied``: a tie goes to the earlier class) and the goal margin at least ``margin``.

The answer is exact for one refined parameter per sequence (to 1e-9 of a grid cell) when each step's cost
is monotone in each parameter within a cell; with several refined parameters it is the best point on the
boundary through the grid lines, within the grid's second order of the optimum where the boundary is
smooth. A passing interval narrower than one cell whose two ends fail for the same reason (both short of
the margin, or both invalid) is not seen: a finer ``grid`` finds it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.optimize.elementwise import find_root

from actionable.actions import ActionSet, Param
from actionable.errors import ConfigError
from actionable.goals import Goal, resolve_goal
from actionable.inner import one_thread
from actionable.models import TorchModel, as_model
from actionable.program import Plan, Program
from actionable.results import RecourseBatch, Step
from actionable.rows import Outcome, assemble, raw_records, read_rows
from actionable.schema import DTYPE
from actionable.search import canonical_levels
from actionable.verify import proper_costs

__all__ = [
    "MAX_CANDIDATES",
    "Axis",
    "OracleAnswer",
    "axes",
    "count_candidates",
    "solve_exhaustively",
    "to_batch",
]

MAX_CANDIDATES = 10**6  # grid combinations per person the oracle agrees to enumerate (before refinement)
CHUNK = 1 << 17  # (person, combination) pairs per batched rollout


@dataclass(frozen=True)
class OracleAnswer:
    """The oracle's verdict for one person.

    ``helpable``: some plan passes with the goal margin >= ``margin``; ``cost`` its least cost (inf if
    none), ``steps`` / ``actions`` / ``params`` that plan and ``margin`` the goal margin it reaches (nan
    if none). ``helpable_at_boundary``: some plan passes with margin 0 (the decision flips), at least
    ``boundary_cost``. ``candidates``: the plans evaluated for this person (grid and refined points);
    ``x_after``: the raw state the cheapest plan reaches (empty if none).
    The empty plan is a candidate: a person already past the margin costs 0 with no steps.
    """

    helpable: bool
    cost: float
    steps: tuple[Step, ...]
    margin: float
    helpable_at_boundary: bool
    boundary_cost: float
    candidates: int
    x_after: Mapping[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> tuple[str, ...]:
        """The actions of the cheapest plan, in order."""
        return tuple(s.action for s in self.steps)

    @property
    def params(self) -> tuple[dict[str, float], ...]:
        """The parameters of each step of the cheapest plan (raw units)."""
        return tuple(dict(s.params) for s in self.steps)


@dataclass(frozen=True)
class Axis:
    """One parameter of one step of a sequence: the values tried, and whether the boundary between
    adjacent values is refined (a real box, or a whole-number one wider than the grid)."""

    step: int
    slot: int
    param: Param
    values: torch.Tensor
    refine: bool


def _values(param: Param, grid: int) -> tuple[torch.Tensor, bool]:
    """The values tried for one parameter and whether they are refined (see ``Axis``)."""
    lo, hi = param.bounds
    step = 1.0 if param.kind == "integer" else param.resolution
    if step is not None:  # a lattice: every point if it is small enough
        first, last = math.ceil(lo / step), math.floor(hi / step)
        if last - first + 1 <= grid:
            points = torch.arange(first, last + 1, dtype=DTYPE) * step
            return torch.unique(param.round(points)), False
    points = torch.linspace(lo, hi, grid, dtype=DTYPE)
    points = torch.cat([points, torch.tensor([float(param.init)], dtype=DTYPE)])  # type: ignore[arg-type]
    return torch.unique(param.round(points)), hi > lo


def axes(program: Program, seq: Sequence[int], grid: int) -> list[Axis]:
    """The parameter axes of a sequence, step by step."""
    out = []
    for j, a in enumerate(seq):
        for i, param in enumerate(program.acts[a].params):
            values, refine = _values(param, grid)
            out.append(Axis(j, i, param, values, refine and len(values) > 1))
    return out


def count_candidates(actions: ActionSet, max_length: int, grid: int = 64) -> int:
    """Grid combinations per person that ``solve_exhaustively`` evaluates (before refinement)."""
    program = Program(actions)
    sequences = [s for level in canonical_levels(program.acts, max_length) for s in level]
    return 1 + sum(math.prod(len(a.values) for a in axes(program, s, grid)) for s in sequences)


class _Eval(NamedTuple):
    """Per (person, combination) pair: total cost, goal margin, validity without the margin (path ok,
    proper costs, favourable decision) and the decision alone (favourable: ties go to the earlier class)."""

    total: torch.Tensor
    margin: torch.Tensor
    valid: torch.Tensor
    decided: torch.Tensor


class _Best:
    """Per person and threshold: the least passing cost so far and the plan reaching it."""

    def __init__(self, people: int, thresholds: Sequence[float]) -> None:
        self.thresholds = tuple(thresholds)
        self.cost = torch.full((len(thresholds), people), math.inf, dtype=DTYPE)
        self.plans: list[dict[int, tuple[tuple[int, ...], torch.Tensor, float]]] = [{} for _ in thresholds]

    def offer(
        self,
        k: int,
        seq: tuple[int, ...],
        person: torch.Tensor,
        table: torch.Tensor,
        which: torch.Tensor,
        ev: _Eval,
    ) -> None:
        """Keep, for threshold ``k``, each person's cheapest passing pair (pair ``j``: ``person[j]`` with
        parameters ``table[which[j]]``) when strictly cheaper than their best so far."""
        passes = ev.valid & (ev.margin >= self.thresholds[k])
        if not bool(passes.any()):
            return
        cost = torch.where(passes, ev.total, math.inf)
        order = torch.argsort(cost, stable=True)[: int(passes.sum())]  # cheapest first; earlier win ties
        seen: set[int] = set()
        for j in order.tolist():
            p = int(person[j])
            if p in seen:
                continue
            seen.add(p)
            if float(cost[j]) < float(self.cost[k, p]):
                self.cost[k, p] = cost[j]
                self.plans[k][p] = (seq, table[which[j]].clone(), float(ev.margin[j]))


class _Solver:
    """One oracle call: the compiled catalogue, the model, the goal and the people."""

    def __init__(
        self, program: Program, model: TorchModel, goal: Goal, x0: torch.Tensor, margin: float, grid: int
    ) -> None:
        self.program, self.model, self.goal, self.x0 = program, model, goal, x0
        self.grid = grid
        self.best = _Best(len(x0), (margin, 0.0))
        self.candidates = torch.zeros(len(x0), dtype=torch.int64)

    def evaluate(
        self, seq: tuple[int, ...], person: torch.Tensor, table: torch.Tensor, which: torch.Tensor
    ) -> _Eval:
        """Exact replay of ``seq`` for each pair ``j``: person ``person[j]``, parameters ``table[which[j]]``
        (steps x slots), in chunks so that no state or parameter tensor of all pairs is ever built."""
        parts = []
        for start in range(0, len(person), CHUNK):
            rows = person[start : start + CHUNK]
            params = table[which[start : start + CHUNK]]
            ids = torch.as_tensor(seq, dtype=torch.int64).expand(len(rows), len(seq))
            with torch.no_grad():
                path = self.program.rollout(ids, self.x0[rows], params, exact=True)
                out = self.model(path.x)
            decided = self.goal.satisfied(out)
            valid = path.ok & proper_costs(path.step_costs) & decided
            parts.append(_Eval(path.step_costs.sum(1), self.goal.margin(out), valid, decided))
        return _Eval(*(torch.cat(p) for p in zip(*parts, strict=True)))

    def empty(self) -> None:
        """The empty plan: a person already past the margin needs nothing."""
        with torch.no_grad():
            out = self.model(self.x0)
        n = len(self.x0)
        decided = self.goal.satisfied(out)
        ev = _Eval(torch.zeros(n, dtype=DTYPE), self.goal.margin(out), decided, decided)
        table = torch.zeros(1, 0, self.program.slots, dtype=DTYPE)
        for k in range(len(self.best.thresholds)):
            self.best.offer(k, (), torch.arange(n), table, torch.zeros(n, dtype=torch.int64), ev)
        self.candidates += 1

    def sequence(self, seq: tuple[int, ...]) -> None:
        """Every grid combination of ``seq`` for every person, then the refined boundary points."""
        lines = axes(self.program, seq, self.grid)
        combos = _combinations(lines, len(seq), self.program.slots)
        n, c = len(self.x0), len(combos)
        person = torch.arange(n).repeat_interleave(c)
        which = torch.arange(c).repeat(n)
        ev = self.evaluate(seq, person, combos, which)
        self.candidates += c
        for k in range(len(self.best.thresholds)):
            self.best.offer(k, seq, person, combos, which, ev)
        shape = (n, *(len(a.values) for a in lines))
        for d, axis in enumerate(lines):
            for k in range(len(self.best.thresholds)) if axis.refine else ():
                self.refine(seq, axis, d, shape, combos, ev, k)

    def refine(
        self,
        seq: tuple[int, ...],
        axis: Axis,
        d: int,
        shape: tuple[int, ...],
        combos: torch.Tensor,
        ev: _Eval,
        k: int,
    ) -> None:
        """Root-find, between adjacent values along axis ``d``, where the goal margin crosses threshold
        ``k`` and where validity changes (each alone, so that a passing interval inside one cell, between
        a point short of the margin and a point past a bound, is found too); every point found is then
        replayed in full. Pairs are numbered person-major (pair = person x combinations + combination)."""
        threshold = self.best.thresholds[k]
        c = len(combos)
        flat = torch.arange(len(ev.total)).reshape(shape)
        left = flat.narrow(d + 1, 0, shape[d + 1] - 1).flatten()
        right = flat.narrow(d + 1, 1, shape[d + 1] - 1).flatten()
        # a boundary point costs between its neighbours' costs (costs monotone within a cell)
        useful = torch.fmin(ev.total[left], ev.total[right]) < self.best.cost[k, left // c]
        past = (ev.margin >= threshold) & ev.decided
        passes = past & ev.valid
        for criterion, truth in (("margin", past), ("valid", ev.valid)):
            keep = useful & (truth[left] != truth[right])
            if criterion == "valid":  # else a margin crossing in the same cell is the one that matters
                keep &= passes[left] | passes[right]
            if bool(keep.any()):
                person, base = left[keep] // c, combos[left[keep] % c]
                b = combos[right[keep] % c][:, axis.step, axis.slot]
                trial = self.root(seq, axis, person, base, b, criterion, threshold)
                which = torch.arange(len(trial))
                self.candidates += torch.bincount(person, minlength=len(self.x0))
                self.best.offer(k, seq, person, trial, which, self.evaluate(seq, person, trial, which))

    def root(
        self,
        seq: tuple[int, ...],
        axis: Axis,
        person: torch.Tensor,
        base: torch.Tensor,
        b: torch.Tensor,
        criterion: str,
        threshold: float,
    ) -> torch.Tensor:
        """Per pair, ``base`` with the axis moved to where ``criterion`` ("margin": the goal margin >=
        ``threshold``; "valid": the replay valid) changes between the axis value in ``base`` and ``b``, on
        the side where it holds (``scipy.optimize.elementwise.find_root``, vectorised over the pairs)."""

        def signed(t: np.ndarray, index: np.ndarray) -> np.ndarray:
            """> 0 where the criterion holds, < 0 where it does not (the margin's distance, or +-1)."""
            rows = torch.as_tensor(index, dtype=torch.int64)
            trial = base[rows].clone()
            trial[:, axis.step, axis.slot] = axis.param.round(torch.as_tensor(t, dtype=DTYPE))
            got = self.evaluate(seq, person[rows], trial, torch.arange(len(rows)))
            if criterion == "valid":
                return torch.where(got.valid, 1.0, -1.0).numpy()
            value = got.margin - threshold  # past a tie only where the decision is favourable
            holds = (value >= 0) & got.decided
            return torch.where(holds, value.clamp_min(1e-300), torch.where(value < 0, value, -1e-300)).numpy()

        a = base[:, axis.step, axis.slot].numpy()
        tolerance = 1e-9 * float(np.max(b.numpy() - a))  # of a cell: far below any cost that matters
        found = find_root(
            signed,
            (a, b.numpy()),
            args=(np.arange(len(a), dtype=np.float64),),
            tolerances={"xatol": tolerance, "xrtol": 1e-12, "fatol": 0.0},
            maxiter=200,
        )
        xl, xr = found.bracket
        point = np.where(found.f_bracket[0] >= 0, xl, xr)
        trial = base.clone()
        trial[:, axis.step, axis.slot] = axis.param.round(torch.as_tensor(point, dtype=DTYPE))
        return trial

    def answers(self) -> list[OracleAnswer]:
        out = []
        for p in range(len(self.x0)):
            plan = self.best.plans[0].get(p)
            steps, after = self._plan(p, plan[0], plan[1]) if plan is not None else ((), {})
            out.append(
                OracleAnswer(
                    helpable=plan is not None,
                    cost=float(self.best.cost[0, p]),
                    steps=steps,
                    margin=plan[2] if plan is not None else math.nan,
                    helpable_at_boundary=p in self.best.plans[1],
                    boundary_cost=float(self.best.cost[1, p]),
                    candidates=int(self.candidates[p]),
                    x_after=after,
                )
            )
        return out

    def _plan(
        self, p: int, seq: tuple[int, ...], params: torch.Tensor
    ) -> tuple[tuple[Step, ...], dict[str, Any]]:
        """The steps a person reads and the raw state after them (the engine's own records)."""
        x0 = self.x0[p : p + 1]
        ids = torch.as_tensor([seq], dtype=torch.int64) if seq else torch.zeros(1, 0, dtype=torch.int64)
        with torch.no_grad():
            path = self.program.rollout(ids, x0, params[None], exact=True) if seq else None
        x = path.x[0] if path is not None else x0[0]
        costs = path.step_costs[0] if path is not None else torch.zeros(0, dtype=DTYPE)
        steps = self.program.steps(Plan(seq, params, costs, x, x0[0])) if seq else ()
        return steps, raw_records(self.program.schema, x[None])[0]


def _combinations(lines: list[Axis], length: int, slots: int) -> torch.Tensor:
    """Every combination of the axes' values as parameters (combinations x steps x slots)."""
    count = math.prod(len(a.values) for a in lines)
    params = torch.zeros(count, length, slots, dtype=DTYPE)
    if not lines:
        return params
    grids = torch.meshgrid(*(a.values for a in lines), indexing="ij")
    for axis, values in zip(lines, grids, strict=True):
        params[:, axis.step, axis.slot] = values.flatten()
    return params


def solve_exhaustively(
    model: Any,
    X: pd.DataFrame,
    actions: ActionSet,
    *,
    goal: Any = None,
    max_length: int,
    margin: float = 0.1,
    grid: int = 64,
    max_candidates: int = MAX_CANDIDATES,
) -> list[OracleAnswer]:
    """The cheapest plan per row of ``X`` (one ``OracleAnswer`` per row, in order), by enumeration.

    ``model`` and ``goal`` as for ``synthesize``; ``margin``: the goal margin a plan must reach;
    ``grid``: points per real (or wide whole-number) parameter; ``max_candidates``: the most grid
    combinations per person enumerated (a larger search is a ``ConfigError`` before any work).
    """
    if not isinstance(grid, int) or grid < 2:
        raise ConfigError(f"solve_exhaustively: grid = {grid!r}; give a whole number >= 2.")
    if not isinstance(max_length, int) or max_length < 0:
        raise ConfigError(f"solve_exhaustively: max_length = {max_length!r}; give a whole number >= 0.")
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin >= 0):
        raise ConfigError(f"solve_exhaustively: margin = {margin!r}; give a finite number >= 0.")
    program = Program(actions)
    size = count_candidates(actions, max_length, grid)
    if size > max_candidates:
        raise ConfigError(
            f"solve_exhaustively: {size:,} plans per person to enumerate (max_length={max_length}, "
            f"grid={grid}) is more than max_candidates = {max_candidates:,}; lower max_length or grid, "
            "or raise max_candidates."
        )
    torch_model = as_model(model, actions.schema)
    solver = _Solver(
        program, torch_model, resolve_goal(torch_model, goal), actions.schema.encode(X), margin, grid
    )
    levels = canonical_levels(program.acts, max_length) if max_length else []
    with one_thread(1):  # small batched steps: waiting OpenMP threads cost more than they share
        solver.empty()
        for seq in itertools.chain.from_iterable(levels):
            solver.sequence(seq)
        return solver.answers()


def to_batch(
    answers: Sequence[OracleAnswer], X: pd.DataFrame, actions: ActionSet, model: Any, *, goal: Any = None
) -> RecourseBatch:
    """The oracle's plans as records (``found`` or ``not_found``, one per row of ``X``), for any tool that
    reads a ``RecourseBatch``: ``testing.check_plans`` replays them independently of the engine."""
    torch_model = as_model(model, actions.schema)
    target = resolve_goal(torch_model, goal)
    rows = read_rows(actions.schema, X, "oracle")
    if len(rows.good) != len(answers):
        raise ConfigError(f"to_batch: {len(answers)} answers for {len(rows.good)} valid rows of X.")
    with torch.no_grad():
        p0 = target.probability(torch_model(rows.x)).tolist()
    outcomes = []
    for a, p in zip(answers, p0, strict=True):
        if not a.helpable:
            outcomes.append(Outcome("not_found", p, error="the oracle found no plan past the margin"))
            continue
        after = actions.schema.encode(pd.DataFrame([dict(a.x_after)]))
        with torch.no_grad():
            p1 = float(target.probability(torch_model(after))[0])
        outcomes.append(Outcome("found", p, a.steps, a.cost, dict(a.x_after), p1))
    return assemble(rows, outcomes, seconds=0.0, provenance={"method": "oracle"})
