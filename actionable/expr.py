"""The safe expression language of spec files: parsed once against a whitelist into a small tree.

Spec files are untrusted data. An expression is parsed by Python's ``ast`` parser, then converted into the
small node types of ``syntax``; anything outside the whitelist (attribute access, subscripts, calls other
than ``abs min max log exp sqrt``, lambdas, comprehensions, ...) is a ``SpecError``. A conditional
``a if condition else b`` picks a number per row (e.g. write a value only into the slot a condition marks).
Evaluation (``evaluate``) walks the nodes with torch operations, batched over rows and differentiable.
Nothing is ever passed to ``eval``. The names of ``syntax`` and ``evaluate`` are re-exported here.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Collection, Mapping, Sequence

from actionable.errors import SpecError, did_you_mean, shown
from actionable.evaluate import (
    ARITHMETIC,
    COMPARISONS,
    UNARY_FUNCTIONS,
    Condition,
    Expr,
    as_number,
    evaluate_node,
    promote,
)
from actionable.schema import is_number, type_name
from actionable.syntax import (
    ALLOWED,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    NODE_TYPES,
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
    short,
    walk,
)

__all__ = [
    "ALLOWED",
    "ARITHMETIC",
    "COMPARISONS",
    "CONDITION_KEYS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "NODE_TYPES",
    "UNARY_FUNCTIONS",
    "Binary",
    "BoolOp",
    "Call",
    "Categorical",
    "Compare",
    "Condition",
    "Const",
    "Expr",
    "IfElse",
    "Name",
    "Node",
    "Not",
    "Unary",
    "Value",
    "as_number",
    "evaluate_node",
    "parse",
    "parse_condition",
    "promote",
    "walk",
]


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
            f"{where}: the expression is too long (got {len(text)} characters: {short(text)!r}); "
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
            f"{where}: not a valid expression ({exc.msg}; got {short(text)!r}); write one using {ALLOWED}."
        ) from None
    except (RecursionError, MemoryError):
        raise SpecError(
            f"{where}: the expression is nested too deeply to read (got {short(text)!r}); "
            f"simplify it to at most {MAX_DEPTH} levels."
        ) from None
    except ValueError as exc:  # null bytes, unencodable characters, over-long integer literals
        raise SpecError(
            f"{where}: the expression cannot be read ({exc}; got {short(text)!r}); "
            f"write it in plain text using {ALLOWED}."
        ) from None
    node = _Converter(source, where, names, levels).convert(tree.body, 0)
    found = frozenset(n.id for n in walk(node) if isinstance(n, Name))
    return Expr(text, node, found, where)


CONDITION_KEYS = {"condition", "scale"}


def parse_condition(
    item: object, names: Collection[str], levels: Mapping[str, Sequence[str]], where: str
) -> Condition:
    """A condition as written (a string, ``{condition, scale}`` or a ``Condition``) parsed and checked."""
    text: object
    scale: object
    if isinstance(item, Condition):
        text, scale = item.expr.text, item.scale
    elif isinstance(item, Mapping):
        unknown = set(item) - CONDITION_KEYS
        if unknown or "condition" not in item:
            raise SpecError(
                f"{where}: a condition is a string or {{condition = '...', scale = 1.0}}; got {shown(item)}."
            )
        text, scale = item["condition"], item.get("scale")
    else:
        text, scale = item, None
    if not isinstance(text, str):
        raise SpecError(
            f"{where}: a condition must be a quoted expression, got {shown(text)} ({type_name(text)}); "
            'write e.g. "age >= 18".'
        )
    if scale is not None and not (is_number(scale) and math.isfinite(scale) and scale > 0):
        raise SpecError(
            f"{where}: scale must be a finite number > 0; got {shown(scale)} ({type_name(scale)})."
        )
    parsed = parse(text, names=names, levels=levels, where=where)
    if not parsed.is_boolean:
        raise SpecError(f"{where}: {shown(text)} is not a condition; write a comparison such as 'age >= 18'.")
    return Condition(parsed, None if scale is None else float(scale))


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
        return short(segment or self.source)

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
            f"{level_example(name, levels)}."
        )

    def convert(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SpecError(
                f"{self.where}: the expression is nested more than {MAX_DEPTH} deep "
                f"(got {short(self.source)!r}); simplify it."
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
