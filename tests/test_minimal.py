"""Final plans carry no step they do not need: an alternative is never a cheaper plan padded with a step
the model ignores (a hostile reviewer's catalogue: 'halve the dependants' where the model never reads them)."""

from __future__ import annotations

import pandas as pd
import torch

from actionable import Feature, Schema, Target, as_model
from actionable.actions import ActionSet
from actionable.synthesis import synthesize

ACTIONS = """
[[action]]
name = "raise_income"
params = { amount = { bounds = [0, 40], kind = "integer" } }
effects = { income = "income + amount" }
cost = "0.01 + amount / 10"

[[action]]
name = "pay_debt"
params = { amount = { bounds = [0, 40], kind = "integer" } }
effects = { debt = "debt - amount" }
cost = "0.01 + amount / 5"

[[action]]
name = "halve"
effects = { kids = "kids / 2" }
rounding = "ceil"
cost = "1"
"""


def _problem() -> tuple[object, pd.DataFrame, ActionSet]:
    schema = Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct", direction="increase"),
            Feature("debt", "real", (0, 100), mutability="direct", direction="decrease"),
            Feature("kids", "integer", (0, 10), mutability="direct"),
        ),
        Target("approved", favourable=1, classes=(0, 1)),
    )
    net = torch.nn.Linear(3, 2).double()
    with torch.no_grad():  # approved when income - debt > 10; kids are read by nobody
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, -10.0]))
    X = pd.DataFrame({"income": [15.0, 12.0], "debt": [10.0, 8.0], "kids": [4, 3]})
    return as_model(net, schema), X, ActionSet.from_toml(ACTIONS, schema)


def test_no_plan_keeps_a_step_it_passes_without() -> None:
    model, X, actions = _problem()
    batch = synthesize(model, X, actions, max_length=2, k=3)
    for r in batch:
        assert r.status == "found"
        for plan in (r, *r.alternatives):
            assert all(s.action != "halve" for s in plan.steps), plan.steps
        sets = [frozenset(s.action for s in p.steps) for p in (r, *r.alternatives)]
        assert len(set(sets)) == len(sets)
