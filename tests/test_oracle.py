"""The exhaustive oracle: closed-form optima, brute force over every order, and the independent replay.

Hand-built problems on a linear model whose logit of the favourable class is known in closed form: one
whole-number parameter, one real parameter (any grid: the root refinement finds the boundary), two steps
needed because of a precondition, a person no plan can help, and the margin against the boundary. On
generated problems: a brute force over every order of distinct actions (not only the canonical ones) and
every whole-number value, and ``testing.check_plans`` replaying the oracle's plans through the public
``Action`` API.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from actionable import ConfigError, Feature, Schema, Target, as_model
from actionable.actions import ActionSet
from actionable.oracle import count_candidates, solve_exhaustively, to_batch
from actionable.program import Program
from actionable.testing import check_plans
from actionable.verify import proper_costs
from tests.generated import problem

SCHEMA = Schema(
    (
        Feature("a", "real", (0, 100), mutability="direct"),
        Feature("n", "integer", (0, 20), mutability="direct", direction="increase"),
        Feature("g", "category", levels=("x", "y"), mutability="direct"),
        Feature("f", "real", (0, 10)),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)


def linear(a: float = 0.0, n: float = 0.0, f: float = 0.0, bias: float = -5.0) -> torch.nn.Module:
    """logit(good) - logit(bad) = a * a + n * n + f * f + bias (one output: the logit of 'good')."""
    layer = torch.nn.Linear(SCHEMA.width, 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[a, n, 0.0, 0.0, f]], dtype=torch.float64))
        layer.bias.fill_(bias)
    return layer


def people(*rows: dict[str, object]) -> pd.DataFrame:
    base = {"a": 0.0, "n": 0, "g": "x", "f": 0.0}
    return pd.DataFrame([base | r for r in rows])


def actions(text: str) -> ActionSet:
    return ActionSet.from_toml(text, SCHEMA)


RAISE_N = """
[[action]]
name = "raise_n"
params = { k = { bounds = [0, 15], kind = "integer" } }
effects = { n = "n + k" }
cost = "2 * k + 1"
"""


def test_one_whole_number_parameter() -> None:
    # 0.5 (3 + k) - 3.95 >= 0.1 first at k = 6 (cost 13, margin 0.55); >= 0 at k = 5 (cost 11)
    model, X = linear(n=0.5, bias=-3.95), people({"n": 3})
    (answer,) = solve_exhaustively(model, X, actions(RAISE_N), max_length=1)
    assert answer.helpable and answer.actions == ("raise_n",) and answer.params == ({"k": 6},)
    assert answer.cost == 13 and answer.boundary_cost == 11 and answer.helpable_at_boundary
    assert answer.margin == pytest.approx(0.55) and answer.x_after["n"] == 9
    assert answer.candidates == count_candidates(actions(RAISE_N), 1) == 1 + 16
    # a tie is the earlier class ('bad'), as the model's argmax decides: margin 0 at k = 5 is not enough
    (tie,) = solve_exhaustively(linear(n=0.5, bias=-4), X, actions(RAISE_N), max_length=1, margin=0)
    assert tie.params == ({"k": 6},) and tie.boundary_cost == 13


def raise_a(top: float = 90) -> ActionSet:
    return actions(
        f"""
[[action]]
name = "raise_a"
params = {{ d = {{ bounds = [0, {top}] }} }}
effects = {{ a = "a + d" }}
cost = "d ** 2 / 100"
"""
    )


@settings(max_examples=25, deadline=None)
@given(
    a0=st.floats(0, 40),
    weight=st.floats(0.05, 0.5),
    margin=st.floats(0, 1),
    grid=st.sampled_from([2, 7, 64]),
)
def test_one_real_parameter_on_a_linear_model(a0: float, weight: float, margin: float, grid: int) -> None:
    # weight (a0 + d) - 5 >= margin: d* = (5 + margin) / weight - a0, cost d*^2 / 100, if d* <= 90 and
    # a0 + d* <= 100 (a's bound); with a coarse grid the passing interval may lie inside one cell
    need, cap = (5 + margin) / weight - a0, min(90, 100 - a0)
    assume(abs(need - cap) > 1e-6 and abs(need) > 1e-6)  # not on a knife's edge of float rounding
    need = max(need, 0.0)
    (answer,) = solve_exhaustively(
        linear(a=weight), people({"a": a0}), raise_a(), max_length=1, margin=margin, grid=grid
    )
    if need > cap:
        assert not answer.helpable and answer.cost == math.inf
        return
    assert answer.helpable
    assert answer.cost == pytest.approx(need**2 / 100, rel=1e-6, abs=1e-9)
    assert answer.margin >= margin


GATED = """
[[action]]
name = "open_g"
effects = { g = "'y'" }
cost = "1"
pre = ["g == 'x'"]

