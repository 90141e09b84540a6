"""Protected attributes (issue 12, item 7): declared in the schema, never written by an action unless the
catalogue allows it, never moved by ``wachter`` or ``invert`` (unless allowed), never advised, and marked
among the reasons of an explanation (adverse-action reasons must not cite them)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

import actionable
from actionable import ConfigError, Feature, Schema, SpecError, Target, as_model, datasets
from actionable.actions import Action, ActionSet
from actionable.advice import advise_gradient
from actionable.cli import app
from actionable.cli import datasets as datasets_cli
from actionable.cli import explain as explain_cli
from actionable.cli.demo import denial_reasons
from actionable.inverse import invert
from actionable.registry import direct_moves
from actionable.results import Attribution

SPEC = """
[target]
name = "approved"
favourable = 1
classes = [0, 1]

[[feature]]
name = "income"
kind = "real"
bounds = [0, 10]
mutability = "direct"
cost_up = 1.0
cost_down = 1.0

[[feature]]
name = "citizen"
kind = "binary"
mutability = "direct"
cost_up = 1.0
cost_down = 1.0
protected = true

[[feature]]
name = "sex"
kind = "category"
levels = ["female", "male"]
mutability = "fixed"
protected = true
"""

NATURALIZE = """
[[action]]
name = "naturalize"
effects = { citizen = "1" }
cost = "5"
pre = ["citizen == 0"]

