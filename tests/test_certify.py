"""Certificates by mixed-integer programming against brute-force enumeration of whole-number boxes.

Oracle: ``certify_problems.enumerate_optimum`` replays every canonical sequence with every parameter value
through the exact rollout. A certificate is right when its bound is below the true optimum, ``optimal``
only within the gap of it, and ``no_plan_exists`` only when the enumeration finds nothing.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import ConfigError, DataError, Feature, Schema, Target, as_model, datasets
from actionable.actions import ActionSet
from actionable.affine import Form
from actionable.certify import Certificate, Prover, certify, certify_plans
from actionable.goals import Goal, resolve_goal
from actionable.mip import Mip, Solved
from actionable.models import TorchModel
from actionable.program import Plan, Program
from actionable.results import Recourse
from actionable.synthesis import synthesize
from actionable.verify import Verifier
from tests.certify_problems import SCHEMA, Problem, enumerate_optimum, problem

GAP = 1e-4


def _best(cert: Certificate, incumbent: float = math.inf) -> float:
    mine = cert.plan.cost if cert.plan is not None and cert.plan.verified else math.inf
    return min(mine, incumbent)


def _sound(cert: Certificate, truth: float, incumbent: float = math.inf) -> None:
    """What a certificate may never get wrong."""
    assert cert.bound <= truth + 1e-7 * (1 + abs(truth) if math.isfinite(truth) else 1)
    if cert.kind == "no_plan_exists":
        assert math.isinf(truth)
    if cert.kind == "optimal":
        assert abs(_best(cert, incumbent) - truth) <= GAP * truth + 1e-9


# ------------------------------------------------------------------------------------ random problems
@pytest.mark.parametrize(
    ("seed", "kind"), [(0, "linear"), (7, "linear"), (2, "relu"), (9, "relu"), (16, "relu")]
)
def test_random_problems_are_certified_as_enumeration_says(seed: int, kind: str) -> None:
    p = problem(seed, kind)
    truth = enumerate_optimum(p, 2, 0.1)
    certs = certify(p.model, p.goal, p.program, p.x, max_length=2, margin=0.1, gap=GAP)
    for t, cert in zip(truth, certs, strict=True):
        _sound(cert, t)
        # affine and convex catalogues: every row is proved, one way or the other
        assert cert.kind == ("optimal" if math.isfinite(t) else "no_plan_exists"), cert.reason
    assert any(math.isfinite(t) for t in truth)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), margin=st.sampled_from([0.0, 0.1, 0.7]))
def test_no_plan_is_never_claimed_when_an_enumerated_plan_passes(seed: int, margin: float) -> None:
    p = problem(seed, rows=3)
    truth = enumerate_optimum(p, 1, margin)
    for t, cert in zip(
        truth, certify(p.model, p.goal, p.program, p.x, max_length=1, margin=margin), strict=True
    ):
        _sound(cert, t)


def test_an_incumbent_is_proved_optimal_and_a_dearer_one_is_beaten() -> None:
    p = problem(6, "relu")
    truth = enumerate_optimum(p, 2, 0.1)
    exact = certify(p.model, p.goal, p.program, p.x, max_length=2, margin=0.1, incumbent=truth)
    dearer = [1.05 * t for t in truth]
    beaten = certify(p.model, p.goal, p.program, p.x, max_length=2, margin=0.1, incumbent=dearer)
    for t, a, b, d in zip(truth, exact, beaten, dearer, strict=True):
        _sound(a, t, t)
        _sound(b, t, d)
        if math.isfinite(t):
            assert a.kind == "optimal" and a.bound >= t * (1 - GAP) - 1e-9
            assert b.kind == "optimal" and b.plan is not None and b.plan.verified
            assert b.plan.cost == pytest.approx(t, rel=GAP)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_huge_logits_never_prove_a_false_no_plan(dtype: torch.dtype) -> None:
    """Logits scaled by 1e40 (same decisions) or computed in float32: the rows stay within HiGHS's range
    and the tolerances, so no reachable row is called infeasible."""
    p = problem(6, "relu")
    network = copy.deepcopy(p.model.network).to(dtype)
    last = [m for m in network.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        scale = 1e40 if dtype == torch.float64 else 1.0
        last.weight.mul_(scale)
        last.bias.mul_(scale)
    model = as_model(network, SCHEMA)
    q = Problem(p.program, model, resolve_goal(model), p.x)
    truth = enumerate_optimum(q, 2, 0.1)
    assert any(math.isfinite(t) for t in truth)
    for t, cert in zip(truth, certify(model, q.goal, q.program, q.x, max_length=2, margin=0.1), strict=True):
        _sound(cert, t)


# ------------------------------------------------------------------------------------ hand-made problems
HAND = Schema(
    (
        Feature("a", "integer", (0, 100), mutability="direct"),
        Feature("b", "real", (0, 100), mutability="direct"),
        Feature("g", "category", levels=("x", "y"), mutability="direct"),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)
CATALOGUE = """
[[action]]
name = "raise_a"
params = { d = { bounds = [0, 90], kind = "integer" } }
effects = { a = "a + d" }
cost = "d"

