"""Domain actions: what a person can do, with parameters in raw units, costs, pre- and postconditions.

An ``Action`` changes some features by expressions of the state *before* it and of its parameters; its
cost is an expression of the same; preconditions hold on the state before it, postconditions on the state
after it. An ``Action`` never changes once built: ``Action.bind`` parses it against a ``Schema`` into a
separate frozen ``BoundAction`` (the same action with its parsed expressions), and an ``ActionSet`` holds
the bound actions after the static checks of ``action_checks``. ``[[action]]`` tables of a TOML catalogue
are read here too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch

from actionable import expr as E
from actionable.action_checks import (
    MAX_CORNERS,
    MAX_FORMAT,
    check_box,
    check_protected,
    check_samples,
    check_text,
    sample_params,
    sample_states,
)
from actionable.errors import SpecError, did_you_mean, shown
from actionable.evaluate import BARRIER_WEIGHT, NEGATED, Condition, holds, relax
from actionable.expr import CONDITION_KEYS, parse_condition
from actionable.parameters import MAX_PARAMS, PARAM_KEYS, Param, params_from_table
from actionable.rounding import ROUNDINGS, RoundingMode
from actionable.schema import DTYPE, Feature, Schema, check_keys, is_number, read_toml, type_name
from actionable.specfile import as_flag

__all__ = [
    "ACTION_KEYS",
    "BARRIER_WEIGHT",
    "CONDITION_KEYS",
    "MAX_ACTIONS",
    "MAX_CONDITIONS",
    "MAX_CORNERS",
    "MAX_FORMAT",
    "MAX_PARAMS",
    "MAX_TEXT",
    "NEGATED",
    "PARAM_KEYS",
    "Action",
    "ActionSet",
    "BoundAction",
    "Condition",
    "Param",
    "ParsedAction",
    "holds",
    "relax",
    "sample_params",
    "sample_states",
]

ACTION_KEYS = {"name", "text", "params", "effects", "cost", "pre", "post", "repeatable", "rounding"}
MAX_ACTIONS = 1000  # what one catalogue may declare: a file is data and may not ask for unbounded work
MAX_CONDITIONS = 256
MAX_TEXT = 1000  # characters of an action's sentence


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
    rounding: RoundingMode | None = None  # how its effects on whole-number features are made whole

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
        self._check_fields(here)
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

    def _check_fields(self, here: str) -> None:
        """The types and sizes of ``repeatable``, ``text``, ``effects`` and the lists, as given."""
        if not isinstance(self.repeatable, bool):
            raise SpecError(
                f"{here}, key 'repeatable': must be true or false (a TOML boolean), got "
                f"{shown(self.repeatable)} ({type_name(self.repeatable)}); write repeatable = true without quotes."
            )
        if self.rounding is not None and self.rounding not in ROUNDINGS:
            raise SpecError(
                f"{here}, key 'rounding': {shown(self.rounding)} is not one of {list(ROUNDINGS)}; leave it out "
                "to round as each feature says (nearest by default)." + did_you_mean(self.rounding, ROUNDINGS)
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

    # ------------------------------------------------------------------------------- structure
    @property
    def footprint(self) -> frozenset[str]:
        """The features this action writes."""
        return frozenset(self.effects)

    @property
    def reads(self) -> frozenset[str]:
        """The features its effects, cost and conditions read (bound actions only)."""
        p = self.expressions
        params = {q.name for q in self.params}
        exprs = [*p.effects.values(), p.cost, *(c.expr for c in (*p.pre, *p.post))]
        return frozenset(n for e in exprs for n in e.names if n not in params)

    @property
    def n_params(self) -> int:
        return len(self.params)

    def whole_mode(self, feature: Feature) -> RoundingMode:
        """How this action's effect on ``feature`` is made whole: its own ``rounding``, else the feature's."""
        return self.rounding or feature.rounding

    @property
    def expressions(self) -> ParsedAction:
        """The parsed expressions (effects, cost, pre, post); only a ``BoundAction`` (from ``bind``, as
        every action of an ``ActionSet`` is) has them, an unchecked action raises ``SpecError``."""
        raise SpecError(f"action {self.name!r}: not checked against a schema; use ActionSet(..., schema).")

    def bind(self, schema: Schema, where: str) -> BoundAction:
        """This action parsed against the schema's features and its parameters, checked; ``self`` is unchanged."""
        here = f"{where}, action {self.name!r}"
        params = {q.name for q in self.params}
        clash = params & set(schema.names)
        if clash:
            raise SpecError(f"{here}: parameter names {sorted(clash)} are also feature names; rename them.")
        levels = {f.name: f.levels for f in schema.features if f.is_category}
        names = set(schema.names) | params
        effects = {
            feature: _parse_effect(schema, feature, text, names, levels, here)
            for feature, text in self.effects.items()
        }
        cost = E.parse(self.cost, names=names, levels=levels, where=f"{here}, cost")
        if cost.is_level or cost.is_boolean:
            raise SpecError(f"{here}, cost: must be a number expression; got {self.cost!r}.")
        check_text(self, here)
        pre = tuple(parse_condition(c, names, levels, f"{here}, pre") for c in self.pre)
        post = tuple(parse_condition(c, names, levels, f"{here}, post") for c in self.post)
        parsed = ParsedAction(effects, cost, pre, post)
        if self.rounding is not None and not any(schema[f].is_whole for f in effects):
            raise SpecError(
                f"{here}, key 'rounding': the action writes no integer or binary feature, so there is nothing "
                "to make whole; remove it."
            )
        used = set(cost.names).union(*(e.names for e in effects.values()))
        idle = [q.name for q in self.params if q.name not in used]
        if idle:  # a parameter nothing depends on: the search would optimise a value with no gradient
            raise SpecError(
                f"{here}: parameter(s) {idle} appear in no effect and not in the cost, so they change nothing; "
                "use them in an effect or the cost, or remove them."
            )
        for param in self.params:
            for feature, expr in effects.items():
                lo, hi = schema[feature].bounds
                if expr.text.strip() == param.name and not (lo <= param.bounds[0] and param.bounds[1] <= hi):
                    raise SpecError(
                        f"{here}: parameter {param.name!r} sets {feature!r} directly, but its bounds "
                        f"{list(param.bounds)} leave the feature's bounds [{lo:g}, {hi:g}]; narrow the parameter."
                    )
        return BoundAction(**{f.name: getattr(self, f.name) for f in fields(Action)}, parsed=parsed)

    # ------------------------------------------------------------------------------ evaluation
    def env(self, schema: Schema, x: torch.Tensor, params: torch.Tensor) -> dict[str, E.Value]:
        """Names -> values for expressions: features of canonical rows ``x``, parameters ``params[..., i]``."""
        env: dict[str, E.Value] = {}
        for feature, part in schema.split(x).items():
            f = schema[feature]
            env[feature] = E.Categorical(part, f.levels) if f.is_category else part
        for i, param in enumerate(self.params):
            env[param.name] = params[..., i]
        return env

    def apply(self, schema: Schema, x: torch.Tensor, env: Mapping[str, E.Value]) -> torch.Tensor:
        """The state after this action (differentiable in numeric effects)."""
        parts = dict(schema.split(x))
        for feature, parsed in self.expressions.effects.items():
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
        value = self.expressions.cost.evaluate(env)
        return torch.broadcast_to(torch.as_tensor(value, dtype=DTYPE), shape)

    def conditions(self, when: Literal["pre", "post"]) -> tuple[Condition, ...]:
        p = self.expressions
        return p.pre if when == "pre" else p.post

    def describe(self, params: Mapping[str, float]) -> str:
        """The sentence a person reads, e.g. ``Save 1200 DM more``."""
        if not self.text:
            shown = ", ".join(f"{k} = {v:g}" for k, v in params.items())
            return f"{self.name}({shown})" if shown else self.name
        try:
            return self.text.format(**params)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise SpecError(f"action {self.name!r}: text {self.text!r} cannot be filled ({exc}).") from None


