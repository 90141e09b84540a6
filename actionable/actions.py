"""Domain actions: what a person can do, with parameters in raw units, costs, pre- and postconditions.

An ``Action`` changes some features by expressions of the state *before* it and of its parameters; its
cost is an expression of the same; preconditions hold on the state before it, postconditions on the state
after it. An ``ActionSet`` is bound to a ``Schema`` and checked statically before any solve.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from actionable import expr as E
from actionable import intervals as I
from actionable.errors import SpecError, did_you_mean, shown
from actionable.schema import DTYPE, Schema, check_keys, is_number, normal_name, read_toml, type_name

PARAM_KEYS = {"bounds", "kind", "resolution", "init"}
ACTION_KEYS = {"name", "text", "params", "effects", "cost", "pre", "post", "repeatable"}
CONDITION_KEYS = {"condition", "scale"}
BARRIER_WEIGHT = 0.1  # height of a condition's barrier at its boundary, in cost units
MAX_ACTIONS = 1000  # what one catalogue may declare: a file is data and may not ask for unbounded work
MAX_PARAMS = 64
MAX_CONDITIONS = 256
MAX_TEXT = 1000  # characters of an action's sentence
MAX_FORMAT = 100  # the largest width or precision a placeholder of ``text`` may ask for
MAX_CORNERS = 4096  # points of the box on which a possibly negative or infinite cost is checked exactly


@dataclass(frozen=True)
class Param:
    """An action parameter in raw units: a finite box, real or whole-number, with an optional resolution."""

    name: str
    bounds: tuple[float, float]
    kind: Literal["real", "integer"] = "real"
    resolution: float | None = None
    init: float | None = None

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        if isinstance(self.name, str) and not normal_name(self.name):
            raise SpecError(
                f"{where}: the name is not in Unicode normal form NFKC ({unicodedata.normalize('NFKC', self.name)!r}),"
                " so expressions would read it as another name; write it in that form."
            )
        bounds = self.bounds
        if not isinstance(bounds, list | tuple) or len(bounds) != 2 or not all(is_number(b) for b in bounds):
            raise SpecError(
                f"{where}: 'bounds' must be [lower, upper], two numbers; got {shown(bounds)}"
                f" ({type_name(bounds)}); write e.g. bounds = [0, 100] without quotes."
            )
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise SpecError(f"{where}: bounds [{lo}, {hi}] must be finite with lower <= upper.")
        if self.kind not in ("real", "integer"):
            raise SpecError(f"{where}: kind = {shown(self.kind)}; use 'real' or 'integer'.")
        if self.kind == "integer" and math.ceil(lo) > math.floor(hi):
            raise SpecError(
                f"{where}: bounds [{lo:g}, {hi:g}] hold no whole number; widen them or use kind 'real'."
            )
        if self.resolution is not None and not (
            is_number(self.resolution) and math.isfinite(self.resolution) and self.resolution > 0
        ):
            raise SpecError(
                f"{where}: resolution must be a finite number > 0; got {shown(self.resolution)} "
                f"({type_name(self.resolution)})."
            )
        if self.init is not None and not is_number(self.init):
            raise SpecError(
                f"{where}: init must be a number inside the bounds; got {shown(self.init)} "
                f"({type_name(self.init)})."
            )
        object.__setattr__(self, "bounds", (lo, hi))
        start = self.init if self.init is not None else min(max(0.0, lo), hi)
        if not lo <= float(start) <= hi:
            raise SpecError(f"{where}: init {start} is outside bounds [{lo}, {hi}].")
        object.__setattr__(self, "init", float(start))

    def round(self, value: torch.Tensor) -> torch.Tensor:
        """What a person can do: whole numbers for integer parameters, else the resolution grid."""
        lo, hi = self.bounds
        if self.kind == "integer":
            value = torch.round(value)
        elif self.resolution is not None:
            value = torch.round(value / self.resolution) * self.resolution
        return value.clamp(
            math.ceil(lo) if self.kind == "integer" else lo, math.floor(hi) if self.kind == "integer" else hi
        )


@dataclass(frozen=True)
class Condition:
    """A boolean expression with the scale of its barrier (raw units; default from the features' ranges)."""

    expr: E.Expr
    scale: float | None = None


@dataclass(frozen=True)
class Action:
    """A domain action. Build it in Python with expression strings, or load it from ``actions.toml``."""

    name: str
    effects: Mapping[str, str]
    cost: str
    text: str = ""
    params: Sequence[Param] = ()
    pre: Sequence[str | Condition] = ()
    post: Sequence[str | Condition] = ()
    repeatable: bool = False
    _parsed: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SpecError(
                f"action {shown(self.name)}: the name must be an identifier (letters, digits, _)."
            )
        here = f"action {self.name!r}"
        # A plain number is an unambiguous constant expression (cost = 5); a boolean is not a number.
        if _is_constant(self.cost):
            object.__setattr__(self, "cost", _constant_text(self.cost))
        if isinstance(self.effects, Mapping):
            constants = {k: _constant_text(v) for k, v in self.effects.items() if _is_constant(v)}
            object.__setattr__(self, "effects", {**self.effects, **constants})
        for key, value, expected in (
            ("cost", self.cost, 'a quoted expression, e.g. cost = "amount / 1000"'),
            ("text", self.text, 'a quoted sentence, e.g. text = "Save {amount:.0f} DM more"'),
        ):
            if not isinstance(value, str):
                raise SpecError(
                    f"{here}, key {key!r}: must be a string, got {shown(value)} ({type_name(value)}); "
                    f"write {expected}."
                )
        if not isinstance(self.repeatable, bool):
            raise SpecError(
                f"{here}, key 'repeatable': must be true or false (a TOML boolean), got "
                f"{shown(self.repeatable)} ({type_name(self.repeatable)}); write repeatable = true without quotes."
            )
        if len(self.text) > MAX_TEXT:
            raise SpecError(
                f"{here}, key 'text': {len(self.text)} characters (at most {MAX_TEXT}); shorten the sentence."
            )
        if not isinstance(self.effects, Mapping):
            raise SpecError(
                f"{here}, key 'effects': give a table feature = \"expression\"; got {type_name(self.effects)}."
            )
        for feature, text in self.effects.items():
            if not isinstance(text, str):
                raise SpecError(
                    f"{here}, effects.{feature}: must be a quoted expression, got {shown(text)} "
                    f'({type_name(text)}); write e.g. {feature} = "{feature} + 1".'
                )
        for key in ("params", "pre", "post"):
            value = getattr(self, key)
            if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
                raise SpecError(f"{here}, key {key!r}: give a list, got {shown(value)} ({type_name(value)}).")
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "effects", dict(self.effects))
        object.__setattr__(self, "pre", tuple(self.pre))
        object.__setattr__(self, "post", tuple(self.post))
        if not self.effects:
            raise SpecError(f"action {self.name!r}: no effects; an action must change at least one feature.")
        if len(self.params) > MAX_PARAMS or max(len(self.pre), len(self.post)) > MAX_CONDITIONS:
            raise SpecError(
                f"{here}: {len(self.params)} parameters, {len(self.pre)} pre- and {len(self.post)} "
                f"postconditions; at most {MAX_PARAMS} parameters and {MAX_CONDITIONS} conditions of each kind."
            )
        for param in self.params:
            if not isinstance(param, Param):
                raise SpecError(f"{here}, params: each entry must be a Param; got {type_name(param)}.")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise SpecError(f"action {self.name!r}: parameter names repeat: {names}.")

    # ------------------------------------------------------------------------------- structure
    @property
    def footprint(self) -> frozenset[str]:
        """The features this action writes."""
        return frozenset(self.effects)

    @property
    def reads(self) -> frozenset[str]:
        """The features its effects, cost and conditions read (bound actions only)."""
        p = self._bound()
        params = {q.name for q in self.params}
        exprs = [*p["effects"].values(), p["cost"], *(c.expr for c in (*p["pre"], *p["post"]))]
        return frozenset(n for e in exprs for n in e.names if n not in params)

    @property
    def n_params(self) -> int:
        return len(self.params)

    def _bound(self) -> dict[str, Any]:
        if not self._parsed:
            raise SpecError(
                f"action {self.name!r}: not checked against a schema; use ActionSet(..., schema)."
            )
        return self._parsed

    def bind(self, schema: Schema, where: str) -> None:
        """Parse every expression against the schema's features and this action's parameters; check it."""
        here = f"{where}, action {self.name!r}"
        params = {q.name for q in self.params}
        clash = params & set(schema.names)
        if clash:
            raise SpecError(f"{here}: parameter names {sorted(clash)} are also feature names; rename them.")
        levels = {f.name: f.levels for f in schema.features if f.kind == "category"}
        names = set(schema.names) | params
        effects: dict[str, E.Expr] = {}
        for feature, text in self.effects.items():
            if feature not in schema:
                raise SpecError(
                    f"{here}, effects: unknown feature {feature!r}."
                    + did_you_mean(feature, schema.names)
                    + f" Features: {list(schema.names)}."
                )
            target = schema[feature]
            if target.mutability == "fixed":
                raise SpecError(
                    f"{here}, effects: {feature!r} is fixed in the schema and cannot be changed; remove the effect "
                    "or make the feature mutable (mutability = 'direct')."
                )
            if target.mutability == "indirect":
                raise SpecError(
                    f"{here}, effects: {feature!r} is indirect (predicted from other features); act on direct "
                    "features only."
                )
            parsed = E.parse(text, names=names, levels=levels, where=f"{here}, effect on {feature!r}")
            if target.kind == "category":
                if not parsed.is_level:
                    raise SpecError(
                        f"{here}, effect on {feature!r}: a category is set to a quoted level, e.g. "
                        f"\"'{target.levels[-1]}'\"; got {text!r}."
                    )
                try:
                    target.level_index(parsed.evaluate({}))
                except SpecError as exc:
                    raise SpecError(f"{here}, effect on {feature!r}: {str(exc).split(': ', 1)[-1]}") from None
            elif parsed.is_level or parsed.is_boolean:
                raise SpecError(f"{here}, effect on {feature!r}: must be a number expression; got {text!r}.")
            effects[feature] = parsed
        cost = E.parse(self.cost, names=names, levels=levels, where=f"{here}, cost")
        if cost.is_level or cost.is_boolean:
            raise SpecError(f"{here}, cost: must be a number expression; got {self.cost!r}.")
        self._check_text(here)
        pre = tuple(self._condition(c, names, levels, f"{here}, pre") for c in self.pre)
        post = tuple(self._condition(c, names, levels, f"{here}, post") for c in self.post)
        self._parsed.update(effects=effects, cost=cost, pre=pre, post=post)
        used = set(cost.names).union(*(e.names for e in effects.values()))
        idle = [q.name for q in self.params if q.name not in used]
        if idle:  # a parameter nothing depends on: the search would optimise a value with no gradient
            raise SpecError(
                f"{here}: parameter(s) {idle} appear in no effect and not in the cost, so they change nothing; "
                "use them in an effect or the cost, or remove them."
            )
        for param in self.params:
            for feature, parsed in effects.items():
                lo, hi = schema[feature].bounds
                if parsed.text.strip() == param.name and not (
                    lo <= param.bounds[0] and param.bounds[1] <= hi
                ):
                    raise SpecError(
                        f"{here}: parameter {param.name!r} sets {feature!r} directly, but its bounds "
                        f"{list(param.bounds)} leave the feature's bounds [{lo:g}, {hi:g}]; narrow the parameter."
                    )

    def _check_text(self, here: str) -> None:
        """``text`` may only name this action's parameters with a bounded format (``{amount:.0f}``): no
        attribute or index lookups, no nested fields, no width or precision above ``MAX_FORMAT``. It is then
        filled once with each parameter at its lower bound, so a format the value cannot take fails when
        the catalogue loads, not after a long search."""
        names = [p.name for p in self.params]
        fix = (
            f"use {{name}} or {{name:.0f}} with the parameters {names} (integer parameters also take :d); "
            "write {{ and }} for literal braces"
        )
        try:
            fields = list(string.Formatter().parse(self.text))
        except ValueError as exc:
            raise SpecError(
                f"{here}, text: {shown(self.text)} is not a valid template ({exc}); {fix}."
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
            {p.name: math.ceil(p.bounds[0]) if p.kind == "integer" else p.bounds[0] for p in self.params},
            {p.name: math.floor(p.bounds[1]) if p.kind == "integer" else p.bounds[1] for p in self.params},
        ]
        try:
            for probe in ends:
                self.text.format(**probe)
        except (KeyError, ValueError, IndexError, AttributeError, TypeError, OverflowError) as exc:
            raise SpecError(
                f"{here}, text: {shown(self.text)} cannot be filled with the parameters {names} "
                f"({type(exc).__name__}: {exc}); {fix}."
            ) from None

    @staticmethod
    def _condition(
        item: str | Condition, names: set[str], levels: Mapping[str, Sequence[str]], where: str
    ) -> Condition:
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
        parsed = E.parse(text, names=names, levels=levels, where=where)
        if not parsed.is_boolean:
            raise SpecError(
                f"{where}: {shown(text)} is not a condition; write a comparison such as 'age >= 18'."
            )
        return Condition(parsed, None if scale is None else float(scale))

    # ------------------------------------------------------------------------------ evaluation
    def env(self, schema: Schema, x: torch.Tensor, params: torch.Tensor) -> dict[str, E.Value]:
        """Names -> values for expressions: features of canonical rows ``x``, parameters ``params[..., i]``."""
        env: dict[str, E.Value] = {}
        for feature, part in schema.split(x).items():
            f = schema[feature]
            env[feature] = E.Categorical(part, f.levels) if f.kind == "category" else part
        for i, param in enumerate(self.params):
            env[param.name] = params[..., i]
        return env

    def apply(self, schema: Schema, x: torch.Tensor, env: Mapping[str, E.Value]) -> torch.Tensor:
        """The state after this action (differentiable in numeric effects)."""
        parts = dict(schema.split(x))
        for feature, parsed in self._bound()["effects"].items():
            value = parsed.evaluate(env)
            f = schema[feature]
            if isinstance(value, str):
                block = torch.zeros_like(parts[feature])
                block[..., f.level_index(value)] = 1.0
                parts[feature] = block
            else:
                parts[feature] = torch.broadcast_to(value.to(x.dtype), parts[feature].shape)
        return schema.assemble(parts)

    def cost_of(self, env: Mapping[str, E.Value], shape: torch.Size) -> torch.Tensor:
        value = self._bound()["cost"].evaluate(env)
        return torch.broadcast_to(torch.as_tensor(value, dtype=DTYPE), shape)

    def conditions(self, when: Literal["pre", "post"]) -> tuple[Condition, ...]:
        return tuple(self._bound()[when])

    def describe(self, params: Mapping[str, float]) -> str:
        """The sentence a person reads, e.g. ``Save 1200 DM more``."""
        if not self.text:
            shown = ", ".join(f"{k} = {v:g}" for k, v in params.items())
            return f"{self.name}({shown})" if shown else self.name
        try:
            return self.text.format(**params)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise SpecError(f"action {self.name!r}: text {self.text!r} cannot be filled ({exc}).") from None


