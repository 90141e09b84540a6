"""Action catalogues: TOML loading, static checks before any solve, exact and relaxed conditions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import Feature, Schema, SpecError, Target, datasets
from actionable.actions import BARRIER_WEIGHT, ActionSet, Condition, Param, relax
from actionable.expr import Categorical, parse

SCHEMA = Schema(
    (
        Feature("age", "integer", (18, 100), mutability="direct", direction="increase"),
        Feature("savings", "real", (0, 100000), mutability="direct"),
        Feature("duration", "integer", (1, 120), mutability="direct"),
        Feature("debtors", "category", levels=("none", "guarantor"), mutability="direct"),
        Feature("sex", "category", levels=("f", "m")),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)
GOOD = """
[[action]]
name = "save"
text = "Save {amount:.0f} DM more"
params = { amount = { bounds = [0, 20000] } }
effects = { savings = "savings + amount" }
cost = "amount / 1000"
pre = ["age >= 18"]
post = ["savings <= 100000"]

[[action]]
name = "shorten"
params = { months = { bounds = [1, 48], kind = "integer" } }
effects = { duration = "duration - months" }
cost = "(months / duration) ** 2"
pre = ["duration - months >= 6"]

[[action]]
name = "guarantor"
text = "Find a guarantor"
effects = { debtors = "'guarantor'" }
cost = "5"
pre = ["debtors != 'guarantor'"]
"""


def test_loads_and_describes() -> None:
    actions = ActionSet.from_toml(GOOD, SCHEMA)
    assert actions.names == ("save", "shorten", "guarantor")
    assert actions["save"].describe({"amount": 1200.4}) == "Save 1200 DM more"
    assert actions["shorten"].describe({"months": 6}) == "shorten(months = 6)"
    assert actions["shorten"].footprint == {"duration"} and actions["shorten"].reads == {"duration"}
    assert actions["save"].reads == {"savings", "age"}


def test_apply_cost_and_conditions_on_a_batch() -> None:
    actions = ActionSet.from_toml(GOOD, SCHEMA)
    x = SCHEMA.encode(
        __import__("pandas").DataFrame(
            [
                {"age": 30, "savings": 100.0, "duration": 24, "debtors": "none", "sex": "f"},
                {"age": 40, "savings": 0.0, "duration": 8, "debtors": "guarantor", "sex": "m"},
            ]
        )
    )
    shorten = actions["shorten"]
    env = shorten.env(SCHEMA, x, torch.tensor([[6.0], [6.0]], dtype=torch.float64))
    after = shorten.apply(SCHEMA, x, env)
    assert after[:, SCHEMA.slice("duration").start].tolist() == [18.0, 2.0]
    assert shorten.cost_of(env, torch.Size([2])).tolist() == [0.0625, 0.5625]
    pre = shorten.conditions("pre")[0]
    assert relax(pre, env, 1.0)[1].tolist() == [True, False]
    guarantor = actions["guarantor"]
    env = guarantor.env(SCHEMA, x, torch.zeros(2, 0, dtype=torch.float64))
    assert guarantor.apply(SCHEMA, x, env)[:, SCHEMA.slice("debtors")].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert relax(guarantor.conditions("pre")[0], env, 1.0)[1].tolist() == [True, False]


def replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            replace('savings = "savings + amount"', "sex = \"'m'\""),
            "'sex' is fixed in the schema and cannot be changed",
        ),
        (replace('savings = "savings + amount"', 'wealth = "savings + amount"'), "unknown feature 'wealth'"),
        (replace("\"'guarantor'\"", "\"'guarantr'\""), "'guarantr'; levels are \\['none', 'guarantor'\\]"),
        (replace("debtors != 'guarantor'", "debtors != 'friend'"), "'friend' is not a level of 'debtors'"),
        (
            replace('cost = "amount / 1000"', 'cost = "amount / 1000 - 5"'),
            "can be negative on the parameter box",
        ),
        (replace('cost = "amount / 1000"', 'cost = "amount.real"'), "attribute access is not allowed"),
        (replace('cost = "amount / 1000"', "cost = \"__import__('os')\""), "calling '__import__'"),
        (
            replace('cost = "amount / 1000"', 'cost = "amont / 1000"'),
            r"unknown name 'amont'\. Did you mean 'amount'",
        ),
        (replace("bounds = [0, 20000]", "bounds = [20000, 0]"), "must be finite with lower <= upper"),
        (replace('name = "shorten"', 'name = "save"'), "declared more than once"),
        (replace('text = "Find a guarantor"', 'colour = "red"'), "unknown key 'colour'"),
        (replace('pre = ["age >= 18"]', 'pre = ["age + 18"]'), "is not a condition"),
        ("", "the catalogue is empty"),
        ('[[action]]\nname = "x"\neffects = {}\ncost = "1"\n', "no effects"),
        (replace('savings = "savings + amount"', 'age = "age - amount"'), "only increase"),
        (
            replace("\"'guarantor'\"", "\"'guarantr'\""),
            "action 'guarantor', effect on 'debtors': unknown level 'guarantr'",
        ),
        (
            replace("{amount:.0f}", "{amout:.0f}"),
            r"action 'save', text: the placeholder \{amout\} is the unknown name 'amout'",
        ),
        (replace("{amount:.0f}", "{amount:d}"), r"action 'save', text: .* \(ValueError"),
        (replace("bounds = [1, 48]", "bounds = [1.5, 1.7]"), r"bounds \[1.5, 1.7\] hold no whole number"),
    ],
)
def test_bad_catalogues_raise_spec_error_naming_the_action(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        ActionSet.from_toml(text, SCHEMA)


def test_parameter_box_outside_the_feature_is_refused() -> None:
    text = replace('savings = "savings + amount"', 'savings = "amount"').replace("[0, 20000]", "[-5, 20000]")
    with pytest.raises(SpecError, match=r"parameter 'amount' sets 'savings' directly.*narrow the parameter"):
        ActionSet.from_toml(text, SCHEMA)


def test_effect_on_an_indirect_feature_is_refused() -> None:
    schema = SCHEMA.with_features(savings={"mutability": "indirect"})
    with pytest.raises(SpecError, match="'savings' is indirect"):
        ActionSet.from_toml(GOOD, schema)


def test_param_rounding() -> None:
    months = Param("months", (1, 48), kind="integer")
    assert months.round(torch.tensor([0.2, 5.5, 47.9, 60.0])).tolist() == [1.0, 6.0, 48.0, 48.0]
    cents = Param("amount", (0, 10), resolution=0.25)
    assert cents.round(torch.tensor([1.1, 9.99])).tolist() == [1.0, 10.0]


@pytest.mark.parametrize("name", ["german", "adult"])
def test_bundled_catalogues_load(name: str) -> None:
    data = datasets.load(name)
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    assert len(actions) >= 6
    for action in actions.actions:
        assert not action.footprint & {f.name for f in data.schema.features if f.mutability == "fixed"}


def test_adjust_loan_period_keeps_the_instalment() -> None:
    data = datasets.load("german")
    action = ActionSet.from_toml(data.path / "actions.toml", data.schema)["adjust_loan_period"]
    x = data.schema.encode(data.frame.head(1))
    amount, duration = float(data.frame.credit_amount[0]), float(data.frame.duration[0])
    env = action.env(data.schema, x, torch.tensor([[500.0]], dtype=torch.float64))
    after = data.schema.split(action.apply(data.schema, x, env))
    assert float(after["credit_amount"][0]) == amount + 500
    assert float(after["duration"][0]) == pytest.approx(
        duration * (amount + 500) / amount
    )  # the ratio is kept


# ------------------------------------------------------------------------------- relaxed conditions
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@given(finite, finite, st.sampled_from([">=", "<=", ">", "<"]), st.floats(1e-3, 1e3))
@settings(max_examples=300, deadline=None)
def test_barrier_is_small_exactly_where_the_condition_holds(
    a: float, b: float, op: str, scale: float
) -> None:
    condition = Condition(parse(f"a {op} b"))
    ta = torch.tensor([a], dtype=torch.float64, requires_grad=True)
    penalty, truth = relax(condition, {"a": ta, "b": torch.tensor([b], dtype=torch.float64)}, scale)
    assert bool(truth[0]) == {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]
    # below the boundary height only where the condition holds, at or above it where it fails
    assert bool(penalty[0] <= BARRIER_WEIGHT) if bool(truth[0]) else bool(penalty[0] >= BARRIER_WEIGHT)
    assert penalty[0] >= 0
    (grad,) = torch.autograd.grad(penalty.sum(), ta)
    assert math.isfinite(float(grad[0]))


def test_barrier_of_and_or_not_and_categories() -> None:
    env = {
        "a": torch.tensor([5.0, -5.0], dtype=torch.float64),
        "c": Categorical(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), ("x", "y")),
    }
    pen, truth = relax(Condition(parse("a > 0 and c == 'x'")), env, 1.0)
    assert truth.tolist() == [True, False] and pen[1] > pen[0]
    pen, truth = relax(Condition(parse("not (a > 0) or c == 'y'")), env, 1.0)
    assert truth.tolist() == [False, True]


def test_an_action_is_never_changed_by_its_catalogue() -> None:
    from dataclasses import fields

    from actionable.actions import Action, BoundAction

    given = Action(
        "save", {"savings": "savings + amount"}, "amount / 1000", params=[Param("amount", (0, 10))]
    )
    before = {f.name: getattr(given, f.name) for f in fields(given)}
    catalogue = ActionSet([given], SCHEMA)
    assert {f.name: getattr(given, f.name) for f in fields(given)} == before
    assert not isinstance(given, BoundAction)
    with pytest.raises(SpecError, match="not checked against a schema"):
        given.conditions("pre")
    with pytest.raises(SpecError, match="not checked against a schema"):
        _ = given.expressions
    bound = catalogue["save"]
    assert isinstance(bound, BoundAction) and bound.parsed.cost.text == "amount / 1000"
    assert bound.expressions is bound.parsed and set(bound.expressions.effects) == {"savings"}
    assert all(getattr(bound, f.name) == getattr(given, f.name) for f in fields(Action))


def test_a_condition_owns_its_exact_and_relaxed_meaning() -> None:
    condition = Condition(parse("x >= 1", names={"x"}))
    env = {"x": torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)}
    assert condition.holds(env).tolist() == [False, True, True]
    penalty, truth = relax(condition, env, 1.0)
    assert torch.equal(condition.penalty(env, 1.0), penalty) and truth.tolist() == [False, True, True]