[[action]]
name = "earn_more"
params = { amount = { bounds = [0, 10] } }
effects = { income = "min(income + amount, 10)" }
cost = "amount"
"""


def protected_names(schema: Schema) -> set[str]:
    return {f.name for f in schema.features if f.protected}


def linear(schema: Schema, weights: list[float], bias: float) -> actionable.TorchModel:
    """A logistic model on the canonical columns: logit(approved) = weights . x + bias."""
    net = torch.nn.Linear(schema.width, 1).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([weights], dtype=torch.float64))
        net.bias.fill_(bias)
    return as_model(net, schema)


# ------------------------------------------------------------------------------------------ schema
def test_a_feature_may_be_protected_and_the_toml_round_trips_it() -> None:
    schema = Schema.from_toml(SPEC)
    assert [f.protected for f in schema.features] == [False, True, True]
    assert Feature("x").protected is False and Feature("x", protected=True).protected is True
    text = schema.to_toml()
    assert text.count("protected = true") == 2
    assert Schema.from_toml(text) == schema
    assert schema.with_features(citizen={"protected": False}) != schema  # it is part of the value


@pytest.mark.parametrize("value", ['"true"', "1", "0", "[true]", '"yes"'])
def test_a_non_boolean_protected_is_a_spec_error(value: str) -> None:
    with pytest.raises(
        SpecError, match=r"'protected' must be true or false.*protected = true without quotes"
    ):
        Schema.from_toml(SPEC.replace("protected = true", f"protected = {value}", 1))
    with pytest.raises(SpecError, match="protected"):
        Feature("x", protected=1)  # type: ignore[arg-type]


def test_the_bundled_schemas_mark_their_protected_attributes() -> None:
    assert protected_names(datasets.load("german").schema) == {"foreign_worker", "personal_status"}
    assert protected_names(datasets.load("adult").schema) == {
        "sex",
        "race",
        "native_country",
        "marital_status",
        "relationship",
    }
    assert protected_names(datasets.load("student").schema) == {"sex", "age"}
    for name in ("california", "quickdraw"):
        assert protected_names(datasets.load(name).schema) == set()


# --------------------------------------------------------------------------------------- catalogues
def test_an_action_writing_a_protected_feature_is_a_spec_error_naming_action_feature_and_fix() -> None:
    schema = Schema.from_toml(SPEC)
    with pytest.raises(SpecError) as caught:
        ActionSet.from_toml(NATURALIZE, schema)
    message = str(caught.value)
    assert (
        "action 'naturalize'" in message and "['citizen']" in message and "allow_protected = true" in message
    )
    action = Action("naturalize", {"citizen": "1"}, "5")
    with pytest.raises(SpecError, match=r"naturalize.*citizen.*allow_protected"):
        ActionSet([action], schema)


def test_allow_protected_lets_a_catalogue_write_them() -> None:
    schema = Schema.from_toml(SPEC)
    loaded = ActionSet.from_toml("allow_protected = true\n" + NATURALIZE, schema)
    assert loaded.allow_protected and loaded.names == ("naturalize", "earn_more")
    built = ActionSet([Action("naturalize", {"citizen": "1"}, "5")], schema, allow_protected=True)
    assert built.allow_protected
    earn_only = NATURALIZE[NATURALIZE.index('[[action]]\nname = "earn_more"') :]
    assert not ActionSet.from_toml(earn_only, schema).allow_protected  # off by default


@pytest.mark.parametrize("value", ['"true"', "1", "[true]"])
def test_a_non_boolean_allow_protected_is_a_spec_error(value: str) -> None:
    with pytest.raises(SpecError, match=r"'allow_protected' must be true or false"):
        ActionSet.from_toml(f"allow_protected = {value}\n" + NATURALIZE, Schema.from_toml(SPEC))


def test_reading_a_protected_feature_is_not_writing_it() -> None:
    """Only effects count: a precondition may read a protected feature (the rule is about what a person is
    asked to change)."""
    text = '[[action]]\nname = "save"\neffects = { income = "income + 1" }\ncost = "1"\n'
    text += 'pre = ["citizen == 1", "sex == \'female\'", "income <= 9"]\n'
    assert ActionSet.from_toml(text, Schema.from_toml(SPEC)).names == ("save",)


def test_german_default_catalogue_changes_no_protected_feature_and_the_papers_keeps_naturalize() -> None:
    german = datasets.load("german")
    default = ActionSet.from_toml(german.path / "actions.toml", german.schema)
    assert not default.allow_protected
    for action in default:
        assert not action.footprint & protected_names(german.schema), action.name
    paper = ActionSet.from_toml(german.path / "paper_actions.toml", german.schema)
    assert paper.allow_protected
    assert set(paper.names) - set(default.names) == {"naturalize"} and set(default.names) < set(paper.names)
    for action in default:  # the same actions otherwise: the two files do not drift apart
        assert paper[action.name] == action
    assert paper["naturalize"].footprint == {"foreign_worker"}
    text = (german.path / "paper_actions.toml").read_text(encoding="utf-8")
    with pytest.raises(SpecError, match=r"naturalize.*foreign_worker.*allow_protected"):
        ActionSet.from_toml(text.replace("allow_protected = true", ""), german.schema)


def test_every_bundled_catalogue_loads_and_only_the_papers_writes_a_protected_feature() -> None:
    for name in datasets.NAMES:
        data = datasets.load(name)
        for path in sorted(data.path.glob("*actions.toml")):
            catalogue = ActionSet.from_toml(path, data.schema)
            written = {n for a in catalogue for n in a.footprint} & protected_names(data.schema)
            assert bool(written) == (path.name == "paper_actions.toml") == catalogue.allow_protected, path


# ------------------------------------------------------------------------------------------ wachter
def test_wachter_never_moves_a_protected_feature() -> None:
    schema = Schema(
        (
            Feature("income", "real", (0, 10), mutability="direct"),
            Feature("years_here", "integer", (0, 10), mutability="direct", protected=True),
        ),
        Target("approved", favourable=1, classes=(0, 1)),
    )
    action = direct_moves(schema)["move"]
    assert action.footprint == {"income"}
    # per unit the protected feature moves the logit five times as far at the same price: the cheapest move
    model = linear(schema, [1.0, 5.0], -6.0)
    plans = actionable.registry.run(
        "wachter", model, pd.DataFrame({"income": [1.0], "years_here": [0]}), schema
    )
    assert plans[0].status == "found"
    assert plans[0].x_after["years_here"] == 0 and plans[0].x_after["income"] > 5.9
    only = Schema((Feature("years_here", "integer", (0, 10), mutability="direct", protected=True),))
    with pytest.raises(ConfigError, match="protected ones are never moved"):
        direct_moves(only)


# ------------------------------------------------------------------------------------------- invert
def test_invert_refuses_a_protected_direct_or_indirect_feature_unless_allowed() -> None:
    schema = Schema.from_toml(SPEC)
    model = linear(schema, [1.0, 5.0, 0.0, 0.0], -6.0)
    people = pd.DataFrame({"income": [1.0], "citizen": [0], "sex": ["female"]})
    with pytest.raises(SpecError, match=r"protected feature\(s\) \['citizen'\].*allow_protected=True"):
        invert(model, people, schema, budget=5)
    allowed = invert(model, people, schema, budget=5, allow_protected=True)
    assert allowed[0].x_after["citizen"] == 1  # the cheapest change is the protected one: why it is refused
    fixed = schema.with_features(citizen={"mutability": "fixed"})
    kept = invert(model, people, fixed, budget=5)
    assert kept[0].x_after["citizen"] == 0 and kept[0].x_after["income"] > 1
    indirect = schema.with_features(citizen={"mutability": "indirect"}, income={"protected": True})
    with pytest.raises(SpecError, match=r"\['income'\] .*are direct,"):  # citizen is not re-predicted
        invert(model, people, indirect, budget=5)
    predictor = torch.nn.Linear(schema.width, 1).double()
    regression = as_model(predictor, indirect, task="regression", outputs=["citizen"])
    with pytest.raises(SpecError, match=r"\['income', 'citizen'\] .*are direct/indirect"):
        invert(model, people, indirect, budget=5, indirect=regression)
    only_indirect = indirect.with_features(income={"protected": False})
    with pytest.raises(SpecError, match=r"\['citizen'\] .*are indirect"):
        invert(model, people, only_indirect, budget=5, indirect=regression)
    assert len(invert(model, people, only_indirect, budget=5)) == 1  # nothing re-predicts it: it stays
    with pytest.raises(ConfigError, match="allow_protected"):
        invert(model, people, schema, budget=5, allow_protected="yes")  # type: ignore[arg-type]
    by_name = actionable.registry.run("lash2017", model, people, schema, budget=5, allow_protected=True)
    assert by_name[0].x_after["citizen"] > 0  # lash2017 keeps the continuous relaxation


# ------------------------------------------------------------------------------------------- advice
def test_advice_never_suggests_changing_a_protected_feature() -> None:
    schema = Schema.from_toml(SPEC)
    model = linear(schema, [1.0, 5.0, 0.0, 0.0], -6.0)
    person = pd.Series({"income": 1.0, "citizen": 0, "sex": "female"})
    advice = advise_gradient(model, person)
    assert [item.feature for item in advice.items] == ["income"]
    unprotected = schema.with_features(citizen={"protected": False})
    assert {
        i.feature for i in advise_gradient(linear(unprotected, [1.0, 5.0, 0.0, 0.0], -6.0), person).items
    } == {
        "income",
        "citizen",
    }


def test_advice_on_german_names_no_protected_feature() -> None:
    german = datasets.load("german")
    for i in range(5):
        advice = advise_gradient(german.model, german.X_test.iloc[i])
        assert not {item.feature for item in advice.items} & protected_names(german.schema)


# ------------------------------------------------------------------------------------- attribution
def brute_top(values: np.ndarray, features: tuple[str, ...], skip: set[str], k: int, sign: str) -> list:
    """The oracle of ``Attribution.top``: sort each row's allowed (feature, value) pairs by hand."""
    out = []
    for row in values:
        pairs = [(f, float(v)) for f, v in zip(features, row, strict=True) if f not in skip]
        if sign == "positive":
            pairs = sorted((p for p in pairs if p[1] > 0), key=lambda p: -p[1])
        elif sign == "negative":
            pairs = sorted((p for p in pairs if p[1] < 0), key=lambda p: p[1])
        else:
            pairs = sorted(pairs, key=lambda p: -abs(p[1]))
        out.append(pairs[:k])
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda d: st.tuples(
            st.lists(
                st.lists(st.integers(-1000, 1000).map(lambda v: v / 10), min_size=d, max_size=d).filter(
                    lambda r: len({abs(v) for v in r}) == len(r)  # no ties: the order is unique
                ),
                min_size=1,
                max_size=4,
            ),
            st.sets(st.integers(0, d - 1)),
        )
    ),
    st.integers(0, 7),
    st.sampled_from(["both", "positive", "negative"]),
)
def test_top_without_protected_features_is_the_brute_force_ranking_of_the_others(
    case: tuple[list[list[float]], set[int]], k: int, sign: str
) -> None:
    rows, chosen = case
    values = np.array(rows)
    features = tuple(f"f{j}" for j in range(values.shape[1]))
    protected = tuple(features[j] for j in sorted(chosen))
    nan = np.full(len(values), math.nan)
    result = Attribution(
        values,
        features,
        "gradient",
        tuple(range(len(values))),
        "zeros",
        nan,
        "1 (logit)",
        nan,
        nan,
        "per unit",
        protected=protected,
    )
    assert result.top(k, sign, exclude_protected=True) == brute_top(values, features, set(protected), k, sign)  # type: ignore[arg-type]
    assert result.top(k, sign) == brute_top(values, features, set(), k, sign)  # type: ignore[arg-type]
    for record, tops in zip(result.to_records(k), result.top(k), strict=True):
        assert record["top"] == [[f, v] for f, v in tops]  # the existing key is unchanged
        assert record["reasons"] == [{"feature": f, "value": v, "protected": f in protected} for f, v in tops]


