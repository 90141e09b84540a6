"""Whole-number effects are rounded as declared (issue 12): ``rounding = "nearest" | "floor" | "ceil"`` on a
feature or an action (the action wins), nearest with halves away from zero by default, everywhere a
whole-number feature is made whole: the exact rollout, the independent replay, inverse's settle, the
load-time interval checks. The oracle is plain Python on exact fractions."""

from __future__ import annotations

import math
from fractions import Fraction

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import Feature, Schema, Target, as_model
from actionable.actions import Action, ActionSet
from actionable.errors import SpecError
from actionable.inverse import InverseProblem
from actionable.program import Program
from actionable.rounding import ROUNDINGS, SNAP, make_whole, whole_number
from actionable.synthesis import synthesize
from actionable.testing import check_plans


def oracle(x: float, mode: str) -> float:
    """Plain Python: nearest is floor(|x| + 1/2) with x's sign; floor / ceil first snap within SNAP."""
    exact = Fraction(x)
    nearest = math.floor(abs(exact) + Fraction(1, 2)) * (1 if exact >= 0 else -1)
    if mode == "nearest":
        return float(nearest)
    if abs(exact - nearest) <= Fraction(SNAP):
        return float(nearest)
    return float(math.floor(exact) if mode == "floor" else math.ceil(exact))


numbers = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-(10**6), 10**6).map(lambda k: k / 2),  # exact halves
    st.integers(-(10**6), 10**6).map(lambda k: k / 3),  # noise near whole numbers (2.9999999999999996)
    st.integers(-(10**3), 10**3).map(lambda k: math.nextafter(k + 0.5, -math.inf)),  # just below a half
)


@settings(max_examples=400, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=20), st.sampled_from(ROUNDINGS))
def test_make_whole_is_the_exact_oracle(values: list[float], mode: str) -> None:
    got = make_whole(torch.tensor(values, dtype=torch.float64), mode).tolist()
    assert got == [oracle(v, mode) for v in values]
    assert [whole_number(v, mode) for v in values] == got


@pytest.mark.parametrize(
    ("x", "nearest", "floor", "ceil"),
    [
        (1.5, 2, 1, 2),
        (2.5, 3, 2, 3),  # torch.round gives 2 (half to even)
        (-2.5, -3, -3, -2),
        (0.49999999999999994, 0, 0, 1),  # floor(x + 0.5) would give 1
        (10 / 3 * 3, 10, 10, 10),  # 10.000000000000002: float noise, not a fraction
        (2.9999999999999996, 3, 3, 3),
        (math.inf, math.inf, math.inf, math.inf),
    ],
)
def test_named_cases(x: float, nearest: float, floor: float, ceil: float) -> None:
    assert [whole_number(x, m) for m in ("nearest", "floor", "ceil")] == [nearest, floor, ceil]


def _halving(feature_rounding: str = "nearest", action_rounding: str | None = None) -> ActionSet:
    schema = Schema(
        (
            Feature("priors", "integer", (0, 20), mutability="direct", rounding=feature_rounding),  # type: ignore[arg-type]
            Feature("age", "integer", (18, 90)),
        ),
        Target("released", favourable=1, classes=(0, 1)),
    )
    halve = Action("halve", {"priors": "priors / 2"}, "1", text="Halve the priors", rounding=action_rounding)  # type: ignore[arg-type]
    return ActionSet([halve], schema)


@pytest.mark.parametrize(
    ("feature_rounding", "action_rounding", "expected"),
    [
        ("nearest", None, [0, 1, 2, 3, 3]),  # halves away from zero; half to even gives [0, 0, 2, 2, 3]
        ("floor", None, [0, 0, 1, 2, 3]),
        ("ceil", None, [0, 1, 2, 3, 3]),
        ("ceil", "floor", [0, 0, 1, 2, 3]),  # the action's setting wins for its effects
        ("floor", "nearest", [0, 1, 2, 3, 3]),
    ],
)
def test_the_exact_rollout_rounds_as_declared(
    feature_rounding: str, action_rounding: str | None, expected: list[int]
) -> None:
    actions = _halving(feature_rounding, action_rounding)
    frame = pd.DataFrame({"priors": [0, 1, 3, 5, 6], "age": 30})
    program = Program(actions)
    x0 = actions.schema.encode(frame)
    ids = torch.zeros(len(frame), 1, dtype=torch.int64)
    path = program.rollout(
        ids, x0, torch.zeros(len(frame), 1, program.slots, dtype=torch.float64), exact=True
    )
    assert path.x[:, 0].tolist() == expected
    assert path.x[:, 0].tolist() == [oracle(p / 2, action_rounding or feature_rounding) for p in frame.priors]


