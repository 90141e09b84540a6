"""Synthesis: closed-form and brute-force optima, exact replay of every plan, batch = loop, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ConfigError, DataError, Feature, Schema, Target, as_model, datasets
from actionable.actions import ActionSet
from actionable.results import RecourseBatch
from actionable.search import VANILLA, BestFirst, Exhaustive, Tried, canonical_sequences, commutes
from actionable.synthesis import SynthesisConfig, synthesize
from actionable.testing import check_plans

SCHEMA = Schema(
    (
        Feature("a", "real", (0, 100), mutability="direct"),
        Feature("b", "real", (0, 100), mutability="direct"),
        Feature("g", "category", levels=("x", "y")),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)


def linear_model() -> object:
    """logit(good) - logit(bad) = 0.1 a + 0.05 b - 5."""
    layer = torch.nn.Linear(SCHEMA.width, 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.05, 0.0, 0.0]]))
        layer.bias.fill_(-5.0)
    return as_model(layer, SCHEMA)


def catalogue(cost_a: str, cost_b: str) -> ActionSet:
    return ActionSet.from_toml(
        f"""
[[action]]
name = "raise_a"
params = {{ d = {{ bounds = [0, 90] }} }}
effects = {{ a = "a + d" }}
cost = "{cost_a}"

[[action]]
name = "raise_b"
params = {{ d = {{ bounds = [0, 90] }} }}
effects = {{ b = "b + d" }}
cost = "{cost_b}"
""",
        SCHEMA,
    )


PERSON = pd.DataFrame([{"a": 10.0, "b": 10.0, "g": "x"}])  # margin -3.5


def test_linear_costs_closed_form() -> None:
    # reaching margin 0.1 costs 1 per margin unit through a, 4 through b: raise a by 36, cost 3.6
    result = synthesize(linear_model(), PERSON, catalogue("d / 10", "d / 5"), margin=0.1, steps=300)[0]
    assert result.status == "found"
    assert [s.action for s in result.steps] == ["raise_a"]
    assert result.cost == pytest.approx(3.6, rel=0.01)
    assert result.p_after > 0.5 > result.p_before


def test_quadratic_costs_match_brute_force() -> None:
    actions = catalogue("(d / 30) ** 2", "(d / 30) ** 2")
    result = synthesize(linear_model(), PERSON, actions, margin=0.1, steps=400)[0]
    grid = np.arange(0, 90.01, 0.25)
    da, db = np.meshgrid(grid, grid)
    feasible = 0.1 * (10 + da) + 0.05 * (10 + db) - 5 >= 0.1
    oracle = ((da / 30) ** 2 + (db / 30) ** 2)[feasible].min()  # analytically 1.152: a by 28.8, b by 14.4
    assert oracle == pytest.approx(1.152, rel=0.01)
    assert result.status == "found" and len(result.steps) == 2
    assert result.cost <= oracle * 1.02


def test_commuting_actions_are_tried_in_one_order_only() -> None:
    actions = catalogue("d / 10", "d / 5")
    assert commutes(actions["raise_a"], actions["raise_b"])
    assert canonical_sequences(actions.actions, 2) == [(0, 1)]
    german = datasets.load("german")
    full = ActionSet.from_toml(german.path / "paper_actions.toml", german.schema)  # the paper's 7 actions
    counts = [len(canonical_sequences(full.actions, k)) for k in range(1, 5)]
    assert counts[0] == 7 and sum(counts) < 7 + 42 + 210 + 840  # far fewer than all orders


def test_repeatable_actions_may_repeat_others_may_not() -> None:
    actions = ActionSet.from_toml(
        """
[[action]]
name = "step_a"
effects = { a = "a + 1" }
cost = "1"
repeatable = true

