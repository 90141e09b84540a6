"""The safe expression language of spec files: parsed once against a whitelist, evaluated on torch tensors.

Spec files are untrusted data. An expression is parsed by Python's ``ast`` parser, then converted into this
module's own small node types; anything outside the whitelist (attribute access, subscripts, calls other
than ``abs min max log exp sqrt``, lambdas, comprehensions, ...) is a ``SpecError``. A conditional
``a if condition else b`` picks a number per row (e.g. write a value only into the slot a condition marks). Evaluation walks the
nodes with torch operations, batched over rows and differentiable. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import math
import warnings
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
    "comparisons (< <= > >= == !=), and/or/not, and 'a if condition else b'"
)


# ---------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Const:
    """A number (always a python float, so huge literals become inf), a bool, or a quoted category level."""

    value: float | str | bool


@dataclass(frozen=True)
class Name:
    """A feature or parameter, looked up in the environment at evaluation."""

    id: str


@dataclass(frozen=True)
class Unary:
    """Sign: ``op`` is ``"-"`` or ``"+"``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """Arithmetic: ``op`` is one of ``+ - * / **``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A whitelisted function (``FUNCTIONS``); ``min``/``max`` are elementwise over two or more arguments."""

    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    """One comparison, ``op`` in ``< <= > >= == !=``; chains ``a < b < c`` become ``BoolOp("and", ...)``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    """``op`` is ``"and"`` or ``"or"`` over two or more conditions."""

    op: str
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """Logical negation of a condition."""

    operand: Node


@dataclass(frozen=True)
class IfElse:
    """``then if test else other``: per row, ``then`` where the condition holds, else ``other`` (numbers only).

    Both branches are evaluated on every row (it is a ``torch.where``); gradients reach the chosen branch.
    """

    test: Node
    then: Node
    other: Node


Node = Union[Const, Name, Unary, Binary, Call, Compare, BoolOp, Not, IfElse]  # noqa: UP007 (a runtime alias)
NODE_TYPES = (Const, Name, Unary, Binary, Call, Compare, BoolOp, Not, IfElse)


@dataclass(frozen=True)
class Categorical:
    """A category feature's value inside an expression: a one-hot block (..., L) and its levels."""

    onehot: torch.Tensor
    levels: tuple[str, ...]


Value = Union[torch.Tensor, Categorical]  # noqa: UP007


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents first (trees are at most ``MAX_DEPTH`` deep, so recursion is safe)."""
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
    elif isinstance(node, IfElse):
        yield from walk(node.test)
        yield from walk(node.then)
        yield from walk(node.other)


def _level_example(name: str, levels: Sequence[str]) -> str:
    """A valid comparison to show in a fix, e.g. ``job == 'skilled'``."""
    return f"{name} == {levels[0]!r}" if levels else f"{name} == 'level'"


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut for an error message, so a 2000-character expression does not flood it."""
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------- Expr
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
        raise SpecError(
            f"{where}: an expression must be a string (got {type(text).__name__} {text!r}); "
            f'quote it in the file, e.g. "age >= 18".'
        )
    if len(text) > MAX_LENGTH:
        raise SpecError(
            f"{where}: the expression is too long (got {len(text)} characters: {_short(text)!r}); "
            f"at most {MAX_LENGTH} are allowed, so shorten or split it."
        )
    # eval mode rejects leading indentation and line breaks; a TOML multi-line string may hold either
    source = " ".join(line.strip() for line in text.strip().splitlines())
    if not source:
        raise SpecError(f"{where}: the expression is empty (got {text!r}); write one using {ALLOWED}.")
    try:
        with warnings.catch_warnings():  # e.g. an invalid escape '\d': an error now, as in future Pythons
            warnings.simplefilter("error")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise SpecError(
            f"{where}: not a valid expression ({exc.msg}; got {_short(text)!r}); write one using {ALLOWED}."
        ) from None
    except (RecursionError, MemoryError):
        raise SpecError(
            f"{where}: the expression is nested too deeply to read (got {_short(text)!r}); "
            f"simplify it to at most {MAX_DEPTH} levels."
        ) from None
    except ValueError as exc:  # null bytes, unencodable characters, over-long integer literals
        raise SpecError(
            f"{where}: the expression cannot be read ({exc}; got {_short(text)!r}); "
            f"write it in plain text using {ALLOWED}."
        ) from None
    node = _Converter(source, where, names, levels).convert(tree.body, 0)
    found = frozenset(n.id for n in walk(node) if isinstance(n, Name))
    return Expr(text, node, found, where)


