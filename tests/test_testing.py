"""The contract suite passes on synthesize and catches planted bugs in a method's output."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import pytest

from actionable import datasets
from actionable.actions import ActionSet
from actionable.results import RecourseBatch, Step
from actionable.synthesis import synthesize
from actionable.testing import check_method, check_plans


@pytest.fixture(scope="module")
def german() -> tuple[Any, ActionSet, pd.DataFrame]:
    data = datasets.load("german")
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    return data.model, actions, data.X_test[data.model.predict(data.X_test) == "bad"].head(5)


def test_synthesize_passes_the_contract(german: tuple[Any, ActionSet, pd.DataFrame]) -> None:
    model, actions, people = german
    check_method(synthesize, model, people, actions, max_length=3, steps=80)


def tamper(batch: RecourseBatch, change: str) -> RecourseBatch:
    items = list(batch)
    r = items[0]
    if change == "fixed":
        items[0] = dataclasses.replace(r, x_after={**r.x_after, "purpose": "business"})
    elif change == "cost":
        items[0] = dataclasses.replace(r, cost=r.cost / 2)
    elif change == "step-cost":
        step = r.steps[0]
        items[0] = dataclasses.replace(
            r, steps=(Step(step.action, step.params, step.cost + 1, step.text), *r.steps[1:])
        )
    elif change == "order":
        items[0], items[1] = items[1], items[0]
    elif change == "params":
        step = r.steps[0]
        wild = {k: v * 1000 for k, v in step.params.items()}
        items[0] = dataclasses.replace(r, steps=(Step(step.action, wild, step.cost, step.text), *r.steps[1:]))
    return RecourseBatch(tuple(items))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("fixed", "fixed feature purpose changed"),
        ("cost", "reported cost"),
        ("step-cost", "recomputes to"),
        ("order", "keep input order"),
        ("params", "is not a valid value|x_after differs"),
    ],
)
def test_planted_bugs_are_caught(
    german: tuple[Any, ActionSet, pd.DataFrame], change: str, message: str
) -> None:
    model, actions, people = german
    batch = synthesize(model, people, actions, max_length=2, steps=60)
    assert check_plans(batch, people, actions, model) == []
    problems = check_plans(tamper(batch, change), people, actions, model)
    assert problems and any(__import__("re").search(message, p) for p in problems), problems


def test_a_method_that_ignores_seeds_or_batches_is_caught(
    german: tuple[Any, ActionSet, pd.DataFrame],
) -> None:
    model, actions, people = german
    calls = {"n": 0}

    def flaky(
        model: Any, X: pd.DataFrame, actions: ActionSet, seed: int = 0, **options: Any
    ) -> RecourseBatch:
        calls["n"] += 1
        batch = synthesize(model, X, actions, seed=seed, **options)
        if calls["n"] == 2:  # a different answer on the second, identical call
            return tamper(batch, "cost")
        return batch

    with pytest.raises(AssertionError, match="same seed gave different results"):
        check_method(flaky, model, people, actions, max_length=2, steps=60)
