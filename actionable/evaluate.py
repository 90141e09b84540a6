"""Evaluation of parsed expressions on torch tensors: exact values, and conditions with a relaxed barrier.

``Expr`` is a parsed expression (see ``expr.parse``); ``evaluate_node`` walks its tree with torch
operations, batched over rows and differentiable. A ``Condition`` owns its meaning: ``holds`` is its exact
boolean value, ``penalty`` the smooth barrier the optimiser descends (0 deep inside, ``BARRIER_WEIGHT`` at
the boundary, growing linearly past it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

import torch

from actionable.errors import SpecError, did_you_mean
from actionable.syntax import (
    Binary,
    BoolOp,
    Call,
    Categorical,
    Compare,
    Const,
    IfElse,
    Name,
    Node,
    Not,
    Unary,
    Value,
    level_example,
)

__all__ = [
    "ARITHMETIC",
    "BARRIER_WEIGHT",
    "COMPARISONS",
    "NEGATED",
    "UNARY_FUNCTIONS",
    "Condition",
    "Expr",
    "as_number",
    "evaluate_node",
    "holds",
    "promote",
    "relax",
]

BARRIER_WEIGHT = 0.1  # height of a condition's barrier at its boundary, in cost units


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its text, its tree, the names it reads and where it came from (for errors)."""

    text: str
    node: Node
    names: frozenset[str]
    where: str = "expression"

    @property
    def is_level(self) -> bool:
        """The whole expression is a quoted category level (an effect that sets a category)."""
        return isinstance(self.node, Const) and isinstance(self.node.value, str)

    @property
    def is_boolean(self) -> bool:
        """The expression is a condition: a comparison, and/or/not, or ``True``/``False``."""
        return isinstance(self.node, Compare | BoolOp | Not) or (
            isinstance(self.node, Const) and isinstance(self.node.value, bool)
        )

    def evaluate(self, env: Mapping[str, Value]) -> torch.Tensor | str:
        """Value on tensors (batched, differentiable); comparisons give bool tensors; a level gives its text."""
        if isinstance(self.node, Const) and isinstance(self.node.value, str):
            return self.node.value
        return _as_tensor(evaluate_node(self.node, env, self.where), self.where, _label(self.node))


# ----------------------------------------------------------------------------------------- evaluation
UNARY_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "abs": torch.abs,
    "log": torch.log,
    "exp": torch.exp,
    "sqrt": torch.sqrt,
}
ARITHMETIC: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "+": torch.add,
    "-": torch.sub,
    "*": torch.mul,
    "/": torch.div,
    "**": torch.pow,
}
COMPARISONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "<": torch.lt,
    "<=": torch.le,
    ">": torch.gt,
    ">=": torch.ge,
    "==": torch.eq,
    "!=": torch.ne,
}
_Result = Union[torch.Tensor, Categorical, str]  # noqa: UP007


def _label(node: Node) -> str | None:
    """The feature name behind a value, for error messages."""
    return node.id if isinstance(node, Name) else None


def _constant(truth: bool, value: float) -> torch.Tensor:
    """A number or (``truth``) a truth value as a 0-d tensor, made once per value (the flag keeps True apart
    from 1): a catalogue's expressions are evaluated at every step of a search, and results are never
    written in place. Inside ``torch.compile`` a fresh one (the compiler traces constants itself)."""
    if torch.compiler.is_compiling():
        return torch.tensor(value, dtype=torch.bool if truth else torch.float64)
    return _cached_constant(truth, value)


@functools.lru_cache(maxsize=4096)
def _cached_constant(truth: bool, value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.bool if truth else torch.float64)