@dataclass(frozen=True)
class ParsedAction:
    """An action's expressions parsed against a schema: effects by feature, cost, pre- and postconditions."""

    effects: Mapping[str, E.Expr]
    cost: E.Expr
    pre: tuple[Condition, ...]
    post: tuple[Condition, ...]


@dataclass(frozen=True)
class BoundAction(Action):
    """An ``Action`` checked against a schema, holding its parsed expressions (``Action.bind`` builds it).

    It is the same action (every field equal) plus ``parsed``; like ``Action`` it never changes, so what
    the engines read was fixed when the catalogue was checked.
    """

    parsed: ParsedAction = field(kw_only=True, repr=False, compare=False)

    @property
    def expressions(self) -> ParsedAction:
        return self.parsed


def _parse_effect(
    schema: Schema, feature: str, text: str, names: set[str], levels: Mapping[str, Sequence[str]], here: str
) -> E.Expr:
    """One effect parsed and checked: a known, direct feature; a category set to one of its levels."""
    if feature not in schema:
        raise SpecError(
            f"{here}, effects: unknown feature {feature!r}."
            + did_you_mean(feature, schema.names)
            + f" Features: {list(schema.names)}."
        )
    target: Feature = schema[feature]
    if target.is_fixed:
        raise SpecError(
            f"{here}, effects: {feature!r} is fixed in the schema and cannot be changed; remove the effect "
            "or make the feature mutable (mutability = 'direct')."
        )
    if target.is_indirect:
        raise SpecError(
            f"{here}, effects: {feature!r} is indirect (predicted from other features); act on direct "
            "features only."
        )
    parsed = E.parse(text, names=names, levels=levels, where=f"{here}, effect on {feature!r}")
    if target.is_category:
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
    return parsed


