"""An ``ActionSet`` compiled once against its ``Schema``: batched kernels, plan records, rollout, rounding.

``Program(actions)`` resolves everything that depends only on the catalogue and the schema once: each
action's feature slices, category level indices, barrier scales, bounds and direction slacks, parameter
boxes and the columns it writes. A batch of plans is a tensor of action ids (``NOOP`` pads shorter
sequences) and a tensor of parameters (pairs x steps x slots, raw units). ``rollout`` applies them step
by step, relaxed for the optimisation (``exact=False``: barrier penalties) or exactly (``exact=True``:
integer and binary features made whole after every action as declared, see ``rounding``, conditions as
booleans). ``Plan`` is one verified plan;
``steps`` turns it into the ``Step`` records a person reads, and ``encode_plans`` turns ``Recourse``
records back into ids and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import torch

from actionable import expr as E
from actionable import intervals as I
from actionable.action_checks import box_of
from actionable.actions import Action, ActionSet, Condition, relax
from actionable.errors import ConfigError
from actionable.results import Recourse, Step
from actionable.rounding import make_whole_columns
from actionable.schema import DTYPE, Schema

__all__ = [
    "NOOP",
    "Dispatch",
    "Groups",
    "Kernel",
    "Moved",
    "Path",
    "Plan",
    "Program",
    "Rounding",
    "Static",
]

NOOP = -1  # the padding action of sequences shorter than the longest: changes nothing, costs nothing
Rounding = Literal["round", "floor", "ceil"]
Groups = list[tuple[int, torch.Tensor]]  # per step: (action id, the pairs taking it)
Dispatch = list[tuple[Groups, torch.Tensor]]  # per step: groups and the permutation restoring pair order
Static = tuple[list[list[torch.Tensor]], torch.Tensor]  # static columns per step and group; final ones


class Path(NamedTuple):
    """A rollout of many (sequence, person) pairs: final states, costs per step, penalties, exact validity."""

    x: torch.Tensor
    step_costs: torch.Tensor
    penalty: torch.Tensor
    ok: torch.Tensor


class Moved(NamedTuple):
    """One action applied to a batch: numeric state, static state, cost, relaxed penalty, exact validity."""

    z: torch.Tensor
    xs: torch.Tensor
    cost: torch.Tensor
    penalty: torch.Tensor
    ok: torch.Tensor


@dataclass(frozen=True, eq=False)
class Plan:
    """One verified plan for one person: action ids, parameters (steps x slots, raw units), the exact cost
    of each step, the start and the final canonical state."""

    ids: tuple[int, ...]
    params: torch.Tensor
    step_costs: torch.Tensor
    x: torch.Tensor
    x0: torch.Tensor

    @property
    def cost(self) -> float:
        """The plan's total cost (penalties never included)."""
        return float(self.step_costs.sum())

    def but(self, **changes: Any) -> Plan:
        """This plan with some fields replaced."""
        return replace(self, **changes)

    def only(self, steps: Sequence[int]) -> Plan:
        """This plan with only ``steps`` (in order), their parameters and costs; the end state is kept (the
        caller replays the plan where the dropped steps changed something)."""
        keep = torch.as_tensor(list(steps), dtype=torch.int64)
        ids = tuple(self.ids[j] for j in steps)
        return self.but(ids=ids, params=self.params[keep], step_costs=self.step_costs[keep])


@dataclass(frozen=True)
class _Read:
    """Where an expression's name lives: a category block, or a numeric column (in ``z`` when written)."""

    name: str
    cols: slice
    levels: tuple[str, ...] | None
    pos: int | None


def cost_floor(action: Action, schema: Schema) -> float:
    """A lower bound on the action's cost wherever its preconditions can hold (interval arithmetic over
    the features' and parameters' bounds): what a search adds up to skip sequences that cannot beat a plan
    in hand. 0 where the interval says nothing (a verified step never costs less than 0)."""
    box = box_of(action.params, schema)
    narrowed = I.narrow([c.expr.node for c in action.conditions("pre")], box)
    if narrowed is None:
        return 0.0
    low = I.span(action.expressions.cost.node, narrowed).lo
    return low if 0.0 < low < math.inf else 0.0


