"""Bad input of issue 12: a cost that can be infinite or NaN anywhere on its box is a ``SpecError`` at load
naming the action and the expression (interval bisection finds poles inside the box that the corners miss),
and a catalogue whose actions cannot reach a favourable state comes back per row, never as an exception."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import Feature, Schema, Target, as_model
from actionable import expr as E
from actionable import intervals as I
from actionable.actions import Action, ActionSet, Param
from actionable.errors import SpecError
from actionable.synthesis import synthesize

SCHEMA = Schema(
    (
        Feature("income", "real", (0, 100), mutability="direct"),
        Feature("debt", "real", (0, 100), mutability="direct"),
        Feature("kids", "integer", (0, 5), mutability="direct"),
        Feature("age", "integer", (18, 90)),
    ),
    Target("approved", favourable=1, classes=(0, 1)),
)


def _catalogue(
    cost: str, bounds: tuple[float, float] = (0, 2), kind: str = "real", pre: tuple[str, ...] = ()
):  # type: ignore[no-untyped-def]
    action = Action(
        "pay",
        {"debt": "max(debt - p, 0)"},
        cost,
        params=(Param("p", bounds, kind=kind),),
        pre=pre,  # type: ignore[arg-type]
    )
    return ActionSet([action], SCHEMA)


@pytest.mark.parametrize(
    ("cost", "bounds"),
    [
        ("p + 10 ** 10 ** 10", (0, 2)),  # infinite everywhere
        ("1 / (p - 1)", (0, 3)),  # a pole inside the box (and negative below it)
        ("abs(1 / (p - 1))", (0, 2)),  # a pole no corner of the box meets
        ("abs(1 / (p - 0.7))", (0, 2)),
        ("(p - 0.7) ** -2", (0, 2)),
        ("log(p)", (0, 2)),  # -inf at 0
        ("abs(log(p - 0.5))", (0, 2)),  # NaN below 0.5
        ("p + abs(1 / (income - 30))", (0, 2)),  # a pole in a feature's bounds
        ("p + 1 / (kids - 2) ** 2", (0, 2)),  # at a whole number of an integer feature
        ("exp(1000 * p)", (0, 2)),  # overflows past p = 0.71
    ],
)
def test_a_cost_that_can_be_infinite_or_nan_is_refused_at_load(
    cost: str, bounds: tuple[float, float]
) -> None:
    with pytest.raises(SpecError) as caught:
        _catalogue(cost, bounds)
    message = str(caught.value)
    assert "action 'pay'" in message and repr(cost) in message
    assert "infinite" in message or "NaN" in message or "negative" in message


@pytest.mark.parametrize(
    ("cost", "bounds", "kind", "pre"),
    [
        ("1 / (p - p + 1)", (0, 2), "real", ()),  # the interval reaches 1 / 0, the function never does
        ("p / (income + 1)", (0, 2), "real", ()),
        ("abs(1 / (p - 0.7))", (1, 2), "real", ()),  # the pole lies outside the box
        ("abs(1 / (p - 0.7))", (0, 2), "real", ("p >= 1",)),  # outside where the action applies
        ("abs(1 / (p - 0.5))", (0, 2), "integer", ()),  # whole-number parameter: never 0.5
        ("p + 1 / (kids - 2.5) ** 2", (0, 2), "real", ()),  # kids is whole: never 2.5
        ("p + 1 / (income - 30)", (0, 2), "real", ("income >= 40",)),
    ],
)
def test_a_finite_cost_is_not_refused(
    cost: str, bounds: tuple[float, float], kind: str, pre: tuple[str, ...]
) -> None:
    assert _catalogue(cost, bounds, kind, pre).names == ("pay",)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1.0, 3.0), st.sampled_from(["abs(1 / (p - c))", "(p - c) ** -2", "abs(log(abs(p - c)))"]))
def test_bisection_finds_a_pole_exactly_where_it_is(c: float, template: str) -> None:
    """On the box p in [0, 2] the expression is infinite only at p = c: a point within 1e-6 of c is found
    when c is in the box, and none when it is not (proven finite)."""
    text = template.replace("c", repr(c))
    node = E.parse(text, names={"p"}).node
    point = I.nonfinite_point(node, {"p": I.Span(0.0, 2.0)}, {"p"})
    if 0 <= c <= 2:
        assert point is not None and abs(point["p"] - c) < 1e-6
    elif min(abs(c), abs(c - 2)) > 1e-6:
        assert point is None


def _linear(weights: list[float], bias: float):  # type: ignore[no-untyped-def]
    net = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0] * 4, weights]))
        net.bias.copy_(torch.tensor([0.0, bias]))
    return as_model(net, SCHEMA)


USELESS = [
    Action(
        "earn", {"income": "income + p"}, "p / 10", params=(Param("p", (0, 50)),)
    ),  # the model ignores income
    Action("pay", {"debt": "max(debt - p, 0)"}, "p / 10", params=(Param("p", (0, 50)),), pre=["age >= 80"]),
    Action("more_kids", {"kids": "kids + 1"}, "1", post=["kids <= 5"]),  # moves the wrong way
    Action("less", {"debt": "debt - 1"}, "1", post=["debt >= 99"]),  # never from these rows
]


@pytest.mark.parametrize("k", range(len(USELESS)))
def test_a_catalogue_that_cannot_reach_a_favourable_state_comes_back_per_row(k: int) -> None:
    """Approved when debt + kids < 10; nobody here can get there with this catalogue: not_found per row."""
    model = _linear([0.0, -1.0, -1.0, 0.0], 10.0)
    people = pd.DataFrame(
        {"income": [10.0, 50.0, 90.0], "debt": [60.0, 80.0, 40.0], "kids": [1, 2, 3], "age": 30}
    )
    actions = ActionSet([USELESS[k], *USELESS[k + 1 :], *USELESS[:k]][:2], SCHEMA)
    plans = synthesize(model, people, actions, max_length=2, steps=30)
    assert [r.status for r in plans] == ["not_found"] * 3
    assert all(r.error and math.isnan(r.cost) and not r.steps for r in plans)
