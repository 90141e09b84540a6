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
from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.synthesis import SynthesisConfig, Synthesizer, commutes, normal_form

Score = Literal["vanilla", "objective", "gradient"]
SCORES: tuple[Score, ...] = ("vanilla", "objective", "gradient")


def explore(
    model: Any, X: pd.DataFrame, actions: ActionSet, *, goal: Any = None, max_length: int = 4, **options: Any
) -> pd.DataFrame:
    """Per row that needs a plan: the optimum and, per score function, the sequences tried to reach it.

    Columns: ``row``, ``optimum`` (cost), ``length`` (of the optimal plan), ``sequences`` (ordered sequences
    of length <= max_length) and ``tried_<score>`` for each score function (NaN where no plan exists).
    """
    torch_model = as_model(model, actions.schema)
    engine = Synthesizer(
        torch_model,
        actions,
        resolve_goal(torch_model, goal),
        SynthesisConfig(max_length=max_length, **options),
    )
    engine.trace = {}
    batch = engine.run(X)
    errors = {r.row for r in batch if r.status == "error"}
    x0 = actions.schema.encode(X.iloc[[i for i in range(len(X)) if i not in errors]])
    needing = [r for r in batch if r.status in ("found", "not_found")]
    rows_in_x0 = [i for i in range(len(X)) if i not in errors]
    records = []
    for person, r in enumerate(needing):
        outcomes = engine.trace.get(person, {})
        best = min((cost for _, cost, _ in outcomes.values()), default=math.inf)
        record: dict[str, Any] = {
            "row": r.row,
            "optimum": best if math.isfinite(best) else math.nan,
            "length": len(r.steps) if r.status == "found" else 0,
        }
        start = x0[rows_in_x0.index(r.row)]
        for score in SCORES:
            tried, total = _replay(engine, outcomes, start, best, score, max_length)
            record[f"tried_{score}"] = tried
            record["sequences"] = total
        records.append(record)
    return pd.DataFrame(records)


def _replay(
    engine: Synthesizer,
    outcomes: dict[tuple[int, ...], tuple[float, float, torch.Tensor]],
    x0: torch.Tensor,
    best: float,
    score: Score,
    max_length: int,
) -> tuple[float, int]:
    """Algorithm 1 with one score function: the iteration at which a sequence as cheap as ``best`` is tried."""
    if score not in SCORES:
        raise ConfigError(f"score {score!r}: use one of {list(SCORES)}.")
    acts = engine.acts
    n = len(acts)
    swap = [[commutes(acts[i], acts[j]) for j in range(n)] for i in range(n)]
    total = sum(
        1
        for k in range(1, max_length + 1)
        for s in itertools.product(range(n), repeat=k)
        if _allowed(s, acts)
    )
    if not math.isfinite(best):
        return math.nan, total
    states: dict[tuple[int, ...], torch.Tensor] = {(): x0}
    objectives: dict[tuple[int, ...], float] = {(): 0.0}
    counter = itertools.count()
    heap: list[tuple[float, int, tuple[int, ...]]] = []

    def push(prefix: tuple[int, ...]) -> None:
        grads = engine.gradient_scores(states[prefix]) if score == "gradient" else None
        for a in range(n):
            seq = (*prefix, a)
            if not _allowed(seq, acts):
                continue
            if score == "vanilla":
                key = float(len(seq))
            elif score == "objective":
                key = objectives[prefix]
            else:
                key = -float(grads[a])  # type: ignore[index]
            heapq.heappush(heap, (key, next(counter), seq))

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


def _allowed(seq: tuple[int, ...], acts: Any) -> bool:
    return all(seq.count(a) == 1 or acts[a].repeatable for a in set(seq))
