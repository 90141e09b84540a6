"""invert: the LP optimum on a logistic regression (scipy HiGHS), the contract on Student, the total
derivative through the indirect model (finite differences), budget sweeps, and typed errors."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linprog
from sklearn.linear_model import LogisticRegression

from actionable import (
    ConfigError,
    DataError,
    Feature,
    ModelError,
    Schema,
    Target,
    datasets,
    invert,
    invert_sweep,
)
from actionable.inverse import InverseConfig, InverseProblem
from actionable.results import RecourseBatch
from actionable.testing import check_inversions, check_method

LINEAR = Schema(
    (
        Feature("a", "real", (-3, 3)),
        Feature("b", "real", (-3, 3), mutability="direct", cost_up=1.0, cost_down=2.0),
        Feature("c", "real", (-2, 4), mutability="direct", direction="increase", cost_up=0.5),
        Feature("d", "real", (-5, 2), mutability="direct", direction="decrease", cost_down=1.5),
        Feature("e", "real", (-3, 3), mutability="direct", cost_up=0.3, cost_down=0.7),
    ),
    Target("y", favourable=1, classes=(0, 1)),
)
DIRECT = ["b", "c", "d", "e"]


@pytest.fixture(scope="module")
def linear() -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-1.5, 1.5, size=(400, 5)), columns=list(LINEAR.names))
    score = X.to_numpy() @ np.array([0.8, 1.2, -0.7, -1.0, 0.4]) + rng.normal(0, 0.5, 400)
    model = LogisticRegression().fit(X, (score > 0.3).astype(int))
    denied = X[model.predict(X) == 0].head(25).reset_index(drop=True)
    return model, denied


def lp_optimum(model: LogisticRegression, row: pd.Series, budget: float) -> float:
    """The best favourable logit within budget, as a linear program over up / down moves (HiGHS)."""
    w = dict(zip(LINEAR.names, model.coef_[0], strict=True))
    c, bounds, price = [], [], []
    for name in DIRECT:
        f = LINEAR[name]
        x = float(row[name])
        c += [-w[name], w[name]]
        bounds += [
            (0, f.bounds[1] - x if f.direction != "decrease" else 0),
            (0, x - f.bounds[0] if f.direction != "increase" else 0),
        ]
        price += [f.cost_up or 0.0, f.cost_down or 0.0]
    result = linprog(c, A_ub=[price], b_ub=[budget], bounds=bounds, method="highs")
    assert result.status == 0
    return float(model.decision_function(row.to_frame().T)[0] - result.fun)


@pytest.mark.parametrize("budget", [0.0, 0.4, 1.5, 4.0])
def test_logistic_regression_reaches_the_lp_optimum(
    linear: tuple[LogisticRegression, pd.DataFrame], budget: float
) -> None:
    model, denied = linear
    batch = invert(model, denied, LINEAR, budget=budget)
    assert check_inversions(batch, denied, model, LINEAR, budget=budget) == []
    shrink = invert(model, denied, LINEAR, budget=budget, method="shrink")
    for i, r in enumerate(batch):
        after = pd.DataFrame([r.x_after])[list(LINEAR.names)]
        ours = float(model.decision_function(after)[0])  # computed by scikit-learn, not by us
        assert ours == pytest.approx(lp_optimum(model, denied.iloc[i], budget), abs=1e-4)
        assert r.p_after >= shrink[i].p_after - 1e-9  # the exact projection is never worse here


def test_contract_on_student_with_and_without_the_indirect_model() -> None:
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(6)
    model, indirect = data.models["regular"], data.models["indirect"]
    check_method(invert, model, people, data.schema, budget=3.0, indirect=indirect)
    check_method(invert, model, people, data.schema, budget=2.0, indirect=indirect, rounding=False)
    check_method(invert, model, people, data.schema, budget=1.5, method="shrink")


def test_the_gradient_flows_through_the_indirect_model() -> None:
    """Total derivative: d f(x_U, g(x_U, x_D), x_D) / d x_D, checked by central differences."""
    data = datasets.load("student")
    schema, model, g = data.schema, data.models["regular"], data.models["indirect"]
    problem = InverseProblem(model, schema, indirect=g)
    x0 = schema.encode(data.X_test[data.y_test == 1].head(4))
    rng = np.random.default_rng(1)
    delta = -torch.as_tensor(rng.uniform(0.05, 0.2, size=(4, 6)))
    _, grad = problem.value_and_grad(x0, delta)
    direct = [schema.slice(f.name).start for f in schema.features if f.mutability == "direct"]
    indirect = [schema.slice(name).start for name in g.outputs]
    lo, hi = schema.bounds_tensor()
    span = (hi - lo)[direct]

    def by_hand(d: torch.Tensor) -> torch.Tensor:  # the composition written out, independently of invert
        x = x0.clone()
        x[:, direct] = x0[:, direct] + d * span
        x[:, indirect] = g(x)
        p = torch.softmax(model(x), dim=-1)
        return torch.log(p[:, 1]) - torch.log(p[:, 0])

    h = 1e-6
    with torch.no_grad():
        for j in range(6):
            step = torch.zeros_like(delta)
            step[:, j] = h
            numeric = (by_hand(delta + step) - by_hand(delta - step)) / (2 * h)
            torch.testing.assert_close(grad[:, j], numeric, atol=1e-5, rtol=1e-5)
    frozen = InverseProblem(model, schema).value_and_grad(x0, delta)[1]
    assert not torch.allclose(frozen, grad)  # the indirect path matters on this model


@pytest.mark.parametrize("rounding", [False, True])
def test_sweep_is_monotone_and_budget_zero_changes_nothing(rounding: bool) -> None:
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(10)
    model, g = data.models["regular"], data.models["indirect"]
    sweep = invert_sweep(model, people, data.schema, budgets=[4, 0, 2, 6], indirect=g, rounding=rounding)
    assert list(sweep) == [0.0, 2.0, 4.0, 6.0]
    for r in sweep[0.0]:
        assert r.steps == () and r.cost == 0 and r.p_after == r.p_before
    for low, high in zip(list(sweep.values()), list(sweep.values())[1:], strict=False):
        for a, b in zip(low, high, strict=True):
            assert b.p_after >= a.p_after - 1e-12
    for budget, batch in sweep.items():
        assert (
            check_inversions(batch, people, model, data.schema, budget=budget, indirect=g, whole=rounding)
            == []
        )
    stacked = invert_sweep(model, people, data.schema, budgets=[0, 2, 4, 6], indirect=g, warm_start=False)
    assert all(math.isfinite(r.p_after) for batch in stacked.values() for r in batch)


def test_ambiguous_directions_follow_the_initial_gradient(
    linear: tuple[LogisticRegression, pd.DataFrame],
) -> None:
    model, denied = linear
    batch = invert(model, denied, LINEAR, budget=2.0)
    w = dict(zip(LINEAR.names, model.coef_[0], strict=True))
    for r in batch:
        for name in ("b", "e"):  # direction "both": moved only the way the logit rises
            change = r.x_after[name] - r.x_before[name]
            assert change * w[name] >= 0


def test_integer_features_are_rounded_within_budget() -> None:
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(8)
    batch = invert(data.models["regular"], people, data.schema, budget=5.0, indirect=data.models["indirect"])
    for r in batch:
        assert r.cost <= 5.0 + 1e-9
        for f in data.schema.features:
            if f.mutability == "direct":
                assert float(r.x_after[f.name]).is_integer()


def test_bad_rows_are_reported_not_raised(linear: tuple[LogisticRegression, pd.DataFrame]) -> None:
    model, denied = linear
    people = denied.head(3).copy()
    people.loc[1, "a"] = 99.0  # outside its bounds
    batch = invert(model, people, LINEAR, budget=1.0)
    assert [r.status for r in batch][1] == "error" and "outside bounds" in batch[1].error


def test_bad_input_raises_typed_errors(linear: tuple[LogisticRegression, pd.DataFrame]) -> None:
    model, denied = linear
    with pytest.raises(ConfigError, match="negative"):
        invert(model, denied, LINEAR, budget=-1.0)
    with pytest.raises(ConfigError, match="not a number"):
        invert(model, denied, LINEAR, budget=float("nan"))
    free = LINEAR.with_features(c={"cost_up": 0.0})
    with pytest.raises(ConfigError, match=r"may increase but cost_up = 0\.0"):
        invert(model, denied, free, budget=1.0)
    unpriced = LINEAR.with_features(b={"cost_down": None})
    with pytest.raises(ConfigError, match="may decrease but cost_down = None"):
        invert(model, denied, unpriced, budget=1.0)
    with pytest.raises(ModelError, match="no indirect features"):
        invert(model, denied, LINEAR, budget=1.0, indirect=model)
    with pytest.raises(DataError, match="DataFrame"):
        invert(model, denied.to_numpy(), LINEAR, budget=1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="steps"):
        InverseConfig(steps=0)
    data = datasets.load("student")
    people = data.X_test.head(2)
    with pytest.raises(ModelError, match="indirect model predicts"):
        invert(data.models["regular"], people, data.schema, budget=1.0, indirect=data.models["regular"])
    three = torch.nn.Linear(data.schema.width, 3).to(torch.float64)  # 3 outputs for 4 indirect features
    with pytest.raises(ModelError):
        invert(data.models["regular"], people, data.schema, budget=1.0, indirect=three)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("fixed", "fixed feature school changed"),
        ("cost", "reported cost"),
        ("direction", "moves against its direction"),
        ("probability", "reported probabilities"),
        ("order", "keep input order"),
        ("budget", "exceeds the budget"),
    ],
)
def test_the_contract_catches_planted_bugs(change: str, message: str) -> None:
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(3)
    model = data.models["regular"]
    batch = invert(model, people, data.schema, budget=3.0)
    assert check_inversions(batch, people, model, data.schema, budget=3.0) == []
    items = list(batch)
    r = items[0]
    if change == "fixed":
        items[0] = dataclasses.replace(r, x_after={**r.x_after, "school": 1 - r.x_after["school"]})
    elif change == "cost":
        items[0] = dataclasses.replace(r, cost=r.cost / 2)
    elif change == "direction":
        items[0] = dataclasses.replace(r, x_after={**r.x_after, "goout": r.x_before["goout"] + 1})
    elif change == "probability":
        items[0] = dataclasses.replace(r, p_after=r.p_after + 0.01)
    elif change == "order":
        items[0], items[1] = items[1], items[0]
    budget = 0.5 if change == "budget" else 3.0
    problems = check_inversions(RecourseBatch(tuple(items)), people, model, data.schema, budget=budget)
    assert any(re.search(message, p) for p in problems), problems


def test_costs_can_be_edited_without_rebuilding_the_model() -> None:
    """A model fits any schema with the same encoding: doubling a price makes that feature move less."""
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(10)
    model, g = data.models["regular"], data.models["indirect"]
    dearer = data.schema.with_features(goout={"cost_down": 30.0})
    base = invert(model, people, data.schema, budget=4.0, indirect=g, rounding=False)
    edited = invert(model, people, dearer, budget=4.0, indirect=g, rounding=False)
    assert check_inversions(edited, people, model, dearer, budget=4.0, indirect=g, whole=False) == []
    moved = [abs(r.x_after["goout"] - r.x_before["goout"]) for r in base]
    moved_dearer = [abs(r.x_after["goout"] - r.x_before["goout"]) for r in edited]
    assert sum(moved_dearer) < sum(moved)


def test_whole_numbers_reach_the_enumerated_lattice_optimum() -> None:
    """Brute force: every integer change within bounds, directions and budget, through the same models."""
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(8)
    model, g = data.models["regular"], data.models["indirect"]
    schema, budget = data.schema, 3.0
    batch = invert(model, people, schema, budget=budget, indirect=g)
    direct = [f for f in schema.features if f.mutability == "direct"]
    for i, r in enumerate(batch):
        row = people.iloc[i]
        axes = [
            range(int(f.bounds[0]), int(row[f.name]) + 1)
            if f.direction == "decrease"
            else range(int(row[f.name]), int(f.bounds[1]) + 1)
            for f in direct
        ]
        grid = torch.cartesian_prod(*(torch.tensor(list(a), dtype=torch.float64) for a in axes))
        start = torch.tensor([float(row[f.name]) for f in direct], dtype=torch.float64)
        change = grid - start
        price = torch.tensor([f.cost_up if f.direction == "increase" else f.cost_down for f in direct])
        grid = grid[(change.abs() * price).sum(-1) <= budget + 1e-9]
        x = schema.encode(people.iloc[[i]]).repeat(len(grid), 1)
        x[:, [schema.slice(f.name).start for f in direct]] = grid
        with torch.no_grad():
            predicted = g(x)
        for j, name in enumerate(g.outputs):  # the reported row: indirect predictions rounded, in bounds
            f = schema[name]
            value = predicted[:, j].round() if f.kind in ("integer", "binary") else predicted[:, j]
            x[:, schema.slice(name).start] = value.clamp(*f.bounds)
        with torch.no_grad():
            best = float(torch.softmax(model(x), -1)[:, 0].max())
        assert r.p_after == pytest.approx(best, abs=1e-9)


def test_free_ambiguous_directions_also_reach_the_lp_optimum(
    linear: tuple[LogisticRegression, pd.DataFrame],
) -> None:
    model, denied = linear
    batch = invert(model, denied, LINEAR, budget=1.5, ambiguous="free")
    assert check_inversions(batch, denied, model, LINEAR, budget=1.5) == []
    for i, r in enumerate(batch):
        ours = float(model.decision_function(pd.DataFrame([r.x_after])[list(LINEAR.names)])[0])
        assert ours == pytest.approx(lp_optimum(model, denied.iloc[i], 1.5), abs=1e-4)