@pytest.mark.parametrize("mode", ROUNDINGS)
def test_synthesis_and_the_independent_replay_agree_on_the_rounding(mode: str) -> None:
    """Released when priors <= 1. From 3 and 5: nearest 3 -> 2 -> 1 and 5 -> 3 -> 2 -> 1 (half to even would
    take 5 -> 2 -> 1), floor 3 -> 1 and 5 -> 2 -> 1, ceil 3 -> 2 -> 1 and 5 -> 3 -> 2 -> 1."""
    actions = _halving(mode)
    actions = ActionSet([Action("halve", {"priors": "priors / 2"}, "1", repeatable=True)], actions.schema)
    net = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, 1.5]))
    model = as_model(net, actions.schema)
    frame = pd.DataFrame({"priors": [3, 5], "age": [30, 40]})
    plans = synthesize(model, frame, actions, max_length=3, steps=20)
    assert check_plans(plans, frame, actions, model) == []
    assert [len(r.steps) for r in plans] == {"nearest": [2, 3], "floor": [1, 2], "ceil": [2, 3]}[mode]
    assert [r.x_after["priors"] for r in plans] == [1, 1]


def test_the_replay_uses_the_declared_rounding() -> None:
    """A record whose x_after was rounded half to even (5 / 2 -> 2) is refused by the replay."""
    actions = _halving("nearest")
    net = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, 3.5]))
    model = as_model(net, actions.schema)
    frame = pd.DataFrame({"priors": [5], "age": [30]})
    plans = synthesize(model, frame, actions, max_length=1, steps=20)
    assert plans[0].status == "found" and plans[0].x_after["priors"] == 3  # 5 / 2 -> 3, and 3 < 3.5
    assert check_plans(plans, frame, actions, model) == []
    wrong = type(plans)((type(plans[0])(**{**plans[0].__dict__, "x_after": {"priors": 2, "age": 30}}),))
    assert any("x_after differs" in p for p in check_plans(wrong, frame, actions, model))


@pytest.mark.parametrize("mode", ROUNDINGS)
def test_inverse_settles_indirect_features_as_declared(mode: str) -> None:
    schema = Schema(
        (
            Feature("hours", "real", (0, 10), mutability="direct", direction="increase", cost_up=1.0),
            Feature("grade", "integer", (0, 20), mutability="indirect", rounding=mode),  # type: ignore[arg-type]
        ),
        Target("fail", favourable=0, classes=(0, 1)),
    )
    net = torch.nn.Linear(2, 2).double()
    indirect = torch.nn.Linear(2, 1).double()
    with torch.no_grad():
        indirect.weight.copy_(torch.tensor([[1.0, 0.0]]))
        indirect.bias.zero_()
    g = as_model(indirect, schema, task="regression", outputs=["grade"])
    problem = InverseProblem(as_model(net, schema), schema, indirect=g)
    hours = [0.5, 1.5, 2.5, 2.9999999999999996, 3.2]
    x = torch.tensor([[1.0, h] for h in hours], dtype=torch.float64)  # raw predictions in the grade column
    assert problem.settle(x)[:, 1].tolist() == [oracle(h, mode) for h in hours]


def test_rounding_is_read_written_and_checked() -> None:
    text = """
[[feature]]
name = "priors"
kind = "integer"
bounds = [0, 20]
mutability = "direct"
rounding = "floor"
"""
    schema = Schema.from_toml(text)
    assert schema["priors"].rounding == "floor"
    assert 'rounding = "floor"' in schema.to_toml() and Schema.from_toml(schema.to_toml()) == schema
    assert "rounding" not in Schema.from_toml(text.replace('rounding = "floor"', "")).to_toml()
    with pytest.raises(SpecError, match=r"rounding = 'down' is not one of \['nearest', 'floor', 'ceil'\]"):
        Schema.from_toml(text.replace('"floor"', '"down"'))
    with pytest.raises(SpecError, match="applies to integer and binary features"):
        Schema.from_toml(text.replace('"integer"', '"real"'))
    catalogue = (
        '[[action]]\nname = "halve"\neffects = { priors = "priors / 2" }\ncost = "1"\nrounding = "ceil"\n'
    )
    assert ActionSet.from_toml(catalogue, schema)["halve"].rounding == "ceil"
    with pytest.raises(SpecError, match=r"key 'rounding'.*is not one of"):
        ActionSet.from_toml(catalogue.replace('"ceil"', '"up"'), schema)
    real = Schema((Feature("income", "real", (0, 9), mutability="direct"),))
    with pytest.raises(SpecError, match="writes no integer or binary feature"):
        ActionSet([Action("raise", {"income": "income / 2"}, "1", rounding="floor")], real)


def test_the_interval_checks_round_as_declared() -> None:
    """An effect that reaches 9.4 meets ``n >= 10`` only when it is rounded up: with ceil the action loads,
    with nearest the postcondition can never hold and the catalogue is refused."""
    schema = Schema((Feature("n", "integer", (0, 10), mutability="direct"),))

    def catalogue(rounding: str) -> ActionSet:
        step = Action("top_up", {"n": "min(n, 9) + 0.4"}, "1", post=["n >= 10"], rounding=rounding)  # type: ignore[arg-type]
        return ActionSet([step], schema)

    assert catalogue("ceil").names == ("top_up",)
    with pytest.raises(SpecError, match=r"postconditions .* can never hold"):
        catalogue("nearest")
