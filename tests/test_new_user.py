"""A new user's own small problems: defects found by following the README on unseen data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from actionable import Feature, Schema, Target, as_model, attribute


def _churn(favourable: str) -> tuple[Schema, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(
        {
            "fee": rng.uniform(10, 120, n),
            "calls": rng.integers(0, 10, n),
            "plan": rng.choice(["basic", "NA", "none"], n),
        }
    )
    score = -0.03 * X.fee - 0.4 * X.calls + (X.plan == "NA") + rng.normal(0, 1, n)
    y = pd.Series(np.where(score > np.median(score), "no", "yes"), name="churn")
    schema = Schema(
        (
            Feature("fee", "real", bounds=(0, 200), mutability="direct"),
            Feature("calls", "integer", bounds=(0, 20), mutability="direct"),
            Feature("plan", "category", levels=("basic", "NA", "none"), mutability="fixed"),
        ),
        target=Target("churn", favourable=favourable, classes=("no", "yes")),
    )
    return schema, X, y


def _pipeline(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["fee", "calls"]), ("cat", OneHotEncoder(), ["plan"])]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=1000))]).fit(X, y)


@pytest.mark.parametrize("method", ["coefficients", "gradient_x_input", "integrated_gradients", "deeplift"])
def test_attribution_of_the_first_class_of_a_binary_logistic_regression_is_its_log_odds(method: str) -> None:
    """A binary LogisticRegression has one logit z (classes [0, z]); when the favourable class is the FIRST
    class ("no churn"), its explained output must be its log-odds -z, not the constant 0 (all zeros)."""
    schema, X, y = _churn("no")
    pipeline = _pipeline(X, y)
    model = as_model(pipeline, schema)
    rows = X.head(5)
    baseline = None if method == "gradient_x_input" else "mean"
    why = attribute(model, rows, method, baseline=baseline)
    other = attribute(model, rows, method, baseline=baseline, target="yes")
    assert np.abs(why.values).max() > 1e-3
    np.testing.assert_allclose(why.values, -other.values, atol=1e-9)
    log_odds = pipeline.decision_function(rows)  # sklearn: the log-odds of classes_[1] ('yes')
    np.testing.assert_allclose(why.prediction, -log_odds, atol=1e-6)


def test_the_cli_reads_a_binary_column_that_pandas_wrote_as_true_false(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A frame with a bool column validates in Python; ``frame.to_csv`` writes it as True/False, and the
    CLI's reader must accept the same frame rather than refuse every row ('True' is not a number)."""
    from actionable.cli.inputs import read_csv

    schema = Schema(
        (
            Feature("fee", "real", bounds=(0, 200), mutability="direct"),
            Feature("paperless", "binary", mutability="direct"),
            Feature("plan", "category", levels=("True", "none"), mutability="fixed"),
        )
    )
    frame = pd.DataFrame(
        {"fee": [10.5, 20.0, 30.0], "paperless": [True, False, True], "plan": ["True", "none", "none"]}
    )
    schema.validate(frame)  # accepted in Python
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    read = schema.validate(read_csv(path, schema))
    assert read["paperless"].tolist() == [1, 0, 1]
    assert read["plan"].tolist() == ["True", "none", "none"]  # a category level stays text


@pytest.mark.parametrize("outputs", [1, 2])
def test_a_plain_torch_sequential_is_saved_as_data_and_loads_back(tmp_path, outputs: int) -> None:  # type: ignore[no-untyped-def]
    """README: as_model takes a torch nn.Module, save_model writes model.json + model.safetensors. A plain
    nn.Sequential of nn.Linear / nn.ReLU (nested, or ending in one logit) must be saved as data, not as a
    torch.export program that load_model (and so the CLI) then refuses."""
    import torch
    from torch import nn

    from actionable import load_model, save_model
    from actionable.models import layers as L

    schema, X, _ = _churn("no")
    torch.manual_seed(0)
    body = nn.Sequential(
        nn.Linear(schema.width, 4), nn.ReLU(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, outputs)
    )
    width = torch.ones(schema.width, dtype=torch.float64)
    network = nn.Sequential(
        L.Standardize(torch.zeros(schema.width, dtype=torch.float64), width), body
    ).double()
    model = as_model(network, schema, classes=["no", "yes"])
    folder = save_model(model, tmp_path / "net")
    assert not (folder / "model.pt2").exists()
    again = load_model(folder)  # no unsafe_allow_program
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-12)