def holds(condition: Condition, env: Mapping[str, E.Value]) -> torch.Tensor:
    """The exact boolean value of a condition."""
    value = condition.expr.evaluate(env)
    if not isinstance(value, torch.Tensor) or value.dtype != torch.bool:
        raise SpecError(f"{condition.expr.where}: {condition.expr.text!r} did not evaluate to a condition.")
    return value


def relax(
    condition: Condition, env: Mapping[str, E.Value], default_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The relaxed condition and its exact truth, from one evaluation.

    Penalty for a comparison with slack d (>= 0 when it holds) and scale s: w exp(-d/s) for d >= 0 and
    w (1 - d/s) below 0, so it is 0 deep inside, ``BARRIER_WEIGHT`` at the boundary and grows linearly past
    it, with a continuous slope. ``and`` sums, ``or`` takes the minimum; comparisons of categories carry no
    gradient (a constant penalty when false).
    """
    scale = condition.scale or default_scale
    return _relax(condition.expr.node, env, scale, negate=False, where=condition.expr.where)


def _relax(
    node: E.Node, env: Mapping[str, E.Value], scale: float, negate: bool, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(node, E.Not):
        return _relax(node.operand, env, scale, not negate, where)
    if isinstance(node, E.BoolOp):
        conjunction = (node.op == "and") != negate
        parts = [_relax(v, env, scale, negate, where) for v in node.values]
        penalties = torch.stack(torch.broadcast_tensors(*(p for p, _ in parts)))
        truths = torch.stack(torch.broadcast_tensors(*(t for _, t in parts)))
        if conjunction:
            return penalties.sum(0), truths.all(0)
        return penalties.min(0).values, truths.any(0)
    if isinstance(node, E.Compare):
        op = NEGATED[node.op] if negate else node.op
        left = E.evaluate_node(node.left, env, where)
        right = E.evaluate_node(node.right, env, where)
        if (
            isinstance(left, str | E.Categorical)
            or isinstance(right, str | E.Categorical)
            or op in ("==", "!=")
        ):
            truth = E.evaluate_node(E.Compare(op, node.left, node.right), env, where)
            if not isinstance(truth, torch.Tensor):
                raise SpecError(f"{where}: cannot evaluate {node!r} as a condition.")
            return (~truth).to(DTYPE) * (10 * BARRIER_WEIGHT), truth
        a, b = E.promote(E.as_number(left, where), E.as_number(right, where))
        slack = (a - b) if op in (">", ">=") else (b - a)
        truth = slack > 0 if op in (">", "<") else slack >= 0
        d = slack / scale
        return BARRIER_WEIGHT * torch.where(d >= 0, torch.exp(-d.clamp_min(0)), 1 - d), truth
    if isinstance(node, E.Const) and isinstance(node.value, bool):
        truth = torch.tensor(node.value != negate)
        return (~truth).to(DTYPE) * (10 * BARRIER_WEIGHT), truth
    raise SpecError(f"{where}: cannot relax {node!r} into a barrier.")


NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


# ------------------------------------------------------------------------------------ ActionSet
class ActionSet:
    """The catalogue of actions, bound to a schema and checked before any solve."""

    def __init__(self, actions: Iterable[Action], schema: Schema, *, where: str = "actions") -> None:
        if not isinstance(schema, Schema):
            raise SpecError(
                f"{where}: the argument 'schema' must be a Schema, got {type_name(schema)}; load one with "
                "Schema.from_toml('schema.toml') or take datasets.load(name).schema."
            )
        if isinstance(actions, str | bytes | Mapping) or not isinstance(actions, Iterable):
            raise SpecError(
                f"{where}: the argument 'actions' must be a list of Action, got {type_name(actions)}; "
                "load a catalogue with ActionSet.from_toml('actions.toml', schema)."
            )
        self.actions: tuple[Action, ...] = tuple(actions)
        for action in self.actions:
            if not isinstance(action, Action):
                raise SpecError(f"{where}: each entry must be an Action, got {type_name(action)}.")
        self.schema = schema
        self.where = where
        self.check(schema)

    def __len__(self) -> int:
        return len(self.actions)

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __getitem__(self, name: str) -> Action:
        for action in self.actions:
            if action.name == name:
                return action
        raise SpecError(f"{self.where}: no action {name!r}." + did_you_mean(name, self.names))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.actions)

    def check(self, schema: Schema) -> None:
        """Static checks: names, features, levels, fixed features, costs >= 0 and directions on samples."""
        if not self.actions:
            raise SpecError(f"{self.where}: the catalogue is empty; declare at least one [[action]].")
        if len(self.actions) > MAX_ACTIONS:
            raise SpecError(
                f"{self.where}: {len(self.actions)} actions (at most {MAX_ACTIONS}); split the catalogue."
            )
        names = [a.name for a in self.actions]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SpecError(
                f"{self.where}: action names {repeated} are declared more than once; names must be unique."
            )
        for action in self.actions:
            action.bind(schema, self.where)
            _check_box(action, schema, f"{self.where}, action {action.name!r}")
        self._check_samples(schema)

    def _check_samples(self, schema: Schema, n: int = 512) -> None:
        """Costs must be >= 0 and effects must respect directions on random states and parameter corners."""
        generator = torch.Generator().manual_seed(0)
        x = sample_states(schema, n, generator)
        for action in self.actions:
            here = f"{self.where}, action {action.name!r}"
            params = sample_params(action, n, generator)
            env = action.env(schema, x, params)
            pre_ok = torch.ones(n, dtype=torch.bool)
            for condition in action.conditions("pre"):
                pre_ok &= torch.broadcast_to(holds(condition, env), (n,))
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
                if f.kind == "category" or f.direction == "both":
                    continue
                cols = schema.slice(feature).start
                moved = after[:, cols] - x[:, cols]
                wrong = pre_ok & ((moved < -1e-9) if f.direction == "increase" else (moved > 1e-9))
                if wrong.any():
                    raise SpecError(
                        f"{here}, effect on {feature!r}: the schema lets {feature!r} only {f.direction}, but this "
                        f"effect can move it the other way; restrict the parameter's bounds."
                    )

    # --------------------------------------------------------------------------------- TOML
    @classmethod
    def from_toml(cls, source: str | Path, schema: Schema) -> ActionSet:
        """Load ``[[action]]`` tables; ``SpecError`` names file, action, key and fix."""
        if not isinstance(schema, Schema):
            raise SpecError(
                f"ActionSet.from_toml: the argument 'schema' must be a Schema, got {type_name(schema)}; load one "
                "with Schema.from_toml('schema.toml') or take datasets.load(name).schema."
            )
        data, where = read_toml(source, "actions")
        check_keys(where, "top level", data, {"action"})
        entries = data.get("action", [])
        if not isinstance(entries, list):
            raise SpecError(f"{where}: 'action' must be an array of tables: write [[action]].")
        if len(entries) > MAX_ACTIONS:
            raise SpecError(f"{where}: {len(entries)} actions (at most {MAX_ACTIONS}); split the catalogue.")
        return cls([_action_from_dict(where, i, e) for i, e in enumerate(entries)], schema, where=where)


def _action_from_dict(where: str, i: int, entry: Any) -> Action:
    label = f"{where}, [[action]] #{i + 1}"
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise SpecError(f"{label}: an action is a table with at least 'name', 'effects' and 'cost'.")
    if not isinstance(entry["name"], str):
        raise SpecError(
            f"{label}, key 'name': must be a string, got {shown(entry['name'])} ({type_name(entry['name'])}); "
            'write e.g. name = "save_more".'
        )
    label = f"{where}, action {shown(entry['name'])}"
    check_keys(where, f"action {shown(entry['name'])}", entry, ACTION_KEYS)
    for key in ("effects", "cost"):
        if key not in entry:
            raise SpecError(f"{label}: missing key {key!r}.")
    params = []
    raw_params = entry.get("params", {})
    if not isinstance(raw_params, Mapping):
        raise SpecError(f"{label}, params: give a table such as {{ amount = {{ bounds = [0, 100] }} }}.")
    if len(raw_params) > MAX_PARAMS:
        raise SpecError(f"{label}, params: {len(raw_params)} parameters (at most {MAX_PARAMS}).")
    for name, spec in raw_params.items():
        if not isinstance(spec, Mapping):
            raise SpecError(f"{label}, params.{name}: give a table with 'bounds'.")
        for key in spec:
            if key not in PARAM_KEYS:
                raise SpecError(
                    f"{label}, params.{name}: unknown key {shown(key)}." + did_you_mean(key, PARAM_KEYS)
                )
        if "bounds" not in spec:
            raise SpecError(f"{label}, params.{name}: missing 'bounds' = [lower, upper] (raw units).")
        if "kind" in spec and not isinstance(spec["kind"], str):
            raise SpecError(
                f"{label}, params.{name}, key 'kind': must be a string, got {shown(spec['kind'])} "
                f'({type_name(spec["kind"])}); write kind = "integer" or kind = "real".'
            )
        try:
            params.append(Param(name, spec["bounds"], **{k: v for k, v in spec.items() if k != "bounds"}))
        except SpecError as exc:
            raise SpecError(f"{label}, params.{name}: {str(exc).split(': ', 1)[-1]}") from None
    effects = entry["effects"]
    if not isinstance(effects, Mapping):
        raise SpecError(f'{label}, effects: give a table feature = "expression".')
    conditions = {key: entry.get(key, []) for key in ("pre", "post")}
    for key, value in conditions.items():
        if isinstance(value, str):  # one condition written without brackets: pre = "age >= 18"
            conditions[key] = [value]
        elif not isinstance(value, list):
            raise SpecError(f'{label}, {key}: give a list of conditions, e.g. ["age >= 18"].')
    try:
        return Action(
            name=entry["name"],
            effects=dict(effects),
            cost=entry["cost"],
            text=entry.get("text", ""),
            params=params,
            pre=conditions["pre"],
            post=conditions["post"],
            repeatable=entry.get("repeatable", False),
        )
    except SpecError as exc:
        raise SpecError(f"{where}, {exc}") from None


def _is_constant(value: object) -> bool:
    return is_number(value) and math.isfinite(float(value))  # type: ignore[arg-type]


def _constant_text(value: Any) -> str:
    """A finite number as expression text: ``5`` -> ``"5"``, ``0.5`` -> ``"0.5"`` (numpy scalars too)."""
    return str(int(value)) if isinstance(value, numbers.Integral) else repr(float(value))


# ------------------------------------------------------------------------------------ the box
def _check_box(action: Action, schema: Schema, here: str) -> None:
    """Refuse what interval arithmetic over the whole box (features within their schema bounds, parameters
    within theirs) proves meaningless, and check exactly on the box's corners what it cannot rule out.

    The rule, since an interval is sound but may be wider than the true range:

    * refused outright: preconditions that can hold nowhere on the box (after narrowing it by their simple
      ``name op number`` parts), postconditions that can hold after no application, a numeric effect that
      is NaN everywhere or lands outside its feature's bounds everywhere, a cost that is NaN everywhere,
      negative everywhere or infinite everywhere (e.g. ``-5``, ``10 ** 10 ** 10``, ``1e309``);
    * a cost whose interval merely *reaches* below 0, infinity or NaN is evaluated exactly on the corners of
      the (narrowed) box, 0 included where the box spans it, every level of a category it reads, and refused
      where such a point satisfies the preconditions and gives a negative or non-finite cost; otherwise the
      interval was an over-approximation (``x - x``), and the random states of ``_check_samples`` follow.
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
    cost = action._bound()["cost"]
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
    after: dict[str, I.Span | Sequence[str]] = dict(narrowed)
    for feature, parsed in action._bound()["effects"].items():
        f = schema[feature]
        if parsed.is_level:
            after[feature] = (str(parsed.evaluate({})),)
            continue
        effect = I.span(parsed.node, narrowed)
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


def _box(action: Action, schema: Schema) -> dict[str, I.Span | tuple[str, ...]]:
    box: dict[str, I.Span | tuple[str, ...]] = {}
    for f in schema.features:
        box[f.name] = f.levels if f.kind == "category" else I.Span(*f.bounds)
    for p in action.params:
        lo, hi = p.bounds
        box[p.name] = I.Span(math.ceil(lo), math.floor(hi)) if p.kind == "integer" else I.Span(lo, hi)
    return box


def _corner_witness(
    action: Action,
    schema: Schema,
    box: I.Box,
    pre: Sequence[Condition],
    cost: E.Expr,
    here: str,
    fix: str,
) -> None:
    """Evaluate the cost exactly on the box's corners; refuse at one where the preconditions hold and the
    cost is negative or not finite."""
    whole = {p.name for p in action.params if p.kind == "integer"} | {
        f.name for f in schema.features if f.kind in ("integer", "binary")
    }
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
    n = len(rows)
    env: dict[str, E.Value] = {}
    for j, name in enumerate(names):
        column = [row[j] for row in rows]
        if name in schema and schema[name].kind == "category":
            levels = schema[name].levels
            codes = torch.tensor([levels.index(v) for v in column])
            env[name] = E.Categorical(torch.nn.functional.one_hot(codes, len(levels)).to(DTYPE), levels)
        else:
            env[name] = torch.tensor(column, dtype=DTYPE)
    ok = torch.ones(n, dtype=torch.bool)
    for condition in pre:
        ok &= torch.broadcast_to(holds(condition, env), (n,))
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
        if f.kind == "category":
            codes = torch.randint(len(f.levels), (n,), generator=generator)
            parts[f.name] = torch.nn.functional.one_hot(codes, len(f.levels)).to(DTYPE)
            continue
        lo, hi = (
            (max(f.bounds[0], -1e3), min(f.bounds[1], 1e3))
            if not all(map(math.isfinite, f.bounds))
            else f.bounds
        )
        value = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=DTYPE)
        parts[f.name] = torch.round(value) if f.kind in ("integer", "binary") else value
    return schema.assemble(parts)


def sample_params(action: Action, n: int, generator: torch.Generator) -> torch.Tensor:
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
