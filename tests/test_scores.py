"""Score functions replayed: hand-computable orders on a toy model, counts and normal forms on German."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from actionable import datasets
from actionable.actions import ActionSet
from actionable.scores import explore
from actionable.search import canonical_sequences, commutes, normal_form
from tests.test_synthesis import PERSON, catalogue, linear_model


def test_orders_on_a_linear_model() -> None:
    # a has twice b's effect per unit and the same range, so the gradient score tries raise_a first
    cheap_a = explore(linear_model(), PERSON, catalogue("d / 10", "d / 5"), max_length=2).iloc[0]
    assert (cheap_a.tried_vanilla, cheap_a.tried_objective, cheap_a.tried_gradient) == (1, 1, 1)
    cheap_b = explore(linear_model(), PERSON, catalogue("d", "d / 1000"), max_length=2).iloc[0]
    assert cheap_b.length == 1 and cheap_b.optimum == pytest.approx(0.072, rel=0.02)
    assert (cheap_b.tried_vanilla, cheap_b.tried_objective, cheap_b.tried_gradient) == (2, 2, 2)
    assert cheap_b.sequences == 4  # a, b, ab, ba


@pytest.mark.parametrize("name", ["german", "adult"])
def test_every_order_maps_to_a_canonical_sequence(name: str) -> None:
    data = datasets.load(name)
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema).actions
    swap = [[commutes(a, b) for b in actions] for a in actions]
    for k in (1, 2, 3, 4):
        canonical = set(canonical_sequences(actions, k))
        for seq in itertools.permutations(range(len(actions)), k):
            assert normal_form(seq, swap) in canonical


def test_german_counts_and_bounds() -> None:
    data = datasets.load("german")
    actions = ActionSet.from_toml(data.path / "paper_actions.toml", data.schema)  # the paper's 7 actions
    people = data.X_test[data.model.predict(data.X_test) == "bad"].head(4)
    table = explore(data.model, people, actions, max_length=2, steps=60)
    assert list(table.row) == list(people.index) and (table.sequences == 7 + 42).all()
    singles = table[table.length == 1]
    assert (singles.tried_vanilla <= 7).all()
    for score in ("vanilla", "objective", "gradient"):
        assert ((table[f"tried_{score}"] >= 1) & (table[f"tried_{score}"] <= 49)).all()
    assert isinstance(table, pd.DataFrame)
