"""Interval evaluation of parsed expressions: what a cost, an effect or a condition can be on a whole box.

Loading a catalogue asks questions sampling cannot answer for sure ("is this cost ever negative?", "can
this precondition ever hold?"). Each node of an ``expr`` tree is bounded over a box (a feature's schema
bounds or its category levels, a parameter's box) by interval arithmetic with IEEE semantics:

* a number becomes a ``Span``: every value it takes on the box lies in ``[lo, hi]`` or is NaN (only if
  ``nan``); ``lo > hi`` means it is NaN everywhere. The span is sound but may be wider than the true range
  (``x - x`` on ``[0, 1]`` is ``[-1, 1]``), so a caller refuses only what the span *proves*, and checks a
  merely possible problem on concrete points (see ``actions.ActionSet``).
* a condition becomes a ``Truth``: whether it may hold somewhere and whether it may fail somewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from actionable import expr as E

__all__ = [
    "INF",
    "NOTHING",
    "Box",
    "Span",
    "Truth",
    "narrow",
    "negative_points",
    "nonfinite_point",
    "span",
    "truth",
]

INF = math.inf


@dataclass(frozen=True)
class Span:
    """Every value on the box is in ``[lo, hi]`` (or NaN where ``nan``); ``lo > hi``: NaN everywhere."""

    lo: float
    hi: float
    nan: bool = False

    @property
    def empty(self) -> bool:
        """No number at all: the expression is NaN on the whole box."""
        return self.lo > self.hi

    @property
    def finite(self) -> bool:
        """Finite everywhere on the box (no infinity, no NaN)."""
        return not self.nan and not self.empty and math.isfinite(self.lo) and math.isfinite(self.hi)

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


@dataclass(frozen=True)
class Truth:
    """A condition on a box: ``may_hold`` somewhere, ``may_fail`` somewhere (both: it depends on the point)."""

    may_hold: bool
    may_fail: bool


Box = Mapping[str, Union[Span, Sequence[str]]]  # noqa: UP007  name -> its span, or a category's possible levels
NOTHING = Span(INF, -INF, True)


def _safe(op: Callable[[np.float64, np.float64], np.float64], a: float, b: float) -> float:
    with np.errstate(all="ignore"):
        return float(op(np.float64(a), np.float64(b)))


def _hull(values: Sequence[float], nan: bool) -> Span:
    """The span of some candidate values; a NaN candidate sets ``nan`` and is left out."""
    numbers = [v for v in values if not math.isnan(v)]
    nan = nan or len(numbers) < len(values)
    if not numbers:
        return NOTHING
    return Span(min(numbers), max(numbers), nan)


def _join(a: Span, b: Span) -> Span:
    if a.empty:
        return Span(b.lo, b.hi, True) if not b.empty else NOTHING
    if b.empty:
        return Span(a.lo, a.hi, True)
    return Span(min(a.lo, b.lo), max(a.hi, b.hi), a.nan or b.nan)


def _has_infinity(s: Span) -> bool:
    return math.isinf(s.lo) or math.isinf(s.hi)


def _add(a: Span, b: Span) -> Span:
    nan = a.nan or b.nan or (a.lo == -INF and b.hi == INF) or (a.hi == INF and b.lo == -INF)
    lo, hi = _safe(np.add, a.lo, b.lo), _safe(np.add, a.hi, b.hi)
    return Span(-INF if math.isnan(lo) else lo, INF if math.isnan(hi) else hi, nan)


def _neg(a: Span) -> Span:
    return a if a.empty else Span(-a.hi, -a.lo, a.nan)


def _mul(a: Span, b: Span) -> Span:
    # 0 * inf is NaN in IEEE; as a bound it is 0 (the product of a small and a huge number is small)
    corners = []
    for x in (a.lo, a.hi):
        for y in (b.lo, b.hi):
            product = _safe(np.multiply, x, y)
            corners.append(0.0 if math.isnan(product) else product)
    nan = a.nan or b.nan or (a.contains(0.0) and _has_infinity(b)) or (b.contains(0.0) and _has_infinity(a))
    return _hull(corners, nan)


def _reciprocal(b: Span) -> Span:
    if b.lo > 0 or b.hi < 0:
        return _hull([_safe(np.divide, 1.0, b.hi), _safe(np.divide, 1.0, b.lo)], b.nan)
    if b.lo == 0 and b.hi > 0:
        return Span(_safe(np.divide, 1.0, b.hi), INF, b.nan)
    if b.hi == 0 and b.lo < 0:
        return Span(-INF, _safe(np.divide, 1.0, b.lo), b.nan)
    return Span(-INF, INF, b.nan)  # spans zero, or is exactly zero (1/0 is inf, 1/-0 is -inf)


def _div(a: Span, b: Span) -> Span:
    out = _mul(a, _reciprocal(b))
    zero_by_zero = a.contains(0.0) and b.contains(0.0)
    both_infinite = _has_infinity(a) and _has_infinity(b)
    return Span(out.lo, out.hi, out.nan or zero_by_zero or both_infinite)


def _pow(a: Span, b: Span) -> Span:
    """``a ** b`` as torch computes it: NaN for a negative base and a fractional exponent."""
    points = [_safe(np.power, x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    if b.lo == b.hi and float(b.lo).is_integer():  # x ** n: extremes at the ends or at 0
        n = b.lo
        if a.contains(0.0):
            points.append(_safe(np.power, 0.0, n))
            if n < 0:  # 1 / 0 ** k is inf, and an odd power keeps the sign of a negative base
                points += [INF, -INF] if n % 2 == 1 and a.lo < 0 else [INF]
        return _hull(points, a.nan or b.nan)
    if a.lo >= 0:  # monotone in each argument for a positive base: extremes at the corners (and 0 ** 0 = 1)
        if b.contains(0.0):
            points.append(1.0)
        return _hull(points, a.nan or b.nan or (a.lo == 0 and b.contains(0.0) and _has_infinity(b)))
    if b.lo == b.hi:  # a fractional power: NaN for the negative part of the base
        return NOTHING if a.hi < 0 else Span(*_bounds(_pow(Span(0.0, a.hi), b)), True)
    return Span(-INF, INF, True)


def _bounds(s: Span) -> tuple[float, float]:
    return s.lo, s.hi


def _safe1(fn: Callable[[np.float64], np.float64], x: float) -> float:
    with np.errstate(all="ignore"):
        return float(fn(np.float64(x)))


def _unary(func: str, a: Span) -> Span:
    if a.empty:
        return NOTHING
    if func == "abs":
        if a.lo >= 0:
            return a
        if a.hi <= 0:
            return _neg(a)
        return Span(0.0, max(-a.lo, a.hi), a.nan)
    if func == "exp":
        return Span(_safe1(np.exp, a.lo), _safe1(np.exp, a.hi), a.nan)
    if func in ("log", "sqrt"):
        fn = np.log if func == "log" else np.sqrt
        if a.hi < 0:
            return NOTHING
        lo = max(a.lo, 0.0)
        return Span(_safe1(fn, lo), _safe1(fn, a.hi), a.nan or a.lo < 0)
    raise ValueError(f"no interval rule for {func!r}")  # unreachable: parse() allows only FUNCTIONS


def _from_truth(t: Truth) -> Span:
    return Span(0.0 if t.may_fail else 1.0, 1.0 if t.may_hold else 0.0)


def span(node: E.Node, box: Box) -> Span:
    """What a number expression can be on ``box`` (a condition used as a number is 0 or 1)."""
    if isinstance(node, E.Const):
        if isinstance(node.value, bool):
            return Span(float(node.value), float(node.value))
        if isinstance(node.value, str):
            return Span(-INF, INF, True)  # a quoted level has no number; parse() refuses it in arithmetic
        v = float(node.value)
        return NOTHING if math.isnan(v) else Span(v, v)
    if isinstance(node, E.Name):
        value = box.get(node.id)
        return value if isinstance(value, Span) else Span(-INF, INF, True)
    if isinstance(node, E.Compare | E.BoolOp | E.Not):
        return _from_truth(truth(node, box))
    if isinstance(node, E.Unary):
        operand = span(node.operand, box)
        return _neg(operand) if node.op == "-" else operand
    if isinstance(node, E.Binary):
        a, b = span(node.left, box), span(node.right, box)
        if a.empty or b.empty:
            return NOTHING
        rule = {"+": _add, "-": lambda x, y: _add(x, _neg(y)), "*": _mul, "/": _div, "**": _pow}[node.op]
        return rule(a, b)
    if isinstance(node, E.Call):
        args = [span(arg, box) for arg in node.args]
        if node.func in ("min", "max"):
            if any(a.empty for a in args):
                return NOTHING
            pick = min if node.func == "min" else max
            return Span(pick(a.lo for a in args), pick(a.hi for a in args), any(a.nan for a in args))
        return _unary(node.func, args[0])
    if isinstance(node, E.IfElse):
        test = truth(node.test, box)
        then, other = span(node.then, box), span(node.other, box)
        if not test.may_fail:
            return then
        if not test.may_hold:
            return other
        return _join(then, other)
    return Span(-INF, INF, True)


def truth(node: E.Node, box: Box) -> Truth:
    """Whether a condition may hold and may fail somewhere on ``box``."""
    if isinstance(node, E.Const) and isinstance(node.value, bool):
        return Truth(node.value, not node.value)
    if isinstance(node, E.Not):
        inner = truth(node.operand, box)
        return Truth(inner.may_fail, inner.may_hold)
    if isinstance(node, E.BoolOp):
        parts = [truth(v, box) for v in node.values]
        if node.op == "and":
            return Truth(all(p.may_hold for p in parts), any(p.may_fail for p in parts))
        return Truth(any(p.may_hold for p in parts), all(p.may_fail for p in parts))
    if isinstance(node, E.Compare):
        return _compare(node, box)
    return Truth(True, True)  # a bare name used as a condition: unknown here


def _compare(node: E.Compare, box: Box) -> Truth:
    level = next(
        (n.value for n in (node.left, node.right) if isinstance(n, E.Const) and isinstance(n.value, str)),
        None,
    )
    if level is not None:
        other = node.right if isinstance(node.left, E.Const) else node.left
        levels = box.get(other.id) if isinstance(other, E.Name) else None
        if levels is None or isinstance(levels, Span):
            return Truth(True, True)
        equal = Truth(level in levels, any(lv != level for lv in levels))
        return equal if node.op == "==" else Truth(equal.may_fail, equal.may_hold)
    a, b = span(node.left, box), span(node.right, box)
    nan = a.nan or b.nan or a.empty or b.empty
    if a.empty or b.empty:
        return Truth(node.op == "!=", node.op != "!=")  # NaN compares false, except !=
    op = node.op
    if op in (">", ">="):
        a, b, op = b, a, "<" if op == ">" else "<="
    if op == "<":
        hold, fail = a.lo < b.hi, a.hi >= b.lo
    elif op == "<=":
        hold, fail = a.lo <= b.hi, a.hi > b.lo
    else:
        overlap = a.lo <= b.hi and b.lo <= a.hi
        single = a.lo == a.hi == b.lo == b.hi
        hold, fail = (overlap, not single) if op == "==" else (not single, overlap)
        if op == "!=":
            return Truth(hold or nan, fail)
    return Truth(hold, fail or nan)


def narrow(conditions: Sequence[E.Node], box: Box, rounds: int = 3) -> Box | None:
    """``box`` shrunk by conditions that all hold (``name op number`` parts of a conjunction), or None when
    they cannot all hold at once. Sound: no point where the conditions hold is cut off."""
    current = dict(box)
    for _ in range(rounds):
        changed = False
        for node in _conjuncts(conditions):
            if not truth(node, current).may_hold:
                return None
            if not isinstance(node, E.Compare) or node.op not in ("<", "<=", ">", ">=", "=="):
                continue
            for name_side, other, flip in ((node.left, node.right, False), (node.right, node.left, True)):
                old = current.get(name_side.id) if isinstance(name_side, E.Name) else None
                if not isinstance(name_side, E.Name) or not isinstance(old, Span):
                    continue
                bound = span(other, current)
                if bound.empty:
                    continue
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}[node.op] if flip else node.op
                lo, hi = old.lo, old.hi
                if op in ("<", "<="):
                    hi = min(hi, bound.hi)
                elif op in (">", ">="):
                    lo = max(lo, bound.lo)
                else:
                    lo, hi = max(lo, bound.lo), min(hi, bound.hi)
                if lo > hi:
                    return None
                if (lo, hi) != (old.lo, old.hi):
                    current[name_side.id] = Span(lo, hi, old.nan)
                    changed = True
        if not changed:
            break
    return current


def _conjuncts(conditions: Sequence[E.Node]) -> list[E.Node]:
    out: list[E.Node] = []
    for node in conditions:
        if isinstance(node, E.BoolOp) and node.op == "and":
            out += _conjuncts(node.values)
        else:
            out.append(node)
    return out


def nonfinite_point(
    node: E.Node,
    box: Box,
    names: Collection[str],
    conditions: Sequence[E.Node] = (),
    whole: Collection[str] = (),
    budget: int = 512,
) -> dict[str, float] | None:
    """A point near which ``node`` is infinite or NaN on ``box`` where ``conditions`` may hold, or None.

    The sides of the box that ``node`` and ``conditions`` read (``names``) are bisected (the widest first,
    relative to its first width; whole-number names at whole numbers) and every piece bounded again: a
    piece whose span is finite is done, a piece where a condition cannot hold is dropped. A piece still not finite once every side is below 1e-9 of its first width (a
    point, for whole numbers) holds a pole, a domain error or an overflow: its centre is returned. The
    dependency problem that widens spans (``x - x``) shrinks with the pieces, so a finite expression is
    proven finite; None also when ``budget`` pieces did not settle it (the caller's point checks follow).
    Infinite sides are read as 1e3 beyond the finite end (or 0), as the load-time point checks read them.
    """
    start = _sides(box, names, whole)
    if start is None:
        return None
    current, first = start
    stack = [current]
    for _ in range(budget):
        if not stack:
            return None
        piece = stack.pop()
        if any(not truth(c, piece).may_hold for c in conditions) or span(node, piece).finite:
            continue
        spans = {n: s for n in first if isinstance(s := piece[n], Span)}
        sides = {n: (s.hi - s.lo) / first[n] for n, s in spans.items()}
        widest = max(sides, key=sides.__getitem__, default=None)
        if widest is None or sides[widest] <= (0 if widest in whole else 1e-9):
            return {n: (s.lo + s.hi) / 2 for n, s in spans.items()}
        stack += _halves(piece, widest, whole)
    return None


def _sides(
    box: Box, names: Collection[str], whole: Collection[str]
) -> tuple[dict[str, Span | Sequence[str]], dict[str, float]] | None:
    """The box to bisect and the first width of each side it may split (the numeric ``names``; infinite
    sides read as 1e3 beyond the finite end, whole-number sides at whole numbers); None when a whole-number
    side holds no whole number."""
    current: dict[str, Span | Sequence[str]] = dict(box)
    first: dict[str, float] = {}
    for name in sorted(names):
        value = box.get(name)
        if not isinstance(value, Span) or value.empty:
            continue
        lo, hi = value.lo, value.hi
        lo = lo if math.isfinite(lo) else (min(hi, 0.0) if math.isfinite(hi) else 0.0) - 1e3
        hi = hi if math.isfinite(hi) else max(lo, 0.0) + 1e3
        if name in whole:
            lo, hi = math.ceil(lo), math.floor(hi)
            if lo > hi:
                return None
        current[name] = Span(lo, hi, value.nan)
        first[name] = max(hi - lo, 1e-300)
    return current, first


def negative_points(
    node: E.Node,
    box: Box,
    names: Collection[str],
    conditions: Sequence[E.Node] = (),
    whole: Collection[str] = (),
    budget: int = 512,
) -> list[dict[str, float | str]]:
    """Points of ``box`` at which to evaluate ``node`` exactly for a negative value where ``conditions``
    hold: the centres of the pieces (at most ``budget``) that interval bisection cannot prove >= 0.

    As ``nonfinite_point``, the sides ``node`` and ``conditions`` read are bisected, the widest first
    (relative to its first width; a category's levels halved, whole-number sides at whole numbers): a
    piece whose span is >= 0 (or NaN) or where a condition cannot hold is dropped, so the pieces close in on
    where the expression dips below 0, however small that region (``q - (kids if income > 1 else income)
    + income`` is negative only for income just above 1). A category side contributes its first level."""
    start = _sides(box, names, whole)
    if start is None:
        return []
    current, first = start
    levels = {n: len(v) for n in names if not isinstance(v := box.get(n), Span | None) and len(v) > 1}
    stack, out = [current], list[dict[str, float | str]]()
    while stack and len(out) < budget:
        piece = stack.pop()
        if any(not truth(c, piece).may_hold for c in conditions):
            continue
        value = span(node, piece)
        if value.empty or value.lo >= 0:
            continue
        point: dict[str, float | str] = {}
        sides: dict[str, float] = {}
        spans = {n: s for n in first if isinstance(s := piece[n], Span)}  # every numeric side
        for name, side in spans.items():
            mid = (side.lo + side.hi) / 2
            point[name] = float(math.floor(mid)) if name in whole else mid
            sides[name] = (side.hi - side.lo) / first[name] if name not in whole or side.hi > side.lo else 0
        options = {n: o for n in levels if not isinstance(o := piece[n], Span)}  # every category side
        for name, kept in options.items():
            point[name] = kept[0]
            sides[name] = (len(kept) - 1) / (levels[name] - 1)
        out.append(point)
        widest = max(sides, key=sides.__getitem__, default=None)
        if widest is None or sides[widest] <= (1e-9 if widest in first and widest not in whole else 0):
            continue
        stack += _halves(piece, widest, whole)
    return out


def _halves(
    piece: dict[str, Span | Sequence[str]], name: str, whole: Collection[str]
) -> list[dict[str, Span | Sequence[str]]]:
    """The piece cut in two across side ``name`` (a category's levels halved)."""
    side = piece[name]
    if not isinstance(side, Span):
        cut = len(side) // 2
        return [{**piece, name: tuple(side[cut:])}, {**piece, name: tuple(side[:cut])}]
    mid = (side.lo + side.hi) / 2
    low, high = (math.floor(mid), math.floor(mid) + 1) if name in whole else (mid, mid)
    return [{**piece, name: Span(high, side.hi, side.nan)}, {**piece, name: Span(side.lo, low, side.nan)}]
