"""The exact re-check that alone may say ``found``; polishing of winning plans; dropping idle steps.

A plan passes only when, replayed exactly on rounded parameters (``Program.rollout(..., exact=True)``:
integer features whole after every action, conditions as booleans), every condition, bound and direction
holds, the model's own decision is favourable (``Goal.satisfied``: argmax, ties included) with the goal
margin at least ``margin`` (a plan that only just flips the decision is not advice: noise undoes it), and
every step's cost is finite and >= 0 (a negative cost would make a longer plan look cheaper: a step padded on to lower
the total). Plans refused for their costs alone are noted per person, for the record's error text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

import torch

from actionable.goals import Goal
from actionable.models import TorchModel
from actionable.program import NOOP, Plan, Program, Rounding, Static
from actionable.schema import DTYPE

__all__ = ["ROUNDINGS", "Best", "Checked", "Exact", "K", "Outcome", "Verifier", "proper_costs"]

K = TypeVar("K")  # what polish's plans are keyed by
ROUNDINGS: tuple[Rounding, ...] = ("round", "floor", "ceil")


class Checked(NamedTuple):
    """Per pair: whether some rounding passed, and the cheapest passing one's cost, parameters, step costs
    and final state (the start and infinity where none passed)."""

    found: torch.Tensor
    cost: torch.Tensor
    params: torch.Tensor
    step_costs: torch.Tensor
    x: torch.Tensor


class Exact(NamedTuple):
    """Per pair, the exact check of parameters as given (already rounded): whether the plan passes (valid,
    favourable, margin reached, proper costs), its cost (inf where a step's cost is improper), the search
    objective (see ``Outcome``), whether its conditions, bounds and directions hold (``ok``), the goal
    margin it reaches, the favourable probability (or predicted value) at its end, and that end state."""

    passes: torch.Tensor
    cost: torch.Tensor
    objective: torch.Tensor
    ok: torch.Tensor
    margin: torch.Tensor
    probability: torch.Tensor
    state: torch.Tensor


class Outcome(NamedTuple):
    """Per pair, for scoring extensions: the objective of the rounded plan (exact cost + 10 x the goal
    margin it still misses + 10 if a condition fails) and the state it reaches."""

    objective: torch.Tensor
    state: torch.Tensor


def proper_costs(step_costs: torch.Tensor) -> torch.Tensor:
    """Per plan (rows of ``step_costs``): every step's cost is finite and >= 0 (no-op steps cost 0)."""
    return (torch.isfinite(step_costs) & (step_costs >= 0)).all(-1)


class Best:
    """Each person's cheapest verified plan so far, and with ``keep`` > 1 the cheapest plan per set of
    actions used (for alternatives). ``cost``: the bound a new plan must beat to be kept, the ``keep``-th
    cheapest distinct plan's cost (infinity until there are that many); ``bar``: the ``rank``-th's (``rank``
    <= ``keep``), what a plan must beat to be among the answers (the plans kept past it only compete)."""

    def __init__(self, people: int, keep: int = 1, rank: int = 1) -> None:
        self.cost = torch.full((people,), math.inf, dtype=DTYPE)
        self.bar = self.cost if rank >= keep else torch.full((people,), math.inf, dtype=DTYPE)
        self.plans: dict[int, Plan] = {}
        self.keep, self.rank = keep, min(rank, keep)
        self.by_actions: dict[int, dict[frozenset[int], Plan]] = {}

    def offer(self, checked: Checked, ids: torch.Tensor, rows: torch.Tensor, x0: torch.Tensor) -> None:
        """Keep the verified pairs that beat their person's bound (``rows``: each pair's person)."""
        for j in torch.nonzero(checked.found).flatten().tolist():
            row = int(rows[j])
            if checked.cost[j] >= self.cost[row]:
                continue
            length = int((ids[j] != NOOP).sum())
            plan = Plan(
                ids=tuple(ids[j, :length].tolist()),
                params=checked.params[j, :length],
                step_costs=checked.step_costs[j, :length],
                x=checked.x[j],
                x0=x0[row],
            )
            if self.keep == 1:
                self.cost[row] = checked.cost[j]
                self.plans[row] = plan
                continue
            table = self.by_actions.setdefault(row, {})
            key = frozenset(plan.ids)
            if key not in table or plan.cost < table[key].cost:
                table[key] = plan
            ranked = self.ranked(row)
            self.plans[row] = ranked[0]
            if len(ranked) >= self.keep:  # never raised either (``cost`` is ``bar`` when keep <= rank)
                self.cost[row] = min(float(self.cost[row]), ranked[self.keep - 1].cost)
            if len(ranked) >= self.rank:  # never raised: a bar from ``limit`` may be lower
                self.bar[row] = min(float(self.bar[row]), ranked[self.rank - 1].cost)

    def limit(self, bar: torch.Tensor) -> None:
        """Lower each person's ``bar`` to ``bar`` where it is lower: plans found elsewhere (kept there) that
        this search's plans must beat to be among the answers."""
        self.bar.copy_(torch.minimum(self.bar, bar))

    def ranked(self, row: int) -> list[Plan]:
        """The person's plans, cheapest first: at most ``keep``, each using a different set of actions."""
        if self.keep == 1:
            return [self.plans[row]] if row in self.plans else []
        table = self.by_actions.get(row, {})
        return sorted(table.values(), key=lambda p: p.cost)[: self.keep]


class Verifier:
    """The exact check of plans for one model, goal and margin, with the costs it had to refuse."""

    def __init__(self, program: Program, model: TorchModel, goal: Goal, margin: float) -> None:
        self.program, self.model, self.goal, self.margin = program, model, goal, margin
        # per person checked: action name -> the negative / non-finite cost that made a plan invalid
        self.refused: dict[int, dict[str, float]] = {}

    def check(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, rows: torch.Tensor | None = None
    ) -> Checked:
        """Replay each plan exactly on rounded parameters; the cheapest rounding that passes is kept.

        ``rows`` (each pair's person): where given, plans refused only for their costs are noted.
        """
        batch = len(ids)
        found = torch.zeros(batch, dtype=torch.bool)
        cost = torch.full((batch,), math.inf, dtype=DTYPE)
        final = params.clone()
        step_costs = torch.zeros(ids.shape, dtype=DTYPE)
        x_final = x0.clone()
        with torch.no_grad():
            for mode in ROUNDINGS:
                rounded = self.program.round(ids, params, mode)
                path = self.program.rollout(ids, x0, rounded, exact=True)
                total = path.step_costs.sum(1)
                passes = path.ok & self.reaches(self.model(path.x))
                priced = proper_costs(path.step_costs)
                if rows is not None:
                    self._note_refused(ids, rows, path.step_costs, passes & ~priced)
                valid = passes & priced & (total < cost)
                found |= valid
                cost = torch.where(valid, total, cost)
                final[valid] = rounded[valid]
                step_costs[valid] = path.step_costs[valid]
                x_final[valid] = path.x[valid]
        return Checked(found, cost, final, step_costs, x_final)

    def reaches(self, out: torch.Tensor) -> torch.Tensor:
        """Whether each output is favourable (the model's own decision) and past the goal by ``margin``."""
        return self.goal.satisfied(out) & (self.goal.margin(out).to(DTYPE) >= self.margin)

    def exact(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, static: Static | None = None
    ) -> Exact:
        """The exact check of each pair's parameters as given (see ``Exact``; ``static``: the pairs'
        ``Program.static_states`` where the caller has them)."""
        with torch.no_grad():
            path = self.program.rollout(ids, x0, params, exact=True, static=static)
            out = self.model(path.x)
            total = path.step_costs.sum(1)
            priced = proper_costs(path.step_costs)
            passes = path.ok & self.reaches(out) & priced
            margin = self.goal.margin(out).to(DTYPE)
            probability = self.goal.probability(out).to(DTYPE)
        objective = total + 10 * torch.relu(self.margin - margin) + torch.where(path.ok, 0.0, 10.0)
        cost = torch.where(priced, total, math.inf)
        return Exact(passes, cost, objective, path.ok, margin, probability, path.x)

    def _note_refused(
        self, ids: torch.Tensor, rows: torch.Tensor, step_costs: torch.Tensor, refused: torch.Tensor
    ) -> None:
        """Remember, per person, the actions whose negative or non-finite cost made a passing plan invalid."""
        for j in torch.nonzero(refused).flatten().tolist():
            notes = self.refused.setdefault(int(rows[j]), {})
            for a, c in zip(ids[j].tolist(), step_costs[j].tolist(), strict=True):
                if a != NOOP and not (math.isfinite(c) and c >= 0):
                    notes.setdefault(self.program.acts[a].name, c)

    def not_found_text(self, person: int, text: str) -> str:
        """The error text of a person with no verified plan (``text``: why), naming any refused step costs."""
        notes = self.refused.get(person)
        if notes:
            named = ", ".join(f"{name!r} (cost {cost:g})" for name, cost in sorted(notes.items()))
            text += (
                f"; plans that reach the goal were refused because a step's cost is negative or not "
                f"finite: {named}; fix the cost expression of that action so it is >= 0 on every state"
            )
        return text

    def outcome(self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> Outcome:
        """Each pair's rounded plan scored for the search (see ``Outcome``)."""
        rounded = self.exact(ids, x0, self.program.round(ids, params))
        return Outcome(rounded.objective, rounded.state)

    # ------------------------------------------------------------------------------- finishing
    def polish(self, best: Mapping[K, Plan], points: int = 48) -> dict[K, Plan]:
        """Shrink each winning plan's parameters toward their no-change values, checked exactly.

        Rounding (whole months, whole units) is a step function the continuous optimisation cannot see, so
        a smaller change often reaches the same rounded state. Candidates: all parameters shrunk together,
        and (in a plan of several steps) each step's alone, by factors in (0, 1]; each is replayed exactly
        and must still pass (the goal met by ``margin``). The cheapest valid candidate wins. Plans are
        polished in groups of one length, so none is padded with steps that change nothing.
        """
        polished = dict(best)
        for length in sorted({len(plan.ids) for plan in best.values()} - {0}):
            keys = [key for key, plan in best.items() if len(plan.ids) == length]
            polished.update(self._polish(keys, [best[key] for key in keys], points))
        return polished

    def _polish(self, keys: list[K], plans: list[Plan], points: int) -> dict[K, Plan]:
        """``polish`` for plans of one length."""
        ids, params = self.program.stack(plans)
        width, slots = ids.shape[1], params.shape[2]
        _, _, init = self.program.boxes(ids)
        factors = torch.linspace(0, 1, points + 1, dtype=DTYPE)[1:]
        masks = [torch.ones(width, dtype=DTYPE)]
        masks += [torch.eye(width, dtype=DTYPE)[j] for j in range(width)] if width > 1 else []
        candidates = []
        for mask in masks:  # shrink = init + f (p - init) on the masked steps, unchanged elsewhere
            f = 1 - mask[None, :, None] * (1 - factors[:, None, None])
            candidates.append(init[:, None] + f[None] * (params - init)[:, None])
        cand = torch.cat(candidates, dim=1)  # (plans, candidates, steps, slots)
        per = cand.shape[1]
        flat_ids = ids.repeat_interleave(per, 0)
        flat = self.program.round(flat_ids, cand.reshape(-1, width, slots))
        x0 = torch.stack([p.x0 for p in plans])
        with torch.no_grad():
            path = self.program.rollout(flat_ids, x0.repeat_interleave(per, 0), flat, exact=True)
            out = self.model(path.x)
        total = path.step_costs.sum(1).reshape(len(plans), per)
        valid = (
            path.ok.reshape(len(plans), per)
            & self.reaches(out).reshape(len(plans), per)
            & proper_costs(path.step_costs).reshape(len(plans), per)
        )
        total = torch.where(valid, total, torch.inf)
        choice = total.argmin(1)
        polished: dict[K, Plan] = {}
        for i, key in enumerate(keys):
            k = int(choice[i])
            if bool(valid[i, k]) and float(total[i, k]) < float(plans[i].step_costs.sum()) - 1e-12:
                n, j = len(plans[i].ids), i * per + k
                polished[key] = plans[i].but(
                    params=flat[j, :n], step_costs=path.step_costs[j, :n], x=path.x[j]
                )
        return polished

    def without_idle_steps(self, plan: Plan) -> Plan:
        """Drop steps that change nothing (e.g. 'study 0 more years', even where the action's effort
        costs something): the later steps see the same states, so the plan still passes, shorter and no
        dearer; an alternative padded with such a step is then the plan it pads."""
        return self.lean({0: plan})[0]

    def lean(self, plans: Mapping[K, Plan]) -> dict[K, Plan]:
        """``without_idle_steps`` for many plans at once: one batched replay per step."""
        keys = [key for key, plan in plans.items() if len(plan.ids)]
        out = dict(plans)
        if not keys:
            return out
        ids, params = self.program.stack([plans[key] for key in keys])
        x = torch.stack([plans[key].x0 for key in keys])
        moves = torch.zeros(ids.shape, dtype=torch.bool)
        with torch.no_grad():
            for j in range(ids.shape[1]):
                after = self.program.rollout(ids[:, j : j + 1], x, params[:, j : j + 1], exact=True).x
                moves[:, j] = ~(after == x).all(1)
                x = after
        for row, key in enumerate(keys):
            plan = plans[key]
            keep = [j for j in range(len(plan.ids)) if bool(moves[row, j])]
            if len(keep) < len(plan.ids):
                out[key] = plan.only(keep)  # the same states: the end state stands
        return out
