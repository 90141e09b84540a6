"""Recourse on a regression model reads as a predicted value, never as a probability."""

from __future__ import annotations

import pandas as pd
import torch

from actionable import ActionSet, Feature, Schema, Target, as_model, synthesize

SCHEMA = Schema(
    (Feature("savings", "real", (0, 100), mutability="direct"), Feature("age", "integer", (18, 99))),
    Target("limit", above=30.0),
)
ACTIONS = """
[[action]]
name = "save"
text = "Save {amount:.0f} more"
params = { amount = { bounds = [0, 50] } }
effects = { savings = "savings + amount" }
cost = "amount / 10"
"""


def model() -> torch.nn.Module:
    """limit = savings, exactly."""
    net = torch.nn.Linear(2, 1).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0]]))
        net.bias.zero_()
    return as_model(net, SCHEMA)


def test_a_regression_plan_names_the_predicted_value() -> None:
    people = pd.DataFrame({"savings": [10.0, 40.0], "age": [30, 40]})
    plans = synthesize(model(), people, ActionSet.from_toml(ACTIONS, SCHEMA), max_length=1)
    found, done = plans[0], plans[1]
    assert found.status == "found" and done.status == "already_favourable"
    assert 30.0 <= found.p_after <= 31.0 and found.p_before == 10.0
    text = found.describe()
    assert "probability" not in text and "predicted limit 10 -> 30." in text, text
    assert "probability" not in done.describe() and "predicted limit 40" in done.describe()
    assert found.provenance["outcome"] == "predicted limit"


def test_a_model_fits_a_schema_with_the_same_encoding() -> None:
    """Bounds edited (savings at most 35): synthesis runs on the edited schema and obeys it."""
    edited = SCHEMA.with_features(savings={"bounds": (0, 35)})
    assert edited.hash == SCHEMA.hash and edited != SCHEMA
    people = pd.DataFrame({"savings": [10.0], "age": [30]})
    plans = synthesize(model(), people, ActionSet.from_toml(ACTIONS, edited), max_length=1)
    assert plans[0].status == "found" and plans[0].x_after["savings"] <= 35
    rebound = as_model(model(), edited)
    assert rebound.schema == edited and float(rebound.predict(people)[0]) == 10.0
