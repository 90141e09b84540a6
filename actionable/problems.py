"""Seeded random recourse problems, to measure a search against the exhaustive oracle (``oracle.py``).

``generate(seed)`` draws, deterministically per seed, what a user would bring: a schema of 3-8 features
(real, integer, binary, category; fixed and direct; directions, finite bounds, costs per direction), a
catalogue of 2-6 actions built through the public ``Action`` / ``Param`` API (so it is checked like a
user's: see ``problem_actions``), a fitted model (logistic regression, scikit-learn MLPs with each
activation, a torch ReLU network; the favourable class first or second; scikit-learn ones sometimes as a
``Pipeline`` of a ``ColumnTransformer``: see ``problem_models``) and the people it does not favour.
Each problem is small enough for ``solve_exhaustively`` to finish in well under a second for 20 people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from actionable.actions import ActionSet
from actionable.errors import ConfigError
from actionable.models import as_model
from actionable.oracle import count_candidates
from actionable.problem_actions import catalogue
from actionable.problem_models import FAMILIES, TREE_FAMILIES, fit_model, training_frame
from actionable.schema import Schema

__all__ = ["BUDGET", "FAMILIES", "Problem", "generate", "random_schema"]

BUDGET = 6_000  # grid combinations per person the oracle may enumerate (its grid = 64)


@dataclass(frozen=True)
class Problem:
    """One generated recourse problem: what a user passes to ``synthesize``, and how it was drawn.

    ``model`` is what a user would pass (a fitted scikit-learn estimator or Pipeline, or a torch module);
    ``X`` holds ``people`` raw rows the model does not favour, with a non-trivial index (100, 103, ...).
    """

    name: str
    family: str
    pipeline: bool
    schema: Schema
    actions: ActionSet
    model: Any
    X: pd.DataFrame
    max_length: int
    margin: float = 0.1
    seed: int = 0


def random_schema(rng: np.random.Generator, favourable: int) -> Schema:
    """3-8 features of every kind; at least two direct numeric ones; target classes (0, 1). Built from
    the tables a ``schema.toml`` holds (``Schema.from_dict``), so it is checked like a user's."""
    n = int(rng.integers(3, 9))
    kinds = rng.choice(["real", "integer", "binary", "category"], size=n, p=[0.35, 0.3, 0.15, 0.2])
    kinds[:2] = rng.choice(["real", "integer"], size=2)  # something numeric to act on
    tables = [
        _feature(rng, f"{kind[0]}{i}", str(kind), i < 2 or rng.random() < 0.65)
        for i, kind in enumerate(kinds)
    ]
    target = {"name": "y", "favourable": favourable, "classes": [0, 1]}
    return Schema.from_dict(
        {"name": "generated", "target": target, "feature": tables}, where="generated schema"
    )


def _feature(rng: np.random.Generator, name: str, kind: str, direct: bool) -> dict[str, Any]:
    """One ``[[feature]]`` table."""
    table: dict[str, Any] = {"name": name, "kind": kind, "mutability": "direct" if direct else "fixed"}
    if kind == "category":
        return table | {"levels": ["a", "b", "c", "d"][: int(rng.integers(2, 5))]}
    if kind == "binary":
        return table | {
            "direction": str(rng.choice(["both", "increase"])) if direct else "both",
            "cost_up": 1.0,
        }
    hi = float(rng.choice([5, 10, 20, 50] if kind == "integer" else [1, 5, 10, 20, 100]))
    direction = str(rng.choice(["both", "increase", "decrease"], p=[0.4, 0.4, 0.2])) if direct else "both"
    table |= {"bounds": [0.0, hi], "direction": direction}
    if direction != "decrease":
        table["cost_up"] = round(float(rng.uniform(0.5, 2)) / hi, 4)
    if direction != "increase":
        table["cost_down"] = round(float(rng.uniform(0.5, 2)) / hi, 4)
    return table


def _people(
    rng: np.random.Generator, schema: Schema, model: Any, people: int, favourable: int
) -> pd.DataFrame | None:
    """``people`` rows drawn like the training data that the model does not favour, indexed 100, 103, ...:
    half of them the closest to its decision boundary among ``8 x people`` drawn, half at random (None
    where the model favours nearly everyone)."""
    torch_model = as_model(model, schema)
    chosen: list[pd.DataFrame] = []
    for _ in range(10):
        frame = training_frame(rng, schema, 8 * people)
        chosen.append(frame[torch_model.predict(frame) != favourable])
        if sum(len(c) for c in chosen) >= 8 * people:
            break
    pool = pd.concat(chosen).reset_index(drop=True)
    if len(pool) < people:
        return None
    column = list(torch_model.classes).index(favourable)
    closeness = torch_model.predict_proba(pool)[:, column]
    near = np.argsort(-closeness, kind="stable")[: people // 2]
    rest = np.setdiff1d(np.arange(len(pool)), near)
    picked = np.concatenate([near, rng.choice(rest, size=people - len(near), replace=False)])
    X = pool.iloc[np.sort(picked)].reset_index(drop=True)
    X.index = pd.Index(100 + 3 * np.arange(len(X)), name="person")
    return X


def _within_budget(rng: np.random.Generator, schema: Schema, seed: int) -> tuple[ActionSet, int]:
    """A catalogue and a longest sequence (3 for a quarter of the problems) the oracle enumerates within
    ``BUDGET``: the longest sequence shrinks to 2 first, then a fresh catalogue is drawn."""
    max_length = 3 if rng.random() < 0.25 else 2
    for _ in range(50):
        actions = catalogue(rng, schema)
        if max_length == 3 and count_candidates(actions, 3) > BUDGET:
            max_length = 2
        if count_candidates(actions, max_length) <= BUDGET:
            return actions, max_length
    raise RuntimeError(f"generate: no catalogue within the oracle's budget for seed {seed}.")


def generate(seed: int, *, people: int = 20, family: str | None = None) -> Problem:
    """The problem of ``seed`` (deterministic): family ``FAMILIES[seed % 6]`` unless ``family`` is given
    (any of ``FAMILIES`` or ``TREE_FAMILIES``).

    Named ``{family}-{seed}`` (``-pipe`` when the scikit-learn model is a Pipeline).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"generate: seed = {seed!r}; give a whole number >= 0.")
    if not isinstance(people, int) or isinstance(people, bool) or not 1 <= people <= 10_000:
        raise ConfigError(f"generate: people = {people!r}; give a whole number in [1, 10000].")
    family = FAMILIES[seed % len(FAMILIES)] if family is None else family
    known = FAMILIES + TREE_FAMILIES
    if family not in known:
        raise ConfigError(f"generate: family = {family!r} is not one of {list(known)}.")
    rng = np.random.default_rng([seed, known.index(family)])
    favourable = int(rng.integers(0, 2))
    schema = random_schema(rng, favourable)
    actions, max_length = _within_budget(rng, schema, seed)
    pipeline = family != "torch-relu" and bool(rng.random() < 0.5)
    for _ in range(10):  # a model that favours nearly everyone is fitted again on fresh data
        model = fit_model(rng, schema, family, pipeline, seed)
        X = _people(rng, schema, model, people, favourable)
        if X is not None:
            name = f"{family}-{seed}" + ("-pipe" if pipeline else "")
            return Problem(name, family, pipeline, schema, actions, model, X, max_length, 0.1, seed)
    raise RuntimeError(f"generate: every model drawn for seed {seed} favours nearly everyone.")
