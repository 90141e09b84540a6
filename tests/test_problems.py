"""The problem generator: deterministic per seed, and covering what issue 12 asks of it over seeds 0..24.

Every generated model must be accepted by ``as_model`` and must not favour any person in ``X``; every
catalogue must be one ``ActionSet`` accepts and small enough for the oracle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from actionable import ConfigError, as_model
from actionable.actions import ActionSet
from actionable.oracle import count_candidates
from actionable.problems import BUDGET, FAMILIES, generate
from tests.generated import SEEDS, problem


def _catalogue(actions: ActionSet) -> list[tuple[object, ...]]:
    return [(a.name, dict(a.effects), a.cost, tuple(a.params), tuple(a.pre), tuple(a.post)) for a in actions]


def test_the_same_seed_gives_the_same_problem() -> None:
    first, again = generate(7, people=6), generate(7, people=6)
    assert first.name == again.name and first.family == again.family
    assert first.schema == again.schema
    assert _catalogue(first.actions) == _catalogue(again.actions)
    assert first.X.equals(again.X) and list(first.X.index) == list(again.X.index)
    assert first.max_length == again.max_length and first.margin == again.margin == 0.1
    p1 = as_model(first.model, first.schema).predict_proba(first.X)
    p2 = as_model(again.model, again.schema).predict_proba(again.X)
    np.testing.assert_array_equal(p1, p2)


def test_seeds_differ_and_family_can_be_chosen() -> None:
    assert _catalogue(problem(0).actions) != _catalogue(problem(1).actions)
    chosen = generate(0, people=4, family="torch-relu")
    assert chosen.family == "torch-relu" and chosen.name == "torch-relu-0" and not chosen.pipeline


@pytest.mark.parametrize("seed", SEEDS)
def test_every_problem_is_usable(seed: int) -> None:
    p = problem(seed)
    assert p.family == FAMILIES[seed % len(FAMILIES)] and p.name.startswith(f"{p.family}-{seed}")
    assert 3 <= len(p.schema.features) <= 8 and 2 <= len(p.actions) <= 6
    assert p.max_length in (2, 3) and count_candidates(p.actions, p.max_length) <= BUDGET
    assert all(math.isfinite(lo) and math.isfinite(hi) for f in p.schema.features for lo, hi in [f.bounds])
    assert list(p.X.index) == [100 + 3 * i for i in range(10)]
    model = as_model(p.model, p.schema)  # what a user passes is accepted as it is
    favourable = p.schema.target.favourable  # type: ignore[union-attr]
    assert (model.predict(p.X) != favourable).all()
    for a in p.actions:
        assert a.n_params <= 3
        for q in a.params:
            if q.kind == "integer":
                assert math.floor(q.bounds[1]) - math.ceil(q.bounds[0]) + 1 <= 25


def test_seeds_cover_what_the_issue_asks() -> None:
    problems = [problem(s) for s in SEEDS]
    assert {p.family for p in problems} == set(FAMILIES)
    assert {f.kind for p in problems for f in p.schema.features} == {"real", "integer", "binary", "category"}
    assert {f.mutability for p in problems for f in p.schema.features} == {"fixed", "direct"}
    assert {f.direction for p in problems for f in p.schema.features} == {"both", "increase", "decrease"}
    assert {a.n_params for p in problems for a in p.actions} == {0, 1, 2, 3}
    assert {q.kind for p in problems for a in p.actions for q in a.params} == {"integer", "real"}
    assert {p.schema.target.favourable for p in problems} == {0, 1}  # type: ignore[union-attr]
    assert {p.pipeline for p in problems} == {True, False} and {p.max_length for p in problems} == {2, 3}
    actions = [(p, a) for p in problems for a in p.actions]
    assert any(a.pre for _, a in actions) and any(a.post for _, a in actions)
    assert any(p.schema[f].is_category for p, a in actions for f in a.effects)  # set a level
    assert any(p.schema[f].is_binary for p, a in actions for f in a.effects)
    nonlinear = ("**", "*  (1", "* (1")
    assert any(any(t in e for t in nonlinear) for _, a in actions for e in a.effects.values())
    assert any(a.cost.replace(".", "").isdigit() for _, a in actions)  # constant costs
    assert any("**" in a.cost for _, a in actions)  # quadratic costs
    # actions that interact: one writes what another reads or conditions on
    assert any(a.footprint & b.reads for p in problems for a in p.actions for b in p.actions if a is not b)


def test_bad_arguments_are_refused() -> None:
    for bad in ({"seed": -1}, {"seed": 1.5}, {"seed": 0, "people": 0}, {"seed": 0, "family": "deep-forest"}):
        with pytest.raises(ConfigError):
            generate(**bad)  # type: ignore[arg-type]
