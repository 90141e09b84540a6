"""Hostile and careless input to the engines (issue 10): no wrong answer comes back, nothing runs away,
every refusal is a typed error whose message names the fix; careless but valid values still work."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ConfigError, Feature, Schema, Target, as_model, attribute, datasets
from actionable.actions import ActionSet
from actionable.errors import ActionableError
from actionable.inverse import invert
from actionable.program import Program
from actionable.results import Recourse
from actionable.synthesis import SynthesisConfig, synthesize
from tests.hostile import attempt, limited

SCHEMA = Schema(
    (
        Feature("a", "real", (0, 100), mutability="direct", direction="increase", cost_up=0.1),
        Feature("b", "real", (0, 100), mutability="direct", direction="both", cost_up=0.1, cost_down=0.1),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)
PERSON = pd.DataFrame([{"a": 10.0, "b": 100.0}])
RAISE_A = """
[[action]]
name = "raise_a"
params = { d = { bounds = [0, 90] } }
effects = { a = "a + d" }
cost = "d / 10"
"""


def linear(schema: Schema = SCHEMA, weight: tuple[float, float] = (0.1, 0.0), bias: float = -5.0) -> Any:
    """Two logits: (0, w . x + bias) in the order of the schema's classes."""
    layer = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[1] = torch.tensor(weight, dtype=torch.float64)
        layer.bias[1] = bias
    return as_model(layer, schema)


def catalogue(text: str = RAISE_A, schema: Schema = SCHEMA) -> ActionSet:
    return ActionSet.from_toml(text, schema)


def unchecked(text: str, monkeypatch: pytest.MonkeyPatch) -> ActionSet:
    """A catalogue that skips the load-time checks (as if a rare precondition had hidden a bad cost from
    them): the engine must not rely on those checks to stay correct."""
    with monkeypatch.context() as patch:
        patch.setattr(
            ActionSet, "check", lambda self, schema: [a.bind(schema, self.where) for a in self.actions]
        )
        return ActionSet.from_toml(text, SCHEMA)


# ------------------------------------------------------------------------------------ config values
def _synth(**kw: Any) -> Callable[[], Any]:
    return lambda: synthesize(linear(), PERSON, catalogue(), **kw)


def _inv(**kw: Any) -> Callable[[], Any]:
    return lambda: invert(linear(), PERSON, SCHEMA, **{"budget": 5.0, **kw})


def _attr(**kw: Any) -> Callable[[], Any]:
    return lambda: attribute(linear(), PERSON, "integrated_gradients", **kw)


BAD_CONFIG = [
    ("synth-steps-str", _synth(steps="10"), "synthesize: steps = '10' (str); give a whole number >= 1"),
    ("synth-steps-fraction", _synth(steps=2.5), "steps = 2.5 (float); give a whole number"),
    ("synth-steps-negative", _synth(steps=-1), "steps = -1 (int); give a whole number >= 1"),
    ("synth-steps-bool", _synth(steps=True), "steps = True (bool)"),
    ("synth-steps-huge", _synth(steps=10**12), "give a whole number >= 1 and <= 1e+06"),
    ("synth-lr-nan", _synth(lr=math.nan), "lr = nan (float); give a finite number > 0"),
    ("synth-lr-zero", _synth(lr=0.0), "lr = 0.0 (float); give a finite number > 0"),
    ("synth-margin-inf", _synth(margin=math.inf), "margin = inf (float); give a finite number >= 0"),
    ("synth-margin-str", _synth(margin="0.1"), "margin = '0.1' (str)"),
    ("synth-max-length-0", _synth(max_length=0), "max_length = 0 (int); give a whole number >= 1"),
    ("synth-max-length-1e9", _synth(max_length=10**9), "max_length = 1000000000 (int)"),
    ("synth-budget-str", _synth(search="objective", budget="x"), "budget = 'x' (str)"),
    ("synth-budget-bfs", _synth(budget=5), "budget = 5 applies to search='objective'"),
    ("synth-search-unknown", _synth(search="astar"), "search = 'astar' (str); give one of 'bfs'"),
    ("synth-compile-str", _synth(compile="yes"), "compile = 'yes' (str); give True or False"),
    ("synth-seed-negative", _synth(seed=-3), "seed = -3 (int)"),
    ("synth-chunk-float", _synth(chunk=0.5), "chunk = 0.5 (float)"),
    ("synth-goal-list", _synth(goal=["good"]), "goal = ['good'] (list); give a class label"),
    ("synth-goal-array", _synth(goal=np.array([1, 0])), "(ndarray); give a class label"),
    ("synth-goal-class-dict", _synth(goal={"class": {"x": 1}}), "class = {'x': 1} (dict)"),
    ("synth-goal-unknown", _synth(goal="great"), "class 'great' is not one of the model's classes"),
    ("inv-steps-str", _inv(steps="10"), "invert: steps = '10' (str); give a whole number >= 1"),
    ("inv-steps-fraction", _inv(steps=2.5), "invert: steps = 2.5 (float)"),
    ("inv-method", _inv(method="fast"), "invert: method = 'fast' (str); give one of 'exact', 'shrink'"),
    ("inv-rounding-str", _inv(rounding="yes"), "invert: rounding = 'yes' (str); give True or False"),
    ("inv-budget-str", _inv(budget="x"), "invert: budget = 'x' (str) is not a number"),
    ("inv-budget-nan", _inv(budget=math.nan), "is not a number"),
    ("inv-goal-list", _inv(goal=[1]), "goal = [1] (list); give a class label"),
    ("attr-steps-str", _attr(steps="10"), "attribute: steps = '10' (str); give a whole number >= 1"),
    ("attr-steps-fraction", _attr(steps=2.5), "attribute: steps = 2.5 (float)"),
    ("attr-steps-zero", _attr(steps=0), "attribute: steps = 0 (int)"),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in BAD_CONFIG], ids=[c[0] for c in BAD_CONFIG])
