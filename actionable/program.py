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

from actionable import intervals as I
from actionable.action_checks import box_of
from actionable.actions import Action, ActionSet
from actionable.errors import ConfigError
from actionable.kernel import Kernel, Moved
from actionable.results import Recourse, Step
from actionable.schema import DTYPE, Schema

__all__ = [
    "NOOP",
    "Dispatch",
    "Fixed",
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
Fixed = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # per step: the fixed cost, penalty, validity
_NO_PARAMS = torch.zeros(0, 0, dtype=DTYPE)


class Path(NamedTuple):
    """A rollout of many (sequence, person) pairs: final states, costs per step, penalties, exact validity."""

    x: torch.Tensor
    step_costs: torch.Tensor
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
        fixed: Fixed | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The numeric state ``z`` through every step: final ``z``, costs per step, penalty, exact validity.

        Only the groups whose kernel moves something run per call; the no-ops' and constant kernels'
        parts come from ``fixed`` (``fixed_steps``, made here when not given). The moving groups' results
        are written into them by pair index, so no step reorders the whole batch.
        """
        fixed = fixed if fixed is not None else self.fixed_steps(len(z), plan, per_step, exact)
        step_costs: list[torch.Tensor] = []
        penalty = torch.zeros(len(z), dtype=DTYPE)
        ok = torch.ones(len(z), dtype=torch.bool)
        for j, ((groups, _), xs_groups, (cost, pen, good)) in enumerate(
            zip(plan, per_step, fixed, strict=True)
        ):
            moving = [
                (self.kernels[a], rows, xa)
                for (a, rows), xa in zip(groups, xs_groups, strict=True)
                if a != NOOP and not self.kernels[a].constant
            ]
            if len(groups) == 1 and moving:  # one action for all pairs, in order: no gather
                kernel, _, xa = moving[0]
                z, _, cost, pen, good = kernel.step(z, xa, params[:, j, : kernel.n_params], exact)
            elif moving:
                index = torch.cat([rows for _, rows, _ in moving])
                out = [k.step(z[rows], xa, params[rows, j, : k.n_params], exact) for k, rows, xa in moving]
                z = z.index_copy(0, index, torch.cat([o.z for o in out]))
                cost = cost.index_copy(0, index, torch.cat([o.cost for o in out]))
                pen = pen.index_copy(0, index, torch.cat([o.penalty for o in out]))
                good = good.index_copy(0, index, torch.cat([o.ok for o in out]))
            step_costs.append(cost)
            penalty = penalty + pen
            ok = ok & good
        return z, torch.stack(step_costs, dim=1), penalty, ok

    def fixed_steps(
        self, batch: int, plan: Dispatch, per_step: list[list[torch.Tensor]], exact: bool
    ) -> Fixed:
        """Per step, each pair's cost, penalty and validity where its action is a no-op or a ``constant``
        kernel (the same at every optimisation step); 0, 0 and True where its kernel moves something."""
        out = []
        for (groups, _), xs_groups in zip(plan, per_step, strict=True):
            cost = torch.zeros(batch, dtype=DTYPE)
            pen = torch.zeros(batch, dtype=DTYPE)
            good = torch.ones(batch, dtype=torch.bool)
            for (a, rows), xa in zip(groups, xs_groups, strict=True):
                if a == NOOP or not self.kernels[a].constant:
                    continue
                moved = self.kernels[a].step(torch.zeros(len(rows), 0, dtype=DTYPE), xa, _NO_PARAMS, exact)
                cost, pen = cost.index_copy(0, rows, moved.cost), pen.index_copy(0, rows, moved.penalty)
                good = good.index_copy(0, rows, moved.ok)
            out.append((cost, pen, good))
        return out
