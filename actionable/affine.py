"""Expressions of a catalogue as affine forms over the variables of a mixed-integer program.

``certify`` models a plan exactly only where the catalogue is linear once what is known is folded in: the
state before the first action is a row of numbers, so ``duration * (credit_amount + delta) /
credit_amount`` is affine in ``delta`` at the first step. ``lower`` walks an ``expr`` tree with such an
environment (feature and parameter names bound to ``Form``s, category features to their known ``Level``)
and returns a ``Sum``: an affine ``Form`` plus, where ``convex`` is asked (costs, which are minimised),
non-negative multiples of convex atoms (``abs``, ``max`` and the square of an affine form) that the
program turns into epigraph variables. ``conditions`` turns a condition into a conjunction of affine
inequalities, or a constant truth. Anything else raises ``NotAffine`` with the reason in words.
Constants are folded with numpy's float64 arithmetic, as torch evaluates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np

from actionable import syntax as S

__all__ = [
    "Atom",
    "Env",
    "Form",
    "Ineq",
    "Level",
    "NotAffine",
    "Sum",
    "conditions",
    "constant",
    "lower",
]


class NotAffine(Exception):
    """An expression the program cannot model exactly; the message says why, in words."""


@dataclass(frozen=True, eq=False)
class Form:
    """``const + sum(coef * variable)``: an affine form over the program's variables (by index)."""

    const: float = 0.0
    terms: Mapping[int, float] = field(default_factory=dict)

    @property
    def is_constant(self) -> bool:
        return not self.terms

    def plus(self, other: Form, scale: float = 1.0) -> Form:
        """``self + scale * other``."""
        terms = dict(self.terms)
        for var, coef in other.terms.items():
            terms[var] = terms.get(var, 0.0) + scale * coef
        return Form(self.const + scale * other.const, {v: c for v, c in terms.items() if c != 0.0})

    def times(self, scale: float) -> Form:
        if scale == 0.0:
            return Form(0.0)
        return Form(self.const * scale, {v: c * scale for v, c in self.terms.items()})


@dataclass(frozen=True, eq=False)
class Atom:
    """A convex function of affine forms: ``abs(a)``, ``max(a, b, ...)`` or ``a ** 2``."""

    kind: Literal["abs", "max", "square"]
    args: tuple[Form, ...]


@dataclass(frozen=True, eq=False)
class Sum:
    """An affine form plus non-negative multiples of convex atoms (a convex function when minimised)."""

    form: Form
    atoms: tuple[tuple[float, Atom], ...] = ()

    @property
    def is_constant(self) -> bool:
        return self.form.is_constant and not self.atoms

    @property
    def is_affine(self) -> bool:
        return not self.atoms


@dataclass(frozen=True)
class Level:
    """A category feature's known level inside an expression."""

    value: str


Ineq = tuple[Form, Literal[">=", ">", "=="]]  # form >= 0, form > 0, form == 0
Env = Mapping[str, Union[Form, Level]]  # noqa: UP007


def constant(value: float) -> Sum:
    return Sum(Form(float(value)))


def _fold(op: Callable[..., np.float64], *args: float) -> float:
    with np.errstate(all="ignore"):
        return float(op(*(np.float64(a) for a in args)))


def _add(a: Sum, b: Sum, sign: float = 1.0) -> Sum:
    if sign < 0 and b.atoms:
        raise NotAffine("a convex term is subtracted (the expression is not convex)")
    if a.is_constant and b.is_constant:
        op = np.add if sign > 0 else np.subtract
        return constant(_fold(op, a.form.const, b.form.const))
    return Sum(a.form.plus(b.form, sign), a.atoms + b.atoms)


def _scale(a: Sum, c: float) -> Sum:
    if not math.isfinite(c):
        raise NotAffine(f"a variable is multiplied by {c}")
    if c < 0 and a.atoms:
        raise NotAffine("a convex term has a negative factor (the expression is not convex)")
    if c == 0:
        return constant(0.0)
    return Sum(a.form.times(c), tuple((k * c, atom) for k, atom in a.atoms))


_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}
_UNARY = {"abs": np.abs, "log": np.log, "exp": np.exp, "sqrt": np.sqrt}


def lower(node: S.Node, env: Env, *, convex: bool = False) -> Sum:
    """The value of a number expression as a ``Sum`` (affine unless ``convex`` allows convex atoms)."""
    if isinstance(node, S.Const):
        if isinstance(node.value, str):
            raise NotAffine(f"the level {node.value!r} is used as a number")
        return constant(float(node.value))
    if isinstance(node, S.Name):
        value = env[node.id]
        if isinstance(value, Level):
            raise NotAffine(f"the category {node.id!r} is used as a number")
        return Sum(value)
    if isinstance(node, S.Unary):
        inner = lower(node.operand, env, convex=convex)
        return inner if node.op == "+" else _scale(inner, -1.0)
    if isinstance(node, S.Binary):
        return _binary(node, env, convex)
    if isinstance(node, S.Call):
        return _call(node, env, convex)
    if isinstance(node, S.IfElse):
        truth = conditions(node.test, env)
        if not isinstance(truth, bool):
            raise NotAffine("a conditional 'a if ... else b' depends on the plan")
        return lower(node.then if truth else node.other, env, convex=convex)
    truth = conditions(node, env)  # a condition used as a number: 0 or 1
    if not isinstance(truth, bool):
        raise NotAffine("a condition used as a number depends on the plan")
    return constant(float(truth))