def test_bad_configuration_values_are_typed_errors(call: Callable[[], Any], message: str) -> None:
    outcome = attempt(call)
    assert isinstance(outcome.error, ConfigError), repr(outcome.error)
    assert message in str(outcome.error)


CARELESS = [
    ("synth-numpy-steps", _synth(steps=np.int64(100), max_length=np.int32(2))),
    ("synth-whole-float-steps", _synth(steps=100.0)),
    ("synth-numpy-margin", _synth(margin=np.float32(0.1), lr=np.float64(0.05))),
    ("synth-goal-label", _synth(goal="good")),
    ("synth-goal-numpy-label", _synth(goal=np.str_("good"))),
    ("synth-series-row", lambda: synthesize(linear(), PERSON.iloc[0], catalogue())),
    ("inv-numpy-steps", _inv(steps=np.int64(50), budget=np.float32(5.0))),
    ("inv-whole-float-steps", _inv(steps=50.0)),
    ("inv-series-row", lambda: invert(linear(), PERSON.iloc[0], SCHEMA, budget=5.0)),
    ("attr-numpy-steps", _attr(steps=np.int64(8))),
]


@pytest.mark.parametrize("call", [c[1] for c in CARELESS], ids=[c[0] for c in CARELESS])
def test_careless_but_valid_values_work(call: Callable[[], Any]) -> None:
    outcome = attempt(call)
    assert outcome.error is None, repr(outcome.error)
    if hasattr(outcome.value, "items"):
        for r in outcome.value:
            assert r.status == "found", r
            json.dumps(r.to_dict())  # provenance holds plain values (numpy numbers were normalised)
            config = r.provenance["config"]
            assert all(type(v) in (int, float, str, bool, type(None)) for v in config.values()), config


# ------------------------------------------------------------------------------ negative step costs
NEGATIVE = [
    (
        "padded-onto-a-real-plan",
        RAISE_A
        + """
[[action]]
name = "bonus"
effects = { b = "b" }
cost = "-5"
pre = ["b >= 99.99"]
""",
        "found",
    ),
    (
        "the-only-way",
        """
[[action]]
name = "bonus"
effects = { a = "a + 60" }
cost = "-5"
pre = ["b >= 99.99"]
""",
        "not_found",
    ),
    (
        "infinite-cost",
        """
[[action]]
name = "bonus"
effects = { a = "a + 60" }
cost = "-log(0)"
pre = ["b >= 99.99"]
""",
        "not_found",
    ),
]


