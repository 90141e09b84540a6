"""Progress on the long commands: one bar helper on stderr (nothing when not a terminal or with --quiet),
callbacks from training, inversion and chunked explanation, and chunked explain equal to one call."""

from __future__ import annotations

import io
import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from actionable import datasets
from actionable.attribution import attribute, standard_deviations, training_mean
from actionable.cli import app
from actionable.cli import explain as explain_module
from actionable.cli import progress as progress_module
from actionable.cli.progress import bar
from tests.test_cli import user_files

runner = CliRunner()
BAR_TEXT = ("rows/s", "epochs/s", "synthesising", "explaining", "inverting")


def fake_terminal() -> Console:
    return Console(force_terminal=True, file=io.StringIO(), width=120)


def text_of(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------- the bar
def test_bar_on_a_terminal_shows_rows_done_over_total() -> None:
    console = fake_terminal()
    with bar("working", 10, False, console=console) as progress:
        for done in range(1, 11):
            progress(done, 10)
    shown = text_of(console)
    assert "working" in shown and "10/10" in shown and "rows/s" in shown


def test_bar_shows_its_unit() -> None:
    console = fake_terminal()
    with bar("training", 4, False, console=console, unit="epochs") as progress:
        progress(4, 4)
    assert "4/4" in text_of(console) and "epochs/s" in text_of(console)


@pytest.mark.parametrize(
    ("console", "quiet"),
    [
        (Console(force_terminal=True, file=io.StringIO()), True),  # --quiet on a terminal
        (Console(force_terminal=False, file=io.StringIO()), False),  # not a terminal
    ],
)
def test_bar_shows_nothing_when_quiet_or_not_a_terminal(console: Console, quiet: bool) -> None:
    with bar("working", 10, quiet, console=console) as progress:
        for done in range(1, 11):
            progress(done, 10)
    assert text_of(console) == ""


def test_the_default_console_is_stderr() -> None:
    assert progress_module.errors.stderr is True


# ------------------------------------------------------------------------------ callbacks of the library
def increasing_to_the_total(calls: list[tuple[int, int]], total: int) -> bool:
    dones = [done for done, _ in calls]
    return bool(calls) and dones == sorted(set(dones)) and calls[-1] == (total, total)


def test_training_reports_every_epoch() -> None:
    from actionable.models.training import Recipe, fit_classifier, fit_regressor

    rng = np.random.default_rng(0)
    german = datasets.load("german")
    X = german.X_train.iloc[:80]
    y = german.y_train.iloc[:80]
    calls: list[tuple[int, int]] = []
    quiet = fit_classifier(german.schema, X, y, Recipe(hidden=(4,), epochs=5))
    heard = fit_classifier(
        german.schema, X, y, Recipe(hidden=(4,), epochs=5), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    enc = german.schema.encode(X)
    assert np.array_equal(quiet(enc).detach().numpy(), heard(enc).detach().numpy())  # same fit
    calls.clear()
    values = rng.normal(size=len(X))
    fit_regressor(
        german.schema, X, values, Recipe(hidden=(4,), epochs=3), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_invert_reports_chunks_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from actionable import inverse

    student = datasets.load("student")
    people = student.X_test.iloc[:20].copy()
    people.iloc[
        3, people.columns.get_loc("age")
    ] = -100  # does not fit the schema: an error, nothing to solve
    monkeypatch.setattr(inverse, "CHUNK", 6)
    calls: list[tuple[int, int]] = []
    sweep = inverse.invert_sweep(
        student.models["regular"],
        people,
        student.schema,
        budgets=[1, 2],
        steps=20,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert increasing_to_the_total(calls, 20) and len(calls) == 4  # 19 valid rows in chunks of 6
    assert calls[0] == (1 + 6, 20)  # the row that does not fit counts as answered
    assert [r.status for r in sweep[2.0]].count("error") == 1


# ------------------------------------------------------------------------------------ chunked explain
def selection_with_a_bad_row() -> tuple[object, pd.DataFrame]:
    german = datasets.load("german")
    chosen = german.X_test.iloc[:45].copy()
    chosen.iloc[5, chosen.columns.get_loc("duration")] = 100000  # out of bounds: an error record
    return german, chosen


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient", "deeplift"])
def test_chunked_explain_equals_one_call(method: str) -> None:
    german, chosen = selection_with_a_bad_row()
    model, schema, train = german.model, german.schema, german.X_train  # type: ignore[attr-defined]
    settings = {
        "baseline": training_mean(schema, train) if method != "gradient" else None,
        "scale": standard_deviations(schema, train) if method == "gradient" else None,
        "steps": 16,
    }
    one = attribute(model, chosen, method, **settings)  # type: ignore[arg-type]
    calls: list[tuple[int, int]] = []
    chunked = explain_module.in_chunks(
        lambda part: attribute(model, part, method, **settings),  # type: ignore[arg-type]
        types.SimpleNamespace(schema=schema),  # type: ignore[arg-type]
        chosen,
        lambda d, t: calls.append((d, t)),
        rows_per_call=7,
    )
    assert increasing_to_the_total(calls, 45) and len(calls) == 7  # 44 valid rows in chunks of 7
    for name in ("values", "delta", "prediction", "reference"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(one, name), rtol=0, atol=1e-12)
    assert np.isnan(chunked.values[5]).all() and not np.isnan(np.delete(chunked.values, 5, 0)).any()
    assert chunked.rows == one.rows and dict(chunked.errors) == dict(one.errors)
    assert "row 5" in next(iter(chunked.errors.values()))  # the position in the whole selection
    assert (chunked.features, chunked.target, chunked.baseline, chunked.unit) == (
        one.features,
        one.target,
        one.baseline,
        one.unit,
    )
    for mine, theirs in zip(chunked.top(3), one.top(3), strict=True):  # the same reasons, values to 1e-12
        assert [name for name, _ in mine] == [name for name, _ in theirs]
        np.testing.assert_allclose([v for _, v in mine], [v for _, v in theirs], rtol=0, atol=1e-12)


def test_explain_command_in_chunks_writes_what_one_call_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def records(path: Path) -> list[dict[str, object]]:
        args = ["explain", "--dataset", "german", "--rows", "0:30", "--steps", "16", "--json", str(path)]
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code == 0, result.output
        assert not any(word in result.output for word in BAR_TEXT)
        return [json.loads(line) for line in path.read_text().splitlines()]

    whole = records(tmp_path / "one.jsonl")
    monkeypatch.setattr(explain_module, "ROWS_PER_CALL", 4)
    terminal = fake_terminal()
    monkeypatch.setattr(progress_module, "errors", terminal)  # a terminal on stderr: the bar is drawn there
    chunked = records(tmp_path / "chunked.jsonl")
    assert "explaining" in text_of(terminal) and "30/30" in text_of(terminal)
    assert len(chunked) == len(whole) == 30
    for a, b in zip(whole, chunked, strict=True):
        assert a.keys() == b.keys() and a["row"] == b["row"] and a["baseline"] == b["baseline"]
        assert a["values"].keys() == b["values"].keys()  # type: ignore[attr-defined]
        for name in a["values"]:  # type: ignore[attr-defined]
            assert abs(a["values"][name] - b["values"][name]) < 1e-12  # type: ignore[index]
        for key in ("prediction", "reference", "delta"):
            assert abs(a[key] - b[key]) < 1e-12  # type: ignore[operator]
        assert [x[0] for x in a["top"]] == [y[0] for y in b["top"]]  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------- CLI, --quiet
@pytest.mark.parametrize("command", ["train", "synthesize", "explain", "invert", "demo"])
def test_every_long_command_offers_quiet(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "--quiet" in result.output


def test_quiet_runs_and_no_bar_text_reaches_the_output(tmp_path: Path) -> None:
    data, schema = user_files(tmp_path, 80)
    out = tmp_path / "model"
    train = ["train", "--data", str(data), "--schema", str(schema), "--target", "approved", "--out", str(out)]
    runs = [
        [*train, "--epochs", "3", "--hidden", "4"],
        [*train, "--epochs", "3", "--hidden", "4", "--quiet"],
        [
            "synthesize",
            "--dataset",
            "german",
            "--rows",
            "0:3",
            "--max-length",
            "1",
            "--steps",
            "20",
            "--quiet",
        ],
        ["explain", "--dataset", "german", "--rows", "0:3", "--steps", "8", "--quiet"],
        ["invert", "--dataset", "student", "--rows", "0:3", "--budget", "1", "--steps", "20", "--quiet"],
        ["invert", "--dataset", "student", "--rows", "0:3", "--budget", "1", "--steps", "20"],
    ]
    for args in runs:
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code == 0, (args, result.output)
        assert not any(word in result.output for word in BAR_TEXT), (args, result.output)
