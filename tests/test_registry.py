"""The registry: every entry passes the contract suite on one tiny model, presets are their verb with the
paper's settings (nothing more), "wachter" reaches the weighted-L1 optimum of a logistic regression (scipy
HiGHS), planted bugs in a preset break the contract, and bad names and options raise ConfigError."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linprog
from sklearn.linear_model import LogisticRegression

import actionable
from actionable import ConfigError, Feature, Schema, Target, datasets, invert, registry, search, synthesize
from actionable.actions import Action, ActionSet, Param
from actionable.results import RecourseBatch
from actionable.testing import check_method, check_plans

SCHEMA = Schema(
    (
        Feature("region", "binary", (0, 1)),
        Feature("income", "real", (0, 100), mutability="direct", direction="increase", cost_up=0.05),
        Feature("debt", "real", (0, 50), mutability="direct", direction="decrease", cost_down=0.1),
        Feature("years", "integer", (0, 40), mutability="direct", cost_up=0.2, cost_down=0.3),
    ),
    Target("y", favourable=1, classes=(0, 1)),
)
ACTIONS = ActionSet(
    [
        Action(
            "raise_income",
            {"income": "income + amount"},
            "0.05 * amount",
            params=[Param("amount", (0, 40))],
            post=["income <= 100"],
        ),
        Action(
            "pay_debt",
            {"debt": "debt - amount"},
            "0.1 * amount",
            params=[Param("amount", (0, 30))],
            pre=["debt - amount >= 0"],
        ),
        Action("stay", {"years": "years + n"}, "0.2 * n", params=[Param("n", (1, 5), kind="integer")]),
    ],
    SCHEMA,
)
BUDGET = 3.0


@pytest.fixture(scope="module")
def tiny() -> tuple[LogisticRegression, pd.DataFrame]:
    """A logistic regression on SCHEMA's raw columns and ten people it denies."""
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame(
        {
            "region": rng.integers(0, 2, n),
            "income": rng.uniform(0, 80, n),
            "debt": rng.uniform(0, 40, n),
            "years": rng.integers(0, 30, n),
        }
    )
    score = 0.06 * X["income"] - 0.08 * X["debt"] + 0.05 * X["years"] + 0.3 * X["region"] - 1.2
    model = LogisticRegression(C=10.0).fit(X, (score + rng.normal(0, 0.3, n) > 0).astype(int))
    denied = X[model.predict(X) == 0].head(10).reset_index(drop=True)
    return model, denied


def options(name: str) -> dict[str, Any]:
    return {"budget": BUDGET} if registry.get(name).takes == "schema" else {}


def test_the_catalogue_names_the_published_methods() -> None:
    assert set(registry.names()) >= {"wachter", "lash2017", "lash2017-exact", "ramakrishnan2020"}
    assert registry.names() == tuple(sorted(registry.names()))
    for name in registry.names():
        preset = registry.get(name)
        assert preset.verb in (synthesize, invert) and preset.cite
        with pytest.raises(TypeError):
            preset.defaults["steps"] = 1  # type: ignore[index]


@pytest.mark.parametrize("name", registry.names())
def test_every_entry_passes_the_contract(name: str, tiny: tuple[LogisticRegression, pd.DataFrame]) -> None:
    model, denied = tiny
    check_method(name, model, denied, ACTIONS, **options(name))
    batch = registry.run(name, model, denied, ACTIONS, **options(name))
    assert {r.provenance["method"] for r in batch} == {name}
    assert sum(r.status == "found" for r in batch) >= 5  # the tiny problem is easy: most rows get a plan


