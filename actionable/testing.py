"""The contract every recourse method must pass, checked independently of the method's own code.

``check_plans`` replays each found plan through the public ``Action`` API (not the engine's batched
kernels): preconditions on the state before each step, postconditions after, integer features whole,
bounds and directions, fixed features unchanged, the reported cost recomputed, the model's real decision.
``check_method`` adds batch = loop, seeds reproduce and the documented errors for bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from actionable.actions import ActionSet, relax
from actionable.errors import DataError
from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.results import RecourseBatch

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
        if r.row != position:
            problems.append(f"{where}: result carries row {r.row} (results must keep input order)")
        if r.status != "found":
            continue
        x = schema.encode(pd.DataFrame([r.x_before]))
        if not schema.encode(X.iloc[[position]]).equal(x):
            problems.append(f"{where}: x_before differs from the input row")
        total = 0.0
        for j, step in enumerate(r.steps):
            action = actions[step.action]
            params = torch.tensor([[float(step.params[p.name]) for p in action.params]], dtype=torch.float64)
            for p in action.params:
                value = float(step.params[p.name])
                if not p.bounds[0] <= value <= p.bounds[1] or (p.kind == "integer" and value != round(value)):
                    problems.append(
                        f"{where}, step {j + 1}: parameter {p.name} = {value} is not a valid value"
                    )
            env = action.env(schema, x, params)
            if not all(bool(relax(c, env, 1.0)[1]) for c in action.conditions("pre")):
                problems.append(f"{where}, step {j + 1} ({step.action}): a precondition is false")
            cost = float(action.cost_of(env, torch.Size([1]))[0])
            if not math.isclose(cost, step.cost, rel_tol=1e-9, abs_tol=1e-12):
                problems.append(
                    f"{where}, step {j + 1}: reported cost {step.cost} but it recomputes to {cost}"
                )
            total += cost
            after = action.apply(schema, x, env)
            for f in schema.features:
                cols = schema.slice(f.name)
                if f.kind == "integer":
                    after[:, cols] = torch.round(after[:, cols])
                if f.kind != "category" and f.direction != "both":
                    moved = float(after[0, cols.start] - x[0, cols.start])
                    if (f.direction == "increase" and moved < 0) or (f.direction == "decrease" and moved > 0):
                        problems.append(f"{where}, step {j + 1}: {f.name} moves against its direction")
            x = after
            if not all(
                bool(relax(c, action.env(schema, x, params), 1.0)[1]) for c in action.conditions("post")
            ):
                problems.append(f"{where}, step {j + 1} ({step.action}): a postcondition is false")
            try:
                schema.validate(schema.decode(x))
            except DataError as exc:
                problems.append(f"{where}, step {j + 1}: the state leaves the schema ({exc})")
        if not math.isclose(total, r.cost, rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{where}: reported cost {r.cost} but the steps recompute to {total}")
        replayed = {k: str(v) for k, v in schema.decode(x).iloc[0].items()}
        if replayed != {k: str(v) for k, v in r.x_after.items()}:
            problems.append(f"{where}: x_after differs from the replayed plan")
        for f in schema.features:
            if f.mutability == "fixed" and str(r.x_after.get(f.name)) != str(r.x_before.get(f.name)):
                problems.append(f"{where}: fixed feature {f.name} changed")
        with torch.no_grad():
            if not bool(target.satisfied(torch_model(x))[0]):
                problems.append(
                    f"{where}: the model does not give the favourable decision on the replayed plan"
                )
    return problems


def check_method(method: Method, model: Any, X: pd.DataFrame, actions: ActionSet, **options: Any) -> None:
    """Run the contract on a method ``method(model, X, actions, seed=..., **options) -> RecourseBatch``.

    Raises ``AssertionError`` listing every broken invariant.
    """
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