def test_attribute_names_the_schemas_protected_features() -> None:
    german = datasets.load("german")
    result = actionable.attribute(german.model, german.X_test.iloc[:20], "gradient_x_input")
    assert set(result.protected) == {"foreign_worker", "personal_status"}
    everything = result.to_records(len(german.schema))
    marked = {r["feature"] for record in everything for r in record["reasons"] if r["protected"]}
    assert marked == {"foreign_worker", "personal_status"}
    for reasons in result.top(len(german.schema), exclude_protected=True):
        assert len(reasons) == len(german.schema) - 2 and not {n for n, _ in reasons} & marked
    with pytest.raises(actionable.DataError, match="exclude_protected"):
        result.top(3, exclude_protected="yes")  # type: ignore[arg-type]
    with pytest.raises(actionable.DataError, match="not among its features"):
        Attribution(
            result.values,
            result.features,
            "x",
            result.rows,
            "",
            result.delta,
            "",
            result.prediction,
            result.reference,
            protected=("nationality",),
        )


# --------------------------------------------------------------------------------------- command line
def wide(monkeypatch: pytest.MonkeyPatch, module: object) -> io.StringIO:
    """What ``module`` prints, on a console wide enough that no table cell wraps (whatever the terminal)."""
    buffer = io.StringIO()
    monkeypatch.setattr(module, "console", Console(file=buffer, width=2000, height=50))
    return buffer