class Kernel:
    """One action prepared for batched evaluation: only the columns it reads and writes are touched."""

    def __init__(self, action: Action, schema: Schema, touched: dict[int, int]) -> None:
        self.action = action
        self.n_params = action.n_params
        bound = action.expressions
        self.effects = [(schema[f], schema.slice(f), e) for f, e in bound.effects.items()]
        self.levels: list[tuple[slice, int]] = []  # constant category effects: block, level index
        self.blocks: dict[str, torch.Tensor] = {}  # the same as one-hot rows, for the rollout
        for f, cols, e in self.effects:
            if e.is_level:
                level = f.level_index(e.evaluate({}))
                self.levels.append((cols, level))
                self.blocks[f.name] = torch.zeros(len(f.levels), dtype=DTYPE).index_fill(
                    0, torch.tensor(level), 1.0
                )
        self.cost = bound.cost
        self.pre: tuple[Condition, ...] = action.conditions("pre")
        self.post: tuple[Condition, ...] = action.conditions("post")
        params = {p.name for p in action.params}
        before = set(self.cost.names) | {n for _, _, e in self.effects for n in e.names}
        before |= {n for c in self.pre for n in c.expr.names}
        self.read_before = self._reads(schema, sorted(before - params), touched)
        self.read_after = self._reads(
            schema, sorted({n for c in self.post for n in c.expr.names} - params), touched
        )
        ranges = {f.name: f.bounds[1] - f.bounds[0] for f in schema.features if f.kind != "category"}
        ranges |= {p.name: p.bounds[1] - p.bounds[0] for p in action.params}
        self.scales = [self._scale(c, ranges) for c in (*self.pre, *self.post)]
        numeric = [(f, cols) for f, cols, _ in self.effects if f.kind != "category"]
        self.cols = torch.as_tensor([cols.start for _, cols in numeric], dtype=torch.int64)
        self.zcols = torch.as_tensor([touched[int(c)] for c in self.cols], dtype=torch.int64)
        self.integer = torch.as_tensor([f.is_whole for f, _ in numeric], dtype=torch.bool)
        self.modes = [action.whole_mode(f) for f, _ in numeric]  # the action's rounding, else the feature's
        self.lo = torch.as_tensor([f.bounds[0] for f, _ in numeric], dtype=DTYPE)
        self.hi = torch.as_tensor([f.bounds[1] for f, _ in numeric], dtype=DTYPE)
        up = torch.as_tensor([f.direction == "increase" for f, _ in numeric], dtype=torch.bool)
        down = torch.as_tensor([f.direction == "decrease" for f, _ in numeric], dtype=torch.bool)
        span = self.hi - self.lo
        scale = torch.where(torch.isfinite(span) & (span > 0), span / 100, torch.ones_like(span))
        # the slacks that can bind: finite lower and upper bounds, and the allowed direction of change
        # as index tensors (not masks), so the shapes never depend on data (torch.compile traces them)
        self.slack_lo, self.slack_hi, self.i_up, self.i_down = (
            torch.nonzero(mask).flatten()
            for mask in (torch.isfinite(self.lo), torch.isfinite(self.hi), up, down)
        )
        self.slack_scale = torch.cat(
            [scale[self.slack_lo], scale[self.slack_hi], scale[self.i_up], scale[self.i_down]]
        )

    @staticmethod
    def _reads(schema: Schema, names: list[str], touched: dict[int, int]) -> list[_Read]:
        out = []
        for name in names:
            f, cols = schema[name], schema.slice(name)
            category = f.kind == "category"
            out.append(_Read(name, cols, f.levels if category else None, touched.get(cols.start)))
        return out

    @staticmethod
    def _scale(condition: Condition, ranges: dict[str, float]) -> float:
        """Default barrier scale: 1% of the smallest finite range among the names the condition reads."""
        spans = [ranges[n] for n in condition.expr.names if n in ranges and 0 < ranges[n] < math.inf]
        return float(condition.scale or (min(spans) / 100 if spans else 1.0))

    def env(self, z: torch.Tensor, xs: torch.Tensor, p: torch.Tensor, reads: list[_Read]) -> dict[str, Any]:
        env: dict[str, Any] = {}
        for r in reads:
            if r.levels is not None:
                env[r.name] = E.Categorical(xs[:, r.cols], r.levels)
            else:
                env[r.name] = z[:, r.pos] if r.pos is not None else xs[:, r.cols.start]
        for i, param in enumerate(self.action.params):
            env[param.name] = p[:, i]
        return env

    def set_levels(self, xs: torch.Tensor) -> torch.Tensor:
        """The static columns after this action: its category effects applied (they are constants)."""
        out = xs
        for cols, level in self.levels:
            out = out.clone() if out is xs else out
            out[:, cols] = 0.0
            out[:, cols.start + level] = 1.0
        return out

    def step(self, z: torch.Tensor, xs: torch.Tensor, p: torch.Tensor, exact: bool) -> Moved:
        """The action on a batch: new numeric state ``z``, new static state ``xs`` (categories), its cost,
        the relaxed penalty (0 when exact) and the exact validity of conditions, bounds and directions."""
        n = len(z)
        env = self.env(z, xs, p, self.read_before)
        cost = torch.broadcast_to(torch.as_tensor(self.cost.evaluate(env), dtype=DTYPE), (n,))
        numeric = []
        xs_after = xs
        for f, cols, effect in self.effects:
            value = effect.evaluate(env)
            if isinstance(value, str):
                if xs_after is xs:
                    xs_after = xs.clone()
                block = self.blocks.get(f.name)
                if block is None:  # a level chosen by the state: found in the schema's levels now
                    block = torch.zeros(len(f.levels), dtype=xs.dtype)
                    block[f.level_index(value)] = 1.0
                xs_after[:, cols] = block
            else:
                numeric.append(torch.broadcast_to(torch.as_tensor(value, dtype=z.dtype), (n,)))
        z_after = z
        ok = torch.ones(n, dtype=torch.bool)
        pen = torch.zeros(n, dtype=DTYPE)
        if numeric:
            new = torch.stack(numeric, 1)
            if exact:  # an integer feature stays a whole number after every action, rounded as declared
                new = torch.where(self.integer, make_whole_columns(new, self.modes), new)
            old = z[:, self.zcols]
            z_after = z.index_copy(1, self.zcols, new)
            slack = torch.cat(
                [
                    (new - self.lo)[:, self.slack_lo],
                    (self.hi - new)[:, self.slack_hi],
                    (new - old)[:, self.i_up],
                    (old - new)[:, self.i_down],
                ],
                1,
            )
            # exact: the bounds and directions as the schema checks them (a plan's state must be a valid row)
            ok = (slack >= (0.0 if exact else -1e-9)).all(1)
            if not exact and slack.shape[1]:
                d = slack / self.slack_scale
                pen = (0.1 * torch.where(d >= 0, torch.exp(-d.clamp_min(0)), 1 - d)).sum(1)
        env_after = self.env(z_after, xs_after, p, self.read_after) if self.post else {}
        conditions = [(c, env) for c in self.pre] + [(c, env_after) for c in self.post]
        for (condition, environment), scale in zip(conditions, self.scales, strict=True):
            if exact:  # the truth alone: no barrier to build
                truth = torch.as_tensor(condition.expr.evaluate(environment), dtype=torch.bool)
                ok = ok & torch.broadcast_to(truth, (n,))
                continue
            c_pen, truth = relax(condition, environment, scale)
            ok = ok & torch.broadcast_to(truth, (n,))
            pen = pen + torch.broadcast_to(c_pen, (n,))
        return Moved(z_after, xs_after, cost, pen, ok)


