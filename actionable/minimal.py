"""Plans without the steps they do not need: a step whose removal leaves a passing plan goes.

The search keeps, per person, plans that use different sets of actions; a cheap plan padded with a step the
model ignores ("halve the number of dependants" where the model never reads them) is such a set, and would
be offered as an alternative. Each final plan is replayed exactly without each of its steps in turn; while
one of those passes (a removal never costs more: a verified step costs at least 0), the cheapest is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch

from actionable.program import Plan
from actionable.verify import Verifier

__all__ = ["without_unneeded"]

K = TypeVar("K")


def without_unneeded(verifier: Verifier, plans: Mapping[K, Plan]) -> dict[K, Plan]:
    """``plans`` with every step removed that the plan passes without (checked exactly, cheapest first)."""
    out = dict(plans)
    pending = [key for key, plan in plans.items() if len(plan.ids) >= 2]
    while pending:
        trials = [(key, j) for key in pending for j in range(len(out[key].ids))]
        shorter = [out[key].only([i for i in range(len(out[key].ids)) if i != j]) for key, j in trials]
        ids, params = verifier.program.stack(shorter)
        x0 = torch.stack([plan.x0 for plan in shorter])
        checked = verifier.check(ids, x0, params)
        best: dict[K, int] = {}
        for t, (key, _) in enumerate(trials):
            if bool(checked.found[t]) and (key not in best or checked.cost[t] < checked.cost[best[key]]):
                best[key] = t
        for key, t in best.items():
            n = len(shorter[t].ids)
            out[key] = shorter[t].but(
                params=checked.params[t, :n], step_costs=checked.step_costs[t, :n], x=checked.x[t]
            )
        pending = [key for key in best if len(out[key].ids) >= 2]
    return out
