"""The contract every recourse method must pass, checked independently of the method's own code.

``check_plans`` replays each found plan through the public ``Action`` API (not the engine's batched
kernels): preconditions on the state before each step, postconditions after, integer and binary
features made whole as declared (re-implemented here on exact fractions, not with ``rounding``),
bounds and directions, fixed features unchanged, the reported cost recomputed, the model's real decision.
``check_method`` adds batch = loop, seeds reproduce and the documented errors for bad input.
``check_inversions`` is the same contract for budget-constrained inverse classification (``invert``):
fixed features unchanged, directions and bounds respected, the reported cost recomputed from the raw
change and within budget, the model's probability recomputed and never worse than with no change.
``check_method`` runs it when given a ``Schema`` instead of an ``ActionSet``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pandas as pd
import torch

from actionable.actions import ActionSet, relax
from actionable.errors import ConfigError, DataError
from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.results import Recourse, RecourseBatch, Step
from actionable.rounding import SNAP
from actionable.rows import row_label
from actionable.schema import DTYPE, Schema

__all__ = [
    "Method",
    "check_inverse_method",
    "check_inversions",
    "check_method",
    "check_plans",
    "check_registered",
]

Method = Callable[..., RecourseBatch]


def check_plans(
    batch: RecourseBatch, X: pd.DataFrame, actions: ActionSet, model: Any, goal: Any = None
) -> list[str]:
    """Problems found in a batch of plans (empty when every invariant holds)."""
    schema = actions.schema
    torch_model = as_model(model, schema)
    target = resolve_goal(torch_model, goal)
    problems: list[str] = []
    if len(batch) != len(X):
        problems.append(f"{len(batch)} results for {len(X)} input rows")
    for position, r in enumerate(batch):
        where = f"row {position}"
        label = X.index[position] if position < len(X) else position
        if r.row != row_label(label):
            problems.append(
                f"{where}: result carries row {r.row!r}, not the input's label {label!r} (results keep input "
                "order and the input's index labels)"
            )
        if r.status != "found":
            continue
        x = schema.encode(pd.DataFrame([r.x_before]))
        if not schema.encode(X.iloc[[position]]).equal(x):
            problems.append(f"{where}: x_before differs from the input row")
        total = 0.0
        for j, step in enumerate(r.steps):
            x, cost = _replay_step(actions, step, x, f"{where}, step {j + 1}", problems)
            total += cost
        if not math.isclose(total, r.cost, rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{where}: reported cost {r.cost} but the steps recompute to {total}")
        replayed = {k: str(v) for k, v in schema.decode(x).astype(object).iloc[0].items()}
        if replayed != {k: str(v) for k, v in r.x_after.items()}:
            problems.append(f"{where}: x_after differs from the replayed plan")
        for f in schema.features:
            if f.is_fixed and str(r.x_after.get(f.name)) != str(r.x_before.get(f.name)):
                problems.append(f"{where}: fixed feature {f.name} changed")
        with torch.no_grad():
            if not bool(target.satisfied(torch_model(x))[0]):
                problems.append(
                    f"{where}: the model does not give the favourable decision on the replayed plan"
                )
    return problems


def check_method(
    method: Method | str, model: Any, X: pd.DataFrame, actions: ActionSet | Schema, /, **options: Any
) -> None:
    """Run the contract on a method ``method(model, X, actions, seed=..., **options) -> RecourseBatch``.

    Given a ``Schema`` instead of an ``ActionSet``, the method is an inverse classifier
    ``method(model, X, schema, budget=..., **options)`` (see ``check_inverse_method``).
    Given a registry name, the contract runs on ``registry.run(name, ...)`` with the spec the preset's
    verb takes (its derived catalogue, if any), and an unknown option must raise ``ConfigError``.
    Raises ``AssertionError`` listing every broken invariant.
    """
    if isinstance(method, str):
        check_registered(method, model, X, actions, **options)
        return
    if isinstance(actions, Schema):
        check_inverse_method(method, model, X, actions, **options)
        return
    problems: list[str] = []
    first = method(model, X, actions, seed=0, **options)
    problems += check_plans(first, X, actions, model)
    again = method(model, X, actions, seed=0, **options)
    if [(r.status, r.cost) for r in again] != [(r.status, r.cost) for r in first]:
        problems.append("the same seed gave different results")
    for i in range(min(2, len(X))):
        alone = method(model, X.iloc[[i]], actions, seed=0, **options)[0]
        both_nan = math.isnan(alone.cost) and math.isnan(first[i].cost)
        same_cost = both_nan or math.isclose(alone.cost, first[i].cost, rel_tol=1e-6)
        if alone.status != first[i].status or not same_cost:
            problems.append(
                f"row {i}: alone {alone.status} {alone.cost}, in the batch {first[i].status} {first[i].cost}"
            )
    try:
        method(model, X.drop(columns=X.columns[0]), actions, seed=0, **options)
        problems.append("a frame without a schema column did not raise DataError")
    except DataError:
        pass
    if problems:
        raise AssertionError("contract broken:\n  " + "\n  ".join(problems))


def check_registered(
    name: str, model: Any, X: pd.DataFrame, spec: ActionSet | Schema, /, **options: Any
) -> None:
    """The contract of ``check_method`` on the registry entry ``name``, plus: unknown options are refused."""
    import functools

    from actionable import registry

    preset = registry.get(name)
    method = functools.partial(registry.run, name)  # the preset's settings, spelled out for the checks
    check_method(method, model, X, preset.prepare(spec, name), **{**preset.defaults, **options})
    try:
        method(model, X, spec, **options, no_such_option=1)
    except ConfigError:
        return
    raise AssertionError(f"contract broken:\n  {name}: an unknown option did not raise ConfigError")


def _replay_step(
    actions: ActionSet, step: Step, x: torch.Tensor, at: str, problems: list[str]
) -> tuple[torch.Tensor, float]:
    """One step replayed through the public ``Action`` API: the state after it and its recomputed cost;
    what breaks the contract is appended to ``problems``."""
    schema = actions.schema
    action = actions[step.action]
    params = torch.tensor([[float(step.params[p.name]) for p in action.params]], dtype=torch.float64)
    for p in action.params:
        value = float(step.params[p.name])
        if not p.bounds[0] <= value <= p.bounds[1] or (p.kind == "integer" and value != round(value)):
            problems.append(f"{at}: parameter {p.name} = {value} is not a valid value")
    env = action.env(schema, x, params)
    if not all(bool(relax(c, env, 1.0)[1]) for c in action.conditions("pre")):
        problems.append(f"{at} ({step.action}): a precondition is false")
    cost = float(action.cost_of(env, torch.Size([1]))[0])
    if not math.isclose(cost, step.cost, rel_tol=1e-9, abs_tol=1e-12):
        problems.append(f"{at}: reported cost {step.cost} but it recomputes to {cost}")
    after = action.apply(schema, x, env)
    for f in schema.features:
        cols = schema.slice(f.name)
        if f.is_whole and f.name in action.footprint:
            after[0, cols.start] = _whole(float(after[0, cols.start]), action.rounding or f.rounding)
        if not f.is_category and not (f.may_increase and f.may_decrease):
            moved = float(after[0, cols.start] - x[0, cols.start])
            if (not f.may_decrease and moved < 0) or (not f.may_increase and moved > 0):
                problems.append(f"{at}: {f.name} moves against its direction")
    x = after
    if not all(bool(relax(c, action.env(schema, x, params), 1.0)[1]) for c in action.conditions("post")):
        problems.append(f"{at} ({step.action}): a postcondition is false")
    try:
        schema.validate(schema.decode(x))
    except DataError as exc:
        problems.append(f"{at}: the state leaves the schema ({exc})")
    return x, cost


def check_inversions(
    batch: RecourseBatch,
    X: pd.DataFrame,
    model: Any,
    schema: Schema,
    *,
    budget: float,
    indirect: Any = None,
    goal: Any = None,
    whole: bool = True,
) -> list[str]:
    """Problems found in a batch of inverse-classification results (empty when every invariant holds).

    Recomputed from the raw records alone: the cost of the change (per-direction costs per raw unit), the
    indirect features (re-predicted by ``indirect`` from the changed row), the model's probability of
    the favourable outcome before (no change) and after.
    """
    from actionable.inverse import on_schema

    torch_model = on_schema(model, schema)
    target = resolve_goal(torch_model, goal)
    problems: list[str] = []
    if len(batch) != len(X):
        problems.append(f"{len(batch)} results for {len(X)} input rows")
    clean = schema.validate(X)
    slack = budget * 1e-9 + 1e-12
    for position, r in enumerate(batch):
        where = f"row {position}"
        label = X.index[position] if position < len(X) else position
        if r.row != row_label(label):
            problems.append(
                f"{where}: result carries row {r.row!r}, not the input's label {label!r} (results keep input "
                "order and the input's index labels)"
            )
        if r.status == "error":
            continue
        original = {
            k: (v.item() if hasattr(v, "item") else v) for k, v in clean.astype(object).iloc[position].items()
        }
        if {k: str(v) for k, v in original.items()} != {k: str(r.x_before[str(k)]) for k in original}:
            problems.append(f"{where}: x_before differs from the input row")
        cost = _check_changes(r, schema, whole, where, problems)
        if not math.isclose(cost, r.cost, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{where}: reported cost {r.cost} but the change recomputes to {cost}")
        if not math.isclose(sum(s.cost for s in r.steps), r.cost, rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{where}: the steps' costs do not add up to the reported cost {r.cost}")
        if cost > budget + slack:
            problems.append(f"{where}: cost {cost} exceeds the budget {budget}")
        before, after = _canonical(schema, r.x_before), _canonical(schema, r.x_after)
        if indirect is not None:
            g = on_schema(indirect, schema, task="regression")
            cols = [schema.slice(name).start for name in g.outputs]
            with torch.no_grad():
                before[:, cols] = _settled(schema, g.outputs, g(before))
                predicted = g(after)
            if not torch.allclose(
                _settled(schema, g.outputs, predicted), after[:, cols], rtol=1e-9, atol=1e-9
            ):
                problems.append(f"{where}: the indirect features in x_after are not the indirect model's")
            raw = torch.tensor(
                [[r.indirect_raw.get(str(n), math.nan) for n in g.outputs]], dtype=predicted.dtype
            )
            if not torch.allclose(predicted, raw, rtol=1e-9, atol=1e-9):
                problems.append(f"{where}: indirect_raw is not the indirect model's prediction on x_after")
        with torch.no_grad():
            p0 = float(target.probability(torch_model(before))[0])
            p1 = float(target.probability(torch_model(after))[0])
        if not (math.isclose(p0, r.p_before, abs_tol=1e-9) and math.isclose(p1, r.p_after, abs_tol=1e-9)):
            problems.append(
                f"{where}: reported probabilities {r.p_before:.6g} -> {r.p_after:.6g}, recomputed {p0:.6g} -> {p1:.6g}"
            )
        if p1 < p0 - 1e-12:
            problems.append(f"{where}: the change makes the favourable outcome less likely ({p0} -> {p1})")
    return problems


def _check_changes(r: Recourse, schema: Schema, whole: bool, where: str, problems: list[str]) -> float:
    """Fixed features unchanged; direct ones within direction, bounds and (``whole``) whole numbers.
    Returns the cost of the change recomputed from the raw records."""
    cost = 0.0
    for f in schema.features:
        a, b = r.x_before[f.name], r.x_after[f.name]
        if f.is_fixed:
            if str(a) != str(b):
                problems.append(f"{where}: fixed feature {f.name} changed ({a} -> {b})")
            continue
        if not f.is_direct:
            continue
        change = float(b) - float(a)
        if (not f.may_decrease and change < 0) or (not f.may_increase and change > 0):
            problems.append(f"{where}: {f.name} moves against its direction ({a} -> {b})")
        if not f.bounds[0] - 1e-9 <= float(b) <= f.bounds[1] + 1e-9:
            problems.append(f"{where}: {f.name} = {b} leaves its bounds {list(f.bounds)}")
        if whole and f.is_whole and float(b) != round(float(b)):
            problems.append(f"{where}: {f.name} = {b} is not a whole number")
        cost += (f.cost_up or 0.0) * max(change, 0.0) + (f.cost_down or 0.0) * max(-change, 0.0)
    return cost


def _settled(schema: Schema, names: Any, values: torch.Tensor) -> torch.Tensor:
    """Indirect predictions as a valid row holds them: whole numbers for integer / binary, within bounds."""
    out = values.clone()
    for j, name in enumerate(names):
        f = schema[name]
        column = out[:, j]
        if f.is_whole:
            column = torch.tensor([_whole(v, f.rounding) for v in column.tolist()], dtype=out.dtype)
        out[:, j] = column.clamp(f.bounds[0], f.bounds[1])
    return out


def check_inverse_method(
    method: Method, model: Any, X: pd.DataFrame, schema: Schema, /, *, budget: float, **options: Any
) -> None:
    """The inverse-classification contract: invariants, determinism, batch = loop and bad input."""
    problems: list[str] = []
    first = method(model, X, schema, budget=budget, **options)
    whole = bool(options.get("rounding", True))
    problems += check_inversions(
        first,
        X,
        model,
        schema,
        budget=budget,
        indirect=options.get("indirect"),
        goal=options.get("goal"),
        whole=whole,
    )
    again = method(model, X, schema, budget=budget, **options)
    if [(r.status, r.cost, r.p_after) for r in again] != [(r.status, r.cost, r.p_after) for r in first]:
        problems.append("the same call gave different results")
    for i in range(min(2, len(X))):
        alone = method(model, X.iloc[[i]], schema, budget=budget, **options)[0]
        same = math.isclose(alone.cost, first[i].cost, rel_tol=1e-6, abs_tol=1e-9) and math.isclose(
            alone.p_after, first[i].p_after, rel_tol=1e-6, abs_tol=1e-9
        )
        if alone.status != first[i].status or not same:
            problems.append(
                f"row {i}: alone {alone.status} {alone.cost} {alone.p_after}, "
                f"in the batch {first[i].status} {first[i].cost} {first[i].p_after}"
            )
    cases: tuple[tuple[Callable[[], object], type[Exception], str], ...] = (
        (
            lambda: method(model, X.drop(columns=X.columns[0]), schema, budget=budget, **options),
            DataError,
            "a frame without a schema column",
        ),
        (lambda: method(model, X, schema, budget=-1.0, **options), ConfigError, "a negative budget"),
    )
    for bad, error, text in cases:
        try:
            bad()
            problems.append(f"{text} did not raise {error.__name__}")
        except error:
            pass
    if problems:
        raise AssertionError("contract broken:\n  " + "\n  ".join(problems))


def _whole(value: float, mode: str) -> float:
    """A number made whole as the schema or catalogue declares, computed on exact fractions: ``nearest``
    with halves away from zero; ``floor`` / ``ceil`` reading a value within ``SNAP`` of a whole number as it."""
    if not math.isfinite(value):
        return value
    exact = Fraction(value)
    nearest = math.floor(abs(exact) + Fraction(1, 2)) * (1 if exact >= 0 else -1)
    if mode == "nearest":
        return float(nearest)
    snapped = Fraction(nearest) if abs(exact - nearest) <= Fraction(SNAP) else exact
    return float(math.floor(snapped) if mode == "floor" else math.ceil(snapped))


def _canonical(schema: Schema, record: Any) -> torch.Tensor:
    """A one-row canonical tensor from a raw record, numbers kept as they are (not rounded)."""
    parts = {}
    for f in schema.features:
        value = record[f.name]
        if f.is_category:
            parts[f.name] = torch.nn.functional.one_hot(
                torch.tensor([f.level_index(value)]), len(f.levels)
            ).to(DTYPE)
        else:
            parts[f.name] = torch.tensor([float(value)], dtype=DTYPE)
    return schema.assemble(parts)
