"""The expression language: DESIGN's examples evaluate right with gradients; hostile input is a SpecError."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import SpecError
from actionable.expr import NODE_TYPES, Categorical, parse, walk

T = torch.float64


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=T)


def test_design_examples() -> None:
    env = {
        "savings": t(100, 200),
        "amount": t(5, 7),
        "rate": t(2, 4),
        "duration": t(24, 12),
        "months": t(6, 3),
    }
    assert parse("savings + amount").evaluate(env).tolist() == [105, 207]  # type: ignore[union-attr]
    out = parse("rate * duration / (duration - months)").evaluate(env)
    assert torch.allclose(out, t(2 * 24 / 18, 4 * 12 / 9))  # type: ignore[arg-type]
    assert torch.allclose(parse("(months / duration) ** 2").evaluate(env), t(0.0625, 0.0625))  # type: ignore[arg-type]
    assert parse("duration - months >= 6").evaluate(env).tolist() == [True, True]  # type: ignore[union-attr]
    assert parse("amount / 1000").evaluate(env).tolist() == [0.005, 0.007]  # type: ignore[union-attr]
    level = parse("'guarantor'")
    assert level.is_level and level.evaluate({}) == "guarantor"


def test_chained_comparisons_and_logic() -> None:
    env = {"x": t(0, 5, 10)}
    assert parse("1 < x < 10").evaluate(env).tolist() == [False, True, False]  # type: ignore[union-attr]
    assert parse("x < 1 or x > 9").evaluate(env).tolist() == [True, False, True]  # type: ignore[union-attr]
    assert parse("not (x == 5)").evaluate(env).tolist() == [True, False, True]  # type: ignore[union-attr]
    assert parse("x <= 5 and x != 0").is_boolean


def test_functions_are_elementwise() -> None:
    env = {"a": t(1, -4), "b": t(3, -2), "c": t(2, 2)}
    assert parse("min(a, b, c)").evaluate(env).tolist() == [1, -4]  # type: ignore[union-attr]
    assert parse("max(a, b)").evaluate(env).tolist() == [3, -2]  # type: ignore[union-attr]
    assert parse("abs(a) + sqrt(c * 8) + log(exp(b))").evaluate(env).tolist() == [8, 6]  # type: ignore[union-attr]


def test_gradient_matches_closed_form_and_finite_differences() -> None:
    months = t(6.0, 3.0).requires_grad_(True)
    duration = t(24.0, 12.0)
    cost = parse("(months / duration) ** 2").evaluate({"months": months, "duration": duration})
    (grad,) = torch.autograd.grad(cost.sum(), months)  # type: ignore[union-attr]
    assert torch.allclose(grad, 2 * months.detach() / duration**2)
    h = 1e-6
    up = parse("(months / duration) ** 2").evaluate({"months": months.detach() + h, "duration": duration})
    down = parse("(months / duration) ** 2").evaluate({"months": months.detach() - h, "duration": duration})
    assert torch.allclose(grad, (up - down) / (2 * h), atol=1e-6)  # type: ignore[operator]


def test_categories_compare_with_levels() -> None:
    job = Categorical(torch.tensor([[1.0, 0, 0], [0, 0, 1]], dtype=T), ("none", "guarantor", "co-applicant"))
    levels = {"job": job.levels}
    assert parse("job == 'none'", levels=levels).evaluate({"job": job}).tolist() == [True, False]  # type: ignore[union-attr]
    assert parse("'none' != job", levels=levels).evaluate({"job": job}).tolist() == [False, True]  # type: ignore[union-attr]
    with pytest.raises(SpecError, match=r"'gurantor' is not a level of 'job'.*Did you mean 'guarantor'"):
        parse("job == 'gurantor'", levels=levels)
    with pytest.raises(SpecError, match="can only be compared with == or != to one of its levels"):
        parse("job + 1", levels=levels)
    with pytest.raises(SpecError, match="'age' is not a category feature"):
        parse("age == 'old'", levels=levels)


def test_names_are_checked_with_a_hint() -> None:
    expr = parse("savings + amount", names={"savings", "amount"})
    assert expr.names == {"savings", "amount"}
    with pytest.raises(SpecError, match=r"unknown name 'saving'\. Did you mean 'savings'\?"):
        parse("saving + 1", names={"savings", "amount"})


def test_where_is_in_every_message() -> None:
    with pytest.raises(SpecError, match=r"^actions.toml, action 'a', key 'cost': attribute access"):
        parse("x.real", where="actions.toml, action 'a', key 'cost'")


HOSTILE = [
    "__import__('os').system('ls')",
    "x.__class__",
    "().__class__.__bases__",
    "open('f')",
    "eval('1')",
    "exec('1')",
    "lambda: 1",
    "[x for x in y]",
    "x[0]",
    "f'{x}'",
    "(y := 1)",
    "a if b else c",
    "a is b",
    "a in b",
    "a // b",
    "a % b",
    "a & b",
    "a @ b",
    "~a",
    "_secret",
    "log(x, base=2)",
    "abs(*x)",
    "log(1, 2)",
    "min(1)",
    "getattr(x, 'y')",
    "{1: 2}",
    "[1, 2]",
    "(1, 2)",
    "{1}",
    "b'x'",
    "None",
    "...",
    "1j",
    "'a' + 'b'",
    "x < 'a'",
    "x" * 2001,
    "(" * 500 + "1" + ")" * 500,
    "-" * 10000 + "1",
    "1 +",
    "",
    "   ",
    "log",
    "x == 'a' == 'b'",
    "a and 'b'",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda s: s[:30])
def test_hostile_input_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError):
        parse(text, levels={"x": ("a", "b")})


def test_huge_numbers_do_not_hang() -> None:
    assert parse("9 ** 9 ** 9").evaluate({}).item() == float("inf")  # type: ignore[union-attr]
    assert parse("9" * 1000).evaluate({}).item() == float("inf")  # type: ignore[union-attr]


def test_evaluation_errors_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="no value for name 'x'"):
        parse("x + 1").evaluate({})
    with pytest.raises(SpecError, match="and/or/not need conditions"):
        parse("x and y").evaluate({"x": t(1), "y": t(1)})


ALPHABET = "abxy_0123456789.+-*/%()[]{}<>=!'\" ,:;@~&|^\\eE"


@given(st.one_of(st.text(max_size=60), st.text(alphabet=ALPHABET, max_size=60)))
@settings(max_examples=500, deadline=None)
def test_fuzz_parse_returns_whitelisted_nodes_or_spec_error(text: str) -> None:
    try:
        expr = parse(text)
    except SpecError:
        return
    assert all(isinstance(node, NODE_TYPES) for node in walk(expr.node))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(finite, finite, finite)
@settings(max_examples=100, deadline=None)
def test_arithmetic_equals_torch(a: float, b: float, c: float) -> None:
    env = {"a": t(a), "b": t(b), "c": t(c)}
    assert torch.equal(parse("a + b * c").evaluate(env), env["a"] + env["b"] * env["c"])  # type: ignore[arg-type]