[[action]]
name = "raise_b"
params = { d = { bounds = [0, 90] } }
effects = { b = "b + d" }
cost = "d / 4"

[[action]]
name = "set_y"
effects = { g = "'y'" }
cost = "3"
pre = ["g == 'x'"]
"""


def _linear(weights: list[float], bias: float, activation: torch.nn.Module | None = None) -> object:
    """logit(good) = w . x + bias, optionally through ``activation`` and a second unit layer."""
    layer = torch.nn.Linear(HAND.width, 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
        layer.bias.fill_(bias)
    if activation is None:
        return as_model(layer, HAND)
    head = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.fill_(0.0)
    return as_model(torch.nn.Sequential(layer, activation, head), HAND)


def _rows(**columns: list[object]) -> torch.Tensor:
    return HAND.encode(pd.DataFrame(columns))


def test_a_real_parameter_meets_its_closed_form_optimum() -> None:
    """logit = 0.1 a + 0.05 b + g=y - 5 >= 0.1 from a = b = 10: raising b costs 1/4 per unit, 0.05 logit per
    unit, so 5 logit per cost; a costs 10 per logit, set_y 3 per logit. Optimum: b + 72 at cost 18, or set_y
    then b + 52 at 3 + 13 = 16."""
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    goal = resolve_goal(model)
    (cert,) = certify(model, goal, program, _rows(a=[10], b=[10], g=["x"]), max_length=2, margin=0.1)
    assert cert.kind == "optimal" and cert.plan is not None and cert.plan.verified
    assert cert.plan.cost == pytest.approx(16.0, rel=1e-6) and cert.bound == pytest.approx(16.0, rel=1e-4)
    assert sorted(program.acts[a].name for a in cert.plan.ids) == ["raise_b", "set_y"]


@pytest.mark.parametrize("kind", ["probability", "above"])
def test_probability_and_regression_goals_meet_their_closed_forms(kind: str) -> None:
    """The same linear score s = 0.1 a + 0.05 b + g=y - 5 (from -3.5): P(good) >= 0.7 needs s >= log(7/3),
    a regression output above 0.5 needs s >= 0.5; either way set_y (1 for 3) and then b at 5 per unit."""
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    x = _rows(a=[10], b=[10], g=["x"])
    if kind == "probability":
        model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
        goal, need = Goal("probability", index=1, threshold=0.7, label="good"), math.log(0.7 / 0.3)
    else:
        layer = torch.nn.Linear(HAND.width, 1).double()
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[0.1, 0.05, 0.0, 1.0]]))
            layer.bias.fill_(-5.0)
        model = TorchModel(layer, HAND, task="regression", outputs=("y",))
        goal, need = Goal("above", index=0, threshold=0.5, label="y"), 0.5
    (cert,) = certify(model, goal, program, x, max_length=2, margin=0.0)
    assert cert.kind == "optimal" and cert.plan is not None
    assert cert.plan.cost == pytest.approx(3 + 5 * (need + 3.5 - 1), rel=1e-6)


def test_a_margin_reached_exactly_is_not_called_out_of_reach() -> None:
    """The only plan lands exactly on the margin: n = 102400 gives logit 102400 / 1024 - 99.5 = 0.5. The
    relaxed margin keeps it (a margin tightened by the tolerance, here ~2e-4 x 1024, would miss it)."""
    schema = Schema(
        (Feature("n", "integer", (0, 200000), mutability="direct"),),
        Target("y", favourable="good", classes=("bad", "good")),
    )
    layer = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        layer.weight.fill_(1 / 1024)
        layer.bias.fill_(-99.5)
    model = as_model(layer, schema)
    catalogue = """
