"""Load-time checks of an action over its box: features within their schema bounds, parameters within theirs.

A catalogue is data, so it is checked before any solve: interval arithmetic over the whole box refuses what
it proves meaningless (preconditions that never hold, a cost negative everywhere, an effect always out of
bounds), exact evaluation on the box's corners and on random states catches a cost that can be negative or
an effect that moves a feature against its direction, and a text template is filled at both ends of the
parameters' box; no action may write a protected feature unless its catalogue allows it. Every check reads a ``CheckedAction`` (what it needs of ``actions.BoundAction``) and only raises.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import torch

from actionable import expr as E
from actionable import intervals as I
from actionable.errors import SpecError, shown
from actionable.evaluate import Condition
from actionable.parameters import Param
from actionable.rounding import RoundingMode, whole_number
from actionable.schema import DTYPE, Feature, Schema

__all__ = [
    "MAX_CORNERS",
    "MAX_FORMAT",
    "box_of",
    "check_box",
    "check_protected",
    "check_samples",
    "check_text",
    "sample_params",
    "sample_states",
]

MAX_FORMAT = 100  # the largest width or precision a placeholder of ``text`` may ask for
MAX_CORNERS = 4096  # points of the box on which a possibly negative or infinite cost is checked exactly


class Templated(Protocol):
    """What ``check_text`` reads of an action: its parameters and its sentence."""

    @property
    def params(self) -> Sequence[Param]: ...

    @property
    def text(self) -> str: ...


class ParsedExpressions(Protocol):
    """The parsed effects and cost of a bound action (``actions.ParsedAction``)."""

    @property
    def effects(self) -> Mapping[str, E.Expr]: ...

    @property
    def cost(self) -> E.Expr: ...


class CheckedAction(Templated, Protocol):
    """What the box and sample checks read of a bound action (``actions.BoundAction``), stated here so
    that this module depends on the expression modules only, not on ``actions``."""

    @property
    def name(self) -> str: ...

    @property
    def cost(self) -> str: ...

    @property
    def footprint(self) -> frozenset[str]: ...

    @property
    def parsed(self) -> ParsedExpressions: ...

    def env(self, schema: Schema, x: torch.Tensor, params: torch.Tensor) -> dict[str, E.Value]: ...

    def apply(self, schema: Schema, x: torch.Tensor, env: Mapping[str, E.Value]) -> torch.Tensor: ...

    def cost_of(self, env: Mapping[str, E.Value], shape: torch.Size) -> torch.Tensor: ...

    def conditions(self, when: Literal["pre", "post"]) -> tuple[Condition, ...]: ...

    def whole_mode(self, feature: Feature) -> RoundingMode: ...


# ------------------------------------------------------------------------------------ protected
def check_protected(actions: Sequence[CheckedAction], schema: Schema, where: str) -> None:
    """No action writes a protected feature (``protected = true`` in the schema): recourse must not ask a
    person to change their sex or nationality. A catalogue that says ``allow_protected`` skips this."""
    protected = {f.name for f in schema.features if f.protected}
    for action in actions:
        written = sorted(action.footprint & protected)
        if written:
            raise SpecError(
                f"{where}, action {action.name!r}: writes the protected feature(s) {written} (protected = true "
                "in the schema), which recourse must not ask a person to change; remove the action from the "
                "catalogue, or, only to reproduce a study that used it, set allow_protected = true at the top "
                "of the catalogue (in Python: ActionSet(..., allow_protected=True))."
            )


# ------------------------------------------------------------------------------------ text
def check_text(action: Templated, here: str) -> None:
    """``text`` may only name this action's parameters with a bounded format (``{amount:.0f}``): no
    attribute or index lookups, no nested fields, no width or precision above ``MAX_FORMAT``. It is then
    filled once with each parameter at its lower bound, so a format the value cannot take fails when
    the catalogue loads, not after a long search."""
    names = [p.name for p in action.params]
    fix = (
        f"use {{name}} or {{name:.0f}} with the parameters {names} (integer parameters also take :d); "
        "write {{ and }} for literal braces"
    )
    try:
        fields = list(string.Formatter().parse(action.text))
    except ValueError as exc:
        raise SpecError(
            f"{here}, text: {shown(action.text)} is not a valid template ({exc}); {fix}."
        ) from None
    for _, field_name, spec, conversion in fields:
        if field_name is None:
            continue
        if field_name not in names:
            what = (
                "an attribute or index lookup"
                if any(c in field_name for c in ".[")
                else "a positional field"
                if not field_name or field_name.isdigit()
                else f"the unknown name {field_name!r}"
            )
            raise SpecError(
                f"{here}, text: the placeholder {{{shown(field_name, 40)[1:-1]}}} is {what}; {fix}."
            )
        if conversion not in (None, "s", "r"):
            raise SpecError(f"{here}, text: the conversion !{conversion} is not allowed; {fix}.")
        sizes = [int(d) for d in re.findall(r"\d+", spec or "")]
        if "{" in (spec or "") or len(spec or "") > 20 or any(n > MAX_FORMAT for n in sizes):
            raise SpecError(
                f"{here}, text: the format {{{field_name}:{shown(spec, 40)[1:-1]}}} asks for too much "
                f"(widths and precisions are at most {MAX_FORMAT}, no nested fields); {fix}."
            )
    # filled at both ends of every box: a format like {n:c} fails only past a value (0x110000, or < 0)
    ends = [
        {p.name: math.ceil(p.bounds[0]) if p.kind == "integer" else p.bounds[0] for p in action.params},
        {p.name: math.floor(p.bounds[1]) if p.kind == "integer" else p.bounds[1] for p in action.params},
    ]
    try:
        for probe in ends:
            action.text.format(**probe)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError, OverflowError) as exc:
        raise SpecError(
            f"{here}, text: {shown(action.text)} cannot be filled with the parameters {names} "
            f"({type(exc).__name__}: {exc}); {fix}."
        ) from None


# ------------------------------------------------------------------------------------ random states
def check_samples(actions: Sequence[CheckedAction], schema: Schema, where: str, n: int = 512) -> None:
    """Costs must be >= 0 and effects must respect directions on random states and parameter corners."""
    generator = torch.Generator().manual_seed(0)
    x = sample_states(schema, n, generator)
    for action in actions:
        here = f"{where}, action {action.name!r}"
        params = sample_params(action, n, generator)
        env = action.env(schema, x, params)
        pre_ok = torch.ones(n, dtype=torch.bool)
        for condition in action.conditions("pre"):
            pre_ok &= torch.broadcast_to(condition.holds(env), (n,))
        with torch.no_grad():
            cost = action.cost_of(env, torch.Size([n]))
            after = action.apply(schema, x, env)
        bad = pre_ok & ~((cost >= 0) & torch.isfinite(cost))
        if bad.any():
            i = int(bad.nonzero()[0])
            at = ", ".join(f"{p.name} = {float(params[i, j]):g}" for j, p in enumerate(action.params))
            what = "negative" if float(cost[i]) < 0 else "infinite or NaN"
            raise SpecError(
                f"{here}, cost: {shown(action.cost)} can be {what} on the parameter box "
                f"(got {float(cost[i]):g} at {at or 'a sampled state'}); use abs(...) or restrict the "
                "parameters' bounds."
            )
        for feature in action.footprint:
            f = schema[feature]
            if f.is_category or (f.may_increase and f.may_decrease):
                continue
            cols = schema.slice(feature).start
            moved = after[:, cols] - x[:, cols]
            wrong = pre_ok & ((moved < -1e-9) if f.may_increase else (moved > 1e-9))
            if wrong.any():
                raise SpecError(
                    f"{here}, effect on {feature!r}: the schema lets {feature!r} only {f.direction}, but this "
                    f"effect can move it the other way; restrict the parameter's bounds."
                )


# ------------------------------------------------------------------------------------ the box
def check_box(action: CheckedAction, schema: Schema, here: str) -> None:
    """Refuse what interval arithmetic over the whole box (features within their schema bounds, parameters
    within theirs) proves meaningless, and check exactly on the box's corners what it cannot rule out.

    The rule, since an interval is sound but may be wider than the true range:

    * refused outright: preconditions that can hold nowhere on the box (after narrowing it by their simple
      ``name op number`` parts), postconditions that can hold after no application, a numeric effect that
      is NaN everywhere or lands outside its feature's bounds everywhere, a cost that is NaN everywhere,
      negative everywhere or infinite everywhere (e.g. ``-5``, ``10 ** 10 ** 10``, ``1e309``);
    * a cost whose interval merely *reaches* below 0, infinity or NaN is evaluated exactly on the corners of
      the (narrowed) box, 0 included where the box spans it, every level of a category it reads, and refused
      where such a point satisfies the preconditions and gives a negative or non-finite cost;
    * a cost whose interval reaches infinity or NaN is then bisected (``_pole_witness``): refused where a
      piece too small to split still is not finite (a pole or a domain error inside the box, such as
      ``abs(1 / (p - 0.5))`` on [0, 2]); otherwise the interval was an over-approximation (``x - x``), and
      the random states of ``check_samples`` follow;
    * a cost whose interval reaches below 0 is bisected too (``_negative_witness``), each piece's centre
      evaluated exactly: a dip below 0 on a region the corners and random states miss is refused;
    * an effect on an integer or binary feature is bounded after it is made whole as declared (``rounding``).
    """
    box = _box(action, schema)
    pre = action.conditions("pre")
    narrowed = I.narrow([c.expr.node for c in pre], box)
    if narrowed is None:
        texts = [c.expr.text for c in pre]
        raise SpecError(
            f"{here}, pre: the preconditions {shown(texts, 200)} can never hold together within the features' "
            "and parameters' bounds, so the action could never be used; fix the conditions or the bounds."
        )
    cost = action.parsed.cost
    span = I.span(cost.node, narrowed)
    fix = "use abs(...), add a constant, or restrict the parameters' bounds"
    if span.empty or span.hi < 0 or span.lo == math.inf or span.hi == -math.inf:
        what = (
            "not a number (NaN)"
            if span.empty
            else "infinite"
            if math.isinf(span.lo) and span.lo == span.hi
            else f"negative (at most {span.hi:g})"
        )
        raise SpecError(
            f"{here}, cost: {shown(cost.text)} is {what} everywhere on the box of features and parameters; "
            f"a cost must be a finite number >= 0: {fix}."
        )
    if span.lo < 0 or not span.finite:
        _corner_witness(action, schema, narrowed, pre, cost, here, fix)
    if not span.finite:
        _pole_witness(action, schema, narrowed, pre, cost, here, fix)
    if span.lo < 0:
        _negative_witness(action, schema, narrowed, pre, cost, here, fix)
    after: dict[str, I.Span | Sequence[str]] = dict(narrowed)
    for feature, parsed in action.parsed.effects.items():
        f = schema[feature]
        if parsed.is_level:
            after[feature] = (str(parsed.evaluate({})),)
            continue
        effect = I.span(parsed.node, narrowed)
        if f.is_whole and not effect.empty:  # made whole as declared: monotone, so the ends' images bound it
            mode = action.whole_mode(f)
            effect = I.Span(whole_number(effect.lo, mode), whole_number(effect.hi, mode), effect.nan)
        lo, hi = f.bounds
        if (
            effect.empty
            or effect.lo > hi
            or effect.hi < lo
            or (effect.lo == effect.hi and math.isinf(effect.lo))
        ):
            got = "NaN everywhere" if effect.empty else f"in [{effect.lo:g}, {effect.hi:g}]"
            raise SpecError(
                f"{here}, effect on {feature!r}: {shown(parsed.text)} is {got} on the box, always outside the "
                f"feature's bounds [{lo:g}, {hi:g}]; fix the effect or the parameters' bounds."
            )
        after[feature] = I.Span(max(effect.lo, lo), min(effect.hi, hi))
    post = action.conditions("post")
    if post and I.narrow([c.expr.node for c in post], after) is None:
        texts = [c.expr.text for c in post]
        raise SpecError(
            f"{here}, post: the postconditions {shown(texts, 200)} can never hold after this action within the "
            "features' bounds; fix the conditions, the effects or the parameters' bounds."
        )


def _box(action: CheckedAction, schema: Schema) -> dict[str, I.Span | tuple[str, ...]]:
    return box_of(action.params, schema)


def box_of(params: Sequence[Param], schema: Schema) -> dict[str, I.Span | tuple[str, ...]]:
    """The box interval arithmetic works on: every feature within its bounds (a category: any level),
    every parameter within its own."""
    box: dict[str, I.Span | tuple[str, ...]] = {}
    for f in schema.features:
        box[f.name] = f.levels if f.is_category else I.Span(*f.bounds)
    for p in params:
        lo, hi = p.bounds
        box[p.name] = I.Span(math.ceil(lo), math.floor(hi)) if p.kind == "integer" else I.Span(lo, hi)
    return box


def _whole_names(action: CheckedAction, schema: Schema) -> set[str]:
    """The names that only take whole numbers: integer parameters, integer and binary features."""
    return {p.name for p in action.params if p.kind == "integer"} | {
        f.name for f in schema.features if f.is_whole
    }


def _pole_witness(
    action: CheckedAction,
    schema: Schema,
    box: I.Box,
    pre: Sequence[Condition],
    cost: E.Expr,
    here: str,
    fix: str,
) -> None:
    """Refuse a cost that can be infinite or NaN inside the box, where the corners miss it (``1 / (p - 1)``
    with 1 inside the box, ``log(p)`` with 0 inside it): interval bisection (``intervals.nonfinite_point``)
    either proves the cost finite wherever the preconditions may hold or finds where it is not."""
    conditions = [c.expr.node for c in pre]
    names = set(cost.names).union(*(c.expr.names for c in pre))
    point = I.nonfinite_point(cost.node, box, names, conditions, _whole_names(action, schema))
    if point is not None:
        at = ", ".join(f"{name} = {value:.6g}" for name, value in point.items())
        raise SpecError(
            f"{here}, cost: {shown(cost.text)} can be infinite or NaN on the parameter box where the action "
            f"applies (near {at or 'every state'}); a cost must be a finite number >= 0: {fix}."
        )


def _corner_witness(
    action: CheckedAction,
    schema: Schema,
    box: I.Box,
    pre: Sequence[Condition],
    cost: E.Expr,
    here: str,
    fix: str,
) -> None:
    """Evaluate the cost exactly on the box's corners; refuse at one where the preconditions hold and the
    cost is negative or not finite."""
    whole = _whole_names(action, schema)
    names = sorted(set(cost.names).union(*(c.expr.names for c in pre)))
    choices: list[list[Any]] = []
    for name in names:
        value = box[name]
        if not isinstance(value, I.Span):
            choices.append(list(value))
            continue
        lo, hi = value.lo, value.hi
        if name in whole:
            lo, hi = math.ceil(lo), math.floor(hi)
            if lo > hi:
                return  # no whole number in the narrowed box: the preconditions cannot hold there
        lo = lo if math.isfinite(lo) else (min(hi, 0.0) if math.isfinite(hi) else 0.0) - 1e3
        hi = hi if math.isfinite(hi) else max(lo, 0.0) + 1e3
        points = {float(lo), float(hi)} | ({0.0} if lo < 0 < hi else set())
        choices.append(sorted(points))
    total = math.prod(len(c) for c in choices)
    if total <= MAX_CORNERS:
        rows = [list(r) for r in itertools.product(*choices)] if names else [[]]
    else:
        generator = torch.Generator().manual_seed(0)
        picks = [torch.randint(len(c), (MAX_CORNERS,), generator=generator).tolist() for c in choices]
        rows = [[choices[j][picks[j][i]] for j in range(len(names))] for i in range(MAX_CORNERS)]
    _refuse_bad_point(names, rows, schema, pre, cost, here, fix)


def _negative_witness(
    action: CheckedAction,
    schema: Schema,
    box: I.Box,
    pre: Sequence[Condition],
    cost: E.Expr,
    here: str,
    fix: str,
) -> None:
    """Refuse a cost that is negative somewhere inside the box where the corners and the random states miss
    it (a dip below 0 on a small region): interval bisection (``intervals.negative_points``) proposes the
    points where the cost may be negative, and each is evaluated exactly."""
    names = sorted(set(cost.names).union(*(c.expr.names for c in pre)))
    conditions = [c.expr.node for c in pre]
    points = I.negative_points(cost.node, box, names, conditions, _whole_names(action, schema))
    rows = [[point.get(name, _any_value(box[name])) for name in names] for point in points]
    if rows:
        _refuse_bad_point(names, rows, schema, pre, cost, here, fix)


def _any_value(value: I.Span | Sequence[str]) -> Any:
    """A value of a side that a bisection left whole (it never split it): its low end, or a first level."""
    return value.lo if isinstance(value, I.Span) else value[0]


def _refuse_bad_point(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    schema: Schema,
    pre: Sequence[Condition],
    cost: E.Expr,
    here: str,
    fix: str,
) -> None:
    """Evaluate the cost exactly at each row of values (``names``: their columns; a category's as levels)
    and refuse at the first where the preconditions hold and the cost is negative or not finite."""
    n = len(rows)
    env: dict[str, E.Value] = {}
    for j, name in enumerate(names):
        column = [row[j] for row in rows]
        if name in schema and schema[name].is_category:
            levels = schema[name].levels
            codes = torch.tensor([levels.index(v) for v in column])
            env[name] = E.Categorical(torch.nn.functional.one_hot(codes, len(levels)).to(DTYPE), levels)
        else:
            env[name] = torch.tensor(column, dtype=DTYPE)
    ok = torch.ones(n, dtype=torch.bool)
    for condition in pre:
        ok &= torch.broadcast_to(condition.holds(env), (n,))
    with torch.no_grad():
        costs = torch.broadcast_to(torch.as_tensor(cost.evaluate(env), dtype=DTYPE), (n,))
    bad = ok & ~((costs >= 0) & torch.isfinite(costs))
    if bad.any():
        i = int(bad.nonzero()[0])
        at = ", ".join(f"{name} = {shown(rows[i][j], 30)}" for j, name in enumerate(names))
        what = "negative" if float(costs[i]) < 0 else "infinite or NaN"
        raise SpecError(
            f"{here}, cost: {shown(cost.text)} can be {what} on the parameter box where the action applies (got "
            f"{float(costs[i]):g} at {at or 'every state'}); a cost must be a finite number >= 0: {fix}."
        )


# ------------------------------------------------------------------------------------ samples
def sample_states(schema: Schema, n: int, generator: torch.Generator) -> torch.Tensor:
    """Random canonical rows within the schema's bounds (infinite bounds sampled in [-1e3, 1e3])."""
    parts: dict[str, torch.Tensor] = {}
    for f in schema.features:
        if f.is_category:
            codes = torch.randint(len(f.levels), (n,), generator=generator)
            parts[f.name] = torch.nn.functional.one_hot(codes, len(f.levels)).to(DTYPE)
            continue
        lo, hi = (
            (max(f.bounds[0], -1e3), min(f.bounds[1], 1e3))
            if not all(map(math.isfinite, f.bounds))
            else f.bounds
        )
        value = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=DTYPE)
        parts[f.name] = torch.round(value) if f.is_whole else value
    return schema.assemble(parts)


def sample_params(action: CheckedAction, n: int, generator: torch.Generator) -> torch.Tensor:
    """Random parameters in the box, with its corners included."""
    if not action.params:
        return torch.zeros(n, 0, dtype=DTYPE)
    lo = torch.tensor([p.bounds[0] for p in action.params], dtype=DTYPE)
    hi = torch.tensor([p.bounds[1] for p in action.params], dtype=DTYPE)
    u = torch.rand(n, len(action.params), generator=generator, dtype=DTYPE)
    u[: n // 4] = torch.randint(0, 2, (n // 4, len(action.params)), generator=generator).to(DTYPE)
    values = lo + (hi - lo) * u
    for j, p in enumerate(action.params):
        values[:, j] = p.round(values[:, j])
    return values
