"""Inverse classification on tree models against an exhaustive oracle.

Generated problems (random schemas with fixed and direct features of each kind, random directions and
costs, each tree family alone or behind a scaling Pipeline): the oracle enumerates every whole-number
change within bounds, directions and budget and asks the model itself; ``invert`` must reach the least
unfavourable probability, at the least cost among changes that reach it, and say it proved so.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LinearRegression

from actionable import ConfigError, Feature, Schema, Target, as_model, invert, invert_sweep
from actionable.models.trees import tree_layer
from actionable.problem_models import TREE_FAMILIES, fit_model, training_frame


def _schema(rng: np.random.Generator, reals: bool) -> Schema:
    features = [
        Feature("region", "category", levels=("n", "s", "e")),
        Feature("tenure", "integer", (0, 30)),
    ]
    for j in range(int(rng.integers(2, 5))):
        kind = "binary" if rng.random() < 0.25 else ("real" if reals and rng.random() < 0.5 else "integer")
        low = int(rng.integers(0, 4))
        bounds = (0, 1) if kind == "binary" else (low, low + int(rng.integers(3, 7)))
        direction = str(rng.choice(["both", "increase", "decrease"], p=[0.4, 0.3, 0.3]))
        up, down = (round(float(c), 2) for c in rng.uniform(0.3, 3.0, 2))
        features.append(
            Feature(
                f"d{j}",
                kind,
                bounds,
                mutability="direct",
                direction=direction,
                cost_up=up if direction != "decrease" else None,
                cost_down=down if direction != "increase" else None,
            )
        )
    return Schema(tuple(features), Target("ok", 1, (0, 1)))


def _problem(seed: int, family: str, reals: bool = False) -> tuple[Schema, object, pd.DataFrame, float]:
    rng = np.random.default_rng(seed)
    schema = _schema(rng, reals)
    fitted = fit_model(rng, schema, family, pipeline=bool(seed % 2), seed=seed)
    people = training_frame(rng, schema, 6)
    return schema, fitted, people, round(float(rng.uniform(0.5, 6.0)), 2)


def _candidates(f: Feature, start: float, thresholds: np.ndarray) -> list[float]:
    """Every whole value in the box, or for a real feature the start, the bounds and both sides of every
    threshold (the model is constant between them, so the cheapest point of a cell is one of these)."""
    lo, hi = f.bounds
    if f.is_whole:
        values = [float(v) for v in range(int(lo), int(hi) + 1)]
    else:
        values = [start, lo, hi, *thresholds.tolist(), *(thresholds + 1e-4).tolist()]
    return sorted(
        {
            v
            for v in values
            if lo <= v <= hi and (v >= start or f.may_decrease) and (v <= start or f.may_increase)
        }
    )


def _oracle(model, schema: Schema, row: pd.Series, budget: float) -> tuple[float, float]:
    """(the most favourable probability within the budget, the least cost that reaches it)."""
    layer = tree_layer(model.network)
    assert layer is not None
    direct = [f for f in schema.features if f.is_direct]
    thresholds = np.unique(layer.threshold.numpy())  # every column's, in raw units: a superset of each one's
    grids = [_candidates(f, float(row[f.name]), thresholds) for f in direct]
    combos = np.array(list(itertools.product(*grids)), dtype=float)
    cost = np.zeros(len(combos))
    for j, f in enumerate(direct):
        d = combos[:, j] - float(row[f.name])
        cost += np.clip(d, 0, None) * (f.cost_up or 0.0) + np.clip(-d, 0, None) * (f.cost_down or 0.0)
    keep = cost <= budget + 1e-9
    combos, cost = combos[keep], cost[keep]
    frame = pd.DataFrame([row] * len(combos)).reset_index(drop=True)
    for j, f in enumerate(direct):
        frame[f.name] = combos[:, j].astype(int) if f.is_whole else combos[:, j]
    p = model.predict_proba(frame)[:, 1]
    best = float(p.max())
    return best, float(cost[p >= best - 1e-12].min())


CASES = [(seed, family) for seed in range(10) for family in TREE_FAMILIES]


@pytest.mark.parametrize(("seed", "family"), CASES)
def test_invert_matches_enumeration_on_whole_numbers(seed: int, family: str) -> None:
    schema, fitted, people, budget = _problem(seed, family)
    model = as_model(fitted, schema)
    result = invert(model, people, schema, budget=budget)
    for (_, row), rec in zip(people.iterrows(), result, strict=True):
        best, cheapest = _oracle(model, schema, row, budget)
        assert rec.p_after == pytest.approx(best, abs=1e-9), (seed, family)
        assert rec.cost == pytest.approx(cheapest, abs=1e-9), (seed, family)
        assert rec.cost <= budget + 1e-9
        assert rec.certificate["kind"] == "optimal"
        assert rec.certificate["bound"] <= 1 - rec.p_after + 1e-7
        for name in ("region", "tenure"):
            assert rec.x_after[name] == row[name]


@pytest.mark.parametrize("seed", range(8))
def test_invert_on_real_features_is_never_worse_than_the_cells_oracle(seed: int) -> None:
    schema, fitted, people, budget = _problem(100 + seed, TREE_FAMILIES[seed % 4], reals=True)
    model = as_model(fitted, schema)
    for (_, row), rec in zip(people.iterrows(), invert(model, people, schema, budget=budget), strict=True):
        best, cheapest = _oracle(model, schema, row, budget)
        assert rec.p_after >= best - 1e-9
        if rec.p_after <= best + 1e-9:
            assert rec.cost <= cheapest * (1 + 1e-3) + 1e-6
        assert rec.cost <= budget + 1e-9


def test_a_sweep_never_gets_worse_with_budget() -> None:
    schema, fitted, people, _ = _problem(7, "histgb")
    sweep = invert_sweep(as_model(fitted, schema), people, schema, budgets=[0, 1, 2.5, 5])
    p = np.array([[r.p_after for r in sweep[b]] for b in sorted(sweep)])
    assert np.all(np.diff(p, axis=0) >= -1e-12)
    assert all(r.cost == 0 and r.p_after == r.p_before for r in sweep[0.0])


def _multiclass() -> tuple[Schema, pd.DataFrame, np.ndarray]:
    schema = Schema(
        (
            Feature("a", "integer", (0, 9), mutability="direct", cost_up=1.0, cost_down=1.0),
            Feature("b", "integer", (0, 9), mutability="direct", cost_up=0.5, direction="increase"),
        ),
        Target("y", 2, (0, 1, 2)),
    )
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.integers(0, 10, 300), "b": rng.integers(0, 10, 300)})
    y = np.clip((X["a"] + X["b"]) // 6, 0, 2).to_numpy()
    return schema, X, y


def test_a_multiclass_forest_is_linear_in_its_leaves_and_solved() -> None:
    schema, X, y = _multiclass()
    model = as_model(RandomForestClassifier(10, max_depth=4, random_state=0).fit(X, y), schema)
    people = X[y == 0].head(4)
    for (_, row), rec in zip(people.iterrows(), invert(model, people, schema, budget=3), strict=True):
        grid = [
            (a, b)
            for a in range(10)
            for b in range(int(row["b"]), 10)
            if abs(a - row["a"]) + 0.5 * (b - row["b"]) <= 3
        ]
        p = model.predict_proba(pd.DataFrame(grid, columns=["a", "b"]))[:, 2]
        assert rec.p_after == pytest.approx(float(p.max()), abs=1e-9)
        assert rec.certificate["kind"] == "optimal"


def test_a_multiclass_boosted_model_is_refused_with_the_reason() -> None:
    schema, X, y = _multiclass()
    model = as_model(GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y), schema)
    with pytest.raises(ConfigError, match="not linear in the leaves"):
        invert(model, X.head(2), schema, budget=1)


def test_an_indirect_model_is_carried_through_and_the_certificate_says_what_it_does_not_prove() -> None:
    schema = Schema(
        (
            Feature("hours", "integer", (0, 10), mutability="direct", cost_up=1.0, direction="increase"),
            Feature("skill", "real", (0, 10), mutability="indirect"),
            Feature("age", "integer", (18, 60)),
        ),
        Target("pass", 1, (0, 1)),
    )
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"hours": rng.integers(0, 11, 400), "age": rng.integers(18, 61, 400)})
    X["skill"] = np.clip(0.8 * X["hours"] + rng.normal(0, 0.5, 400), 0, 10)
    X = X[["hours", "skill", "age"]]
    y = (X["skill"] > 5).astype(int).to_numpy()
    model = as_model(RandomForestClassifier(10, max_depth=4, random_state=0).fit(X, y), schema)
    canonical = schema.encode(X).numpy()
    canonical[:, 1] = 0.0  # skill predicted from the others (a zero column gets a zero weight)
    indirect = LinearRegression().fit(canonical, X["skill"])
    people = X[y == 0].head(5)
    result = invert(model, people, schema, budget=4, indirect=indirect)
    for rec in result:
        assert rec.cost <= 4 + 1e-9 and rec.p_after >= rec.p_before - 1e-12
        assert rec.certificate["kind"] == "none" and "indirect" in rec.certificate["reason"]
    assert any(r.status == "found" for r in result)


def test_a_time_limit_is_a_setting_and_checked() -> None:
    schema, fitted, people, budget = _problem(1, "forest")
    with pytest.raises(ConfigError, match="time_limit"):
        invert(as_model(fitted, schema), people, schema, budget=budget, time_limit=0)
    record = invert(as_model(fitted, schema), people.head(1), schema, budget=budget, time_limit=5)[0]
    assert record.provenance["config"]["time_limit"] == 5
    assert math.isfinite(record.cost)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_float32_boosters_match_enumeration(library: str) -> None:
    pytest.importorskip(library)
    schema, _, people, budget = _problem(11, "forest")
    rng = np.random.default_rng(11)
    frame = training_frame(rng, schema, 400)
    canonical = pd.DataFrame(schema.encode(frame).numpy(), columns=list(schema.columns))
    y = canonical.iloc[:, 2:].sum(axis=1) + rng.normal(0, 1, 400) > canonical.iloc[:, 2:].sum(axis=1).median()
    if library == "xgboost":
        import xgboost

        fitted = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(canonical, y.astype(int))
    else:
        import lightgbm

        fitted = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1)
        fitted.fit(canonical, y.astype(int))
    model = as_model(fitted, schema)
    for (_, row), rec in zip(people.iterrows(), invert(model, people, schema, budget=budget), strict=True):
        best, cheapest = _oracle(model, schema, row, budget)
        assert rec.p_after == pytest.approx(best, abs=1e-7)
        assert rec.cost == pytest.approx(cheapest, abs=1e-9)
        assert rec.certificate["kind"] == "optimal"


def test_the_cli_inverts_a_saved_tree_model_with_certificates(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from actionable import save_model
    from actionable.cli import app

    schema, fitted, people, budget = _problem(2, "histgb")
    save_model(as_model(fitted, schema), tmp_path / "model")
    schema.save(tmp_path / "schema.toml")
    people.to_csv(tmp_path / "people.csv", index=False)
    out = tmp_path / "inv.jsonl"
    args = ["invert", "--data", str(tmp_path / "people.csv"), "--schema", str(tmp_path / "schema.toml")]
    args += ["--model", str(tmp_path / "model"), "--budget", f"0,{budget}", "--json", str(out), "--all-rows"]
    result = CliRunner().invoke(app, [*args, "--time-limit", "10"], terminal_width=200)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 * len(people)
    assert all(r["certificate"]["kind"] == "optimal" for r in records)
    assert {r["provenance"]["method"] for r in records} == {"lash2017-leaves"}
    expected = invert(as_model(fitted, schema), people, schema, budget=budget)
    assert [r["p_after"] for r in records[len(people) :]] == pytest.approx([r.p_after for r in expected])


# ----------------------------------------------------------------------- found by a hostile review
def _window() -> tuple[Schema, object]:
    """A tree whose favourable cell is a window 0.25 wide at 50,000: narrower than a relative margin."""
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    income = np.r_[
        rng.uniform(0, 100000, 3000), np.full(200, 50000.0), np.full(200, 50000.5), np.full(500, 50000.25)
    ]
    y = np.r_[np.zeros(3400, int), np.ones(500, int)]
    fitted = DecisionTreeClassifier(random_state=0).fit(pd.DataFrame({"income": income}), y)
    schema = Schema(
        (Feature("income", "real", (0, 100000), mutability="direct", cost_up=0.001, cost_down=0.001),),
        Target("ok", 1, (0, 1)),
    )
    return schema, fitted


def test_a_row_inside_a_narrow_window_is_never_moved_out_of_it() -> None:
    schema, fitted = _window()
    row = pd.DataFrame({"income": [50000.25]})
    sweep = invert_sweep(as_model(fitted, schema), row, schema, budgets=[0, 1, 10])
    for batch in sweep.values():
        assert batch[0].p_after == 1.0 and batch[0].cost == 0 and batch[0].certificate["kind"] == "optimal"


def test_a_row_just_outside_a_narrow_window_steps_in_at_the_least_cost() -> None:
    schema, fitted = _window()
    row = pd.DataFrame({"income": [50000.0]})
    record = invert(as_model(fitted, schema), row, schema, budget=1)[0]
    assert record.p_after == 1.0 and record.certificate["kind"] == "optimal"
    after = record.x_after["income"]  # scikit-learn's float32 split at 50000.125 passes at 50000.12695...
    assert fitted.predict_proba(pd.DataFrame({"income": [after, 50000.1269]}))[:, 1].tolist() == [1.0, 0.0]
    assert after <= 50000.127  # the change rounded up to 5 digits (0.12696) at most
    assert record.cost == pytest.approx((after - 50000) * 0.001, abs=1e-12)
    assert record.steps[0].text == f"Increase income from 50000 to {after!r}"


@pytest.mark.parametrize(("kind", "cost"), [("integer", 1e-9), ("real", 1e-10), ("integer", 0.1)])
def test_tiny_costs_never_overspend(kind: str, cost: float) -> None:
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1000, 2000)
    x = np.round(x) if kind == "integer" else x
    fitted = DecisionTreeClassifier(max_depth=1).fit(pd.DataFrame({"x": x}), (x > 2.5).astype(int))
    schema = Schema(
        (Feature("x", kind, (0, 1000), mutability="direct", direction="increase", cost_up=cost),),
        Target("ok", 1, (0, 1)),
    )
    row = pd.DataFrame({"x": [0]})
    for budget in (2 * cost, 2.9999 * cost, 3 * cost, 60 * cost):
        record = invert(as_model(fitted, schema), row, schema, budget=budget)[0]
        assert record.cost <= budget * (1 + 1e-9)
        reachable = (budget / cost) >= (3.0 if kind == "integer" else fitted.tree_.threshold[0]) - 1e-9
        assert (record.status == "found") == reachable, (budget, record)


def test_bounds_beyond_the_programs_range_are_refused_naming_the_feature() -> None:
    from sklearn.tree import DecisionTreeClassifier

    schema = Schema(
        (Feature("cents", "real", (0, 2e9), mutability="direct", direction="increase", cost_up=1.0),),
        Target("ok", 1, (0, 1)),
    )
    fitted = DecisionTreeClassifier(max_depth=1).fit(pd.DataFrame({"cents": [0.0, 1e9]}), [0, 1])
    with pytest.raises(ConfigError, match=r"'cents'.*rescale"):
        invert(as_model(fitted, schema), pd.DataFrame({"cents": [0.0]}), schema, budget=1)


def test_budgets_must_be_finite_and_at_most_the_cap() -> None:
    from actionable.inverse_records import MAX_BUDGETS

    schema, fitted, people, _ = _problem(0, "tree")
    model = as_model(fitted, schema)
    with pytest.raises(ConfigError, match="not finite"):
        invert(model, people, schema, budget=math.inf)
    with pytest.raises(ConfigError, match=f"at most {MAX_BUDGETS}"):
        invert_sweep(model, people, schema, budgets=list(range(MAX_BUDGETS + 1)))


def test_a_rounded_change_never_leaves_the_box() -> None:
    from sklearn.tree import DecisionTreeClassifier

    # the favourable side starts just below the upper bound: the least change ends on the bound exactly
    x = np.linspace(0, 10, 2001)
    fitted = DecisionTreeClassifier(max_depth=1).fit(pd.DataFrame({"x": x}), (x > 9.99973).astype(int))
    schema = Schema(
        (Feature("x", "real", (0, 9.9998), mutability="direct", direction="increase", cost_up=1.0),),
        Target("ok", 1, (0, 1)),
    )
    record = invert(as_model(fitted, schema), pd.DataFrame({"x": [1.2345678]}), schema, budget=100)[0]
    assert record.status == "found" and record.x_after["x"] <= 9.9998
