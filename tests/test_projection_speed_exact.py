"""The blocked, sort-and-bisect exact projection against two independent oracles: the same projection
in exact rational arithmetic (fractions), and an LP optimality certificate solved by HiGHS (scipy's
linprog): z is the projection of v iff max over the feasible set of (v - z).y equals (v - z).z."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import actionable.projections as projections
from actionable import project_weighted_l1_ball
from actionable.projections import weighted_l1

Instance = dict[str, np.ndarray]


@st.composite
def batches(draw: st.DrawFn) -> Instance:
    """Rows of random problems with per-row bounds and budgets: some sides forbidden (bound 0), some
    directions free (cost 0), some budgets 0, some rows already within budget."""
    n, d = draw(st.integers(1, 7)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))

    def price() -> np.ndarray:
        return rng.uniform(0.1, 3, d) * (rng.random(d) < 0.85)  # 0: free

    return {
        "delta": rng.normal(size=(n, d)) * scale,
        "lower": -rng.uniform(0, 2, (n, d)) * (rng.random((n, d)) < 0.8),
        "upper": rng.uniform(0, 2, (n, d)) * (rng.random((n, d)) < 0.8),
        "cost_up": price(),
        "cost_down": price(),
        "budget": rng.choice([0.0, 0.05, 0.5, 1.0, 3.0, 50.0], size=n),
    }


def project(p: Instance) -> np.ndarray:
    return project_weighted_l1_ball(
        p["delta"], p["budget"], p["cost_up"], p["cost_down"], p["lower"], p["upper"]
    )


def rational(
    v: np.ndarray, budget: float, up: np.ndarray, down: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """The projection of one row in exact arithmetic: clip(|v| - theta*c, 0, room) per coordinate, with
    theta = 0 or the root of the piecewise-linear cost, scanned breakpoint by breakpoint."""
    d = len(v)
    sign = [1 if x >= 0 else -1 for x in v]
    m = [abs(Fraction(x)) for x in v]
    c = [Fraction(up[j]) if sign[j] > 0 else Fraction(down[j]) for j in range(d)]
    w = [Fraction(hi[j]) if sign[j] > 0 else -Fraction(lo[j]) for j in range(d)]
    b = Fraction(budget)

    def cost(t: Fraction) -> Fraction:
        return sum((c[j] * min(max(m[j] - t * c[j], Fraction(0)), w[j]) for j in range(d)), Fraction(0))

    theta = Fraction(0)
    if cost(theta) > b:
        points = sorted(
            {x / c[j] for j in range(d) if c[j] > 0 for x in (max(m[j] - w[j], Fraction(0)), m[j])}
        )
        previous = Fraction(0)
        for t in points:
            if cost(t) <= b:  # the root lies on the linear piece [previous, t]
                g0, g1 = cost(previous), cost(t)
                theta = previous + (g0 - b) * (t - previous) / (g0 - g1)
                break
            previous = t
    return np.array([float(sign[j] * min(max(m[j] - theta * c[j], Fraction(0)), w[j])) for j in range(d)])


@settings(max_examples=80, deadline=None)
@given(batches())
def test_equals_the_projection_in_exact_arithmetic(p: Instance) -> None:
    z = project(p)
    for i in range(len(z)):
        exact = rational(
            p["delta"][i], p["budget"][i], p["cost_up"], p["cost_down"], p["lower"][i], p["upper"][i]
        )
        np.testing.assert_allclose(z[i], exact, rtol=0, atol=1e-12)


def certificate(
    v: np.ndarray,
    z: np.ndarray,
    budget: float,
    up: np.ndarray,
    down: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> float:
    """max (v - z).y over the feasible set, by HiGHS: y = p - q with 0 <= p <= upper, 0 <= q <= -lower,
    cost_up.p + cost_down.q <= budget (the lifted polytope projects onto the feasible set)."""
    r = v - z
    result = linprog(
        np.concatenate([-r, r]),
        A_ub=np.concatenate([up, down])[None],
        b_ub=[budget],
        bounds=[(0.0, h) for h in hi] + [(0.0, -low) for low in lo],
        method="highs",
    )
    assert result.status == 0, result.message
    return float(-result.fun)


@settings(max_examples=60, deadline=None)
@given(batches())
def test_linprog_certifies_optimality(p: Instance) -> None:
    z = project(p)
    for i in range(len(z)):
        v, lo, hi, b = p["delta"][i], p["lower"][i], p["upper"][i], float(p["budget"][i])
        assert np.all(z[i] >= lo) and np.all(z[i] <= hi)
        assert float(weighted_l1(z[i], p["cost_up"], p["cost_down"])) <= b * (1 + 1e-12) + 1e-12
        best = certificate(v, z[i], b, p["cost_up"], p["cost_down"], lo, hi)
        assert best <= float((v - z[i]) @ z[i]) + 1e-7 * (1 + np.abs(v).sum())


def test_blocks_tails_and_mixed_rows_agree_with_single_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows split over several blocks (the last one short), rows within budget next to rows over it,
    per-row tensors: the same answer as one row at a time and as exact arithmetic."""
    rng = np.random.default_rng(7)
    n, d = 11, 6
    p = {
        "delta": rng.normal(size=(n, d)) * 2,
        "lower": -rng.uniform(0, 1, (n, d)),
        "upper": rng.uniform(0, 1, (n, d)),
        "cost_up": np.array([0.0, 0.5, 1.0, 2.0, 0.3, 1.0]),
        "cost_down": np.array([1.0, 0.0, 1.0, 0.7, 2.0, 1.0]),
        "budget": np.where(np.arange(n) % 3 == 0, 100.0, rng.uniform(0, 2, n)),
    }
    p["budget"][1] = 0.0
    monkeypatch.setattr(projections, "CHUNK", 3)
    tensors = {k: torch.as_tensor(a) for k, a in p.items()}
    z = project_weighted_l1_ball(
        tensors["delta"],
        tensors["budget"],
        tensors["cost_up"],
        tensors["cost_down"],
        tensors["lower"],
        tensors["upper"],
    )
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float64
    for i in range(n):
        one = project_weighted_l1_ball(
            p["delta"][i], p["budget"][i], p["cost_up"], p["cost_down"], p["lower"][i], p["upper"][i]
        )
        exact = rational(
            p["delta"][i], p["budget"][i], p["cost_up"], p["cost_down"], p["lower"][i], p["upper"][i]
        )
        np.testing.assert_allclose(z[i].numpy(), one, rtol=0, atol=1e-13)
        np.testing.assert_allclose(one, exact, rtol=0, atol=1e-12)
    priced = np.where(p["delta"][1] >= 0, p["cost_up"], p["cost_down"]) > 0
    assert np.all(z[1].numpy()[priced] == 0.0)  # a zero budget allows only free moves, exactly
    assert np.any(z[1].numpy()[~priced] != 0.0)
    within = np.arange(n) % 3 == 0  # budget 100: the clipped point itself
    np.testing.assert_array_equal(z.numpy()[within], np.clip(p["delta"], p["lower"], p["upper"])[within])


def test_a_benchmark_sized_batch_matches_exact_arithmetic_on_sampled_rows() -> None:
    """The benchmark's shape of problem (many rows, d = 50, every row over budget), checked row by row
    on a sample against exact arithmetic."""
    generator = torch.Generator().manual_seed(0)
    n, d = 3000, 50
    v = torch.randn(n, d, generator=generator, dtype=torch.float64) * 2
    budget = torch.rand(n, generator=generator, dtype=torch.float64) * 5
    up, down = (torch.rand(d, generator=generator, dtype=torch.float64) + 0.1 for _ in range(2))
    lo, hi = (
        -torch.rand(d, generator=generator, dtype=torch.float64),
        torch.rand(d, generator=generator, dtype=torch.float64),
    )
    z = project_weighted_l1_ball(v, budget, up, down, lo, hi)
    for i in range(0, n, 211):
        exact = rational(v[i].numpy(), float(budget[i]), up.numpy(), down.numpy(), lo.numpy(), hi.numpy())
        np.testing.assert_allclose(z[i].numpy(), exact, rtol=0, atol=1e-12)
