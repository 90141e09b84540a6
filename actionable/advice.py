"""Adversarial advising: "attack" your own model to learn which changeable features move it your way.

The blog's idea as functions: the input gradient, scaled per standard deviation, ranks the changeable
features by how much a small move changes the prediction toward the goal; each piece of advice is
checked by asking the model itself what a small step does. ``gradient_table`` is the blog's side by side
view: per-sd gradients of several models at the average row and at one chosen row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.attribution import as_differentiable, attribute, standard_deviations, training_mean
from actionable.errors import ConfigError, DataError
from actionable.goals import Goal, resolve_goal
from actionable.models import TorchModel
from actionable.results import Advice, FeatureAdvice
from actionable.schema import DTYPE, Feature, Schema

__all__ = [
    "advise_gradient",
    "gradient_table",
]


def advise_gradient(
    model: Any,
    x: pd.DataFrame | pd.Series | Mapping[str, Any],
    goal: Any = None,
    schema: Schema | None = None,
    *,
    scale: pd.Series | None = None,
    step: float = 0.1,
) -> Advice:
    """Ranked advice for one person ``x`` (raw values): changeable features only, toward ``goal``.

    ``goal``: as in every verb (default: the schema's ``[target]``): a class (raise its probability),
    ``{"above": v}`` (raise the prediction) or ``{"below": v}`` (lower it). ``scale``: per-feature
    standard deviations (``standard_deviations(schema, train)``); without it, sizes are per raw unit.
    ``step``: the small step tried, in standard deviations (whole numbers for integer features).
    Real and integer features are ranked by the first-order gain of one sd; category and binary
    features by the exact gain of their best switch. Features whose helpful direction the schema forbids,
    that sit at their bound, or that are protected (``protected = true``: no one is advised to change their
    sex or nationality) are left out.
    """
    net = as_differentiable(model, schema, "advise_gradient")
    s = net.schema
    if isinstance(step, bool) or not isinstance(step, int | float) or not 0 < step <= 10:
        raise ConfigError(
            f"advise_gradient: step must be a number of standard deviations in (0, 10]; got {step!r}."
        )
    frame = x.to_frame().T if isinstance(x, pd.Series) else x
    row = s.validate(pd.DataFrame([dict(frame)]) if isinstance(frame, Mapping) else frame)
    if len(row) != 1:
        raise DataError(f"advise_gradient: give one person (one row); got {len(row)} rows.")
    resolved = resolve_goal(net, goal)
    sign = -1.0 if resolved.kind == "below" else 1.0
    sds = _sds(s, scale)
    x0 = s.encode(row)

    def quantity(z: torch.Tensor) -> torch.Tensor:
        return resolved.probability(net(z))

    point = x0.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(quantity(point).sum(), point)
    with torch.no_grad():
        before = float(quantity(x0)[0])
    candidates: list[tuple[Feature, str, float, float, Any, torch.Tensor]] = []
    for feature in s.features:
        if feature.mutable and not feature.protected:
            candidates += _moves(s, feature, x0[0], grad[0], sign, sds[feature.name], step)
    if not candidates:
        return _advice((), resolved, net, before, row, scale)
    with torch.no_grad():
        after = quantity(torch.stack([c[5] for c in candidates])).numpy()
    items = []
    for (feature, direction, per_sd, change, to, moved), value in zip(candidates, after, strict=True):
        effect = float(value) - before
        linear = float(grad[0] @ (moved - x0[0]))
        if (feature.is_category or feature.is_binary) and sign * effect <= 0:
            continue
        items.append((feature, direction, per_sd, change, to, effect, linear))
    items.sort(key=lambda it: -(abs(it[2]) if not math.isnan(it[2]) else sign * it[5]))
    return _advice(
        tuple(_item(net, resolved, sds, step, scale, *it) for it in items), resolved, net, before, row, scale
    )


def _sds(schema: Schema, scale: pd.Series | None) -> dict[str, float]:
    if scale is None:
        return {f.name: 1.0 for f in schema.features}
    missing = [n for n in schema.names if n not in scale.index]
    if missing:
        raise DataError(
            f"advise_gradient: scale lacks features {missing}; use standard_deviations(schema, train)."
        )
    values = {n: float(scale[n]) for n in schema.names}
    bad = {n: v for n, v in values.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise DataError(f"advise_gradient: scale values must be finite and > 0; got {bad}.")
    return values


def _may(feature: Feature, direction: str) -> bool:
    """Whether the feature's declared direction allows a move this way (``increase`` or ``decrease``)."""
    return feature.may_increase if direction == "increase" else feature.may_decrease


def _moves(
    schema: Schema, feature: Feature, x: torch.Tensor, grad: torch.Tensor, sign: float, sd: float, step: float
) -> list[tuple[Feature, str, float, float, Any, torch.Tensor]]:
    """The candidate moves of one feature: (feature, direction, per_sd, change, to, moved canonical row)."""
    cols = schema.slice(feature.name)
    if feature.is_category:
        current = int(x[cols].argmax())
        order = range(len(feature.levels))
        allowed = [
            k
            for k in order
            if k != current and (feature.may_increase if k > current else feature.may_decrease)
        ]
        out = []
        for k in allowed:
            moved = x.clone()
            moved[cols] = 0.0
            moved[cols.start + k] = 1.0
            out.append((feature, "switch", math.nan, math.nan, feature.levels[k], moved))
        return out
    value = float(x[cols.start])
    lo, hi = feature.bounds
    if feature.is_binary:
        new = 1.0 - value
        direction = "increase" if new > value else "decrease"
        if not _may(feature, direction):
            return []
        moved = x.clone()
        moved[cols.start] = new
        return [(feature, direction, math.nan, new - value, int(new), moved)]
    helpful = sign * float(grad[cols.start])
    if helpful == 0:
        return []
    direction = "increase" if helpful > 0 else "decrease"
    if not _may(feature, direction):
        return []
    size = step * sd
    if feature.is_integer:
        size = max(1.0, round(size))
    new = min(max(value + (size if direction == "increase" else -size), lo), hi)
    if new == value:
        return []
    moved = x.clone()
    moved[cols.start] = new
    return [(feature, direction, abs(float(grad[cols.start])) * sd, new - value, new, moved)]


def _item(
    net: TorchModel,
    goal: Goal,
    sds: Mapping[str, float],
    step: float,
    scale: pd.Series | None,
    feature: Feature,
    direction: str,
    per_sd: float,
    change: float,
    to: Any,
    effect: float,
    linear: float,
) -> FeatureAdvice:
    what = _quantity(net, goal)
    if math.isnan(per_sd):
        text = f"changing {feature.name} to {to!r} changes {what} by {effect:+.3g} (model)."
    else:
        unit = "1 sd" if scale is not None else "1 unit"
        size = f" ({sds[feature.name]:.3g})" if scale is not None else ""
        up_down = "raises" if goal.kind != "below" else "lowers"
        verb = "raising" if direction == "increase" else "lowering"
        text = (
            f"{verb} {feature.name} by {unit}{size} {up_down} {what} by about {per_sd:.3g}; "
            f"a step of {change:+.3g} changes it by {effect:+.3g} (model)."
        )
    return FeatureAdvice(
        feature=feature.name,
        direction=direction,
        per_sd=per_sd,
        sd=sds[feature.name],
        step=change,
        to=to,
        effect=effect,
        linear_effect=linear,
        text=text[0].upper() + text[1:],
    )


def _quantity(net: TorchModel, goal: Goal) -> str:
    if goal.kind in ("class", "probability"):
        return f"the probability of {goal.label!r}"
    return f"the predicted {net.outputs[goal.index]}"


def _advice(
    items: tuple[FeatureAdvice, ...],
    goal: Goal,
    net: TorchModel,
    before: float,
    row: pd.DataFrame,
    scale: pd.Series | None,
) -> Advice:
    record = {
        str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.iloc[0].to_dict().items()
    }
    return Advice(
        items=items,
        goal=goal.describe(),
        quantity=_quantity(net, goal)[0].upper() + _quantity(net, goal)[1:],
        prediction=before,
        x=record,
        unit="per sd" if scale is not None else "per unit",
    )


def gradient_table(
    models: Mapping[str, Any],
    reference: pd.DataFrame,
    row: pd.DataFrame | None = None,
    *,
    schema: Schema | None = None,
    target: Any = None,
) -> pd.DataFrame:
    """The blog's figures as a table: per-sd input gradients of each model at the average row of
    ``reference`` (its canonical mean) and, if given, at ``row``; one column per (model, point).

    For a linear model both columns are its standardized coefficients.
    """
    if not models:
        raise ConfigError("gradient_table: give at least one model.")
    columns: dict[str, np.ndarray] = {}
    names: tuple[str, ...] = ()
    for name, model in models.items():
        net = as_differentiable(model, schema, "gradient_table")
        s = net.schema
        names = s.names
        sd = standard_deviations(s, reference)
        mean = torch.as_tensor(training_mean(s, reference), dtype=DTYPE)[None]
        at_mean = attribute(net, mean, "gradient", target=target, scale=sd)
        columns[f"{name} @ mean"] = at_mean.values[0]
        if row is not None:
            at_row = attribute(net, row.iloc[:1], "gradient", target=target, scale=sd)
            columns[f"{name} @ row {row.index[0]}"] = at_row.values[0]
    return pd.DataFrame(columns, index=list(names))