[[action]]
name = "raise_n"
params = { d = { bounds = [0, 102400], kind = "integer" } }
effects = { n = "n + d" }
cost = "d / 1024"
"""
    program = Program(ActionSet.from_toml(catalogue, schema))
    x = torch.zeros(1, 1, dtype=torch.float64)
    (cert,) = certify(model, resolve_goal(model), program, x, max_length=1, margin=0.5)
    assert cert.kind == "optimal" and cert.plan is not None and cert.plan.cost == 100.0


def test_a_solution_a_hair_below_a_whole_number_is_checked_at_that_number() -> None:
    """HiGHS returns 36.99999999999; the verifier's floor (36) would pass its own check yet miss the margin
    (logit 0.1 d - 3.55: 0.05 at 36, 0.15 at 37), so the plan is rounded to 37 before the check."""
    model = _linear([0.1, 0.0, 0.0, 0.0], -4.55)
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    prover = Prover(model, resolve_goal(model), program, max_length=1, margin=0.1)
    x = _rows(a=[10], b=[0], g=["x"])[0]
    plan = prover.check((0,), torch.tensor([[36.99999999999]], dtype=torch.float64), x)
    assert plan.verified and plan.cost == 37.0 and plan.params == ((37.0,),)


@pytest.mark.parametrize(("activation", "word"), [(torch.nn.Tanh(), "tanh"), (torch.nn.Sigmoid(), "sigmoid")])
def test_a_network_with_smooth_units_gets_no_certificate(activation: torch.nn.Module, word: str) -> None:
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0, activation)
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    (cert,) = certify(
        model, resolve_goal(model), program, _rows(a=[10], b=[10], g=["x"]), max_length=2, margin=0.1
    )
    assert cert.kind == "none" and word in cert.reason


def test_a_nonlinear_effect_is_named_in_the_reason() -> None:
    square = CATALOGUE.replace('effects = { a = "a + d" }', 'effects = { a = "a + d ** 2 / 100" }')
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    program = Program(ActionSet.from_toml(square, HAND))
    (cert,) = certify(
        model, resolve_goal(model), program, _rows(a=[10], b=[10], g=["x"]), max_length=2, margin=0.1
    )
    assert cert.kind == "none"
    assert "effect of 'raise_a' on 'a' is not affine" in cert.reason
    assert cert.bound <= 16.0  # still a valid bound, from the affine sequences and constant costs


def test_no_plan_exists_when_nothing_reaches_the_goal() -> None:
    model = _linear([0.01, 0.01, 0.0, 0.1], -5.0)  # at most 1 + 0.9 + 0.1 - 5 < 0
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    (cert,) = certify(
        model, resolve_goal(model), program, _rows(a=[10], b=[10], g=["x"]), max_length=2, margin=0.1
    )
    assert cert.kind == "no_plan_exists" and math.isinf(cert.bound) and cert.to_dict()["bound"] is None


def test_longer_sequences_are_not_covered_unless_none_exist() -> None:
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    x = _rows(a=[10], b=[10], g=["x"])
    three = Program(ActionSet.from_toml(CATALOGUE, HAND))  # three actions: sequences of 3 exist
    (cert,) = certify(model, resolve_goal(model), three, x, max_length=3, margin=0.1)
    assert cert.kind == "none" and "longer than 2" in cert.reason
    two = Program(ActionSet.from_toml(CATALOGUE.split('[[action]]\nname = "set_y"')[0], HAND))
    (cert,) = certify(model, resolve_goal(model), two, x, max_length=5, margin=0.1)
    assert cert.kind == "optimal"  # no canonical sequence of 3 actions exists: length <= 2 is everything


def test_the_time_limit_never_gives_optimal(monkeypatch: pytest.MonkeyPatch) -> None:
    p = problem(3, "relu")
    certs = certify(p.model, p.goal, p.program, p.x, max_length=2, margin=0.1, time_limit=1e-9)
    assert all(c.kind == "none" and "time limit" in c.reason for c in certs)
    # HiGHS stopped on its limit, even with a solution and a bound that meet: still no "optimal"
    solve = Mip.solve

    def stopped(self: Mip, objective: Form, **kwargs: Any) -> Solved:
        done = solve(self, objective, **kwargs)
        return replace(done, status="time") if done.status == "optimal" else done

    monkeypatch.setattr(Mip, "solve", stopped)
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    (cert,) = certify(
        model, resolve_goal(model), program, _rows(a=[10], b=[10], g=["x"]), max_length=2, margin=0.1
    )
    assert cert.kind == "none" and "time limit" in cert.reason and cert.gap < 1e-6


def test_an_infeasible_verdict_of_presolve_is_confirmed_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """HiGHS's MIP presolve has declared feasible programs infeasible (HiGHS issues 2303, 2388, 3090; seen
    here on a generated problem): such a verdict is re-checked with presolve off before anything is proved."""
    run = Mip._milp

    def misjudged(self: Mip, objective: Form, gap: float, left: float, presolve: bool) -> Any:
        done = run(self, objective, gap, left, presolve)
        return SimpleNamespace(status=2, x=None, fun=None) if presolve else done

    monkeypatch.setattr(Mip, "_milp", misjudged)
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    (cert,) = certify(
        model, resolve_goal(model), program, _rows(a=[10], b=[10], g=["x"]), max_length=2, margin=0.1
    )
    assert cert.kind == "optimal" and cert.plan is not None and cert.plan.cost == pytest.approx(16.0)


def test_bad_arguments_are_refused_with_the_fix() -> None:
    p = problem(3)
    with pytest.raises(DataError, match="canonical rows"):
        certify(p.model, p.goal, p.program, p.x[:, :2], max_length=1, margin=0.1)
    with pytest.raises(ConfigError, match="margin"):
        certify(p.model, p.goal, p.program, p.x, max_length=1, margin=math.nan)
    with pytest.raises(ConfigError, match="one per row"):
        certify(p.model, p.goal, p.program, p.x, max_length=1, margin=0.1, incumbent=[1.0] * (len(p.x) + 1))


# ------------------------------------------------------------------------------------ German credit
def test_german_single_actions_are_certified_against_enumeration() -> None:
    """The bundled 2x40 ReLU network. At one action every effect is affine (the state is known) and every
    cost affine or a square (``(delta / credit_amount) ** 2``), so every row is proved."""
    german = datasets.load("german")
    program = Program(ActionSet.from_toml(german.path / "actions.toml", german.schema))
    denied = german.X_test[german.model.predict(german.X_test) == "bad"].head(3)
    p = Problem(program, german.model, resolve_goal(german.model), german.schema.encode(denied))
    truth = enumerate_optimum(p, 1, 0.1)
    certs = certify(p.model, p.goal, program, p.x, max_length=1, margin=0.1)
    for t, cert in zip(truth, certs, strict=True):
        _sound(cert, t)
        assert cert.kind == "optimal", cert.reason


# ------------------------------------------------------------------------------------ synthesize
def test_synthesize_records_certificates_and_proves_infeasible_rows() -> None:
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    actions = ActionSet.from_toml(CATALOGUE.replace("[0, 90]", "[0, 5]"), HAND)
    frame = pd.DataFrame({"a": [60, 0, 10], "b": [10, 0, 0], "g": ["x", "x", "y"]})
    plans = synthesize(model, frame, actions, max_length=2, certify=True)
    # row 0: 6 + 0.5 - 5 > 0 already; row 1: at most 0.5 + 0.25 + 1 - 5 < 0; row 2: 1 + 1 + 0.75 - 5 < 0
    assert [r.status for r in plans] == ["already_favourable", "infeasible", "infeasible"]
    assert plans[1].certificate["kind"] == "no_plan_exists" and "proved" in plans[1].error
    assert plans[0].certificate == {"kind": "none", "reason": "not requested"}
    again = Recourse.from_dict(plans[1].to_dict())
    assert again.certificate == plans[1].certificate
    plain = synthesize(model, frame, actions, max_length=2)
    assert [r.status for r in plain] == ["already_favourable", "not_found", "not_found"]
    assert all(r.certificate["reason"] == "not requested" for r in plain)


def test_synthesize_certifies_found_plans() -> None:
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    actions = ActionSet.from_toml(CATALOGUE, HAND)
    plans = synthesize(
        model, pd.DataFrame({"a": [10], "b": [10], "g": ["x"]}), actions, max_length=2, certify=True
    )
    assert plans[0].status == "found"
    assert plans[0].certificate["kind"] in ("optimal", "none")
    assert plans[0].cost >= plans[0].certificate["bound"] - 1e-9


def test_a_dearer_search_plan_is_replaced_by_the_programs_verified_plan() -> None:
    model = _linear([0.1, 0.05, 0.0, 1.0], -5.0)
    program = Program(ActionSet.from_toml(CATALOGUE, HAND))
    goal = resolve_goal(model)
    verifier = Verifier(program, model, goal, 0.1)
    x = _rows(a=[10], b=[10], g=["x"])
    ids = torch.tensor([[0]])  # raise_a by 40: logit 5 + 0.5 - 5 = 0.5, cost 40 (the optimum costs 16)
    checked = verifier.check(ids, x, torch.tensor([[[40.0]]], dtype=torch.float64))
    assert bool(checked.found[0])
    dear = Plan((0,), checked.params[0], checked.step_costs[0], checked.x[0], x[0])
    certificates, plans = certify_plans(verifier, x, {0: dear}, max_length=2)
    assert plans[0].cost == pytest.approx(16.0, rel=1e-6) and plans[0].cost < dear.cost
    again = verifier.check(*program.stack([plans[0]])[:1], x, program.stack([plans[0]])[1])
    assert bool(again.found[0])
    assert certificates[0].kind == "optimal"
