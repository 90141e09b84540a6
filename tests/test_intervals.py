"""Interval evaluation is sound: every exact value on the box lies in the span (or is NaN where allowed)."""

from __future__ import annotations

import math

import pytest
import torch

from actionable import expr as E
from actionable import intervals as I

BOX: dict[str, I.Span | tuple[str, ...]] = {
    "x": I.Span(-3.0, 2.0),
    "y": I.Span(0.0, 5.0),
    "z": I.Span(1.0, 4.0),
    "job": ("a", "b", "c"),
}
EXPRESSIONS = [
    "x + y * z",
    "x - x",
    "x * y - z / 2",
    "y / x",
    "x / y",
    "z / x",
    "1 / y",
    "x ** 2",
    "x ** 3",
    "x ** -1",
    "y ** -2",
    "y ** 0.5",
    "x ** 0.5",
    "z ** x",
    "y ** x",
    "(-2) ** x",
    "abs(x) + abs(y - 3)",
    "log(y)",
    "log(x)",
    "sqrt(x + 1)",
    "exp(z * 100)",
    "min(x, y, 1)",
    "max(x, z) - min(y, 2)",
    "x if x > 0 else -x",
    "y if job == 'a' else z",
    "(x > 0) * 10 + (y <= 1)",
    "1e309 - 1e309",
    "0 * 1e309",
    "10 ** 10 ** 10",
]


def points(n: int = 4000) -> dict[str, E.Value]:
    generator = torch.Generator().manual_seed(1)
    env: dict[str, E.Value] = {}
    for name, value in BOX.items():
        if isinstance(value, I.Span):
            u = torch.rand(n, generator=generator, dtype=torch.float64)
            u[:8] = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1], dtype=torch.float64)  # the ends
            v = value.lo + (value.hi - value.lo) * u
            v[8:12] = 0.0 if value.contains(0.0) else value.lo
            env[name] = v
        else:
            codes = torch.randint(len(value), (n,), generator=generator)
            env[name] = E.Categorical(torch.nn.functional.one_hot(codes, len(value)).double(), tuple(value))
    return env


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_span_contains_every_exact_value(text: str) -> None:
    parsed = E.parse(text, names=list(BOX), levels={"job": BOX["job"]})  # type: ignore[dict-item]
    span = I.span(parsed.node, BOX)
    value = parsed.evaluate(points())
    assert isinstance(value, torch.Tensor)
    value = value.double()
    nan = torch.isnan(value)
    assert span.nan or not nan.any(), f"{text}: NaN at a point, span says never"
    inside = value[~nan]
    assert bool((inside >= span.lo).all()) and bool((inside <= span.hi).all()), (
        text,
        span,
        inside.min(),
        inside.max(),
    )


@pytest.mark.parametrize(
    ("text", "may_hold", "may_fail"),
    [
        ("x > 5", False, True),
        ("x >= -3", True, False),
        ("x > 0 and y > 0", True, True),
        ("not (z >= 1)", False, True),
        ("job == 'a' or job != 'a'", True, True),
        ("z < 1 or y > 5", False, True),
    ],
)
def test_truth_of_conditions(text: str, may_hold: bool, may_fail: bool) -> None:
    parsed = E.parse(text, names=list(BOX), levels={"job": BOX["job"]})  # type: ignore[dict-item]
    assert I.truth(parsed.node, BOX) == I.Truth(may_hold, may_fail)


def test_narrow_finds_contradictions_and_keeps_every_solution() -> None:
    parse = lambda t: E.parse(t, names=list(BOX)).node  # noqa: E731
    assert I.narrow([parse("x > 1"), parse("x < 0.5")], BOX) is None
    assert I.narrow([parse("y > 4 and y < 3")], BOX) is None
    box = I.narrow([parse("x >= 1"), parse("y == 2"), parse("z <= x + 2")], BOX)
    assert box is not None
    assert box["x"] == I.Span(1.0, 2.0) and box["y"] == I.Span(2.0, 2.0) and box["z"] == I.Span(1.0, 4.0)


def test_special_spans() -> None:
    assert I.span(E.parse("1e309").node, {}) == I.Span(math.inf, math.inf)
    assert I.span(E.parse("sqrt(-1)").node, {}).empty
    assert I.span(E.parse("1 / 0").node, {}).lo == -math.inf