CHURN_SCHEMA = """
[target]
name = "churn"
favourable = "no"
classes = ["no", "yes"]

[[feature]]
name = "fee"
kind = "real"
bounds = [0, 200]
mutability = "direct"

[[feature]]
name = "paperless"
kind = "binary"
mutability = "direct"
"""


def _catalogue(tmp_path, text: str):  # type: ignore[no-untyped-def]
    from actionable.actions import ActionSet

    (tmp_path / "schema.toml").write_text(CHURN_SCHEMA)
    (tmp_path / "actions.toml").write_text(text)
    return ActionSet.from_toml(tmp_path / "actions.toml", Schema.from_toml(tmp_path / "schema.toml"))


def test_one_condition_written_as_a_plain_string_is_a_list_of_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`pre = "paperless == 0"` (one condition, no brackets) is what a user writes, and means one thing."""
    actions = _catalogue(
        tmp_path,
        '[[action]]\nname = "go_paperless"\neffects = { paperless = "1" }\ncost = 2\npre = "paperless == 0"\n'
        'post = "paperless == 1"\n',
    )
    (action,) = actions

    def texts(conditions):  # type: ignore[no-untyped-def]
        return [c if isinstance(c, str) else c.expr.text for c in conditions]

    assert texts(action.pre) == ["paperless == 0"]
    assert texts(action.post) == ["paperless == 1"]


def test_a_bad_text_template_tells_how_to_write_literal_braces(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from actionable import SpecError

    with pytest.raises(SpecError) as caught:
        _catalogue(
            tmp_path,
            '[[action]]\nname = "discount"\ntext = "Lower the fee by {amount:d}"\n'
            'params = { amount = { bounds = [0, 50] } }\neffects = { fee = "fee - amount" }\ncost = "amount"\n',
        )
    assert "write {{ and }} for literal braces" in str(caught.value)


def test_train_reports_the_accuracy_of_number_labels_declared_as_text_classes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """classes = ["0", "1"] in the schema, labels 0/1 in the CSV (read as numbers): the fit matches them as
    text, so the printed and recorded test accuracy must too (it was 0.0 for a perfectly separable table)."""
    from typer.testing import CliRunner

    from actionable import load_model
    from actionable.cli import app

    rng = np.random.default_rng(0)
    fee = rng.uniform(0, 100, 200)
    pd.DataFrame({"fee": fee, "default": (fee > 50).astype(int)}).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "schema.toml").write_text(
        '[target]\nname = "default"\nfavourable = "0"\nclasses = ["0", "1"]\n\n'
        '[[feature]]\nname = "fee"\nkind = "real"\nbounds = [0, 100]\nmutability = "direct"\n'
    )
    args = ["train", "--data", str(tmp_path / "d.csv"), "--schema", str(tmp_path / "schema.toml")]
    result = CliRunner().invoke(app, [*args, "--target", "default", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    accuracy = load_model(tmp_path / "m").provenance["metrics"]["test_accuracy"]
    assert accuracy > 0.9, result.output


@pytest.mark.parametrize(("favourable", "hint"), [('"No"', "Did you mean 'no'?"), ("0", "Did you mean '0'?")])
def test_a_favourable_class_off_by_case_or_quotes_names_the_class_meant(
    tmp_path,  # type: ignore[no-untyped-def]
    favourable: str,
    hint: str,
) -> None:
    from actionable import SpecError

    classes = '["no", "yes"]' if hint.endswith("'no'?") else '["0", "1"]'
    (tmp_path / "schema.toml").write_text(
        f'[target]\nname = "churn"\nfavourable = {favourable}\nclasses = {classes}\n\n'
        '[[feature]]\nname = "fee"\nkind = "real"\nbounds = [0, 100]\nmutability = "direct"\n'
    )
    with pytest.raises(SpecError) as caught:
        Schema.from_toml(tmp_path / "schema.toml")
    assert hint in str(caught.value)
