"""The exact projection agrees with an independent QP solver (cvxpy + Clarabel) and is a projection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import ConfigError, project_box, project_weighted_l1_ball
from actionable.projections import weighted_l1

cp = pytest.importorskip("cvxpy")


@st.composite
def instances(draw: st.DrawFn) -> dict[str, np.ndarray | float]:
    """A random box (some sides forbidden: bound 0), costs (some directions free: cost 0), point, budget."""
    d = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    return {
        "delta": rng.normal(size=d) * scale,
        "lower": -rng.uniform(0, 2, d) * (rng.random(d) < 0.8),
        "upper": rng.uniform(0, 2, d) * (rng.random(d) < 0.8),
        "cost_up": rng.uniform(0, 3, d) * (rng.random(d) < 0.85),
        "cost_down": rng.uniform(0, 3, d) * (rng.random(d) < 0.85),
        "budget": draw(st.sampled_from([0.0, 0.05, 0.5, 1.0, 3.0])),
    }


def qp(p: dict[str, np.ndarray | float]) -> np.ndarray:
    """The same projection as a QP: up / down parts p, q >= 0, solved by Clarabel to tight tolerances."""
    d = len(p["delta"])  # type: ignore[arg-type]
    z, up, down = cp.Variable(d), cp.Variable(d, nonneg=True), cp.Variable(d, nonneg=True)
    constraints = [
        z == up - down,
        z >= p["lower"],
        z <= p["upper"],
        p["cost_up"] @ up + p["cost_down"] @ down <= p["budget"],
    ]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(z - p["delta"])), constraints)
    problem.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return np.asarray(z.value)


def project(p: dict[str, np.ndarray | float], **kw: str) -> np.ndarray:
    return project_weighted_l1_ball(
        p["delta"], p["budget"], p["cost_up"], p["cost_down"], p["lower"], p["upper"], **kw
    )


def feasible(z: np.ndarray, p: dict[str, np.ndarray | float]) -> bool:
    spent = float(weighted_l1(z, p["cost_up"], p["cost_down"]))
    budget = float(p["budget"])  # type: ignore[arg-type]
    inside = np.all(z >= p["lower"] - 1e-12) and np.all(z <= p["upper"] + 1e-12)
    return bool(inside and spent <= budget * (1 + 1e-9) + 1e-12)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_agrees_with_a_qp_solver(p: dict[str, np.ndarray | float]) -> None:
    z, q = project(p), qp(p)
    assert feasible(z, p)
    # the same point, unless the solver's answer is inaccurate (CLARABEL warns so on some instances): then
    # ours, feasible, must be strictly closer (the projection is unique, so closer is better)
    mine, theirs = np.linalg.norm(z - p["delta"]), np.linalg.norm(q - p["delta"])
    assert mine <= theirs + 1e-9
    assert np.abs(z - q).max() < 1e-6 or mine < theirs - 1e-12


@settings(max_examples=100, deadline=None)
@given(instances(), st.integers(0, 2**32 - 1))
def test_projection_properties(p: dict[str, np.ndarray | float], seed: int) -> None:
    z = project(p)
    assert feasible(z, p)
    # idempotent: a feasible point is its own projection
    np.testing.assert_allclose(project({**p, "delta": z}), z, atol=1e-12)
    # variational inequality (KKT of a projection onto a convex set): (v - z).(y - z) <= 0 for feasible y
    rng = np.random.default_rng(seed)
    for _ in range(20):
        y = project({**p, "delta": rng.normal(size=len(z)) * 3})
        assert feasible(y, p)
        assert float((p["delta"] - z) @ (y - z)) <= 1e-9
    # the shrink is feasible too, but never closer than the projection
    s = project(p, method="shrink")
    assert feasible(s, p)
    assert np.linalg.norm(z - p["delta"]) <= np.linalg.norm(s - p["delta"]) + 1e-12


def test_free_and_forbidden_directions_and_budget_zero() -> None:
    delta = np.array([2.0, -2.0, 1.5, -1.0, 1.2])
    cost_up = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # the first coordinate rises for free
    cost_down = np.array([1.0, 1.0, 1.0, 0.0, 2.0])  # the fourth falls for free
    lower = np.array([-1.0, 0.0, -1.0, -0.5, -1.0])  # the second may not fall
    upper = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    z = project_weighted_l1_ball(delta, 0.0, cost_up, cost_down, lower, upper)
    np.testing.assert_array_equal(z, [1.0, 0.0, 0.0, -0.5, 0.0])  # budget 0: only free moves
    z = project_weighted_l1_ball(delta, 1.0, cost_up, cost_down, lower, upper)
    assert z[0] == 1.0 and z[1] == 0.0 and z[3] == -0.5
    # the budget goes to the other two with one multiplier t: (1.5 - t) + 2 (1.2 - 2t) = 1, t = 0.58
    np.testing.assert_allclose(z[[2, 4]], [0.92, 0.04], atol=1e-12)
    big = project_weighted_l1_ball(delta, 1e9, cost_up, cost_down, lower, upper)
    np.testing.assert_array_equal(big, project_box(delta, lower, upper))


def test_batched_rows_equal_single_rows_and_types_round_trip() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 6)) * 2
    budget = rng.uniform(0, 2, 50)
    args = (np.full(6, 0.7), np.full(6, 1.3), -np.ones(6), np.ones(6))
    batch = project_weighted_l1_ball(v, budget, *args)
    assert isinstance(batch, np.ndarray) and batch.shape == v.shape
    for i in range(0, 50, 7):
        np.testing.assert_allclose(project_weighted_l1_ball(v[i], budget[i], *args), batch[i], atol=1e-14)
    as_tensor = project_weighted_l1_ball(
        torch.as_tensor(v), torch.as_tensor(budget), *map(torch.as_tensor, args)
    )
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), batch, atol=0)


def test_shrink_keeps_the_step_direction() -> None:
    v = np.array([3.0, 1.0, -2.0])
    s = project_weighted_l1_ball(
        v, 1.0, np.ones(3), np.ones(3), -10 * np.ones(3), 10 * np.ones(3), method="shrink"
    )
    np.testing.assert_allclose(s / np.abs(s).sum(), v / np.abs(v).sum(), atol=1e-12)
    assert abs(np.abs(s).sum() - 1.0) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -1.0}, "budget must be >= 0"),
        ({"budget": float("nan")}, "budget must be >= 0"),
        ({"lower": np.array([0.5, -1.0])}, "lower <= 0 <= upper"),
        ({"upper": np.array([-2.0, 1.0])}, "lower bound must be <= its upper"),
        ({"cost_up": np.array([-1.0, 1.0])}, "cost_up must be finite and >= 0"),
        ({"delta": np.array([np.nan, 1.0])}, "NaN or infinite"),
        ({"method": "euclid"}, "use 'exact' or 'shrink'"),
        ({"budget": np.ones(3)}, "budget has 3 entries"),
    ],
)
def test_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "delta": np.array([1.0, -1.0]),
        "budget": 1.0,
        "cost_up": np.ones(2),
        "cost_down": np.ones(2),
        "lower": -np.ones(2),
        "upper": np.ones(2),
    }
    args.update(kwargs)
    method = args.pop("method", "exact")
    with pytest.raises(ConfigError, match=message):
        project_weighted_l1_ball(**args, method=method)  # type: ignore[arg-type]