class _Converter:
    """Python AST -> whitelisted nodes, checking names, levels and nesting on the way."""

    def __init__(
        self,
        source: str,
        where: str,
        names: Collection[str] | None,
        levels: Mapping[str, Sequence[str]] | None,
    ) -> None:
        self.source, self.where = source, where
        self.names = None if names is None else {str(n) for n in names}
        self.levels = None if levels is None else {str(k): tuple(map(str, v)) for k, v in levels.items()}

    def got(self, node: ast.AST) -> str:
        """The source text of ``node`` (the whole expression when it cannot be located)."""
        try:
            segment = ast.get_source_segment(self.source, node)
        except (ValueError, IndexError):  # defensive: odd positions must not escape as other errors
            segment = None
        return _short(segment or self.source)

    def fail(self, node: ast.AST, what: str) -> SpecError:
        return SpecError(
            f"{self.where}: {what} is not allowed in expressions (got {self.got(node)!r}); use {ALLOWED}."
        )

    def is_category(self, node: Node) -> bool:
        return self.levels is not None and isinstance(node, Name) and node.id in self.levels

    def category_misuse(self, node: ast.AST, name: str) -> SpecError:
        levels = (self.levels or {}).get(name, ())
        return SpecError(
            f"{self.where}: category feature {name!r} can only be compared with == or != to one of its levels "
            f"{list(levels)} (got {self.got(node)!r}); it has no numeric value, so write e.g. "
            f"{_level_example(name, levels)}."
        )

    def convert(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SpecError(
                f"{self.where}: the expression is nested more than {MAX_DEPTH} deep "
                f"(got {_short(self.source)!r}); simplify it."
            )
        d = depth + 1
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub | ast.UAdd):
                return Unary("-" if isinstance(node.op, ast.USub) else "+", self.number(node.operand, d))
            if isinstance(node.op, ast.Not):
                return Not(self.condition(node.operand, d))
            raise self.fail(node, "the bitwise operator ~")
        if isinstance(node, ast.BinOp):
            ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
            op = ops.get(type(node.op))
            if op is None:
                symbol = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<"}.get(
                    type(node.op)
                )
                raise self.fail(node, f"the operator {symbol or type(node.op).__name__}")
            return Binary(op, self.number(node.left, d), self.number(node.right, d))
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            return BoolOp(op, tuple(self.condition(v, d) for v in node.values))
        if isinstance(node, ast.Compare):
            return self.compare(node, d)
        if isinstance(node, ast.Call):
            return self.call(node, d)
        if isinstance(node, ast.IfExp):
            return IfElse(
                self.condition(node.test, d), self.number(node.body, d), self.number(node.orelse, d)
            )
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
            ast.Starred: "unpacking (*)",
            ast.List: "a list",
            ast.Tuple: "a tuple",
            ast.Set: "a set",
            ast.Dict: "a dict",
            ast.Await: "await",
            ast.Yield: "yield",
            ast.YieldFrom: "yield",
        }.get(type(node), type(node).__name__)
        raise self.fail(node, what)

    def constant(self, node: ast.Constant) -> Const:
        value = node.value
        if isinstance(value, bool | str):
            return Const(value)
        if isinstance(value, int | float):
            try:
                return Const(float(value))
            except OverflowError:  # an integer literal beyond float range
                return Const(math.inf)
        kind = {bytes: "a bytes literal", complex: "a complex number"}.get(type(value), repr(value))
        raise self.fail(node, f"the constant {kind}")

    def name(self, node: ast.Name) -> Name:
        ident = node.id
        if ident.startswith("_"):
            raise self.fail(node, "a name starting with '_'")
        if self.names is not None and ident in self.names:
            return Name(ident)  # a feature may be called e.g. 'exp'; only then is a function name a value
        if ident in FUNCTIONS:
            raise SpecError(
                f"{self.where}: {ident!r} is a function, not a value (got it without arguments); "
                f"call it, e.g. {ident}(x), or use a feature or parameter name."
            )
        if self.names is not None:
            raise SpecError(
                f"{self.where}: unknown name {ident!r}."
                + did_you_mean(ident, self.names)
                + f" Use one of the known names: {sorted(self.names)}."
            )
        return Name(ident)

    def condition(self, node: ast.AST, depth: int) -> Node:
        """An operand of and/or/not: a comparison, a logical expression, True/False or a (boolean) name."""
        out = self.convert(node, depth)
        if isinstance(out, Name) and self.is_category(out):
            raise self.category_misuse(node, out.id)
        if isinstance(out, Const) and isinstance(out.value, str):
            raise self.fail(node, "a quoted level used as a condition")
        if isinstance(out, Binary | Unary | Call | IfElse) or (
            isinstance(out, Const) and not isinstance(out.value, bool)
        ):
            raise SpecError(
                f"{self.where}: and/or/not need conditions, not numbers (got {self.got(node)!r}); "
                f"compare it first, e.g. x > 0 and y <= 1."
            )
        return out

    def number(self, node: ast.AST, depth: int) -> Node:
        """An operand of arithmetic or of a function: no quoted levels, no category features."""
        out = self.convert(node, depth)
        if isinstance(out, Const) and isinstance(out.value, str):
            raise self.fail(node, "arithmetic on a quoted level")
        if isinstance(out, Name) and self.is_category(out):
            raise self.category_misuse(node, out.id)
        return out

    def compare(self, node: ast.Compare, depth: int) -> Node:
        ops = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
        parts: list[Node] = []
        left_ast = node.left
        for op_ast, right_ast in zip(node.ops, node.comparators, strict=True):
            op = ops.get(type(op_ast))
            if op is None:
                symbol = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}.get(
                    type(op_ast), "?"
                )
                raise self.fail(node, f"the comparison '{symbol}'")
            left, right = self.convert(left_ast, depth), self.convert(right_ast, depth)
            self.check_levels(node, op, left, right)
            parts.append(Compare(op, left, right))
            left_ast = right_ast
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def check_levels(self, node: ast.AST, op: str, left: Node, right: Node) -> None:
        """A quoted level only as ``name == 'level'`` / ``name != 'level'``, and a known level of a category."""
        strings = [n for n in (left, right) if isinstance(n, Const) and isinstance(n.value, str)]
        if not strings:
            for side in (left, right):
                if isinstance(side, Name) and self.is_category(side):
                    raise self.category_misuse(node, side.id)
            return
        other = right if strings[0] is left else left
        if op not in ("==", "!=") or not isinstance(other, Name) or len(strings) != 1:
            raise self.fail(node, "a quoted level outside `feature == 'level'` / `feature != 'level'`")
        if self.levels is None:
            return
        level = str(strings[0].value)
        if other.id not in self.levels:
            raise SpecError(
                f"{self.where}: {other.id!r} is not a category feature, so it cannot equal the quoted level "
                f"{level!r} (got {self.got(node)!r}); compare a category feature "
                f"({', '.join(sorted(self.levels)) or 'none declared'}) with one of its levels."
            )
        valid = self.levels[other.id]
        if level not in valid:
            raise SpecError(
                f"{self.where}: {level!r} is not a level of {other.id!r} (got {self.got(node)!r}); "
                f"use one of {list(valid)}." + did_you_mean(level, valid)
            )

    def call(self, node: ast.Call, depth: int) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            callee = node.func.id if isinstance(node.func, ast.Name) else "this"
            raise self.fail(node, f"calling {callee!r} (only abs min max log exp sqrt)")
        if node.keywords:
            raise self.fail(node, "a keyword argument")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "unpacking (*)")
        func = node.func.id
        lo, hi = FUNCTIONS[func]
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            count, example = (
                ("one argument", f"{func}(x)") if lo == hi else ("two or more arguments", f"{func}(x, y)")
            )
            raise SpecError(
                f"{self.where}: {func}() takes {count} (got {len(node.args)} in {self.got(node)!r}); "
                f"write e.g. {example}."
            )
        return Call(func, tuple(self.number(a, depth + 1) for a in node.args))


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


