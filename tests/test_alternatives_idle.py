"""``synthesize(k=...)`` alternatives never pad a plan with a step that changes nothing (issue 12 review on a
user's own catalogue, where every action costs a fixed effort of 0.1 as German's do): "Lose 0 kg, then see a
dietician 6 times" is the plan "see a dietician 6 times" at 0.1 more, not a plan using other actions."""

from __future__ import annotations

import itertools

import pandas as pd
import torch

from actionable import Feature, Schema, Target, as_model
from actionable.actions import ActionSet
from actionable.synthesis import synthesize

# approved when income - debt > 20 (logits 0 and income - debt - 20); age is read by nobody
ACTIONS = """
[[action]]
name = "earn"
text = "Earn {amount} more"
params = { amount = { bounds = [0, 30], kind = "integer" } }
effects = { income = "income + amount" }
cost = "0.1 + amount / 10"

[[action]]
name = "repay"
text = "Repay {amount} of debt"
params = { amount = { bounds = [0, 30], kind = "integer" } }
effects = { debt = "debt - amount" }
cost = "0.1 + amount / 5"

[[action]]
name = "wait"
text = "Wait {years} years"
params = { years = { bounds = [0, 5], kind = "integer" } }
effects = { age = "age + years" }
cost = "0.1 + years"
"""


def _problem() -> tuple[torch.nn.Module, pd.DataFrame, ActionSet]:
    schema = Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct", direction="increase"),
            Feature("debt", "real", (0, 100), mutability="direct", direction="decrease"),
            Feature("age", "integer", (18, 100), mutability="direct", direction="increase"),
        ),
        Target("approved", favourable=1, classes=(0, 1)),
    )
    net = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, -20.0]))
    X = pd.DataFrame({"income": [25.0, 22.0], "debt": [10.0, 9.0], "age": [30, 40]})
    return as_model(net, schema), X, ActionSet.from_toml(ACTIONS, schema)


def _brute(x: pd.Series) -> dict[frozenset[str], float]:
    """The cheapest plan per set of actions, every step doing something (a whole-number enumeration)."""
    best: dict[frozenset[str], float] = {}
    for e, r in itertools.product(range(31), range(31)):
        if e + r == 0 or x.income + e - (x.debt - r) - 20 < 0.1 or x.debt - r < 0:
            continue
        used = frozenset(name for name, v in (("earn", e), ("repay", r)) if v)
        cost = (0.1 + e / 10 if e else 0) + (0.1 + r / 5 if r else 0)
        best[used] = min(best.get(used, float("inf")), cost)
    return best


def test_alternatives_have_no_idle_steps_and_use_distinct_sets_of_actions() -> None:
    model, X, actions = _problem()
    batch = synthesize(model, X, actions, max_length=2, k=3)
    for (_, x), r in zip(X.iterrows(), batch, strict=True):
        plans = (r, *r.alternatives)
        for plan in plans:
            assert all(s.action != "wait" for s in plan.steps), plan.steps  # waiting changes nothing here
            assert all(any(v != 0 for v in s.params.values()) for s in plan.steps), plan.steps
        best = _brute(x)
        sets = [frozenset(s.action for s in p.steps) for p in plans]
        assert len(set(sets)) == len(sets) >= 2  # {earn} and {repay} at least, not {earn} padded twice
        assert [p.cost for p in plans] == sorted(p.cost for p in plans)
        for used, plan in zip(sets, plans, strict=True):
            assert best[used] - 1e-9 <= plan.cost <= 1.01 * best[used] + 1e-9  # plans cost what they do
