"""The alternatives' oracle: per person, the cheapest plan with every step needed, per set of actions.

``synthesize(..., k=3)`` promises up to k plans that use different sets of actions, cheapest first, each
with every step needed (without any one of its steps the plan fails). ``needed_sets`` enumerates, for a
generated problem (``problems.generate``), every ordered sequence of distinct actions up to its
``max_length`` with every parameter combination on the oracle's axes (``oracle.axes``: every value of a
small whole-number box, else ``grid`` points with the no-change value), keeps the combinations that pass
the engine's exact check (``Verifier.exact``) and fail without each one of their steps, and returns per
person the cheapest cost per set of action names. ``score_alternatives`` compares a run's records with it.
The grid is not refined, so the engine may find a cheaper plan than the oracle; it may not miss a set.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.oracle import axes
from actionable.problems import Problem
from actionable.program import NOOP, Program
from actionable.results import RecourseBatch
from actionable.schema import DTYPE
from actionable.verify import Verifier

__all__ = ["AlternativesScore", "needed_sets", "score_alternatives"]

Sets = list[dict[frozenset[str], float]]  # per person: set of action names -> cheapest needed plan's cost


def _verifier(problem: Problem) -> tuple[Program, Verifier]:
    program = Program(problem.actions)
    model = as_model(problem.model, problem.schema)
    return program, Verifier(program, model, resolve_goal(model), problem.margin)


def needed_sets(problem: Problem, grid: int = 24) -> Sets:
    """Per person of ``problem.X``: the cheapest plan cost per set of actions among the plans on the grid
    that pass and fail without any one of their steps."""
    program, verifier = _verifier(problem)
    x0 = problem.schema.encode(problem.X)
    table: Sets = [{} for _ in range(len(x0))]
    for length in range(1, problem.max_length + 1):
        for seq in itertools.permutations(range(len(program.acts)), length):
            lines = axes(program, seq, grid)
            combos = list(itertools.product(*(line.values.tolist() for line in lines)))
            params = torch.zeros(len(combos), length, program.slots, dtype=DTYPE)
            for c, values in enumerate(combos):
                for line, value in zip(lines, values, strict=True):
                    params[c, line.step, line.slot] = value
            ids = torch.as_tensor(seq).expand(len(combos), length)
            params = program.round(ids, params)
            key = frozenset(program.acts[a].name for a in seq)
            for i in range(len(x0)):
                start = x0[i].expand(len(combos), -1)
                got = verifier.exact(ids, start, params)
                ok = got.passes.clone()
                for j in range(length if length > 1 else 0):
                    without = ids.clone()
                    without[:, j] = NOOP
                    ok &= ~verifier.exact(without, start, params).passes
                if ok.any():
                    table[i][key] = min(table[i].get(key, math.inf), float(got.cost[ok].min()))
    return table


@dataclass(frozen=True)
class AlternativesScore:
    """One problem's alternatives against the oracle: people with a needed plan, people whose returned
    plans cost at most 1% more than the oracle's cheapest sets one by one (and are as many, up to k), the
    returned plans with a step not needed, and the plans returned in all."""

    people: int
    met: int
    not_needed: int
    plans: int


def score_alternatives(problem: Problem, batch: RecourseBatch, k: int, sets: Sets) -> AlternativesScore:
    """``batch`` (``synthesize(..., k=k)`` on ``problem.X``) scored against ``sets`` (``needed_sets``)."""
    program, verifier = _verifier(problem)
    x0 = problem.schema.encode(problem.X)
    people = met = not_needed = plans = 0
    for i, record in enumerate(batch):
        want = sorted(sets[i].values())[:k]
        got = [] if record.status != "found" else [record, *record.alternatives]
        for plan in got:
            plans += 1
            ids, params = program.encode_plans([plan])
            lacking = False
            for j in range(ids.shape[1] if ids.shape[1] > 1 else 0):
                without = ids.clone()
                without[:, j] = NOOP
                lacking |= bool(verifier.exact(without, x0[i : i + 1], params).passes[0])
            not_needed += lacking
        if want:
            people += 1
            costs = [plan.cost for plan in got]
            met += len(costs) >= len(want) and all(
                c <= w * 1.01 + 1e-9 for c, w in zip(costs, want, strict=False)
            )
    return AlternativesScore(people, met, not_needed, plans)
