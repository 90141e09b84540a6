"""The command line's row handling: --rows that select nothing exit 2, JSON records name the input row they
answer (not their position in the selection), and failed rows are explained on screen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from actionable import datasets
from actionable.cli import app

runner = CliRunner()
FAST = ["--max-length", "1", "--steps", "10"]


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "args",
    [
        ["synthesize", "--dataset", "german", "--rows", "5000:5001", *FAST],
        ["synthesize", "--dataset", "german", "--rows", "5:2", *FAST],
        ["invert", "--dataset", "student", "--budget", "1", "--rows", "900:1000"],
    ],
)
def test_rows_selecting_nothing_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "no rows to process" in " ".join(result.output.split())


def test_a_csv_with_a_header_only_exits_2(tmp_path: Path) -> None:
    german = datasets.load("german")
    csv = tmp_path / "people.csv"
    german.X_test.iloc[:0].to_csv(csv, index=False)
    args = ["synthesize", "--data", str(csv), "--schema", str(german.path / "schema.toml")]
    args += ["--actions", str(german.path / "actions.toml"), "--model", str(german.path / "models" / "mlp")]
    result = runner.invoke(app, [*args, *FAST], terminal_width=200)
    assert result.exit_code == 2 and "no rows to process" in result.output, result.output


def test_one_position_selects_one_row(tmp_path: Path) -> None:
    out = tmp_path / "plans.jsonl"
    args = ["synthesize", "--dataset", "german", "--rows", "3", *FAST, "--json", str(out)]
    assert runner.invoke(app, args, terminal_width=200).exit_code == 0
    assert [r["row"] for r in records(out)] == [int(datasets.load("german").X_test.index[3])]


def test_synthesize_json_rows_are_the_input_rows(tmp_path: Path) -> None:
    """A CSV processed from row 2 on, with a bad row: records name CSV rows 2, 3, 4; the failure is shown."""
    german = datasets.load("german")
    frame = german.X_test.iloc[:5].reset_index(drop=True)
    frame.loc[3, "duration"] = np.nan
    csv, out = tmp_path / "people.csv", tmp_path / "plans.jsonl"
    frame.to_csv(csv, index=False)
    args = ["synthesize", "--data", str(csv), "--schema", str(german.path / "schema.toml")]
    args += ["--actions", str(german.path / "actions.toml"), "--model", str(german.path / "models" / "mlp")]
    result = runner.invoke(app, [*args, *FAST, "--rows", "2:5", "--json", str(out)], terminal_width=200)
    assert result.exit_code == 1, result.output
    got = records(out)
    assert [r["row"] for r in got] == [2, 3, 4]
    assert [r["status"] == "error" for r in got] == [False, True, False]
    assert "Row 3 not processed" in result.output and "'duration'" in result.output


def test_invert_json_rows_are_the_input_rows(tmp_path: Path) -> None:
    student = datasets.load("student")
    unfavourable = student.X_test[[str(v) != str(student.schema.target.favourable) for v in student.y_test]]  # type: ignore[union-attr]
    out = tmp_path / "inv.jsonl"
    args = ["invert", "--dataset", "student", "--budget", "1", "--rows", "2:4", "--json", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert [r["row"] for r in records(out)] == [int(i) for i in unfavourable.index[2:4]]


def test_demo_reasons_show_the_applicants_own_values() -> None:
    from actionable.cli.demo import denial_reasons

    german = datasets.load("german")
    denied = german.X_test.iloc[:2]
    sentences = denial_reasons(german.model, denied, german.X_train)
    assert "checking_account '< 0 DM' (-0.38)" in sentences(0)
    assert "credit_amount 9055 (" in sentences(1) and "np." not in sentences(1)


def test_explain_records_a_bad_row_and_explains_the_others(tmp_path: Path) -> None:
    german = datasets.load("german")
    frame = german.X_test.iloc[:4].reset_index(drop=True).astype({"purpose": object})
    frame.loc[1, "purpose"] = "yacht"
    csv, out = tmp_path / "people.csv", tmp_path / "why.jsonl"
    frame.to_csv(csv, index=False)
    args = ["explain", "--data", str(csv), "--schema", str(german.path / "schema.toml")]
    args += ["--model", str(german.path / "models" / "mlp"), "--rows", "0:3", "--json", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 1, result.output
    got = records(out)
    assert [r["row"] for r in got] == [0, 1, 2]
    assert "unknown level 'yacht'" in str(got[1]["error"]) and "values" in got[0] and "values" in got[2]
    assert "Row 1 not processed: row 1 (index 1), column 'purpose'" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "args",
    [
        ["synthesize", "--dataset", "german", "--rows", "0:2", *FAST],
        ["explain", "--dataset", "german", "--rows", "0:2"],
        ["invert", "--dataset", "student", "--budget", "1", "--rows", "0:2"],
    ],
)
@pytest.mark.parametrize("option", ["--json", "--figure"])
def test_an_output_in_a_missing_folder_exits_2_before_any_work(
    tmp_path: Path, args: list[str], option: str
) -> None:
    target = tmp_path / "no-such-folder" / "out.file"
    result = runner.invoke(app, [*args, option, str(target)], terminal_width=200)
    assert result.exit_code == 2, result.output
    squeezed = "".join(result.output.split())  # rich wraps long paths
    assert f"{option}{target}:folder" in squeezed and "doesnotexist" in squeezed
    assert "Summary" not in result.output and "Inverse classification" not in result.output


def test_a_summary_without_plans_shows_no_nan() -> None:
    german = datasets.load("german")
    favourable = int(np.flatnonzero(german.model.predict(german.X_test) == "good")[0])
    result = runner.invoke(app, ["synthesize", "--dataset", "german", "--rows", str(favourable), *FAST])
    assert result.exit_code == 0, result.output
    assert "Summary" in result.output and "nan" not in result.output


def test_explain_advise_reports_a_bad_row_too(tmp_path: Path) -> None:
    german = datasets.load("german")
    frame = german.X_test.iloc[:3].reset_index(drop=True).astype({"purpose": object})
    frame.loc[2, "purpose"] = "yacht"
    csv = tmp_path / "people.csv"
    frame.to_csv(csv, index=False)
    args = ["explain", "--data", str(csv), "--schema", str(german.path / "schema.toml")]
    args += ["--model", str(german.path / "models" / "mlp"), "--rows", "0:3", "--advise"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "Advice for row 0" in result.output and "Row 2 not processed" in result.output