class Program:
    """An ``ActionSet`` compiled against its ``Schema``: kernels, parameter boxes, rollout and rounding."""

    def __init__(self, actions: ActionSet) -> None:
        if not isinstance(actions, ActionSet):
            raise ConfigError(f"synthesize: actions must be an ActionSet; got {type(actions).__name__}.")
        self.actions = actions
        self.schema: Schema = actions.schema
        self.acts: tuple[Action, ...] = actions.actions
        self.n_params = max((a.n_params for a in self.acts), default=0)
        self.slots = max(self.n_params, 1)
        written = {
            self.schema.slice(name).start
            for a in self.acts
            for name in a.footprint
            if self.schema[name].kind != "category"
        }
        columns = sorted(written)
        self.touched = torch.as_tensor(columns, dtype=torch.int64)
        self.kernels = tuple(Kernel(a, self.schema, {c: i for i, c in enumerate(columns)}) for a in self.acts)
        self.lower_bounds = tuple(cost_floor(a, self.schema) for a in self.acts)
        self._floors = torch.as_tensor([*self.lower_bounds, 0.0], dtype=DTYPE)  # the last row: no-op
        self._box = self._box_tables()
        lo, hi = self.schema.bounds_tensor()
        self.column_scale = torch.where(torch.isfinite(hi - lo) & (hi > lo), hi - lo, torch.ones_like(hi))
        self.footprint_columns = [
            [
                c
                for f in action.footprint
                for c in range(self.schema.slice(f).start, self.schema.slice(f).stop)
            ]
            for action in self.acts
        ]

    def bound(self, ids: torch.Tensor) -> torch.Tensor:
        """Per padded sequence, a lower bound on its cost: the sum of its actions' ``lower_bounds``."""
        return self._floors[self.rows(ids)].sum(1)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` as rows of the per-action tables, whose last row is the no-op's."""
        return torch.where(ids == NOOP, len(self.acts), ids)

    def parameter_count(self, ids: Sequence[int]) -> int:
        """How many parameters a sequence's actions have together."""
        return sum(self.acts[a].n_params for a in ids if a != NOOP)

    def _box_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per action and parameter slot: lower bound, upper bound and initial value (the last row: no-op)."""
        lo = torch.zeros(len(self.acts) + 1, self.slots, dtype=DTYPE)
        hi, init = torch.zeros_like(lo), torch.zeros_like(lo)
        for a, action in enumerate(self.acts):
            for i, param in enumerate(action.params):
                lo[a, i], hi[a, i] = param.bounds
                init[a, i] = float(param.init)  # type: ignore[arg-type]
        return lo, hi, init

    # ------------------------------------------------------------------------------- plans as tensors
    def pad(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """Action ids (sequences x longest length), shorter sequences padded with ``NOOP``."""
        width = max(len(s) for s in sequences)
        return torch.as_tensor([list(s) + [NOOP] * (width - len(s)) for s in sequences], dtype=torch.int64)

    @staticmethod
    def trim(ids: torch.Tensor) -> torch.Tensor:
        """``ids`` without trailing columns where every pair is padding."""
        return ids[:, : int((ids != NOOP).sum(1).max())]

    @staticmethod
    def sequence(ids: torch.Tensor) -> tuple[int, ...]:
        """One row of ids as a sequence of action indices (padding dropped)."""
        return tuple(int(a) for a in ids.tolist() if a != NOOP)

    def stack(self, plans: Sequence[Plan]) -> tuple[torch.Tensor, torch.Tensor]:
        """Plans as padded ids (plans x steps) and parameters (plans x steps x slots)."""
        width = max(len(p.ids) for p in plans)
        ids = torch.full((len(plans), width), NOOP, dtype=torch.int64)
        params = torch.zeros(len(plans), width, self.slots, dtype=DTYPE)
        for i, plan in enumerate(plans):
            ids[i, : len(plan.ids)] = torch.as_tensor(plan.ids, dtype=torch.int64)
            params[i, : len(plan.ids)] = plan.params
        return ids, params

    def encode_plans(self, records: Sequence[Recourse]) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse of ``steps``: records' steps as padded ids and parameters (raw units)."""
        length = max(len(r.steps) for r in records)
        index = {name: i for i, name in enumerate(self.actions.names)}
        ids = torch.full((len(records), length), NOOP, dtype=torch.int64)
        params = torch.zeros(len(records), length, self.slots, dtype=DTYPE)
        for i, r in enumerate(records):
            for j, step in enumerate(r.steps):
                ids[i, j] = index[step.action]
                for k, p in enumerate(self.actions[step.action].params):
                    params[i, j, k] = float(step.params[p.name])
        return ids, params

    def steps(self, plan: Plan) -> tuple[Step, ...]:
        """The plan as the steps a person reads: action, parameters (whole numbers where asked), cost, text."""
        steps = []
        for j, a in enumerate(plan.ids):
            action = self.acts[a]
            values = {
                p.name: round(float(plan.params[j, i])) if p.kind == "integer" else float(plan.params[j, i])
                for i, p in enumerate(action.params)
            }
            steps.append(Step(action.name, values, float(plan.step_costs[j]), action.describe(values)))
        return tuple(steps)

    # ------------------------------------------------------------------------------- parameters
    def boxes(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per pair, step and parameter slot: lower bound, span and initial value (raw units)."""
        table_lo, table_hi, table_init = self._box
        index = self.rows(ids)
        lo, hi, init = table_lo[index], table_hi[index], table_init[index]
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return lo, span, init

    def has_params(self, ids: torch.Tensor) -> bool:
        """Whether any action in ``ids`` takes a parameter (else there is nothing to optimise)."""
        return any(self.acts[a].n_params for a in torch.unique(ids).tolist() if a != NOOP)

    def round(self, ids: torch.Tensor, params: torch.Tensor, mode: Rounding = "round") -> torch.Tensor:
        """Parameters as a person can carry them out: whole numbers or the resolution grid, in their box
        (``floor`` / ``ceil``: toward the grid point below / above instead of the nearest)."""
        out = params.clone()
        for a, action in enumerate(self.acts):
            mask = ids == a
            if not mask.any():
                continue
            for i, param in enumerate(action.params):
                values = out[..., i][mask]
                if mode != "round" and (param.kind == "integer" or param.resolution):
                    step = 1.0 if param.kind == "integer" else float(param.resolution)  # type: ignore[arg-type]
                    values = (torch.floor if mode == "floor" else torch.ceil)(values / step) * step
                out[..., i][mask] = param.round(values)
        return out

    # ------------------------------------------------------------------------------- rollout
    def dispatch(self, ids: torch.Tensor) -> Dispatch:
        """Per step: which pairs each action acts on, and the permutation that restores the pairs' order."""
        plan = []
        for j in range(ids.shape[1]):
            groups = [
                (int(a), torch.nonzero(ids[:, j] == a).flatten()) for a in torch.unique(ids[:, j]).tolist()
            ]
            order = torch.argsort(torch.cat([rows for _, rows in groups]))
            plan.append((groups, order))
        return plan

    def static_states(self, x0: torch.Tensor, plan: Dispatch) -> Static:
        """The columns no parameter can move (categories, unwritten numbers) per step and action group.

        Category effects set constant levels, so this trajectory is the same at every optimisation step.
        """
        xs = x0
        per_step = []
        for groups, order in plan:
            before, after = [], []
            for a, rows in groups:
                xa = xs[rows]
                before.append(xa)
                after.append(xa if a == NOOP else self.kernels[a].set_levels(xa))
            per_step.append(before)
            xs = torch.cat(after)[order]
        return per_step, xs

    def rollout(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        *,
        exact: bool,
        plan: Dispatch | None = None,
        static: Static | None = None,
    ) -> Path:
        """Apply each pair's sequence step by step, dispatching every action to the pairs that use it.

        Gradients flow only through ``z``, the numeric columns some action writes; categories and the
        other columns come from ``static_states`` and meet ``z`` once, before the model.
        """
        plan = plan if plan is not None else self.dispatch(ids)
        per_step, xs_final = static if static is not None else self.static_states(x0, plan)
        z, step_costs, penalty, ok = self.roll(x0[:, self.touched], params, plan, per_step, exact)
        return Path(self.assemble(xs_final, z), step_costs, penalty, ok)

    def assemble(self, xs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Canonical rows: the static columns ``xs`` with the written numeric columns from ``z``."""
        return xs.index_copy(1, self.touched, z) if len(self.touched) else xs

    def roll(
        self,
        z: torch.Tensor,
        params: torch.Tensor,
        plan: Dispatch,
        per_step: list[list[torch.Tensor]],
        exact: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The numeric state ``z`` through every step: final ``z``, costs per step, penalty, exact validity.

        A step where every pair takes the same action skips the gather and the reordering.
        """
        batch = len(z)
        step_costs: list[torch.Tensor] = []
        penalty = torch.zeros(batch, dtype=DTYPE)
        ok = torch.ones(batch, dtype=torch.bool)
        for (groups, order), xs_groups in zip(plan, per_step, strict=True):
            j = len(step_costs)
            if len(groups) == 1:  # one action for all pairs, in order
                a = groups[0][0]
                if a == NOOP:
                    step_costs.append(torch.zeros(batch, dtype=DTYPE))
                    continue
                kernel = self.kernels[a]
                z, _, cost, pen, good = kernel.step(z, xs_groups[0], params[:, j, : kernel.n_params], exact)
                step_costs.append(cost)
                penalty = penalty + pen
                ok = ok & good
                continue
            zs, costs, pens, oks = [], [], [], []
            for (a, rows), xa in zip(groups, xs_groups, strict=True):
                za = z[rows]
                if a == NOOP:
                    zs.append(za)
                    costs.append(torch.zeros(len(rows), dtype=DTYPE))
                    pens.append(torch.zeros(len(rows), dtype=DTYPE))
                    oks.append(torch.ones(len(rows), dtype=torch.bool))
                    continue
                kernel = self.kernels[a]
                za, _, cost, pen, good = kernel.step(za, xa, params[rows, j, : kernel.n_params], exact)
                zs.append(za)
                costs.append(cost)
                pens.append(pen)
                oks.append(good)
            z = torch.cat(zs)[order]
            step_costs.append(torch.cat(costs)[order])
            penalty = penalty + torch.cat(pens)[order]
            ok = ok & torch.cat(oks)[order]
        return z, torch.stack(step_costs, dim=1), penalty, ok