def _binary(node: S.Binary, env: Env, convex: bool) -> Sum:
    a = lower(node.left, env, convex=convex)
    b = lower(node.right, env, convex=convex)
    if a.is_constant and b.is_constant:
        return constant(_fold(_ARITHMETIC[node.op], a.form.const, b.form.const))
    if node.op in ("+", "-"):
        return _add(a, b, 1.0 if node.op == "+" else -1.0)
    if node.op == "*":
        if a.is_constant or b.is_constant:
            return _scale(b, a.form.const) if a.is_constant else _scale(a, b.form.const)
        raise NotAffine("it multiplies two quantities that the plan changes")
    if node.op == "/":
        if b.is_constant:
            if b.form.const == 0:
                raise NotAffine("it divides by zero")
            return _scale(a, 1.0 / b.form.const)
        raise NotAffine("it divides by a quantity that the plan changes")
    # '**': a changing base to a constant power (a changing exponent is never affine)
    if not b.is_constant:
        raise NotAffine("its exponent depends on the plan")
    power = b.form.const
    if power == 1.0:
        return a
    if power == 0.0:
        return constant(1.0)
    if power == 2.0 and convex and a.is_affine:
        return Sum(Form(0.0), ((1.0, Atom("square", (a.form,))),))
    raise NotAffine(f"it raises a quantity the plan changes to the power {power:g}")


def _call(node: S.Call, env: Env, convex: bool) -> Sum:
    args = [lower(arg, env, convex=convex) for arg in node.args]
    if all(a.is_constant for a in args):
        values = [a.form.const for a in args]
        if node.func in _UNARY:
            return constant(_fold(_UNARY[node.func], values[0]))
        out = values[0]
        for v in values[1:]:  # torch.minimum / maximum propagate NaN, as numpy's do
            out = _fold(np.minimum if node.func == "min" else np.maximum, out, v)
        return constant(out)
    if convex and node.func in ("abs", "max") and all(a.is_affine for a in args):
        return Sum(Form(0.0), ((1.0, Atom(node.func, tuple(a.form for a in args))),))  # type: ignore[arg-type]
    raise NotAffine(f"{node.func}() of a quantity that the plan changes is not affine")


# ------------------------------------------------------------------------------------------- conditions
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def conditions(node: S.Node, env: Env, negate: bool = False) -> bool | list[Ineq]:
    """A condition as a constant truth, or as a conjunction of affine inequalities that must all hold."""
    if isinstance(node, S.Const) and isinstance(node.value, bool):
        return node.value != negate
    if isinstance(node, S.Not):
        return conditions(node.operand, env, not negate)
    if isinstance(node, S.BoolOp):
        conjunction = (node.op == "and") != negate
        parts = [conditions(v, env, negate) for v in node.values]
        if conjunction:
            if any(p is False for p in parts):
                return False
            rows = [row for p in parts if not isinstance(p, bool) for row in p]
            return rows or True
        if any(p is True for p in parts):
            return True
        open_parts = [p for p in parts if not isinstance(p, bool)]
        if not open_parts:
            return False
        if len(open_parts) == 1:
            return open_parts[0]
        raise NotAffine("an 'or' of conditions that the plan changes is not a conjunction")
    if isinstance(node, S.Compare):
        return _compare(node, env, negate)
    raise NotAffine("a name used as a condition")


def _compare(node: S.Compare, env: Env, negate: bool) -> bool | list[Ineq]:
    op = _NEGATE[node.op] if negate else node.op
    sides = (node.left, node.right)
    level = next((s.value for s in sides if isinstance(s, S.Const) and isinstance(s.value, str)), None)
    if level is not None:
        quoted = isinstance(node.left, S.Const) and isinstance(node.left.value, str)
        other = node.right if quoted else node.left
        value = env[other.id] if isinstance(other, S.Name) else None
        if not isinstance(value, Level):
            raise NotAffine("a level is compared with something that is not a category")
        return (value.value == level) == (op == "==")
    a, b = lower(node.left, env), lower(node.right, env)
    if a.is_constant and b.is_constant:
        compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
        compare |= {"==": np.equal, "!=": np.not_equal}
        with np.errstate(all="ignore"):
            return bool(compare[op](np.float64(a.form.const), np.float64(b.form.const)))
    if op == "!=":
        raise NotAffine("'!=' on a quantity that the plan changes is not a conjunction of inequalities")
    if op in ("<", "<="):  # a < b  <=>  b - a > 0
        a, b, op = b, a, _FLIP[op]
    diff = a.form.plus(b.form, -1.0)
    if not all(math.isfinite(c) for c in (diff.const, *diff.terms.values())):
        raise NotAffine("a condition holds a number that is not finite")
    return [(diff, op)]  # type: ignore[list-item]