def evaluate_node(node: Node, env: Mapping[str, Value], where: str) -> _Result:
    """Value of one node: a tensor, a ``Categorical`` (a bare category name) or a ``str`` (a quoted level)."""
    if isinstance(node, Const):
        if isinstance(node.value, str):
            return node.value
        return _constant(isinstance(node.value, bool), node.value)
    if isinstance(node, Name):
        if node.id not in env:
            raise SpecError(
                f"{where}: no value for name {node.id!r} at evaluation (got values for {sorted(env)}); "
                f"pass every name the expression reads."
            )
        return env[node.id]
    if isinstance(node, Compare):
        return _compare(node, env, where)
    if isinstance(node, BoolOp):
        values = [_as_bool(evaluate_node(v, env, where), where, v) for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = torch.logical_and(out, value) if node.op == "and" else torch.logical_or(out, value)
        return out
    if isinstance(node, Not):
        return torch.logical_not(_as_bool(evaluate_node(node.operand, env, where), where, node.operand))
    if isinstance(node, Unary):
        operand = as_number(evaluate_node(node.operand, env, where), where, _label(node.operand))
        return -operand if node.op == "-" else operand
    if isinstance(node, Binary):
        a, b = promote(
            _as_tensor(evaluate_node(node.left, env, where), where, _label(node.left)),
            _as_tensor(evaluate_node(node.right, env, where), where, _label(node.right)),
        )
        return ARITHMETIC[node.op](a, b)
    if isinstance(node, IfElse):
        test = _as_bool(evaluate_node(node.test, env, where), where, node.test)
        then, other = promote(
            as_number(evaluate_node(node.then, env, where), where, _label(node.then)),
            as_number(evaluate_node(node.other, env, where), where, _label(node.other)),
        )
        return torch.where(test, then, other)
    if isinstance(node, Call):
        return _call(node, env, where)
    raise SpecError(  # unreachable for trees built by parse()
        f"{where}: cannot evaluate the node {node!r}; build expressions with parse()."
    )


def _compare(node: Compare, env: Mapping[str, Value], where: str) -> torch.Tensor:
    """A comparison of numbers, or of a category with a quoted level (== and != only)."""
    left, right = evaluate_node(node.left, env, where), evaluate_node(node.right, env, where)
    if isinstance(left, str) or isinstance(right, str):
        if isinstance(left, str):
            return _level_test(right, left, node.op, where, _label(node.right))
        return _level_test(left, str(right), node.op, where, _label(node.left))
    a, b = promote(_as_tensor(left, where, _label(node.left)), _as_tensor(right, where, _label(node.right)))
    return COMPARISONS[node.op](a, b)


def _call(node: Call, env: Mapping[str, Value], where: str) -> torch.Tensor:
    """abs log exp sqrt of one argument; min and max of two or more."""
    args = [_as_tensor(evaluate_node(a, env, where), where, _label(a)) for a in node.args]
    if node.func in UNARY_FUNCTIONS:
        return UNARY_FUNCTIONS[node.func](as_number(args[0], where))
    out = args[0]  # min/max: promote() turns booleans into the other argument's float type
    for arg in args[1:]:
        a, b = promote(out, arg)
        out = torch.minimum(a, b) if node.func == "min" else torch.maximum(a, b)
    return out


def _level_test(category: _Result, level: str, op: str, where: str, name: str | None) -> torch.Tensor:
    """``category == level`` (or ``!=``) as a bool tensor over rows."""
    shown = repr(name) if name else "the other side"
    if not isinstance(category, Categorical):
        raise SpecError(
            f"{where}: {shown} is not a category feature, so it cannot equal the quoted level {level!r} "
            f"(got a {'number' if isinstance(category, torch.Tensor) else 'quoted level'}); "
            f"pass it as a Categorical or compare it with a number."
        )
    if level not in category.levels:
        raise SpecError(
            f"{where}: {level!r} is not a level of {shown} (got {level!r}); "
            f"use one of {list(category.levels)}." + did_you_mean(level, category.levels)
        )
    hit = category.onehot[..., category.levels.index(level)] > 0.5
    return hit if op == "==" else torch.logical_not(hit)


def _as_tensor(value: _Result, where: str, name: str | None = None) -> torch.Tensor:
    """The tensor behind a value; a category or a quoted level used as a number is a ``SpecError``."""
    if isinstance(value, Categorical):
        shown = f"category feature {name!r}" if name else "a category feature"
        raise SpecError(
            f"{where}: {shown} can only be compared with == or != to a level (got it used as a number); "
            f"write e.g. {level_example(name or 'feature', value.levels)}."
        )
    if isinstance(value, str):
        raise SpecError(
            f"{where}: the quoted level {value!r} has no numeric value (got it used as a number); "
            f"compare it with a category feature, e.g. feature == {value!r}."
        )
    return value


def as_number(value: _Result, where: str, name: str | None = None) -> torch.Tensor:
    """A tensor fit for arithmetic: booleans become float64; categories and levels are ``SpecError``."""
    tensor = _as_tensor(value, where, name)
    return tensor.to(torch.float64) if tensor.dtype == torch.bool else tensor


def promote(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Booleans become the other operand's float type (or float64); mixed float types promote like torch."""
    if a.dtype == torch.bool:
        a = a.to(b.dtype if b.is_floating_point() else torch.float64)
    if b.dtype == torch.bool:
        b = b.to(a.dtype if a.is_floating_point() else torch.float64)
    return a, b


def _as_bool(value: _Result, where: str, node: Node) -> torch.Tensor:
    tensor = _as_tensor(value, where, _label(node))
    if tensor.dtype != torch.bool:
        got = f"{node.id!r} is a number" if isinstance(node, Name) else "a number"
        raise SpecError(
            f"{where}: and/or/not need conditions (got {got}); compare it first, e.g. x > 0 and y <= 1."
        )
    return tensor


# ------------------------------------------------------------------------------------- conditions
_broadcast: Callable[..., tuple[torch.Tensor, ...]] = (
    torch.broadcast_tensors
)  # typed: torch leaves it untyped
NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class Condition:
    """A boolean expression with the scale of its barrier (raw units; default from the features' ranges).

    It owns its meaning: ``holds`` is the exact truth, ``penalty`` the relaxed barrier the optimiser
    descends, and ``relax`` both from one evaluation.
    """

    expr: Expr
    scale: float | None = None

    def holds(self, env: Mapping[str, Value]) -> torch.Tensor:
        """The exact boolean value (a bool tensor over rows)."""
        value = self.expr.evaluate(env)
        if not isinstance(value, torch.Tensor) or value.dtype != torch.bool:
            raise SpecError(f"{self.expr.where}: {self.expr.text!r} did not evaluate to a condition.")
        return value

    def relax(self, env: Mapping[str, Value], default_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The relaxed penalty and the exact truth, from one evaluation.

        Penalty for a comparison with slack d (>= 0 when it holds) and scale s: w exp(-d/s) for d >= 0 and
        w (1 - d/s) below 0, so it is 0 deep inside, ``BARRIER_WEIGHT`` at the boundary and grows linearly
        past it, with a continuous slope. ``and`` sums, ``or`` takes the minimum; comparisons of categories
        carry no gradient (a constant penalty when false).
        """
        scale = self.scale or default_scale
        return _relax(self.expr.node, env, scale, negate=False, where=self.expr.where)

    def penalty(self, env: Mapping[str, Value], default_scale: float) -> torch.Tensor:
        """The relaxed barrier alone (see ``relax``)."""
        return self.relax(env, default_scale)[0]


def holds(condition: Condition, env: Mapping[str, Value]) -> torch.Tensor:
    """The exact boolean value of a condition (``Condition.holds``)."""
    return condition.holds(env)


def relax(
    condition: Condition, env: Mapping[str, Value], default_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The relaxed condition and its exact truth, from one evaluation (``Condition.relax``)."""
    return condition.relax(env, default_scale)


def _relax(
    node: Node, env: Mapping[str, Value], scale: float, negate: bool, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(node, Not):
        return _relax(node.operand, env, scale, not negate, where)
    if isinstance(node, BoolOp):
        conjunction = (node.op == "and") != negate
        parts = [_relax(v, env, scale, negate, where) for v in node.values]
        penalties = torch.stack(_broadcast(*(p for p, _ in parts)))
        truths = torch.stack(_broadcast(*(t for _, t in parts)))
        if conjunction:
            return penalties.sum(0), truths.all(0)
        return penalties.min(0).values, truths.any(0)
    if isinstance(node, Compare):
        return _relax_compare(node, env, scale, negate, where)
    if isinstance(node, Const) and isinstance(node.value, bool):
        truth = torch.tensor(node.value != negate)
        return (~truth).to(torch.float64) * (10 * BARRIER_WEIGHT), truth
    raise SpecError(f"{where}: cannot relax {node!r} into a barrier.")


def _relax_compare(
    node: Compare, env: Mapping[str, Value], scale: float, negate: bool, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    op = NEGATED[node.op] if negate else node.op
    left = evaluate_node(node.left, env, where)
    right = evaluate_node(node.right, env, where)
    if isinstance(left, str | Categorical) or isinstance(right, str | Categorical) or op in ("==", "!="):
        truth = evaluate_node(Compare(op, node.left, node.right), env, where)
        if not isinstance(truth, torch.Tensor):
            raise SpecError(f"{where}: cannot evaluate {node!r} as a condition.")
        return (~truth).to(torch.float64) * (10 * BARRIER_WEIGHT), truth
    a, b = promote(as_number(left, where), as_number(right, where))
    slack = (a - b) if op in (">", ">=") else (b - a)
    truth = slack > 0 if op in (">", "<") else slack >= 0
    d = slack / scale
    return BARRIER_WEIGHT * torch.where(d >= 0, torch.exp(-d.clamp_min(0)), 1 - d), truth