[[action]]
name = "raise_a"
params = { d = { bounds = [0, 90] } }
effects = { a = "a + d" }
cost = "d / 10"
pre = ["g == 'y'"]
"""


def test_two_steps_needed_because_of_a_precondition() -> None:
    # 0.1 (30 + d) - 5 >= 0.1: d = 21 (cost 2.1), only after open_g (cost 1)
    X = people({"a": 30.0, "g": "x"}, {"a": 30.0, "g": "y"})
    two, one = solve_exhaustively(linear(a=0.1), X, actions(GATED), max_length=2)
    assert two.actions == ("open_g", "raise_a") and two.cost == pytest.approx(3.1, rel=1e-9)
    assert two.params[1]["d"] == pytest.approx(21, rel=1e-9) and two.x_after["g"] == "y"
    assert one.actions == ("raise_a",) and one.cost == pytest.approx(2.1, rel=1e-9)
    short = solve_exhaustively(linear(a=0.1), X, actions(GATED), max_length=1)
    assert not short[0].helpable and short[0].cost == math.inf and short[1].helpable


def test_an_unhelpable_person_and_the_margin_against_the_boundary() -> None:
    # a fixed feature weighs too much: 0.1 (0 + 90) - 5 - 2 * 10 < 0 whatever the plan
    (stuck,) = solve_exhaustively(linear(a=0.1, f=-2.0), people({"f": 10.0}), raise_a(), max_length=2)
    assert not stuck.helpable and not stuck.helpable_at_boundary
    assert stuck.cost == stuck.boundary_cost == math.inf and stuck.steps == () and math.isnan(stuck.margin)
    assert stuck.candidates >= count_candidates(raise_a(), 2)
    # 0.1 (30.5 + 20) - 5 = 0.05: the decision flips (d = 19.5, cost 3.8025) but the margin 0.1 is out of reach
    (close,) = solve_exhaustively(linear(a=0.1), people({"a": 30.5}), raise_a(top=20), max_length=1)
    assert not close.helpable and close.helpable_at_boundary
    assert close.boundary_cost == pytest.approx(19.5**2 / 100, rel=1e-6)


def test_an_already_favourable_person_needs_nothing() -> None:
    (answer,) = solve_exhaustively(linear(a=0.1), people({"a": 80.0}), raise_a(), max_length=1)
    assert answer.helpable and answer.cost == 0 and answer.steps == ()


def brute_force(seed: int) -> list[float]:
    """Every order of distinct actions up to max_length and every whole-number value, replayed exactly."""
    p = problem(seed)
    program = Program(p.actions)
    model = as_model(p.model, p.schema)
    goal_index = list(model.classes).index(p.schema.target.favourable)  # type: ignore[union-attr]
    x0 = p.schema.encode(p.X)
    best = [math.inf] * len(x0)
    with torch.no_grad():
        out = model(x0)
    for i in range(len(x0)):
        others = torch.cat([out[i, :goal_index], out[i, goal_index + 1 :]])
        if out[i].argmax() == goal_index and out[i, goal_index] - others.max() >= p.margin:
            best[i] = 0.0
    for length in range(1, p.max_length + 1):
        for seq in itertools.permutations(range(len(program.acts)), length):
            boxes = [
                [float(v) for v in range(math.ceil(q.bounds[0]), math.floor(q.bounds[1]) + 1)]
                for a in seq
                for q in program.acts[a].params
            ]
            combos = list(itertools.product(*boxes))
            params = torch.zeros(len(combos), length, program.slots, dtype=torch.float64)
            for c, values in enumerate(combos):
                it = iter(values)
                for j, a in enumerate(seq):
                    for k in range(program.acts[a].n_params):
                        params[c, j, k] = next(it)
            ids = torch.as_tensor(seq).expand(len(combos), length)
            for i in range(len(x0)):
                with torch.no_grad():
                    path = program.rollout(ids, x0[i].expand(len(combos), -1), params, exact=True)
                    logits = model(path.x)
                others = torch.cat([logits[:, :goal_index], logits[:, goal_index + 1 :]], 1).max(1).values
                ok = path.ok & proper_costs(path.step_costs) & (logits.argmax(1) == goal_index)
                ok &= logits[:, goal_index] - others >= p.margin
                if ok.any():
                    best[i] = min(best[i], float(path.step_costs.sum(1)[ok].min()))
    return best


@pytest.mark.parametrize("seed", [0, 5, 9, 13, 23])
def test_the_oracle_equals_a_brute_force_over_every_order(seed: int) -> None:
    p = problem(seed)
    assert all(q.kind == "integer" for a in p.actions for q in a.params)  # every value is enumerated
    answers = solve_exhaustively(p.model, p.X, p.actions, max_length=p.max_length, margin=p.margin)
    expected = brute_force(seed)
    assert any(math.isfinite(c) for c in expected) and any(math.isinf(c) for c in expected)
    assert [a.cost for a in answers] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_the_oracle_plans_pass_the_independent_replay(seed: int) -> None:
    p = problem(seed)
    answers = solve_exhaustively(p.model, p.X, p.actions, max_length=p.max_length, margin=p.margin)
    batch = to_batch(answers, p.X, p.actions, p.model)
    assert check_plans(batch, p.X, p.actions, p.model) == []
    for r, a in zip(batch, answers, strict=True):
        assert (r.status == "found") == a.helpable
        if a.helpable:
            assert r.cost == pytest.approx(a.cost, rel=1e-12) and a.margin >= p.margin
            assert a.cost <= a.boundary_cost * (1 + 1e-12) or a.cost >= a.boundary_cost


def test_bad_settings_are_refused_before_any_work() -> None:
    X, acts = people({"a": 1.0}), raise_a()
    for bad in ({"grid": 1}, {"max_length": -1}, {"margin": -0.1}, {"margin": math.nan}):
        with pytest.raises(ConfigError):
            solve_exhaustively(linear(a=0.1), X, acts, **{"max_length": 1, **bad})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_candidates"):
        solve_exhaustively(linear(a=0.1), X, acts, max_length=1, max_candidates=10)
