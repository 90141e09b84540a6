"""The action catalogues of generated problems, built through the public ``Action`` / ``Param`` API.

``catalogue(rng, schema)`` draws 2-6 actions with 0-3 parameters each (integer boxes of at most 25
values, real boxes), affine and nonlinear effects (``x + p``, ``x - 2 * p``, ``x * (1 + p / 10)``,
``x + p ** 2``, ``x + p * (1 + g / 10)`` reading another feature), constant, linear, affine, quadratic
and state-dependent costs, category actions (set a level) and binary ones, pre- and postconditions, and
conditions on what other actions write, so that some people need two steps in a given order. Every
action is checked by ``ActionSet`` like a user's, and one the checks refuse is drawn again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TypeGuard

import numpy as np

from actionable.actions import Action, ActionSet, Param
from actionable.errors import SpecError
from actionable.features import Feature
from actionable.schema import Schema

__all__ = ["catalogue"]

Used = Mapping[str, int]  # how many actions drawn so far write each feature
Draw = Callable[[np.random.Generator, Schema, str, Used], Action | None]


def _num(value: float) -> str:
    """A coefficient as expression text (4 significant digits)."""
    return f"{value:.4g}"


def _numeric(schema: Schema) -> list[Feature]:
    return [f for f in schema.features if f.is_direct and f.kind in ("real", "integer")]


def _pick(rng: np.random.Generator, features: list[Feature], used: Used) -> Feature:
    """One of ``features``, mostly one that fewer actions write yet (so catalogues spread out)."""
    weights = np.asarray([1 / (1 + 3 * used.get(f.name, 0)) for f in features])
    return features[int(rng.choice(len(features), p=weights / weights.sum()))]


def _sign(rng: np.random.Generator, f: Feature) -> int:
    """+1 or -1: a direction of change the feature allows."""
    if f.direction == "both":
        return int(rng.choice([1, -1]))
    return 1 if f.direction == "increase" else -1


def _param(rng: np.random.Generator, name: str, f: Feature, values: int = 25) -> Param:
    """A parameter >= 0 sized to the feature: whole numbers (at most ``values``) or a real box."""
    span = f.bounds[1] - f.bounds[0]
    if f.is_whole or rng.random() < 0.15:
        top = max(1, min(values - 1, math.ceil(span * float(rng.uniform(0.15, 0.45)))))
        return Param(name, (0, top), kind="integer")
    return Param(name, (0.0, round(span * float(rng.uniform(0.1, 0.4)), 3)))


def _cost(rng: np.random.Generator, param: Param, f: Feature) -> str:
    """A cost >= 0 of a parameter >= 0: constant, linear, affine, quadratic or state-dependent."""
    top = max(param.bounds[1], 1e-9)
    c = float(rng.uniform(1, 6)) / top
    p = param.name
    choice = int(rng.choice(5, p=[0.1, 0.2, 0.15, 0.35, 0.2]))  # convex costs make splitting pay
    if choice == 0:
        return _num(float(rng.uniform(0.5, 3)))
    if choice == 1:
        return f"{_num(c)} * {p}"
    if choice == 2:
        return f"{_num(c / 2)} * (2 * {p} + 1)"
    if choice == 3:
        return f"{_num(c / top)} * {p} ** 2"
    scale = c / max(f.bounds[1], 1.0)
    return f"0.2 + {_num(scale)} * {f.name} * {p}"  # reads the state before the action


def _effect(rng: np.random.Generator, schema: Schema, f: Feature, p: str, sign: int) -> str:
    """How parameter ``p`` (>= 0) moves ``f`` in direction ``sign``."""
    x = f.name
    choice = int(rng.integers(0, 5))
    if choice == 1:
        return f"{x} + 2 * {p}" if sign > 0 else f"{x} - 2 * {p}"
    if choice == 2:
        return f"{x} + {p} ** 2 / 4" if sign > 0 else f"{x} - {p} ** 2 / 4"
    if choice == 3 and f.kind == "real":
        return f"{x} * (1 + {p} / 10)" if sign > 0 else f"{x} * (1 - {p} / (10 + {p}))"
    others = [g for g in schema.features if g.kind in ("real", "integer") and g.name != x]
    if choice == 4 and others:  # reads another feature: interacts with whatever writes it
        g = others[int(rng.integers(0, len(others)))]
        scale = _num(max(g.bounds[1], 1.0))
        return f"{x} {'+' if sign > 0 else '-'} {p} * (1 + {g.name} / {scale})"
    return f"{x} + {p}" if sign > 0 else f"{x} - {p}"


def _shift(rng: np.random.Generator, schema: Schema, name: str, used: Used) -> Action | None:
    """One parameter moving one numeric feature."""
    f = _pick(rng, _numeric(schema), used)
    param = _param(rng, "p", f)
    return Action(
        name, {f.name: _effect(rng, schema, f, "p", _sign(rng, f))}, _cost(rng, param, f), params=[param]
    )


def _pair(rng: np.random.Generator, schema: Schema, name: str, used: Used) -> Action | None:
    """Two numeric features moved together: by one parameter, or by one each."""
    numeric = _numeric(schema)
    f = _pick(rng, numeric, used)
    g = _pick(rng, [h for h in numeric if h != f], used)
    p = _param(rng, "p", f, values=12)
    if rng.random() < 0.5:
        effects = {
            f.name: _effect(rng, schema, f, "p", _sign(rng, f)),
            g.name: _effect(rng, schema, g, "(p / 2)", _sign(rng, g)),
        }
        return Action(name, effects, _cost(rng, p, f), params=[p])
    q = Param("q", (0, int(rng.integers(2, 9))), kind="integer")
    effects = {
        f.name: _effect(rng, schema, f, "p", _sign(rng, f)),
        g.name: _effect(rng, schema, g, "q", _sign(rng, g)),
    }
    return Action(name, effects, f"{_cost(rng, p, f)} + {_cost(rng, q, g)}", params=[p, q])


def _triple(rng: np.random.Generator, schema: Schema, name: str, used: Used) -> Action | None:
    """Three small whole-number parameters on up to three numeric features."""
    numeric = _numeric(schema)
    params = [Param(n, (0, int(rng.integers(2, 5))), kind="integer") for n in ("p", "q", "s")]
    terms: dict[str, list[str]] = {}
    for param in params:
        f = _pick(rng, numeric, used)
        terms.setdefault(f.name, []).append(param.name)
    effects = {}
    for feature, names in terms.items():
        f = schema[feature]
        sign = " + " if _sign(rng, f) > 0 else " - "
        effects[feature] = feature + sign + sign.join(names)
    weights = rng.uniform(0.2, 1.5, size=3)
    cost = " + ".join(f"{_num(w)} * {p.name}" for w, p in zip(weights, params, strict=True))
    return Action(name, effects, cost, params=params)


def _level(rng: np.random.Generator, schema: Schema, name: str, used: Used) -> Action | None:
    """Set a direct category to a level, at a constant cost."""
    categories = [f for f in schema.features if f.is_direct and f.is_category]
    if not categories:
        return None
    f = _pick(rng, categories, used)
    level = str(rng.choice(list(f.levels)))
    pre = [f"{f.name} != '{level}'"] if rng.random() < 0.5 else []
    return Action(name, {f.name: f"'{level}'"}, _num(float(rng.uniform(0.5, 5))), pre=pre)


def _flag(rng: np.random.Generator, schema: Schema, name: str, used: Used) -> Action | None:
    """Set a direct binary feature to 1 (or toggle it where it may go both ways), at a constant cost."""
    flags = [f for f in schema.features if f.is_direct and f.is_binary]
    if not flags:
        return None
    f = _pick(rng, flags, used)
    toggle = f.direction == "both" and rng.random() < 0.4
    effect = f"1 - {f.name}" if toggle else "1"
    pre = [] if toggle else [f"{f.name} == 0"]
    return Action(name, {f.name: effect}, _num(float(rng.uniform(0.5, 4))), pre=pre)


def _bump(rng: np.random.Generator, schema: Schema, name: str, used: Used) -> Action | None:
    """A fixed step on a numeric feature (no parameter), at a constant cost."""
    f = _pick(rng, _numeric(schema), used)
    span = f.bounds[1] - f.bounds[0]
    step = int(rng.integers(1, 4)) if f.is_whole else round(span * float(rng.uniform(0.1, 0.4)), 3)
    effect = f"{f.name} + {step}" if _sign(rng, f) > 0 else f"{f.name} - {step}"
    return Action(name, {f.name: effect}, _num(float(rng.uniform(0.5, 3))), repeatable=False)


DRAWS: tuple[tuple[str, Draw, float], ...] = (
    ("shift", _shift, 0.42),
    ("pair", _pair, 0.14),
    ("triple", _triple, 0.06),
    ("level", _level, 0.15),
    ("flag", _flag, 0.1),
    ("bump", _bump, 0.13),
)


def _condition(rng: np.random.Generator, f: Feature, levels: list[str]) -> str:
    """A condition on ``f`` that holds for part of the box (a level in ``levels`` for a category)."""
    if f.is_category:
        level = levels[int(rng.integers(0, len(levels)))] if levels else str(f.levels[0])
        return f"{f.name} == '{level}'"
    lo, hi = f.bounds
    if f.is_binary:
        return f"{f.name} == 1"
    cut = lo + (hi - lo) * float(rng.uniform(0.2, 0.7))
    cut = round(cut) if f.is_whole else round(cut, 3)
    return f"{f.name} >= {cut}" if rng.random() < 0.6 else f"{f.name} <= {cut}"


def _conditions(rng: np.random.Generator, schema: Schema, actions: list[Action]) -> list[Action]:
    """Pre- and postconditions, most on what another action writes (so order and pairs matter)."""
    out = []
    for i, action in enumerate(actions):
        pre, post = list(action.pre), list(action.post)
        written = sorted({n for j, b in enumerate(actions) if j != i for n in b.footprint})
        if rng.random() < 0.5:
            pool = written if written and rng.random() < 0.7 else list(schema.names)
            f = schema[pool[int(rng.integers(0, len(pool)))]]
            set_levels = [
                b.effects[f.name].strip("'") for b in actions if f.name in b.effects and f.is_category
            ]
            pre.append(_condition(rng, f, set_levels))
        if action.params and rng.random() < 0.25:
            f = schema[sorted(action.footprint)[0]]
            if not f.is_category:
                lo, hi = f.bounds
                cut = lo + (hi - lo) * float(rng.uniform(0.6, 0.95))
                post.append(
                    f"{f.name} <= {_num(cut)}" if rng.random() < 0.6 else f"{f.name} >= {_num(lo + hi - cut)}"
                )
        out.append(Action(action.name, action.effects, action.cost, params=action.params, pre=pre, post=post))
    return out


def _opens(schema: Schema, action: Action) -> str | None:
    """The condition a constant action makes true (``c == 'b'`` for a level, ``f == 1`` for a flag)."""
    if action.params:
        return None
    for feature, text in action.effects.items():
        f = schema[feature]
        if f.is_category or (f.is_binary and text == "1"):
            return f"{feature} == {text}"
    return None


def _gate(rng: np.random.Generator, schema: Schema, actions: list[Action]) -> list[Action]:
    """One action with parameters made to need what a constant action sets (a level, a flag), so that
    people without it need both, in that order; the constant action is drawn where there is none."""
    out = list(actions)
    if not any(_opens(schema, a) for a in out) and len(out) < 6:
        used = Counter(n for a in out for n in a.footprint)
        for draw in (_level, _flag) if rng.random() < 0.5 else (_flag, _level):
            extra = draw(rng, schema, f"gate{len(out)}", used)
            if _checked(extra, schema):
                out.append(extra)
                break
    conditions = [c for c in (_opens(schema, a) for a in out) if c is not None]
    gated = [i for i, a in enumerate(out) if a.params]
    if not conditions or not gated:
        return actions
    condition = conditions[int(rng.integers(0, len(conditions)))]
    a = out[gated[int(rng.integers(0, len(gated)))]]
    out[out.index(a)] = Action(
        a.name, a.effects, a.cost, params=a.params, pre=[*a.pre, condition], post=a.post
    )
    return out


def _checked(action: Action | None, schema: Schema) -> TypeGuard[Action]:
    """Whether ``ActionSet`` accepts the action on its own (a user's catalogue would be refused)."""
    if action is None:
        return False
    try:
        ActionSet([action], schema)
    except SpecError:
        return False
    return True


def catalogue(rng: np.random.Generator, schema: Schema) -> ActionSet:
    """2-6 random actions on ``schema`` (see the module's docstring), checked by ``ActionSet``."""
    count = int(rng.integers(2, 7))
    names, draws, weights = zip(*DRAWS, strict=True)
    p = np.asarray(weights) / sum(weights)
    actions: list[Action] = []
    while len(actions) < count:
        k = int(rng.choice(len(draws), p=p))
        used = Counter(n for a in actions for n in a.footprint)
        action = draws[k](rng, schema, f"{names[k]}{len(actions)}", used)
        if _checked(action, schema):
            actions.append(action)
    if rng.random() < 0.6:
        gated = _gate(rng, schema, actions)
        actions = gated if all(_checked(a, schema) for a in gated) else actions
    for _ in range(10):
        conditioned = _conditions(rng, schema, actions)
        if all(_checked(a, schema) for a in conditioned):
            return ActionSet(conditioned, schema, where="generated actions")
    return ActionSet(actions, schema, where="generated actions")
