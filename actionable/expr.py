"""The safe expression language of spec files: parsed once against a whitelist, evaluated on torch tensors.

Spec files are untrusted data. An expression is parsed by Python's ``ast`` parser, then converted into this
module's own small node types; anything outside the whitelist (attribute access, subscripts, calls other
than ``abs min max log exp sqrt``, lambdas, comprehensions, ...) is a ``SpecError``. Evaluation walks the
nodes with torch operations, batched over rows and differentiable. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import torch

from actionable.errors import SpecError, did_you_mean

MAX_LENGTH = 2000
MAX_DEPTH = 64
FUNCTIONS: dict[str, tuple[int, int | None]] = {  # name -> (min args, max args)
    "abs": (1, 1),
    "log": (1, 1),
    "exp": (1, 1),
    "sqrt": (1, 1),
    "min": (2, None),
    "max": (2, None),
}
ALLOWED = (
    "feature and parameter names, numbers, quoted category levels, + - * / **, abs min max log exp sqrt, "
    "comparisons (< <= > >= == !=) and and/or/not"
)


@dataclass(frozen=True)
class Const:
    value: float | str | bool


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "+"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / **
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str  # < <= > >= == !=
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Union[Const, Name, Unary, Binary, Call, Compare, BoolOp, Not]  # noqa: UP007 (a runtime alias)
NODE_TYPES = (Const, Name, Unary, Binary, Call, Compare, BoolOp, Not)


@dataclass(frozen=True)
class Categorical:
    """A category feature's value inside an expression: a one-hot block (..., L) and its levels."""

    onehot: torch.Tensor
    levels: tuple[str, ...]


Value = Union[torch.Tensor, Categorical]  # noqa: UP007


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents first."""
    yield node
    if isinstance(node, Unary | Not):
        yield from walk(node.operand)
    elif isinstance(node, Binary | Compare):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, BoolOp):
        for value in node.values:
            yield from walk(value)


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its text, its tree and the names it reads."""

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
        return isinstance(self.node, Compare | BoolOp | Not) or (
            isinstance(self.node, Const) and isinstance(self.node.value, bool)
        )

    def evaluate(self, env: Mapping[str, Value]) -> torch.Tensor | str:
        """Value on tensors (batched, differentiable); comparisons give bool tensors; a level gives its text."""
        if self.is_level:
            return str(self.node.value)  # type: ignore[union-attr]
        return _as_tensor(_evaluate(self.node, env, self.where), self.where)