@pytest.mark.parametrize("name", registry.names())
def test_a_preset_is_its_verb_with_the_papers_settings(
    name: str, tiny: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    model, denied = tiny
    preset = registry.get(name)
    by_name = registry.run(name, model, denied, ACTIONS, **options(name))
    spec = preset.prepare(ACTIONS)
    by_hand = preset.verb(model, denied, spec, **preset.defaults, **options(name))

    def plain(batch: RecourseBatch) -> list[tuple[Any, ...]]:
        return [(r.status, r.cost, r.steps, r.x_after, r.p_after) for r in batch]

    assert plain(by_name) == plain(by_hand)
    assert [r.provenance["verb"] for r in by_name] == [preset.verb.__name__] * len(denied)


def weighted_l1_optimum(model: LogisticRegression, row: pd.Series, logit: float) -> float:
    """The cheapest change of the direct features that lifts the logit to ``logit``: an LP (HiGHS)."""
    w = dict(zip(SCHEMA.names, model.coef_[0], strict=True))
    c, bounds, price = [], [], []
    for name in ("income", "debt", "years"):
        f, x = SCHEMA[name], float(row[name])
        c += [f.cost_up or 0.0, f.cost_down or 0.0]
        bounds += [
            (0, f.bounds[1] - x if f.direction != "decrease" else 0),
            (0, x - f.bounds[0] if f.direction != "increase" else 0),
        ]
        price += [-w[name], w[name]]
    need = logit - float(model.decision_function(row.to_frame().T)[0])
    result = linprog(c, A_ub=[price], b_ub=[-need], bounds=bounds, method="highs")
    assert result.status == 0
    return float(result.fun)


def test_wachter_reaches_the_weighted_l1_optimum(tiny: tuple[LogisticRegression, pd.DataFrame]) -> None:
    """No plan is cheaper than the LP allows for the logit it reaches, and each is near the LP's cheapest
    way to the preset's margin. Adam on an L1 objective spreads a little change onto features the LP leaves
    alone (about 10% here at worst); years is whole and the LP continuous (a lower bound)."""
    model, denied = tiny
    batch = registry.run("wachter", model, denied, SCHEMA)
    assert all(r.status == "found" for r in batch)
    for i, r in enumerate(batch):
        after = pd.DataFrame([r.x_after])[list(SCHEMA.names)]
        reached = float(model.decision_function(after)[0])  # scikit-learn's logit, not ours
        assert reached >= 0
        assert r.cost >= weighted_l1_optimum(model, denied.iloc[i], reached) - 1e-6
        margin = r.provenance["config"]["margin"]
        assert r.cost <= 1.15 * weighted_l1_optimum(model, denied.iloc[i], margin) + 0.01
        assert r.x_after["region"] == r.x_before["region"]


def test_wachter_without_costs_prices_the_range() -> None:
    bare = Schema(
        (
            Feature("a", "real", (0, 10), mutability="direct"),
            Feature("b", "integer", (0, 4), mutability="direct"),
        ),
        Target("y", favourable=1, classes=(0, 1)),
    )
    move = registry.direct_moves(bare)["move"]
    assert [p.bounds for p in move.params] == [(-10.0, 10.0), (-4.0, 4.0)]
    assert [p.kind for p in move.params] == ["real", "integer"]
    env = move.env(bare, bare.encode(pd.DataFrame({"a": [1.0], "b": [1]})), torch.tensor([[-5.0, 2.0]]))
    assert float(move.cost_of(env, torch.Size([1]))[0]) == pytest.approx(5 / 10 + 2 / 4)


def test_planted_bugs_in_a_preset_break_the_contract(
    tiny: tuple[LogisticRegression, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, denied = tiny

    def cheap(model: Any, X: pd.DataFrame, actions: ActionSet, **kw: Any) -> RecourseBatch:
        batch = synthesize(model, X, actions, **kw)  # reports half of every found plan's cost
        return RecourseBatch(tuple(dataclasses.replace(r, cost=r.cost / 2) for r in batch))

    def overspend(model: Any, X: pd.DataFrame, schema: Schema, *, budget: float, **kw: Any) -> RecourseBatch:
        return invert(model, X, schema, budget=2 * budget, **kw)  # ignores the budget it was given

    monkeypatch.setitem(registry.CATALOGUE, "cheap", registry.Preset(cheap, {"max_length": 2}, "planted"))
    monkeypatch.setitem(registry.CATALOGUE, "overspend", registry.Preset(overspend, {}, "planted"))
    with pytest.raises(AssertionError, match="reported cost"):
        check_method("cheap", model, denied, ACTIONS)
    with pytest.raises(AssertionError, match="exceeds the budget"):
        check_method("overspend", model, denied, SCHEMA, budget=BUDGET)

    def lenient(model: Any, X: pd.DataFrame, actions: ActionSet, seed: int = 0, **kw: Any) -> RecourseBatch:
        return synthesize(model, X, actions, seed=seed, max_length=1)  # drops what it does not know

    monkeypatch.setitem(registry.CATALOGUE, "lenient", registry.Preset(lenient, {}, "planted"))
    with pytest.raises(AssertionError, match="unknown option did not raise"):
        check_method("lenient", model, denied, ACTIONS)


def test_wachter_on_the_german_default_model() -> None:
    """A schema with category features: they stay put; every plan replays exactly through the contract."""
    german = datasets.load("german")
    denied = german.X_test[german.model.predict(german.X_test) == "bad"].head(3)
    batch = registry.run("wachter", german.model, denied, german.schema)
    assert [r.status for r in batch] == ["found"] * 3
    assert check_plans(batch, denied, registry.direct_moves(german.schema), german.model) == []
    for r in batch:
        categories = [f.name for f in german.schema.features if f.kind == "category"]
        assert {k: r.x_after[k] for k in categories} == {k: r.x_before[k] for k in categories}


@dataclasses.dataclass(frozen=True)
class Singles(search.Strategy):
    """A new strategy as it would read in search.py: every one-action plan, every person at once."""

    name = "singles"

    def run(self, space: search.Space, trials: search.Trials) -> None:
        n, k = trials.people, len(space.program.acts)
        ids = space.program.pad([(a,) for a in range(k)])
        trials.evaluate(ids.repeat_interleave(n, 0), torch.arange(n).repeat(k))


def test_a_new_strategy_is_one_class_and_one_registry_line(
    tiny: tuple[LogisticRegression, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, denied = tiny
    monkeypatch.setitem(
        registry.CATALOGUE, "singles", registry.Preset(synthesize, {"search": Singles()}, "one")
    )
    check_method("singles", model, denied, ACTIONS)  # the whole contract, through the registry
    batch = registry.run("singles", model, denied, ACTIONS)
    assert {r.provenance["config"]["search"] for r in batch} == {"singles"}
    exhaustive = registry.run("ramakrishnan2020", model, denied, ACTIONS, max_length=1)
    assert [(r.status, r.cost) for r in batch] == [(r.status, r.cost) for r in exhaustive]


def test_presets_name_the_parts() -> None:
    """ramakrishnan2020-objective is best-first on the objective score, -gradient on the gradient score."""
    assert registry.get("ramakrishnan2020").defaults["search"] == search.Exhaustive()
    assert registry.get("ramakrishnan2020-objective").defaults["search"] == search.BestFirst(search.OBJECTIVE)
    assert registry.get("ramakrishnan2020-gradient").defaults["search"] == search.BestFirst(search.GRADIENT)


def test_bad_names_specs_and_options_raise_config_errors(
    tiny: tuple[LogisticRegression, pd.DataFrame],
) -> None:
    model, denied = tiny
    with pytest.raises(ConfigError, match="Did you mean 'lash2017'"):
        registry.get("lash2071")
    with pytest.raises(ConfigError, match="no method"):
        registry.run("carla", model, denied, SCHEMA)
    with pytest.raises(ConfigError, match="searches an action catalogue"):
        registry.run("ramakrishnan2020", model, denied, SCHEMA)
    with pytest.raises(ConfigError, match="Did you mean 'budget'"):
        registry.run("lash2017", model, denied, SCHEMA, budgte=1.0)
    with pytest.raises(ConfigError, match="spec must be"):
        registry.run("wachter", model, denied, {"income": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown option"):
        registry.run("wachter", model, denied, SCHEMA, max_lenght=2)


def test_the_package_exports_the_registry(tiny: tuple[LogisticRegression, pd.DataFrame]) -> None:
    model, denied = tiny
    assert actionable.registry is registry and "registry" in actionable.__all__
    batch = actionable.registry.run("lash2017-exact", model, denied, SCHEMA, budget=BUDGET)
    assert len(batch) == len(denied)
