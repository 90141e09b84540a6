"""Inverse classification's sentences show raw values as a person writes them, never 2.915e+04."""

from __future__ import annotations

import math

import pandas as pd
import torch
from hypothesis import given
from hypothesis import strategies as st

from actionable import Feature, Schema, Target, as_model, invert
from actionable.inverse import readable


@given(st.floats(min_value=1e-6, max_value=1e12) | st.floats(min_value=-1e12, max_value=-1e-6))
def test_readable_keeps_four_significant_digits_without_exponent(value: float) -> None:
    text = readable(value)
    assert "e" not in text and "E" not in text
    assert math.isclose(float(text), value, rel_tol=5e-4)


def test_invert_sentences_of_large_raw_values() -> None:
    schema = Schema(
        (
            Feature("income", "real", (0, 500000), mutability="direct", direction="increase", cost_up=1e-4),
            Feature("age", "integer", (18, 99)),
        ),
        Target("approved", favourable="yes", classes=("no", "yes")),
    )
    net = torch.nn.Linear(2, 1).double()  # logit of "yes" = (income - 50000) / 5000
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1 / 5000, 0.0]]))
        net.bias.fill_(-10.0)
    result = invert(
        as_model(net, schema), pd.DataFrame({"income": [29150.0], "age": [40]}), schema, budget=2.5
    )
    text = result[0].steps[0].text
    assert text == "Increase income from 29150 to 54150", text