[[action]]
name = "step_b"
effects = { b = "b * 2" }
cost = "1"
""",
        SCHEMA,
    )
    assert canonical_sequences(actions.actions, 2) == [(0, 0), (0, 1)]
    assert canonical_sequences(actions.actions, 3) == [(0, 0, 0), (0, 0, 1)]
    result = synthesize(linear_model(), PERSON, actions, max_length=4)[0]
    assert result.status == "not_found"  # four steps of +1 on a cannot reach a = 45


def test_already_favourable_and_config_errors() -> None:
    rich = pd.DataFrame([{"a": 100.0, "b": 100.0, "g": "y"}])
    result = synthesize(linear_model(), rich, catalogue("d", "d"))[0]
    assert result.status == "already_favourable" and result.cost == 0 and not result.steps
    with pytest.raises(ConfigError, match="max_length"):
        synthesize(linear_model(), PERSON, catalogue("d", "d"), max_length=0)
    with pytest.raises(ConfigError, match="unknown option"):
        synthesize(linear_model(), PERSON, catalogue("d", "d"), learning_rate=0.1)
    with pytest.raises(ConfigError, match=r"search = 'astar' \(str\); give one of 'bfs'"):
        synthesize(linear_model(), PERSON, catalogue("d", "d"), search="astar")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="missing column"):
        synthesize(linear_model(), PERSON.drop(columns="b"), catalogue("d", "d"))


def test_bad_rows_get_status_error_and_keep_their_place(tmp_path: Path) -> None:
    people = pd.concat([PERSON, PERSON.assign(g="z"), PERSON.assign(a=500.0), PERSON], ignore_index=True)
    batch = synthesize(linear_model(), people, catalogue("d / 10", "d / 5"), steps=100)
    assert [r.status for r in batch] == ["found", "error", "error", "found"]
    assert "column 'g': unknown level 'z'" in batch[1].error and "outside bounds" in batch[2].error
    path = batch.to_jsonl(tmp_path / "plans.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["row"] for r in records] == [0, 1, 2, 3]
    assert set(records[0]) >= {
        "row",
        "status",
        "steps",
        "cost",
        "x_before",
        "x_after",
        "p_before",
        "p_after",
        "seconds",
        "error",
    }
    assert set(records[0]["steps"][0]) == {"action", "params", "cost", "text"}
    assert RecourseBatch.from_jsonl(path) == batch
    assert batch.summary()["found"] == 2 and batch.summary()["error"] == 2


def test_sklearn_pipeline_is_accepted_directly() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.uniform(0, 100, 300), "b": rng.uniform(0, 100, 300), "g": rng.choice(["x", "y"], 300)}
    )
    y = np.where(frame.a + frame.b > 120, "good", "bad")
    pipeline = Pipeline(
        [
            ("ct", ColumnTransformer([("n", StandardScaler(), ["a", "b"]), ("c", OneHotEncoder(), ["g"])])),
            ("m", LogisticRegression()),
        ]
    ).fit(frame, y)
    result = synthesize(pipeline, PERSON, catalogue("d / 10", "d / 5"), steps=150)[0]
    assert result.status == "found"
    assert pipeline.predict(pd.DataFrame([result.x_after]))[0] == "good"  # the user's own model agrees


# ------------------------------------------------------------------------------- German, exactly replayed
@pytest.fixture(scope="module")
def german_run() -> tuple[object, ActionSet, pd.DataFrame, RecourseBatch]:
    data = datasets.load("german")
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    denied = data.X_test[data.model.predict(data.X_test) == "bad"].head(8)
    return data, actions, denied, synthesize(data.model, denied, actions, max_length=3, steps=150)


def test_german_plans_replay_exactly(german_run: tuple) -> None:  # type: ignore[type-arg]
    data, actions, denied, batch = german_run
    assert [r.status for r in batch] == ["found"] * len(denied)
    assert check_plans(batch, denied, actions, data.model) == []  # independent replay, see actionable.testing
    for r in batch:
        assert data.model.predict(pd.DataFrame([r.x_after]))[0] == "good"
        assert r.p_after >= 0.5 > r.p_before
        assert sum(s.cost for s in r.steps) == pytest.approx(r.cost)


def test_batch_equals_loop_and_seeds_reproduce(german_run: tuple) -> None:  # type: ignore[type-arg]
    data, actions, denied, batch = german_run
    again = synthesize(data.model, denied, actions, max_length=3, steps=150)
    assert [r.cost for r in again] == [r.cost for r in batch]
    for i in (0, 3):
        alone = synthesize(data.model, denied.iloc[[i]], actions, max_length=3, steps=150)[0]
        assert alone.status == batch[i].status
        assert alone.cost == pytest.approx(batch[i].cost, rel=1e-6)


def test_describe_reads_as_numbered_sentences(german_run: tuple) -> None:  # type: ignore[type-arg]
    text = german_run[3][0].describe()
    assert text.startswith("1. ") and "probability of the favourable outcome" in text


@pytest.mark.parametrize("search", ["objective", "gradient", BestFirst(score=VANILLA)])
def test_best_first_without_budget_finds_the_exhaustive_optimum(german_run: tuple, search: Any) -> None:  # type: ignore[type-arg]
    data, actions, denied, batch = german_run
    people = denied.head(4)
    ours = synthesize(data.model, people, actions, max_length=3, steps=150, search=search)
    assert [r.cost for r in ours] == pytest.approx([r.cost for r in list(batch)[:4]], rel=1e-9)
    assert check_plans(ours, people, actions, data.model) == []


def test_budget_limits_sequences_per_person() -> None:
    data = datasets.load("german")
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    people = data.X_test[data.model.predict(data.X_test) == "bad"].head(3)
    for budget in (1, 5):
        trace: dict[int, set[tuple[int, ...]]] = {}

        def observe(tried: Tried, trace: dict[int, set[tuple[int, ...]]] = trace) -> None:
            trace.setdefault(tried.row, set()).add(tried.sequence)

        result = synthesize(
            data.model,
            people,
            actions,
            search="gradient",
            budget=budget,
            round_size=2,
            steps=60,
            observer=observe,
        )
        assert all(len(tried) <= budget for tried in trace.values())
        assert check_plans(result, people, actions, data.model) == []
    with pytest.raises(ConfigError, match="budget"):
        synthesize(data.model, people, actions, budget=3)  # budget is for best-first searches


def test_breadth_first_is_vanilla_and_bfs_its_alias(german_run: tuple) -> None:  # type: ignore[type-arg]
    """One name for the exhaustive (breadth-first) search: "vanilla"; "bfs", its former name in the API and
    the CLI, is still accepted and means the same search; a Strategy instance is taken as it is."""
    data, actions, denied, batch = german_run
    people = denied.head(2)
    assert SynthesisConfig(search="bfs").search == "vanilla" == SynthesisConfig().search
    assert SynthesisConfig(search="bfs").strategy() == Exhaustive()
    runs = [
        synthesize(data.model, people, actions, max_length=3, steps=150, search=search)
        for search in ("bfs", "vanilla", Exhaustive())
    ]
    for run in runs:
        assert [(r.status, r.cost, r.steps) for r in run] == [(r.status, r.cost, r.steps) for r in batch][:2]
        assert {r.provenance["config"]["search"] for r in run} == {"vanilla"}


def test_observer_sees_every_pair_tried() -> None:
    """The observer replaces the trace flag: one call per (sequence, person) pair, with its verified cost."""
    seen: list[Tried] = []
    people = pd.concat([PERSON, PERSON.assign(a=100.0, b=100.0), PERSON], ignore_index=True)
    batch = synthesize(
        linear_model(), people, catalogue("d / 10", "d / 5"), max_length=2, observer=seen.append
    )
    assert {t.row for t in seen} == {0, 2}  # the favourable row 1 is not searched
    assert {t.sequence for t in seen if t.row == 0} == {(0,), (1,), (0, 1)}
    best = min(t.cost for t in seen if t.row == 0)
    assert batch[0].cost <= best + 1e-12  # polishing only lowers the best verified cost


def _all_orders_canonical(actions: list[Any], length: int) -> list[tuple[int, ...]]:
    """The former implementation (every order enumerated, then filtered): the oracle for the new one."""
    n = len(actions)
    swap = [[commutes(actions[i], actions[j]) for j in range(n)] for i in range(n)]
    kept = []
    for seq in itertools.product(range(n), repeat=length):
        if any(seq.count(a) > 1 and not actions[a].repeatable for a in set(seq)):
            continue
        normal = True
        for j in range(1, length):
            i = j - 1
            while i >= 0 and swap[seq[j]][seq[i]]:
                if seq[j] < seq[i]:
                    normal = False
                    break
                i -= 1
            if not normal:
                break
        if normal:
            kept.append(seq)
    return kept


@pytest.mark.parametrize("seed", range(12))
def test_incremental_canonical_sequences_equal_the_all_orders_filter(seed: int) -> None:
    """Random catalogues over 4 features: reads, writes and repeatability drawn at random."""
    rng = np.random.default_rng(seed)
    features = ["p", "q", "r", "s"]
    actions = [
        SimpleNamespace(
            footprint=frozenset(rng.choice(features, size=rng.integers(1, 3), replace=False).tolist()),
            reads=frozenset(rng.choice(features, size=rng.integers(0, 3), replace=False).tolist()),
            repeatable=bool(rng.random() < 0.3),
        )
        for _ in range(int(rng.integers(2, 7)))
    ]
    for length in range(1, 5):
        assert canonical_sequences(actions, length) == _all_orders_canonical(actions, length)  # type: ignore[arg-type]


def test_german_long_sequences_enumerate_without_all_orders() -> None:
    german = datasets.load("german")
    full = ActionSet.from_toml(german.path / "paper_actions.toml", german.schema)
    for length in range(1, 5):
        assert canonical_sequences(full.actions, length) == _all_orders_canonical(list(full.actions), length)
    assert len(canonical_sequences(full.actions, 10)) == 0  # 7 actions, none repeatable: none of length 10
