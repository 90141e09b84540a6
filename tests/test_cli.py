"""The command line: every command has --help; bad input exits 2 naming the fix; train writes a model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from actionable import datasets, load_model
from actionable.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["datasets", "info", "train", "demo", "explain", "invert"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_unknown_dataset_exits_2_with_the_valid_names() -> None:
    result = runner.invoke(app, ["info", "germn"])
    assert result.exit_code == 2
    assert "german" in result.output and "adult" in result.output and "california" in result.output


def test_datasets_lists_all() -> None:
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0
    for name in ("german", "adult", "student", "california"):
        assert name in result.output


def test_info_shows_schema_and_model_quality() -> None:
    result = runner.invoke(app, ["info", "german"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "credit_amount" in result.output and "test_accuracy" in result.output


def test_demo_runs_without_arguments() -> None:
    result = runner.invoke(app, ["demo"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "denies" in result.output
    assert "Top reasons against approval" in result.output
    assert "Become a citizen" not in result.output  # the default catalogue changes no protected feature


SCHEMA = """
[target]
name = "approved"
favourable = "yes"
classes = ["no", "yes"]

[[feature]]
name = "income"
kind = "real"
bounds = [0, 500]
mutability = "direct"

[[feature]]
name = "region"
kind = "category"
levels = ["north", "south"]
"""


def user_files(tmp_path: Path, n: int = 200) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    income = rng.uniform(0, 500, n)
    region = rng.choice(["north", "south"], n)
    approved = np.where(income + (region == "south") * 100 > 300, "yes", "no")
    data = tmp_path / "loans.csv"
    pd.DataFrame({"income": income, "region": region, "approved": approved}).to_csv(data, index=False)
    schema = tmp_path / "schema.toml"
    schema.write_text(SCHEMA)
    return data, schema


def test_train_on_a_users_csv(tmp_path: Path) -> None:
    data, schema = user_files(tmp_path)
    out = tmp_path / "model"
    args = ["train", "--data", str(data), "--schema", str(schema), "--target", "approved", "--out", str(out)]
    result = runner.invoke(app, [*args, "--epochs", "60", "--hidden", "8"])
    assert result.exit_code == 0, result.output
    model = load_model(out)
    assert model.classes == ("no", "yes") and model.provenance["metrics"]["test_accuracy"] > 0.85


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d, s: ["--target", "nope"], "target column 'nope' is not in"),
        (lambda d, s: ["--hidden", "a,b"], "--hidden 'a,b' must be comma-separated"),
        (lambda d, s: ["--schema", str(d)], "not valid TOML"),
    ],
)
def test_train_bad_input_exits_2(tmp_path: Path, change: object, message: str) -> None:
    data, schema = user_files(tmp_path, 40)
    base = {
        "--data": str(data),
        "--schema": str(schema),
        "--target": "approved",
        "--out": str(tmp_path / "m"),
    }
    extra = change(data, schema)  # type: ignore[operator]
    base[extra[0]] = extra[1]
    result = runner.invoke(app, ["train", *[x for kv in base.items() for x in kv], "--epochs", "1"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_train_needs_a_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--dataset NAME" in result.output


def test_bad_row_in_users_csv_names_row_and_column(tmp_path: Path) -> None:
    data, schema = user_files(tmp_path, 40)
    frame = pd.read_csv(data)
    frame.loc[7, "region"] = "west"
    frame.to_csv(data, index=False)
    args = [
        "train",
        "--data",
        str(data),
        "--schema",
        str(schema),
        "--target",
        "approved",
        "--out",
        str(tmp_path / "m"),
    ]
    result = runner.invoke(app, [*args, "--epochs", "1"])
    assert result.exit_code == 2
    assert "column 'region': unknown level 'west'" in " ".join(result.output.split())


def test_synthesize_on_a_bundled_dataset_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "plans.jsonl"
    result = runner.invoke(
        app,
        ["synthesize", "--dataset", "german", "--rows", "0:12", "--max-length", "2", "--json", str(out)],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 12 and "Summary" in result.output


def test_synthesize_quickdraw_draws_the_figure(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    # test row 12: a cat missing one stroke, which the bundled recogniser does not recognise
    args = ["synthesize", "--dataset", "quickdraw", "--rows", "12:13", "--steps", "30", "--figure", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Draw a line from" in result.output and out.read_bytes()[:4] == b"\x89PNG"


def test_figure_on_a_dataset_without_strokes_exits_2_before_searching(tmp_path: Path) -> None:
    args = ["synthesize", "--dataset", "german", "--rows", "0:50", "--figure", str(tmp_path / "f.png")]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2 and "no stroke columns" in " ".join(result.output.split())
    assert not (tmp_path / "f.png").exists()


ACTIONS = """
[[action]]
name = "earn_more"
text = "Earn {amount:.0f} more"
params = { amount = { bounds = [0, 300] } }
effects = { income = "income + amount" }
cost = "amount / 100"
"""


def test_synthesize_on_users_files_and_exit_codes(tmp_path: Path) -> None:
    data, schema = user_files(tmp_path)
    model_dir = tmp_path / "model"
    train = [
        "train",
        "--data",
        str(data),
        "--schema",
        str(schema),
        "--target",
        "approved",
        "--out",
        str(model_dir),
    ]
    assert runner.invoke(app, [*train, "--epochs", "60", "--hidden", "8"]).exit_code == 0
    actions = tmp_path / "actions.toml"
    actions.write_text(ACTIONS)
    people = tmp_path / "people.csv"
    pd.DataFrame({"income": [50.0, 120.0, 900.0], "region": ["north", "south", "north"]}).to_csv(
        people, index=False
    )
    args = [
        "synthesize",
        "--data",
        str(people),
        "--schema",
        str(schema),
        "--actions",
        str(actions),
        "--model",
        str(model_dir),
        "--json",
        str(tmp_path / "out.jsonl"),
    ]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 1, result.output  # row 2 is out of bounds: recorded, the others still run
    records = [__import__("json").loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["found", "found", "error"]
    assert "Earn" in records[0]["steps"][0]["text"]
    actions.write_text(ACTIONS.replace('income = "income + amount"', "region = \"'west'\""))
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2 and "fixed in the schema" in " ".join(result.output.split())


def test_synthesize_search_options_are_passed_and_checked() -> None:
    base = ["synthesize", "--dataset", "german", "--rows", "0:3", "--max-length", "2"]
    result = runner.invoke(app, [*base, "--search", "astar"], terminal_width=200)
    assert result.exit_code == 2 and "search = 'astar' (str)" in " ".join(result.output.split())
    result = runner.invoke(app, [*base, "--budget", "3"], terminal_width=200)
    assert result.exit_code == 2 and "budget" in result.output
    result = runner.invoke(app, [*base, "--search", "gradient", "--budget", "5"], terminal_width=200)
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------------------------------ explain
def test_explain_a_bundled_dataset_writes_json_and_figure(tmp_path: Path) -> None:
    out, png = tmp_path / "why.jsonl", tmp_path / "why.png"
    args = ["explain", "--dataset", "german", "--rows", "0:4", "--json", str(out), "--figure", str(png)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and records[0]["method"] == "integrated_gradients"
    assert records[0]["baseline"] == "training mean" and abs(records[0]["delta"]) < 0.05
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert records[0]["top"][0][0] in result.output


def test_explain_advise_reproduces_the_blog(tmp_path: Path) -> None:
    png = tmp_path / "blog.png"
    result = runner.invoke(
        app, ["explain", "--dataset", "california", "--advise", "--figure", str(png)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "linear @ mean" in result.output and "mlp @ mean" in result.output
    assert "Raising MedInc by 1 sd" in result.output
    assert png.is_file()


def test_explain_on_users_files(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from actionable import Schema, as_model, save_model

    data, schema_path = user_files(tmp_path, 120)
    schema = Schema.from_toml(schema_path)
    frame = pd.read_csv(data)
    canonical = pd.DataFrame(schema.encode(frame).numpy(), columns=list(schema.columns))
    fitted = LogisticRegression(max_iter=500).fit(canonical, frame["approved"])
    save_model(as_model(fitted, schema), tmp_path / "model")
    out = tmp_path / "why.jsonl"
    args = ["explain", "--data", str(data), "--schema", str(schema_path), "--model", str(tmp_path / "model")]
    result = runner.invoke(app, [*args, "--rows", "0:3", "--method", "coefficients", "--json", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in records] == [0, 1, 2]
    assert all(abs(r["delta"]) < 1e-9 for r in records)  # exact for a linear model


# ------------------------------------------------------------------------------------------- invert
def test_invert_on_bundled_student_writes_json_and_a_figure(tmp_path: Path) -> None:
    out, png = tmp_path / "inv.jsonl", tmp_path / "curve.png"
    result = runner.invoke(
        app,
        [
            "invert",
            "--dataset",
            "student",
            "--budget",
            "0,2",
            "--rows",
            "0:5",
            "--json",
            str(out),
            "--figure",
            str(png),
            "--continuous",
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 10 and {r["provenance"]["budget"] for r in records} == {0.0, 2.0}
    assert all(r["cost"] <= r["provenance"]["budget"] + 1e-9 for r in records)
    assert png.stat().st_size > 1000


def test_invert_on_lash_files(tmp_path: Path) -> None:
    """A user with Lash's data and index file (rebuilt here from the bundle) and the bundled models."""
    data = datasets.load("student")
    frame = pd.concat(
        [pd.Series(range(1, len(data.frame) + 1), name="studid"), data.frame, data.target], axis=1
    )
    csv = tmp_path / "stud_port_class.csv"
    frame.to_csv(csv, index=False)
    models = data.path / "models"
    args = ["invert", "--data", str(csv), "--lash-indices", str(data.path / "stud_indices.csv")]
    args += ["--model", str(models / "regular"), "--indirect-model", str(models / "indirect")]
    result = runner.invoke(app, [*args, "--budget", "3", "--rows", "0:4"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Inverse classification" in result.output
    bad = tmp_path / "indices.csv"
    bad.write_text("\n".join((data.path / "stud_indices.csv").read_text().splitlines()[:-1]))
    result = runner.invoke(app, ["invert", "--data", str(csv), "--lash-indices", str(bad), *args[5:]])
    assert result.exit_code == 2 and "44 rows, but the data has 45 columns" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "german", "--method", "gradiant"], "Did you mean 'gradient'"),
        (["--dataset", "german", "--steps", "0"], "steps = 0 (int); give a whole number >= 1"),
        (["--dataset", "german", "--baseline", "median"], "--baseline 'median'"),
        (["--dataset", "german", "--rows", "5000:5001"], "selects no rows"),
        (["--dataset", "german", "--method", "coefficients"], "needs a linear model"),
        (["--data", "x.csv"], "--data --schema --model"),
    ],
)
def test_explain_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["explain", *args], terminal_width=200)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "student", "--budget", "-1"], "negative"),
        (["--dataset", "student", "--budget", "a:b"], "a range (0:10"),
        (["--dataset", "student", "--method", "euclid"], "method = 'euclid' (str); give one of"),
        (["--data", "x.csv"], "exactly one of --schema"),
    ],
)
def test_invert_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["invert", *args], terminal_width=200)
    assert result.exit_code == 2 and message in result.output, result.output