@pytest.mark.parametrize(("text", "status"), [c[1:] for c in NEGATIVE], ids=[c[0] for c in NEGATIVE])
def test_negative_or_infinite_step_costs_are_never_found(
    text: str, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = unchecked(text, monkeypatch)
    r = synthesize(linear(), PERSON, actions, max_length=2)[0]
    assert r.status == status
    if status == "found":
        assert [s.action for s in r.steps] == ["raise_a"]
        assert r.cost >= 0 and all(math.isfinite(s.cost) and s.cost >= 0 for s in r.steps)
    else:
        assert "'bonus' (cost" in r.error and "negative or not finite" in r.error
        assert "fix the cost expression" in r.error


# ---------------------------------------------------------------------------------- exact ties
TIES = [  # the person sits exactly on the boundary: logits (0, 0) at a = 10
    ("favourable-second", ("bad", "good"), False),
    ("favourable-first", ("good", "bad"), True),
]


def tied(classes: tuple[str, str]) -> tuple[Any, Schema]:
    schema = Schema(SCHEMA.features, Target("y", favourable="good", classes=classes))
    layer = torch.nn.Linear(2, 2).double()
    good = classes.index("good")
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[good, 0] = 0.1
        layer.bias[good] = -1.0
    return as_model(layer, schema), schema


@pytest.mark.parametrize(("classes", "favourable"), [c[1:] for c in TIES], ids=[c[0] for c in TIES])
def test_a_tie_is_favourable_exactly_when_predict_says_so(classes: tuple[str, str], favourable: bool) -> None:
    model, schema = tied(classes)
    with torch.no_grad():
        logits = model(schema.encode(PERSON))
    assert float(logits[0, 0]) == float(logits[0, 1])  # an exact tie
    assert (model.predict(PERSON)[0] == "good") is favourable
    plans = synthesize(model, PERSON, catalogue(schema=schema))[0]
    moved = invert(model, PERSON, schema, budget=5.0)[0]
    for r in (plans, moved):
        assert (r.status == "already_favourable") is favourable
        if r.status == "found":
            assert model.predict(pd.DataFrame([r.x_after]))[0] == "good"


# ---------------------------------------------------------------------------------- runaway search
def wide_catalogue(n: int) -> str:
    """``n`` actions on one feature: none commute, so there are n (n - 1) ... orders of each length."""
    return "".join(
        f"""
[[action]]
name = "step_{i}"
params = {{ d = {{ bounds = [0, 1] }} }}
effects = {{ a = "a + d * {i + 1}" }}
cost = "d"
"""
        for i in range(n)
    )


RUNAWAY = [
    ("40-actions-length-4", dict(max_length=4), 40, "at least"),
    ("40-actions-length-10", dict(max_length=10), 40, "max_length=3"),
    ("budget-too-large", dict(max_length=4, search="objective", budget=10**9), 4, "sequences per person"),
    ("small-max-work", dict(max_length=2, max_work=1000), 4, "max_work = 1,000"),
]


@pytest.mark.parametrize(("options", "n", "message"), [c[1:] for c in RUNAWAY], ids=[c[0] for c in RUNAWAY])
def test_runaway_searches_are_refused_before_they_start(
    options: dict[str, Any], n: int, message: str
) -> None:
    actions = catalogue(wide_catalogue(n))
    people = pd.concat([PERSON] * 20, ignore_index=True)
    outcome = attempt(synthesize, linear(), people, actions, **options)
    assert isinstance(outcome.error, ConfigError), repr(outcome.error)
    text = str(outcome.error)
    assert message in text and "x 20 rows x 150 steps" in text and "Shrink it" in text


def test_bundled_defaults_are_not_refused() -> None:
    for name in ("german", "adult", "quickdraw"):
        data = datasets.load(name)
        actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
        length = int(data.info.get("synthesis", {}).get("max_length", 4))
        frame = pd.concat([data.X_test, data.X_train]).head(200)
        synth = synthesize(data.model, frame.head(1), actions, max_length=length, steps=1)
        assert synth.summary()["rows"] == 1
        space = SynthesisConfig(max_length=10).space(Program(actions))
        assert space.levels(len(data.X_test) + len(data.X_train))  # the whole table, length 10


# ------------------------------------------------------------------------------- invert: big and valid
def test_invert_memory_stays_flat_on_many_rows() -> None:
    data = datasets.load("student")
    frame = pd.concat([data.X_test, data.X_train])
    people = frame.sample(8_000, replace=True, random_state=0).reset_index(drop=True)
    model, g = data.models["regular"], data.models["indirect"]
    with limited(seconds=240, memory=1024**3):  # was about 150 KB per row: 1.2 GB here
        batch = invert(model, people, data.schema, budget=5.0, indirect=g)
    assert len(batch) == len(people) and not batch.summary()["error"]


def test_invert_reports_valid_rows_and_keeps_the_raw_indirect_predictions() -> None:
    data = datasets.load("student")
    people = data.X_test[data.y_test == 1].head(12)
    model, g = data.models["regular"], data.models["indirect"]
    batch = invert(model, people, data.schema, budget=6.0, indirect=g)
    assert any(r.status == "found" for r in batch)
    indirect = [f.name for f in data.schema.features if f.mutability == "indirect"]
    after = pd.DataFrame([r.x_after for r in batch], columns=list(data.schema.names))
    assert data.schema.row_errors(after) == {}  # the library accepts every row it reports
    p_after = model.predict_proba(after)[:, list(model.classes).index(data.schema.target.favourable)]
    for r, p in zip(batch, p_after, strict=True):
        assert r.p_after == pytest.approx(float(p), abs=1e-9)  # on the row actually reported
        assert set(r.indirect_raw) == set(indirect)
        assert Recourse.from_dict(json.loads(json.dumps(r.to_dict()))) == r
        for name in indirect:
            f = data.schema[name]
            raw = min(max(r.indirect_raw[name], f.bounds[0]), f.bounds[1])
            assert r.x_after[name] == (round(raw) if f.kind in ("integer", "binary") else raw)
        if r.status == "found":
            assert model.predict(pd.DataFrame([r.x_after]))[0] == data.schema.target.favourable


def test_errors_are_actionable_errors() -> None:
    outcome = attempt(_synth(steps="10"))
    assert isinstance(outcome.error, ActionableError) and isinstance(outcome.error, ValueError)


CLI = [
    ("max-length-too-long", ["--max-length", "33"], "max_length = 33 (int); give a whole number >= 1"),
    ("margin-infinite", ["--margin", "inf"], "margin = inf (float); give a finite number >= 0"),
    ("steps-zero", ["--steps", "0"], "steps = 0 (int); give a whole number >= 1"),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_refuses_bad_engine_settings_with_exit_2(args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from actionable.cli import app

    result = CliRunner().invoke(
        app, ["synthesize", "--dataset", "german", "--rows", "0:2", *args], terminal_width=200
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