def parse(
    text: str,
    *,
    names: Collection[str] | None = None,
    levels: Mapping[str, Sequence[str]] | None = None,
    where: str = "expression",
) -> Expr:
    """Parse ``text`` into an ``Expr``; ``SpecError`` naming ``where``, what is wrong, what was got and the fix.

    ``names``: the variables the expression may read (unknown names are errors). ``levels``: category
    feature -> its levels, to check quoted levels compared with a category feature.
    """
    if not isinstance(text, str):
        raise SpecError(f"{where}: an expression must be a string; got {type(text).__name__} {text!r}.")
    if len(text) > MAX_LENGTH:
        raise SpecError(
            f"{where}: the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed."
        )
    if not text.strip():
        raise SpecError(f"{where}: the expression is empty; write one using {ALLOWED}.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(
            f"{where}: {text!r} is not a valid expression ({exc.msg}); write one using {ALLOWED}."
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError(
            f"{where}: {text[:60]!r}... is nested too deeply or malformed; simplify it."
        ) from None
    converter = _Converter(text, where, names, levels)
    try:
        node = converter.convert(tree.body, 0)
    except RecursionError:
        raise SpecError(f"{where}: the expression is nested too deeply; simplify it.") from None
    found = frozenset(n.id for n in walk(node) if isinstance(n, Name))
    return Expr(text, node, found, where)


class _Converter:
    """Python AST -> whitelisted nodes, checking names and levels on the way."""

    def __init__(
        self, text: str, where: str, names: Collection[str] | None, levels: Mapping[str, Sequence[str]] | None
    ) -> None:
        self.text, self.where = text, where
        self.names = None if names is None else set(names)
        self.levels = None if levels is None else {k: tuple(map(str, v)) for k, v in levels.items()}

    def fail(self, node: ast.AST, what: str) -> SpecError:
        got = ast.get_source_segment(self.text.strip(), node) or self.text
        return SpecError(f"{self.where}: {what} is not allowed in expressions (got {got!r}); use {ALLOWED}.")

    def convert(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SpecError(
                f"{self.where}: the expression is nested more than {MAX_DEPTH} deep; simplify it."
            )
        d = depth + 1
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return Const(value)
            if isinstance(value, int | float):
                try:
                    return Const(float(value))
                except OverflowError:  # an integer literal beyond float range
                    return Const(math.inf)
            if isinstance(value, str):
                return Const(value)
            raise self.fail(node, f"the constant {type(value).__name__}")
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub | ast.UAdd):
                return Unary("-" if isinstance(node.op, ast.USub) else "+", self.number(node.operand, d))
            if isinstance(node.op, ast.Not):
                return Not(self.condition(node.operand, d))
            raise self.fail(node, "the operator ~")
        if isinstance(node, ast.BinOp):
            ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
            op = ops.get(type(node.op))
            if op is None:
                raise self.fail(node, f"the operator {type(node.op).__name__}")
            return Binary(op, self.number(node.left, d), self.number(node.right, d))
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            return BoolOp(op, tuple(self.condition(v, d) for v in node.values))
        if isinstance(node, ast.Compare):
            return self.compare(node, d)
        if isinstance(node, ast.Call):
            return self.call(node, d)
        what = {
            ast.Attribute: "attribute access",
            ast.Subscript: "indexing",
            ast.Lambda: "a lambda",
            ast.ListComp: "a comprehension",
            ast.SetComp: "a comprehension",
            ast.DictComp: "a comprehension",
            ast.GeneratorExp: "a generator",
            ast.JoinedStr: "an f-string",
            ast.NamedExpr: "assignment (:=)",
            ast.IfExp: "a conditional expression",
            ast.Starred: "unpacking (*)",
        }.get(type(node), f"{type(node).__name__}")
        raise self.fail(node, what)

    def name(self, node: ast.Name) -> Name:
        if node.id.startswith("_"):
            raise self.fail(node, "a name starting with '_'")
        if node.id in FUNCTIONS:
            raise SpecError(f"{self.where}: {node.id!r} is a function; call it, e.g. {node.id}(x).")
        if self.names is not None and node.id not in self.names:
            raise SpecError(
                f"{self.where}: unknown name {node.id!r}."
                + did_you_mean(node.id, self.names)
                + f" Known names: {sorted(self.names)}."
            )
        return Name(node.id)

    def condition(self, node: ast.AST, depth: int) -> Node:
        out = self.convert(node, depth)
        if isinstance(out, Const) and isinstance(out.value, str):
            raise self.fail(node, "a quoted level used as a condition")
        return out

    def number(self, node: ast.AST, depth: int) -> Node:
        out = self.convert(node, depth)
        if isinstance(out, Const) and isinstance(out.value, str):
            raise self.fail(node, "arithmetic on a quoted level")
        if self.levels is not None and isinstance(out, Name) and out.id in self.levels:
            raise SpecError(
                f"{self.where}: category feature {out.id!r} can only be compared with == or != to one of its "
                f"levels {list(self.levels[out.id])}; it has no numeric value."
            )
        return out

    def compare(self, node: ast.Compare, depth: int) -> Node:
        ops = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
        parts: list[Node] = []
        left_ast = node.left
        for op_ast, right_ast in zip(node.ops, node.comparators, strict=True):
            op = ops.get(type(op_ast))
            if op is None:
                raise self.fail(node, f"the comparison {type(op_ast).__name__}")
            left, right = self.convert(left_ast, depth), self.convert(right_ast, depth)
            self.check_levels(node, op, left, right)
            parts.append(Compare(op, left, right))
            left_ast = right_ast
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def check_levels(self, node: ast.AST, op: str, left: Node, right: Node) -> None:
        strings = [n for n in (left, right) if isinstance(n, Const) and isinstance(n.value, str)]
        if not strings:
            for side in (left, right):
                if self.levels is not None and isinstance(side, Name) and side.id in self.levels:
                    raise SpecError(
                        f"{self.where}: category feature {side.id!r} can only be compared to a quoted level, "
                        f"one of {list(self.levels[side.id])}."
                    )
            return
        other = right if strings[0] is left else left
        if op not in ("==", "!=") or not isinstance(other, Name) or len(strings) != 1:
            raise self.fail(node, "a quoted level outside `feature == 'level'` / `feature != 'level'`")
        if self.levels is None:
            return
        if other.id not in self.levels:
            raise SpecError(
                f"{self.where}: {other.id!r} is not a category feature, so it cannot equal a quoted level."
            )
        level = str(strings[0].value)
        if level not in self.levels[other.id]:
            raise SpecError(
                f"{self.where}: {level!r} is not a level of {other.id!r}; levels are {list(self.levels[other.id])}."
                + did_you_mean(level, self.levels[other.id])
            )

    def call(self, node: ast.Call, depth: int) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            callee = node.func.id if isinstance(node.func, ast.Name) else "this"
            raise self.fail(node, f"calling {callee!r}")
        if node.keywords:
            raise self.fail(node, "a keyword argument")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "unpacking (*)")
        lo, hi = FUNCTIONS[node.func.id]
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            count = f"{lo}" if lo == hi else f"{lo} or more"
            raise SpecError(f"{self.where}: {node.func.id}() takes {count} arguments; got {len(node.args)}.")
        return Call(node.func.id, tuple(self.number(a, depth + 1) for a in node.args))


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