# ------------------------------------------------------------------------------------ ActionSet
class ActionSet:
    """The catalogue of actions, bound to a schema and checked before any solve.

    ``allow_protected``: let actions write protected features (``protected = true`` in the schema); off by
    default, since recourse must not ask a person to change them; on only to reproduce a study that did.
    """

    def __init__(
        self,
        actions: Iterable[Action],
        schema: Schema,
        *,
        where: str = "actions",
        allow_protected: bool = False,
    ) -> None:
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
        given: tuple[Action, ...] = tuple(actions)
        for action in given:
            if not isinstance(action, Action):
                raise SpecError(f"{where}: each entry must be an Action, got {type_name(action)}.")
        allow_protected = as_flag(allow_protected)  # type: ignore[assignment]
        if not isinstance(allow_protected, bool):
            raise SpecError(
                f"{where}: 'allow_protected' must be true or false (a TOML boolean), got "
                f"{shown(allow_protected)} ({type_name(allow_protected)}); write allow_protected = true without quotes."
            )
        self.actions: tuple[Action, ...] = given
        self.schema = schema
        self.where = where
        self.allow_protected = allow_protected
        self.actions = tuple(self.check(schema))  # the bound actions: the given ones are never changed

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

    def check(self, schema: Schema) -> tuple[BoundAction, ...]:
        """Static checks: names, features, levels, fixed features, costs >= 0 and directions on samples.

        Returns the actions bound to ``schema`` (``Action.bind``); the actions themselves are not changed."""
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
        bound = [action.bind(schema, self.where) for action in self.actions]
        if not self.allow_protected:
            check_protected(bound, schema, self.where)
        for action in bound:
            check_box(action, schema, f"{self.where}, action {action.name!r}")
        check_samples(bound, schema, self.where)
        return tuple(bound)

    # --------------------------------------------------------------------------------- TOML
    @classmethod
    def from_toml(cls, source: str | Path, schema: Schema) -> ActionSet:
        """Load ``[[action]]`` tables (and the top-level ``allow_protected``); ``SpecError`` names file,
        action, key and fix."""
        if not isinstance(schema, Schema):
            raise SpecError(
                f"ActionSet.from_toml: the argument 'schema' must be a Schema, got {type_name(schema)}; load one "
                "with Schema.from_toml('schema.toml') or take datasets.load(name).schema."
            )
        data, where = read_toml(source, "actions")
        check_keys(where, "top level", data, {"action", "allow_protected"})
        entries = data.get("action", [])
        if not isinstance(entries, list):
            raise SpecError(f"{where}: 'action' must be an array of tables: write [[action]].")
        if len(entries) > MAX_ACTIONS:
            raise SpecError(f"{where}: {len(entries)} actions (at most {MAX_ACTIONS}); split the catalogue.")
        actions = [_action_from_dict(where, i, e) for i, e in enumerate(entries)]
        return cls(actions, schema, where=where, allow_protected=data.get("allow_protected", False))


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
    if "allow_protected" in entry:  # TOML puts a key written after [[action]] into that action's table
        raise SpecError(
            f"{label}: 'allow_protected' is a setting of the whole catalogue, but a key written after "
            "[[action]] belongs to that action; move allow_protected = true to the top of the file, before "
            "the first [[action]]."
        )
    check_keys(where, f"action {shown(entry['name'])}", entry, ACTION_KEYS)
    for key in ("effects", "cost"):
        if key not in entry:
            raise SpecError(f"{label}: missing key {key!r}.")
    params = params_from_table(label, entry.get("params", {}))
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
            rounding=entry.get("rounding"),
        )
    except SpecError as exc:
        raise SpecError(f"{where}, {exc}") from None


def _is_constant(value: object) -> bool:
    return is_number(value) and math.isfinite(float(value))  # type: ignore[arg-type]


def _constant_text(value: Any) -> str:
    """A finite number as expression text: ``5`` -> ``"5"``, ``0.5`` -> ``"0.5"`` (numpy scalars too)."""
    return str(int(value)) if isinstance(value, numbers.Integral) else repr(float(value))