def test_explain_marks_protected_reasons_and_can_leave_them_out(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["explain", "--dataset", "german", "--rows", "0:3", "--top", "20"]  # every feature: both cited
    printed = wide(monkeypatch, explain_cli)
    assert CliRunner().invoke(app, args).exit_code == 0
    shown = printed.getvalue()
    assert re.search(r"personal_status [+-][0-9.e+-]+ \(protected\)", shown)
    assert re.search(r"foreign_worker [+-][0-9.e+-]+ \(protected\)", shown)
    assert "an adverse-action reason must not cite it" in shown
    assert not re.search(r"(duration|credit_amount) [+-][0-9.e+-]+ \(protected\)", shown)
    printed = wide(monkeypatch, explain_cli)
    assert CliRunner().invoke(app, [*args, "--exclude-protected"]).exit_code == 0
    assert "(protected)" not in printed.getvalue() and "personal_status" not in printed.getvalue()


def test_invert_command_refuses_a_protected_direct_feature_unless_allowed(tmp_path: Path) -> None:
    schema = Schema.from_toml(SPEC)
    (tmp_path / "schema.toml").write_text(SPEC, encoding="utf-8")
    actionable.save_model(linear(schema, [1.0, 5.0, 0.0, 0.0], -6.0), tmp_path / "model")
    pd.DataFrame({"income": [1.0, 2.0], "citizen": [0, 0], "sex": ["female", "male"]}).to_csv(
        tmp_path / "people.csv", index=False
    )
    args = ["invert", "--data", str(tmp_path / "people.csv"), "--schema", str(tmp_path / "schema.toml")]
    args += ["--model", str(tmp_path / "model"), "--budget", "3"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "allow_protected" in refused.output, refused.output
    allowed = CliRunner().invoke(app, [*args, "--allow-protected"])
    assert allowed.exit_code == 0, allowed.output


def test_info_shows_which_features_are_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    printed = wide(monkeypatch, datasets_cli)
    assert CliRunner().invoke(app, ["info", "german"]).exit_code == 0
    rows = [[c.strip() for c in line.split("│")] for line in printed.getvalue().splitlines() if "│" in line]
    assert {row[1] for row in rows if row[4].endswith("*")} == {"foreign_worker", "personal_status"}
    assert "* protected: never changed by recourse, never cited as a reason" in printed.getvalue()


def test_the_readme_schema_example_marks_a_protected_feature() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("A schema is a TOML file") :]
    block = section[section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml\n") + 8)]
    schema = Schema.from_toml(block)
    assert protected_names(schema) == {"foreign_worker"}


def test_demo_reasons_never_cite_a_protected_feature_but_say_when_the_model_leans_on_one() -> None:
    german = datasets.load("german")
    denied = german.X_test[german.model.predict(german.X_test) == "bad"]
    sentence = denial_reasons(german.model, denied, german.X_train)
    notes = 0
    for row in range(len(denied)):
        text = sentence(row)
        reasons, _, note = text.partition(" The model also leans on protected ")
        assert not any(name in reasons for name in protected_names(german.schema)), text
        notes += bool(note)
    assert notes >= 1  # German's network does lean on personal_status for some denied applicants