def _evaluate(node: Node, env: Mapping[str, Value], where: str) -> _Result:
    if isinstance(node, Const):
        if isinstance(node.value, str):
            return node.value
        return torch.tensor(node.value, dtype=torch.bool if isinstance(node.value, bool) else torch.float64)
    if isinstance(node, Name):
        if node.id not in env:
            raise SpecError(f"{where}: no value for name {node.id!r} at evaluation; known: {sorted(env)}.")
        return env[node.id]
    if isinstance(node, Compare):
        left, right = _evaluate(node.left, env, where), _evaluate(node.right, env, where)
        if isinstance(left, str) or isinstance(right, str):
            category, level = (right, left) if isinstance(left, str) else (left, right)
            return _level_test(category, str(level), node.op, where)
        a, b = _numbers(_as_tensor(left, where), _as_tensor(right, where))
        return COMPARISONS[node.op](a, b)
    if isinstance(node, BoolOp):
        values = [_as_bool(_evaluate(v, env, where), where) for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = torch.logical_and(out, value) if node.op == "and" else torch.logical_or(out, value)
        return out
    if isinstance(node, Not):
        return torch.logical_not(_as_bool(_evaluate(node.operand, env, where), where))
    if isinstance(node, Unary):
        operand = _number(_evaluate(node.operand, env, where), where)
        return -operand if node.op == "-" else operand
    if isinstance(node, Binary):
        a, b = _numbers(
            _number(_evaluate(node.left, env, where), where),
            _number(_evaluate(node.right, env, where), where),
        )
        return ARITHMETIC[node.op](a, b)
    if isinstance(node, Call):
        args = [_number(_evaluate(a, env, where), where) for a in node.args]
        if node.func in UNARY_FUNCTIONS:
            return UNARY_FUNCTIONS[node.func](args[0])
        out = args[0]
        for arg in args[1:]:
            a, b = _numbers(out, arg)
            out = torch.minimum(a, b) if node.func == "min" else torch.maximum(a, b)
        return out
    raise SpecError(f"{where}: cannot evaluate node {node!r}.")  # unreachable for parsed expressions


def _level_test(category: _Result, level: str, op: str, where: str) -> torch.Tensor:
    if not isinstance(category, Categorical):
        raise SpecError(f"{where}: only a category feature can be compared with the level {level!r}.")
    if level not in category.levels:
        raise SpecError(f"{where}: {level!r} is not a level; levels are {list(category.levels)}.")
    hit = category.onehot[..., category.levels.index(level)] > 0.5
    return hit if op == "==" else ~hit


def _as_tensor(value: _Result, where: str) -> torch.Tensor:
    if isinstance(value, Categorical):
        raise SpecError(f"{where}: a category feature can only be compared with == or != to a quoted level.")
    if isinstance(value, str):
        raise SpecError(f"{where}: the quoted level {value!r} has no numeric value.")
    return value


def _number(value: _Result, where: str) -> torch.Tensor:
    tensor = _as_tensor(value, where)
    return tensor.to(torch.float64) if tensor.dtype == torch.bool else tensor


def _numbers(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Booleans become the other operand's float type; mixed float types promote like torch does."""
    if a.dtype == torch.bool:
        a = a.to(b.dtype if b.is_floating_point() else torch.float64)
    if b.dtype == torch.bool:
        b = b.to(a.dtype if a.is_floating_point() else torch.float64)
    return a, b


def _as_bool(value: _Result, where: str) -> torch.Tensor:
    tensor = _as_tensor(value, where)
    if tensor.dtype != torch.bool:
        raise SpecError(f"{where}: and/or/not need conditions (comparisons), not numbers.")
    return tensor
