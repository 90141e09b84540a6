"""The paper's score functions, replayed: how many sequences each would try before reaching the optimum.

Ramakrishnan et al.'s Algorithm 1 repeatedly extends an explored sequence by one action, choosing the pair
with the smallest score: ``vanilla`` (breadth-first: the length), ``objective`` (the optimised objective of
the sequence being extended) or ``gradient`` (minus the mean |d loss / d x| over the features the new
action writes, at the state the sequence reaches). Because every (sequence, person) optimisation here is
independent of the order in which it runs, the exhaustive batched search records every outcome once and
each score function's order is then replayed exactly, counting ordered sequences as the paper does.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any, Literal

import pandas as pd
import torch

from actionable.actions import ActionSet
from actionable.errors import ConfigError
from actionable.goals import Goal, resolve_goal
from actionable.models import TorchModel, as_model
from actionable.program import Program
from actionable.search import SCORES as SCORE_FUNCTIONS
from actionable.search import Tried, allowed, gradient_scores, normal_form, swaps
from actionable.synthesis import synthesize

__all__ = ["SCORES", "Outcomes", "Score", "explore"]

Score = Literal["vanilla", "objective", "gradient"]
SCORES: tuple[Score, ...] = ("vanilla", "objective", "gradient")
Outcomes = dict[tuple[int, ...], tuple[float, float, torch.Tensor]]


def explore(
    model: Any, X: pd.DataFrame, actions: ActionSet, *, goal: Any = None, max_length: int = 4, **options: Any
) -> pd.DataFrame:
    """Per row that needs a plan: the optimum and, per score function, the sequences tried to reach it.

    Columns: ``row`` (the input row's index label), ``optimum`` (cost), ``length`` (of the optimal plan),
    ``sequences`` (ordered sequences of length <= max_length) and ``tried_<score>`` for each score function (NaN where no plan exists).
    ``options``: further keywords of ``synthesize`` (its exhaustive search records every outcome).
    """
    torch_model = as_model(model, actions.schema)
    resolved = resolve_goal(torch_model, goal)
    seen: dict[int, Outcomes] = {}

    def record(tried: Tried) -> None:
        seen.setdefault(tried.row, {})[tried.sequence] = (tried.objective, tried.cost, tried.state)

    batch = synthesize(torch_model, X, actions, goal=goal, max_length=max_length, observer=record, **options)
    program = Program(actions)
    errors = {i for i, r in enumerate(batch) if r.status == "error"}
    rows_in_x0 = [i for i in range(len(X)) if i not in errors]
    x0 = actions.schema.encode(X.iloc[rows_in_x0])
    records = []
    for position, r in enumerate(batch):  # the observer names rows by position, a record by its label
        if r.status not in ("found", "not_found"):
            continue
        outcomes = seen.get(position, {})
        best = min((cost for _, cost, _ in outcomes.values()), default=math.inf)
        entry: dict[str, Any] = {
            "row": r.row,
            "optimum": best if math.isfinite(best) else math.nan,
            "length": len(r.steps) if r.status == "found" else 0,
        }
        start = x0[rows_in_x0.index(position)]
        for score in SCORES:
            tried, total = _replay(program, torch_model, resolved, outcomes, start, best, score, max_length)
            entry[f"tried_{score}"] = tried
            entry["sequences"] = total
        records.append(entry)
    return pd.DataFrame(records)


def _replay(
    program: Program,
    model: TorchModel,
    goal: Goal,
    outcomes: Outcomes,
    x0: torch.Tensor,
    best: float,
    score: Score,
    max_length: int,
) -> tuple[float, int]:
    """Algorithm 1 with one score function: the iteration at which a sequence as cheap as ``best`` is tried."""
    if score not in SCORES:
        raise ConfigError(f"score {score!r}: use one of {list(SCORES)}.")
    function = SCORE_FUNCTIONS[score]
    acts = program.acts
    n = len(acts)
    swap = swaps(acts)
    total = sum(
        1 for k in range(1, max_length + 1) for s in itertools.product(range(n), repeat=k) if allowed(s, acts)
    )
    if not math.isfinite(best):
        return math.nan, total
    states: dict[tuple[int, ...], torch.Tensor] = {(): x0}
    objectives: dict[tuple[int, ...], float] = {(): 0.0}
    counter = itertools.count()
    heap: list[tuple[float, int, tuple[int, ...]]] = []

    def push(prefix: tuple[int, ...]) -> None:
        grads = gradient_scores(program, model, goal, states[prefix]) if function.gradient else None
        for a in range(n):
            seq = (*prefix, a)
            if allowed(seq, acts):
                heapq.heappush(heap, (function.key(seq, objectives[prefix], grads), next(counter), seq))

    push(())
    tried = 0
    while heap:
        _, _, seq = heapq.heappop(heap)
        tried += 1
        objective, cost, state = outcomes[normal_form(seq, swap)]
        if cost <= best * (1 + 1e-9) + 1e-12:
            return float(tried), total
        states[seq], objectives[seq] = state, objective
        if len(seq) < max_length:
            push(seq)
    return math.nan, total