def evaluate_node(node: Node, env: Mapping[str, Value], where: str) -> _Result:
    """Value of one node: a tensor, a ``Categorical`` (a bare category name) or a ``str`` (a quoted level)."""
    if isinstance(node, Const):
        if isinstance(node.value, str):
            return node.value
        return torch.tensor(node.value, dtype=torch.bool if isinstance(node.value, bool) else torch.float64)
    if isinstance(node, Name):
        if node.id not in env:
            raise SpecError(
                f"{where}: no value for name {node.id!r} at evaluation (got values for {sorted(env)}); "
                f"pass every name the expression reads."
            )
        return env[node.id]
    if isinstance(node, Compare):
        left, right = evaluate_node(node.left, env, where), evaluate_node(node.right, env, where)
        if isinstance(left, str) or isinstance(right, str):
            if isinstance(left, str):
                return _level_test(right, left, node.op, where, _label(node.right))
            return _level_test(left, str(right), node.op, where, _label(node.left))
        a, b = promote(
            _as_tensor(left, where, _label(node.left)), _as_tensor(right, where, _label(node.right))
        )
        return COMPARISONS[node.op](a, b)
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
        args = [_as_tensor(evaluate_node(a, env, where), where, _label(a)) for a in node.args]
        if node.func in UNARY_FUNCTIONS:
            return UNARY_FUNCTIONS[node.func](as_number(args[0], where))
        out = args[0]  # min/max: promote() turns booleans into the other argument's float type
        for arg in args[1:]:
            a, b = promote(out, arg)
            out = torch.minimum(a, b) if node.func == "min" else torch.maximum(a, b)
        return out
    raise SpecError(  # unreachable for trees built by parse()
        f"{where}: cannot evaluate the node {node!r}; build expressions with parse()."
    )


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
            f"write e.g. {_level_example(name or 'feature', value.levels)}."
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
