"""The expression language: DESIGN's examples evaluate right with gradients; hostile input is a SpecError."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import SpecError
from actionable.expr import (
    FUNCTIONS,
    NODE_TYPES,
    Binary,
    BoolOp,
    Call,
    Categorical,
    Compare,
    Const,
    Expr,
    IfElse,
    Name,
    Unary,
    parse,
    walk,
)

T = torch.float64
WHERE = "actions.toml, action 'a', key 'cost'"


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=T)


def value(text: str, env: dict[str, torch.Tensor | Categorical], **kwargs: object) -> torch.Tensor:
    """Evaluate and insist on a tensor (keeps the tests free of type ignores)."""
    out = parse(text, **kwargs).evaluate(env)  # type: ignore[arg-type]
    assert isinstance(out, torch.Tensor), out
    return out


def error(text: str, **kwargs: object) -> str:
    """The message of the SpecError that parsing ``text`` raises."""
    with pytest.raises(SpecError) as info:
        parse(text, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


JOB = Categorical(
    torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=T),
    ("unemployed", "unskilled", "skilled", "management"),
)
DEBTORS = Categorical(torch.tensor([[1.0, 0], [0, 1], [1, 0]], dtype=T), ("none", "guarantor"))
LEVELS = {"job": JOB.levels, "other_debtors": DEBTORS.levels}


# ------------------------------------------------------------------------------------------ examples
def test_design_examples() -> None:
    env: dict[str, torch.Tensor | Categorical] = {
        "savings": t(100, 200),
        "amount": t(5, 7),
        "rate": t(2, 4),
        "duration": t(24, 12),
        "months": t(6, 3),
    }
    assert value("savings + amount", env).tolist() == [105, 207]
    assert torch.allclose(value("rate * duration / (duration - months)", env), t(2 * 24 / 18, 4 * 12 / 9))
    assert torch.allclose(value("(months / duration) ** 2", env), t(0.0625, 0.0625))
    assert value("duration - months >= 10", env).tolist() == [True, False]
    assert value("amount / 1000", env).tolist() == [0.005, 0.007]
    assert value("5", env).item() == 5.0
    level = parse("'guarantor'")
    assert level.is_level and not level.is_boolean and level.evaluate({}) == "guarantor"


def test_design_category_examples() -> None:
    env: dict[str, torch.Tensor | Categorical] = {"age": t(30, 17, 40), "job": JOB, "other_debtors": DEBTORS}
    adult = value("age >= 18 and not (job == 'unemployed')", env, levels=LEVELS)
    assert adult.tolist() == [False, False, True]
    assert value("other_debtors != 'guarantor'", env, levels=LEVELS).tolist() == [True, False, True]
    assert value("'skilled' == job", env, levels=LEVELS).tolist() == [False, True, False]


def test_tree_names_and_flags() -> None:
    expr = parse("rate * duration / (duration - months)")
    assert isinstance(expr, Expr) and expr.names == {"rate", "duration", "months"}
    assert expr.node == Binary(
        "/",
        Binary("*", Name("rate"), Name("duration")),
        Binary("-", Name("duration"), Name("months")),
    )
    assert parse("-x").node == Unary("-", Name("x"))
    assert parse("2").node == Const(2.0) and isinstance(parse("2").node.value, float)  # type: ignore[union-attr]
    assert parse("x <= 5 and x != 0").is_boolean and parse("not x > 1").is_boolean
    assert parse("True").is_boolean and parse("x > 1").is_boolean
    assert not parse("x + 1").is_boolean and not parse("x + 1").is_level
    assert parse("  x + 1 ").text == "  x + 1 "


def test_chained_comparisons_and_logic() -> None:
    assert parse("1 < x <= 10").node == BoolOp(
        "and", (Compare("<", Const(1.0), Name("x")), Compare("<=", Name("x"), Const(10.0)))
    )
    env: dict[str, torch.Tensor | Categorical] = {"x": t(0, 5, 10)}
    assert value("1 < x < 10", env).tolist() == [False, True, False]
    assert value("0 <= x < 10 != x", env).tolist() == [True, True, False]
    assert value("x < 1 or x > 9", env).tolist() == [True, False, True]
    assert value("not (x == 5)", env).tolist() == [True, False, True]
    assert value("x == 5 or False", env).tolist() == [False, True, False]


def test_functions_are_elementwise_and_broadcast() -> None:
    env: dict[str, torch.Tensor | Categorical] = {"a": t(1, -4), "b": t(3, -2), "c": t(2, 2)}
    assert value("min(a, b, c)", env).tolist() == [1, -4]
    assert value("max(a, b)", env).tolist() == [3, -2]
    assert value("max(a, b, c)", env).tolist() == [3, 2]
    assert value("min(a, 0)", env).tolist() == [0, -4]
    assert value("abs(a) + sqrt(c * 8) + log(exp(b))", env).tolist() == [8, 6]
    grid = value("x * 10 + y", {"x": t(1, 2, 3).reshape(3, 1), "y": t(1, 2, 3, 4)})
    assert grid.shape == (3, 4) and grid[2, 3].item() == 34


def test_booleans_in_arithmetic_take_the_other_float_type() -> None:
    x = torch.tensor([0.5, 2.0], dtype=torch.float32)
    out = value("(x > 1) * x", {"x": x})
    assert out.dtype == torch.float32 and out.tolist() == [0.0, 2.0]
    assert value("(x > 1) + (x > 0)", {"x": x}).tolist() == [1.0, 2.0]
    assert value("x * 2", {"x": x}).dtype == torch.float32
    assert value("max(x > 1, x)", {"x": x}).dtype == torch.float32
    assert value("-(x > 1)", {"x": x}).tolist() == [0.0, -1.0]
    assert value("(x > 1) * (x > 0)", {"x": x}).dtype == torch.float64


def test_gradients_match_closed_form_and_finite_differences() -> None:
    months = t(6.0, 3.0).requires_grad_(True)
    duration = t(24.0, 12.0)
    expr = parse("(months / duration) ** 2")
    cost = expr.evaluate({"months": months, "duration": duration})
    assert isinstance(cost, torch.Tensor)
    (grad,) = torch.autograd.grad(cost.sum(), months)
    assert torch.allclose(grad, 2 * months.detach() / duration**2)
    h = 1e-6
    up = value(expr.text, {"months": months.detach() + h, "duration": duration})
    down = value(expr.text, {"months": months.detach() - h, "duration": duration})
    assert torch.allclose(grad, (up - down) / (2 * h), atol=1e-6)

    rate = t(2.0, 4.0)
    new_rate = value(
        "rate * duration / (duration - months)", {"rate": rate, "duration": duration, "months": months}
    )
    (grad,) = torch.autograd.grad(new_rate.sum(), months)
    assert torch.allclose(grad, rate * duration / (duration - months.detach()) ** 2)


def test_categories_compare_with_levels() -> None:
    env: dict[str, torch.Tensor | Categorical] = {"job": JOB}
    assert value("job == 'unemployed'", env, levels=LEVELS).tolist() == [True, False, False]
    assert value("'unemployed' != job", env, levels=LEVELS).tolist() == [False, True, True]
    assert value("job == 'management' or job == 'skilled'", env).tolist() == [False, True, True]
    message = error("job == 'skiled'", levels=LEVELS)
    assert "'skiled' is not a level of 'job'" in message and "Did you mean 'skilled'" in message
    assert "'management'" in message  # the valid levels are listed
    with pytest.raises(SpecError, match="category feature 'job' can only be compared with == or !="):
        parse("job + 1", levels=LEVELS)
    with pytest.raises(SpecError, match="category feature 'job' can only be compared with == or !="):
        parse("job > 1", levels=LEVELS)
    with pytest.raises(SpecError, match="'age' is not a category feature"):
        parse("age == 'old'", levels=LEVELS)
    assert parse("age == 'old'").names == {"age"}  # without levels the check waits for evaluation


def test_category_misuse_at_evaluation_names_the_feature() -> None:
    env: dict[str, torch.Tensor | Categorical] = {"job": JOB, "age": t(1, 2, 3)}
    with pytest.raises(
        SpecError, match="category feature 'job' can only be compared with == or != to a level"
    ):
        parse("job * 2").evaluate(env)
    with pytest.raises(SpecError, match="'boss' is not a level of 'job'"):
        parse("job == 'boss'").evaluate(env)
    with pytest.raises(SpecError, match="'age' is not a category feature"):
        parse("age == 'old'").evaluate(env)


def test_names_are_checked_with_a_hint() -> None:
    expr = parse("savings + amount", names={"savings", "amount"})
    assert expr.names == {"savings", "amount"}
    message = error("saving + 1", names={"savings", "amount"}, where=WHERE)
    assert message.startswith(f"{WHERE}: unknown name 'saving'. Did you mean 'savings'?")
    assert "['amount', 'savings']" in message


def test_function_names_are_values_only_when_declared() -> None:
    assert "is a function" in error("log")
    assert "is a function" in error("exp + 1", names={"x"})
    assert value("log(exp) * 2", {"exp": t(1.0)}, names={"exp"}).tolist() == [0.0]
    assert value("exp(exp)", {"exp": t(0.0)}, names={"exp"}).tolist() == [1.0]


def test_message_says_where_what_got_and_fix() -> None:
    assert error("x.__class__", where=WHERE) == (
        f"{WHERE}: attribute access is not allowed in expressions (got 'x.__class__'); use feature and "
        "parameter names, numbers, quoted category levels, + - * / **, abs min max log exp sqrt, "
        "comparisons (< <= > >= == !=), and/or/not, and 'a if condition else b'."
    )


# ------------------------------------------------------------------------------------------ hostile
HOSTILE = [
    "__import__('os').system('ls')",
    "x.__class__",
    "().__class__.__bases__",
    "open('f')",
    "eval('1')",
    "exec('1')",
    "compile('1', 'f', 'eval')",
    "lambda: 1",
    "[x for x in y]",
    "{x for x in y}",
    "(x for x in y)",
    "x[0]",
    "x[1:2]",
    "f'{x}'",
    "(y := 1)",
    "a if b + 1 else c",
    "a if b else 'x'",
    "job if x > 1 else 1",
    "(a if b > 0 else c) and x > 1",
    "a if x > 1",
    "a is b",
    "a is not b",
    "a in b",
    "a not in b",
    "a // b",
    "a % b",
    "a & b",
    "a | b",
    "a ^ b",
    "a << b",
    "a @ b",
    "~a",
    "_secret",
    "__builtins__",
    "log(x, base=2)",
    "abs(*x)",
    "max(**x)",
    "log(1, 2)",
    "min(1)",
    "sqrt()",
    "getattr(x, 'y')",
    "x.real(1)",
    "(x)(1)",
    "{1: 2}",
    "[1, 2]",
    "(1, 2)",
    "{1}",
    "b'x'",
    "None",
    "...",
    "1j",
    "'a' + 'b'",
    "-'a'",
    "abs('a')",
    "x < 'a'",
    "job < 'a'",
    "'a' == 'a'",
    "1 == 'a'",
    "x == 'a' == 'b'",
    "a and 'b'",
    "not 'b'",
    "x and 1",
    "not (x + 1)",
    "x" * 2001,
    "1+" * 2500 + "1",
    "(" * 500 + "1" + ")" * 500,
    "-" * 10000 + "1",
    "-" * 1999 + "1",
    "a+" * 999 + "a",
    "not " * 300 + "x",
    "1 +",
    "x = 1",
    "import os",
    "x; y",
    "",
    "   ",
    "log",
    "job == 'c'",
    "job + 1",
    "job and x",
    "x\x00",
    "\ud800",
    "x == '\\d'",  # an invalid escape is an error now, as it will be in future Pythons
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda s: ascii(s[:30]))
def test_hostile_input_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(text, levels={"job": ("a", "b")}, where=WHERE)
    assert str(info.value).startswith(f"{WHERE}: ")
    assert "got" in str(info.value) or "unknown name" in str(info.value)


def test_nesting_within_the_limit_is_fine() -> None:
    assert value("-" * 60 + "1", {}).item() == 1.0
    assert value("+".join(["x"] * 60), {"x": t(1)}).item() == 60.0
    assert value("(" * 150 + "x" + ")" * 150, {"x": t(2)}).item() == 2.0  # parentheses make no nodes


def test_invalid_escape_is_a_spec_error_whatever_the_warning_filters() -> None:
    assert "invalid escape sequence" in error("'\\d'")


def test_huge_numbers_do_not_hang() -> None:
    assert value("9 ** 9 ** 9", {}).item() == math.inf
    assert value("9" * 1000, {}).item() == math.inf
    assert value("1e999 - 1e999", {}).isnan().item()


def test_evaluation_errors_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="no value for name 'x'"):
        parse("x + 1").evaluate({})
    with pytest.raises(SpecError, match="and/or/not need conditions"):
        parse("x and y").evaluate({"x": t(1), "y": t(1)})
    with pytest.raises(SpecError, match="'x' is a number"):
        parse("not x").evaluate({"x": t(1)})


# ------------------------------------------------------------------------------------------ fuzzing
ALPHABET = "abxy_ABlogexpsqrtminax0123456789.+-*/%()[]{}<>=!'\" ,:;@~&|^\\eEjJ\n\t#"
OPS = {
    Unary: ("op", {"-", "+"}),
    Binary: ("op", {"+", "-", "*", "/", "**"}),
    Compare: ("op", {"<", "<=", ">", ">=", "==", "!="}),
    BoolOp: ("op", {"and", "or"}),
    Call: ("func", set(FUNCTIONS)),
}


def check_whitelisted(expr: Expr) -> None:
    for node in walk(expr.node):
        assert isinstance(node, NODE_TYPES)
        if type(node) in OPS:
            field, allowed = OPS[type(node)]
            assert getattr(node, field) in allowed
        if isinstance(node, Const):
            assert type(node.value) in (float, str, bool)
        if isinstance(node, Name):
            assert node.id.isidentifier() and not node.id.startswith("_")


@given(st.one_of(st.text(max_size=60), st.text(alphabet=ALPHABET, max_size=60)))
@settings(max_examples=600, deadline=None)
def test_fuzz_parse_returns_whitelisted_nodes_or_spec_error(text: str) -> None:
    try:
        expr = parse(text, where="W")
    except SpecError as exc:
        assert str(exc).startswith("W: ")
        return
    check_whitelisted(expr)


def expressions() -> st.SearchStrategy[str]:
    """Well-formed numeric expressions over a, b, c: they must parse and evaluate without crashing."""
    leaves = st.one_of(
        st.sampled_from(["a", "b", "c"]), st.floats(0, 1e3, allow_nan=False).map(repr), st.just("True")
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
            lambda p: f"({p[0]} {p[1]} {p[2]})"
        )
        call = st.tuples(st.sampled_from(["abs", "log", "exp", "sqrt"]), inner).map(
            lambda p: f"{p[0]}({p[1]})"
        )
        extreme = st.tuples(st.sampled_from(["min", "max"]), st.lists(inner, min_size=2, max_size=3)).map(
            lambda p: f"{p[0]}({', '.join(p[1])})"
        )
        compare = st.tuples(inner, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), inner).map(
            lambda p: f"({p[0]} {p[1]} {p[2]})"
        )
        choose = st.tuples(inner, inner, inner, inner).map(
            lambda p: f"({p[0]} if {p[1]} < {p[2]} else {p[3]})"
        )
        return st.one_of(binary, call, extreme, compare, choose, inner.map(lambda s: f"-{s}"))

    return st.recursive(leaves, extend, max_leaves=12)


@given(expressions())
@settings(max_examples=200, deadline=None)
def test_fuzz_well_formed_expressions_evaluate(text: str) -> None:
    expr = parse(text, names={"a", "b", "c"})
    check_whitelisted(expr)
    env: dict[str, torch.Tensor | Categorical] = {
        "a": t(1.5, -2.0, 0.0),
        "b": torch.tensor(3.0, dtype=T),
        "c": t(0.5, 2.0, 7.0),
    }
    out = expr.evaluate(env)
    assert isinstance(out, torch.Tensor) and out.shape in ((), (3,))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(finite, finite, finite)
@settings(max_examples=100, deadline=None)
def test_arithmetic_equals_torch(a: float, b: float, c: float) -> None:
    env: dict[str, torch.Tensor | Categorical] = {"a": t(a), "b": t(b), "c": t(c)}
    assert torch.equal(value("a + b * c", env), t(a) + t(b) * t(c))
    assert torch.equal(value("a - b / c", env), t(a) - t(b) / t(c)) or c == 0


# ------------------------------------------------------------------------------------ conditionals
def test_conditional_picks_per_row_like_numpy_where() -> None:
    env: dict[str, torch.Tensor | Categorical] = {"x": t(0.0, 1.0, 1.0, 0.5), "p": t(0.25)}
    got = value("p if x == 1 else x", env, names={"x", "p"})
    rows = np.array([0.0, 1, 1, 0.5])
    assert torch.equal(got, torch.as_tensor(np.where(rows == 1, 0.25, rows)))
    chained = value("1 if x < 0.4 else 2 if x < 0.9 else 3", env, names={"x", "p"})
    assert torch.equal(chained, t(1, 3, 3, 2))
    both = value("x + 10 if x > 0 and x < 1 else -x", env, names={"x", "p"})
    assert torch.equal(both, t(-0.0, -1, -1, 10.5))
    expr = parse("p if x == 1 else x", names={"x", "p"})
    assert isinstance(expr.node, IfElse) and expr.names == {"x", "p"} and not expr.is_boolean
    assert not expr.is_level


def test_conditional_gradient_reaches_only_the_chosen_branch() -> None:
    p = torch.tensor(0.3, dtype=T, requires_grad=True)
    x = t(1.0, 0.2, 1.0)
    out = value("p * p if x == 1 else x + p", {"x": x, "p": p}, names={"x", "p"})
    (grad,) = torch.autograd.grad(out.sum(), p)
    assert math.isclose(float(grad), 2 * (2 * 0.3) + 1.0)  # two rows take p*p, one takes x + p


def test_conditional_needs_a_condition_and_numbers() -> None:
    assert "and/or/not need conditions, not numbers" in error("a if b + 1 else c", where=WHERE)
    assert "category feature 'job'" in error("job if x > 1 else 1", levels=LEVELS)
    assert "not allowed" in error("a if b else 'x'")
    with pytest.raises(SpecError, match="and/or/not need conditions"):
        parse("a if b else c").evaluate({"a": t(1), "b": t(2), "c": t(3)})


def test_an_expression_may_span_lines_as_a_toml_multi_line_string_writes_it() -> None:
    got = value("\n  a\n  + b * 2\n", {"a": t(1.0), "b": t(3.0)})
    assert torch.equal(got, t(7.0))
    assert "not allowed" in error("a\n.__class__")
