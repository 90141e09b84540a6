"""One person given as a Series or a mapping is a batch of one for every verb; an array of raw (text)
values is refused with a DataError naming the fix, never a raw numpy / torch error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ActionSet, DataError, Feature, Schema, Target, as_model, attribute, invert, synthesize

SCHEMA = Schema(
    (
        Feature("income", "real", (0, 100), mutability="direct", direction="increase", cost_up=0.1),
        Feature("job", "category", levels=("clerk", "engineer")),
    ),
    Target("approved", favourable="yes", classes=("no", "yes")),
)
ACTIONS = """
[[action]]
name = "earn"
text = "Earn {amount:.0f} more"
params = { amount = { bounds = [0, 80] } }
effects = { income = "income + amount" }
cost = "amount / 10"
"""


def model() -> torch.nn.Module:
    net = torch.nn.Linear(3, 1).double()  # logit of "yes" = (income - 50) / 10
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.1, 0.0, 0.0]]))
        net.bias.fill_(-5.0)
    return as_model(net, SCHEMA)


PEOPLE = pd.DataFrame({"income": [20.0, 30.0], "job": ["clerk", "engineer"]}, index=[7, 8])


@pytest.mark.parametrize("one", [PEOPLE.loc[8], PEOPLE.loc[8].to_dict()])
def test_synthesize_and_invert_take_one_row(one: object) -> None:
    frame = PEOPLE.loc[[8]]
    got = synthesize(model(), one, ActionSet.from_toml(ACTIONS, SCHEMA), max_length=1)  # type: ignore[arg-type]
    want = synthesize(model(), frame, ActionSet.from_toml(ACTIONS, SCHEMA), max_length=1)
    assert len(got) == 1 and got[0].status == want[0].status == "found"
    assert got[0].x_after == want[0].x_after
    inv = invert(model(), one, SCHEMA, budget=3)  # type: ignore[arg-type]
    assert len(inv) == 1 and inv[0].x_after == invert(model(), frame, SCHEMA, budget=3)[0].x_after


def test_an_array_of_raw_values_names_the_fix() -> None:
    with pytest.raises(DataError, match="Pass raw rows as a pandas DataFrame"):
        attribute(model(), PEOPLE.to_numpy(), "integrated_gradients")
    with pytest.raises(DataError, match="NaN or infinite"):
        model().predict(np.array([[np.nan, 1.0, 0.0]]))


def test_a_classifier_that_returns_probabilities_is_refused() -> None:
    """A final Sigmoid / Softmax would be read as logits: every prediction silently wrong."""
    from actionable import ModelError

    for head in (torch.nn.Sigmoid(), torch.nn.Softmax(dim=-1)):
        k = 1 if isinstance(head, torch.nn.Sigmoid) else 2
        net = torch.nn.Sequential(torch.nn.Linear(3, k), head).double()
        with pytest.raises(ModelError, match=f"ends in {type(head).__name__}.*needs logits"):
            as_model(net, SCHEMA)
        assert as_model(net[:-1], SCHEMA).n_outputs == 2


def test_a_constant_column_has_scale_one() -> None:
    """A few rows with the same income: per-sd scales stay usable (1.0, one raw unit), never 0."""
    from actionable.attribution import standard_deviations

    sd = standard_deviations(SCHEMA, pd.DataFrame({"income": [20.0, 20.0], "job": ["clerk", "engineer"]}))
    assert sd["income"] == 1.0
    attribute(model(), PEOPLE, "gradient", scale=sd)  # accepted
