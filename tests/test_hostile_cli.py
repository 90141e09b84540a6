"""Hostile and careless input to the command line (issue 10, the CLI's part).

The CSV reader keeps every value the schema declares (``NA``, ``None``, ``null``, ``01`` are levels), a
repeated column is refused; output files are written whole or not at all (a kill -9, a full disk, a second
run on the same path); a MemoryError or RecursionError is exit 2, not a traceback; ``--budget`` cannot ask
for a billion budgets; synthesis chunks only the rows that need a search; explain with only bad rows
records them; a 5 MB cell is not echoed in full.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from actionable import datasets, files
from actionable.batch import synthesize_in_chunks
from actionable.cli import app
from actionable.errors import ConfigError
from tests.hostile import limited, run_cli

runner = CliRunner()
CODES = ["NA", "None", "null", "01", "1"]  # levels pandas' defaults turn into NaN, NaN, NaN, 1, 1
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
cost_up = 0.01
cost_down = 0.01

[[feature]]
name = "code"
kind = "category"
levels = ["NA", "None", "null", "01", "1"]

[[feature]]
name = "region"
kind = "category"
levels = ["north", "south"]
"""
ACTIONS = """
[[action]]
name = "earn_more"
text = "Earn {amount:.0f} more"
params = { amount = { bounds = [0, 300] } }
effects = { income = "income + amount" }
cost = "amount / 100"
"""
FAST = ["--max-length", "1", "--steps", "10"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Schema, actions and a logistic-regression model folder (fitted in a second, never trained by the CLI)."""
    from sklearn.linear_model import LogisticRegression

    from actionable import Schema, as_model, save_model

    folder = tmp_path_factory.mktemp("spec")
    (folder / "schema.toml").write_text(SCHEMA)
    (folder / "actions.toml").write_text(ACTIONS)
    schema = Schema.from_toml(folder / "schema.toml")
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "income": rng.uniform(0, 500, n),
            "code": rng.choice(CODES, n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    approved = np.where(frame.income + (frame.region == "south") * 100 > 300, "yes", "no")
    canonical = pd.DataFrame(schema.encode(frame).numpy(), columns=list(schema.columns))
    save_model(as_model(LogisticRegression(max_iter=500).fit(canonical, approved), schema), folder / "model")
    return {"schema": folder / "schema.toml", "actions": folder / "actions.toml", "model": folder / "model"}


def people(n: int = 10, *, income: Callable[[int], float] = lambda i: 40.0 + 45 * i) -> list[list[str]]:
    """Rows as text: income, a code level (every awkward one), region, the label."""
    return [
        [f"{income(i):g}", CODES[i % len(CODES)], ["north", "south"][i % 2], ["no", "yes"][i % 2]]
        for i in range(n)
    ]


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], *, eol: str = "\n", bom: bool = False
) -> Path:
    text = eol.join(",".join(line) for line in [header, *rows]) + eol
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


HEADER = ["income", "code", "region", "approved"]


def user_args(command: str, spec: dict[str, Path], data: Path) -> list[str]:
    args = [command, "--data", str(data), "--schema", str(spec["schema"])]
    if command == "train":
        return [
            *args,
            "--target",
            "approved",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--out",
            str(data.parent / "m"),
        ]
    if command == "synthesize":
        return [*args, "--actions", str(spec["actions"]), "--model", str(spec["model"]), *FAST]
    if command == "invert":
        return [*args, "--model", str(spec["model"]), "--budget", "1", "--all-rows", "--steps", "5"]
    return [*args, "--model", str(spec["model"]), "--rows", "0:100", "--method", "coefficients"]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def invoke(args: list[str]) -> Any:
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def refused(result: Any, *fragments: str) -> None:
    """Exit 2, no traceback, and the message names the fix."""
    flat = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in flat, flat


# ------------------------------------------------------------------------------ 1. reading a CSV
def _levels(path: Path) -> Path:
    return write_csv(path, HEADER, people())


def _bom(path: Path) -> Path:
    return write_csv(path, HEADER, people(), bom=True)


def _crlf(path: Path) -> Path:
    return write_csv(path, HEADER, people(), eol="\r\n")


def _extra_columns(path: Path) -> Path:
    rows = [[*line, "" if i % 3 else "n/a", str(i)] for i, line in enumerate(people())]
    return write_csv(path, [*HEADER, "note", "id"], rows)


def _quoted(path: Path) -> Path:
    rows = [[f'"{v}"' for v in line] + ['"a, b ""c"""'] for line in people()]
    return write_csv(path, [f'"{h}"' for h in HEADER] + ['"note"'], rows)


CARELESS = [_levels, _bom, _crlf, _extra_columns, _quoted]


@pytest.mark.parametrize("make", CARELESS, ids=[m.__name__.strip("_") for m in CARELESS])
def test_careless_but_valid_csvs_are_read_as_written(
    tmp_path: Path, spec: dict[str, Path], make: Any
) -> None:
    """Every row is explained (no error record), and each code level arrives as written (01 stays 01)."""
    out = tmp_path / "why.jsonl"
    result = invoke([*user_args("explain", spec, make(tmp_path / "people.csv")), "--json", out])
    assert result.exit_code == 0, result.output
    got = records(out)
    assert len(got) == 10 and not any("error" in r for r in got), got


@pytest.mark.parametrize("command", ["train", "synthesize", "invert"])
def test_every_command_reads_declared_levels_na_none_null_01(
    tmp_path: Path, spec: dict[str, Path], command: str
) -> None:
    data = _levels(tmp_path / "people.csv")
    args = user_args(command, spec, data)
    result = invoke(args if command == "train" else [*args, "--json", tmp_path / "o.jsonl"])
    assert result.exit_code == 0, result.output
    if command == "synthesize":
        got = records(tmp_path / "o.jsonl")
        assert [r["x_before"]["code"] for r in got] == [CODES[i % 5] for i in range(10)]
        assert all(r["status"] != "error" for r in got)


def test_a_repeated_column_is_refused_not_renamed(tmp_path: Path, spec: dict[str, Path]) -> None:
    rows = [[*line, "7"] for line in people()]
    data = write_csv(tmp_path / "people.csv", [*HEADER, "income"], rows)
    for command in ("explain", "synthesize", "train", "invert"):
        refused(invoke(user_args(command, spec, data)), "'income' appears more than once", "unique name")


def test_text_in_a_numeric_column_is_reported_by_row(tmp_path: Path, spec: dict[str, Path]) -> None:
    """Not a reader crash, not a silent NaN: the row is recorded as an error naming the value; NA in a
    numeric column is text like any other (only an empty cell is missing)."""
    rows = people()
    rows[2][0], rows[4][0], rows[6][0] = "abc", "NA", ""
    data = write_csv(tmp_path / "people.csv", HEADER, rows)
    out = tmp_path / "plans.jsonl"
    result = invoke([*user_args("synthesize", spec, data), "--json", out])
    assert result.exit_code == 1, result.output
    got = records(out)
    assert [r["status"] == "error" for r in got] == [i in (2, 4, 6) for i in range(10)]
    assert "'abc' (str) is not a number" in got[2]["error"]
    assert "'NA' (str) is not a number" in got[4]["error"]
    assert "missing" in got[6]["error"]


# ------------------------------------------------------------------------------ 2. writing files
@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40,000 people the model already approves: a large --json, written quickly."""
    folder = tmp_path_factory.mktemp("crowd")
    return write_csv(folder / "crowd.csv", HEADER, people(40_000, income=lambda i: 450.0 + i % 40))


def cli_process(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from actionable.cli import main; main()", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], guard_s: float = 120) -> bool:
    """Poll ``condition`` until it holds or the process ends (a hang guard, not a timing)."""
    end = time.monotonic() + guard_s
    while time.monotonic() < end:
        if condition():
            return True
        if process.poll() is not None:
            return condition()
        time.sleep(0.001)
    return False


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "sigint"])
def test_a_kill_during_json_never_leaves_a_file_that_looks_complete(
    tmp_path: Path, spec: dict[str, Path], crowd: Path, signum: int
) -> None:
    """Kill the run the moment the write begins: the final path still holds the previous complete file (or,
    if the run won the race, the whole new one); SIGINT exits 130 and removes its temporary file; a later
    run is not blocked by the dead run's lock."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "plans.jsonl"
    previous = '{"previous": "complete"}\n'
    out.write_text(previous)
    process = cli_process([*user_args("synthesize", spec, crowd), "--json", str(out)])

    def writing() -> bool:
        others = [p for p in out_dir.iterdir() if p.name not in ("plans.jsonl", "plans.jsonl.lock")]
        return bool(others) or out.read_text() != previous

    try:
        assert wait_for(writing, process), process.stderr.read() if process.stderr else ""
        process.send_signal(signum)
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    text = out.read_text()
    if signum == signal.SIGINT:
        assert code in (0, 130), process.stderr.read() if process.stderr else ""
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")
        assert sorted(p.name for p in out_dir.iterdir()) == ["plans.jsonl"]  # temp and lock removed
    if text != previous:  # the run finished before the kill landed: then the file is whole
        assert len(text.splitlines()) == 40_000 and all(json.loads(line) for line in text.splitlines())
    small = write_csv(tmp_path / "few.csv", HEADER, people(3))
    result = invoke([*user_args("synthesize", spec, small), "--json", out])
    assert result.exit_code == 0, result.output  # the dead run's lock does not block
    assert len(records(out)) == 3
    leftovers = [p.name for p in out_dir.iterdir() if p.name != "plans.jsonl"]
    assert all(name.startswith(".plans.jsonl.") for name in leftovers), leftovers  # a hidden temp at most


def test_a_second_run_on_the_same_path_is_refused(tmp_path: Path, spec: dict[str, Path], crowd: Path) -> None:
    out = tmp_path / "plans.jsonl"
    first = cli_process([*user_args("synthesize", spec, crowd), "--json", str(out)])
    lock = files.lock_path(out)
    try:
        assert wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid), first)
        small = write_csv(tmp_path / "few.csv", HEADER, people(3))
        refused(invoke([*user_args("synthesize", spec, small), "--json", out]), "another run", str(first.pid))
        assert first.wait(120) == 0, first.stderr.read() if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
    assert len(out.read_text().splitlines()) == 40_000  # the first run's file, whole, not interleaved
    assert not lock.exists()


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def _fsync_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", fsync)


def _write_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pathlib.Path.open

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real(self, *args, **kwargs)
        return _FullDisk(handle) if ".tmp" in self.name else handle

    monkeypatch.setattr(pathlib.Path, "open", open_)


@pytest.mark.parametrize("full", [_fsync_fails, _write_fails], ids=["fsync", "write"])
@pytest.mark.parametrize("existing", [False, True], ids=["new-path", "existing-path"])
def test_a_full_disk_is_exit_2_and_leaves_no_file(
    tmp_path: Path, spec: dict[str, Path], monkeypatch: pytest.MonkeyPatch, full: Any, existing: bool
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "plans.jsonl"
    if existing:
        out.write_text("old\n")
    data = write_csv(tmp_path / "people.csv", HEADER, people(3))
    full(monkeypatch)
    refused(invoke([*user_args("synthesize", spec, data), "--json", out]), "no space left on device")
    assert [p.name for p in out_dir.iterdir()] == (["plans.jsonl"] if existing else [])  # no temp, no lock
    if existing:
        assert out.read_text() == "old\n"


def test_to_jsonl_on_a_full_disk_raises_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actionable.results import Recourse, RecourseBatch

    batch = RecourseBatch((Recourse(row=0, status="not_found"),))
    _fsync_fails(monkeypatch)
    with pytest.raises(ConfigError, match="no space left on device"):
        batch.to_jsonl(tmp_path / "r.jsonl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where", ["existing", "nested"], ids=["json-over-an-existing-file", "json-in-a-nested-folder"]
)
def test_json_to_an_existing_path_or_a_nested_folder_works(
    tmp_path: Path, spec: dict[str, Path], where: str
) -> None:
    folder = tmp_path / "a" / "b" if where == "nested" else tmp_path / "out"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "plans.jsonl"
    if where == "existing":
        out.write_text("x" * 10_000)
        os.chmod(out, 0o640)
    data = write_csv(tmp_path / "people.csv", HEADER, people(4))
    result = invoke([*user_args("synthesize", spec, data), "--json", out])
    assert result.exit_code == 0, result.output
    assert len(records(out)) == 4
    assert sorted(p.name for p in folder.iterdir()) == ["plans.jsonl"]
    if where == "existing":
        assert out.stat().st_mode & 0o777 == 0o640  # the replaced file keeps its permissions


def test_train_writes_its_model_folder_whole(tmp_path: Path, spec: dict[str, Path]) -> None:
    from actionable import load_model

    data = _levels(tmp_path / "people.csv")
    out = tmp_path / "models" / "m"
    result = invoke([*user_args("train", spec, data)[:-1], out])
    assert result.exit_code == 0, result.output
    assert load_model(out).classes == ("no", "yes")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m"]  # no temp folder, no lock


# ------------------------------------------------------------------------------ 3. the error boundary
def _raises(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (MemoryError(), "--rows A:B"),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8e12 bytes"),
            "out of memory",
        ),
        (RecursionError("maximum recursion depth exceeded"), "simplify it"),
    ],
    ids=["memory-error", "torch-allocator", "recursion-error"],
)
def test_memory_and_recursion_errors_are_exit_2(
    monkeypatch: pytest.MonkeyPatch, error: Any, fix: str
) -> None:
    import actionable.synthesis

    monkeypatch.setattr(actionable.synthesis, "synthesize", _raises(error))
    refused(invoke(["synthesize", "--dataset", "german", "--rows", "0:3", *FAST]), fix)


# ------------------------------------------------------------------------------ 4. budgets, chunks
@pytest.mark.parametrize(
    ("budget", "fix"),
    [
        ("0:1e9", "at most 1000 per run"),
        ("0:1e300:1e-300", "at most 1000 per run"),
        ("0:10:0", "the step must be > 0"),
        ("0:10:-1", "the step must be > 0"),
        ("-5:1", "negative or not finite"),
        ("nan", "negative or not finite"),
        ("inf", "negative or not finite"),
        ("0:inf", "every number must be finite"),
        ("nan:3", "every number must be finite"),
        ("1,2,-3", "negative or not finite"),
        (",".join(["1"] * 1001), "at most 1000 per run"),
    ],
    ids=[
        "billion",
        "tiny-step",
        "step-0",
        "step-negative",
        "negative",
        "nan",
        "inf",
        "to-inf",
        "from-nan",
        "list-negative",
        "list-1001",
    ],
)
def test_budgets_that_would_exhaust_the_machine_are_refused(budget: str, fix: str) -> None:
    with limited():  # the old code built a billion-element list here
        result = invoke(["invert", "--dataset", "student", "--budget", budget])
    refused(result, fix)


def test_a_billion_budgets_in_a_limited_process_exit_2() -> None:
    result = run_cli(["invert", "--dataset", "student", "--budget", "0:1e9"])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "at most 1000" in " ".join(result.stderr.split())


def _old_path(model: Any, frame: pd.DataFrame, actions: Any, chunk: int, **options: Any) -> list[Any]:
    """The CLI's previous loop: chunks of input rows, each its own synthesize call."""
    from actionable.synthesis import synthesize

    items = []
    for start in range(0, len(frame), chunk):
        part = synthesize(model, frame.iloc[start : start + chunk], actions, **options)
        items += list(part)  # each record carries its row's label in the frame
    return items


def _german_mixed() -> tuple[Any, pd.DataFrame, Any]:
    from actionable.actions import ActionSet

    german = datasets.load("german")
    frame = german.X_test.iloc[:24].copy()
    frame["duration"] = frame["duration"].astype(object)
    frame.iloc[[3, 11], frame.columns.get_loc("duration")] = ["long", -5]  # two rows that fail the schema
    return german.model, frame, ActionSet.from_toml(german.path / "actions.toml", german.schema)


def test_chunking_only_rows_that_need_work_gives_the_same_records() -> None:
    model, frame, actions = _german_mixed()
    options = {"max_length": 1, "steps": 10}
    new = synthesize_in_chunks(model, frame, actions, chunk=5, **options)
    old = _old_path(model, frame, actions, 5, **options)
    statuses = {r.status for r in old}
    assert {"error", "already_favourable"} <= statuses and statuses & {"found", "not_found"}
    assert len(new) == len(old) == len(frame) and [r.row for r in new] == list(frame.index)
    for a, b in zip(new, old, strict=True):
        assert same(a.to_dict(), b.to_dict(), skip=("seconds", "error")), (a, b)
    # an error names the row's position in the whole frame (as one synthesize call does), not in a chunk
    whole = _old_path(model, frame, actions, len(frame), **options)
    assert [r.error for r in new] == [r.error for r in whole]
    assert "row 11 (index" in new[11].error


def same(a: Any, b: Any, skip: tuple[str, ...] = ()) -> bool:
    """Equal records, floats to 1e-12 (a batch of another size may round the last bit differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a if k not in skip)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (np.isnan(a) and np.isnan(b)) or bool(np.isclose(a, b, rtol=1e-12, atol=1e-12))
    return bool(a == b)


def test_rows_the_model_favours_are_not_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Denied rows scattered among favoured ones: one search call per chunk of denied rows, not per chunk
    of input rows (the cause of 443 s against 20 s)."""
    import actionable.synthesis

    model, frame, actions = _german_mixed()
    frame = pd.concat([frame] * 10)  # 240 rows, denied ones spread through all of them
    real = actionable.synthesis.synthesize
    searched: list[int] = []

    def counting(model: Any, X: pd.DataFrame, actions: Any, **options: Any) -> Any:
        batch = real(model, X, actions, **options)
        searched.append(sum(r.status in ("found", "not_found") for r in batch))
        return batch

    monkeypatch.setattr(actionable.synthesis, "synthesize", counting)
    batch = synthesize_in_chunks(model, frame, actions, chunk=100, max_length=1, steps=10)
    needing = sum(r.status in ("found", "not_found") for r in batch)
    assert len(batch) == 240 and 0 < needing <= 100
    assert [n for n in searched if n] == [
        needing
    ]  # one search call; the easy rows in one call without search


# ------------------------------------------------------------------------------ 5. explain, long cells
def test_explain_with_only_bad_rows_records_each_and_exits_1(tmp_path: Path, spec: dict[str, Path]) -> None:
    rows = [[line[0], line[1], "west", line[3]] for line in people(3)]
    data = write_csv(tmp_path / "people.csv", HEADER, rows)
    out = tmp_path / "why.jsonl"
    result = invoke([*user_args("explain", spec, data), "--json", out])
    assert result.exit_code == 1, result.output
    got = records(out)
    assert [r["row"] for r in got] == [0, 1, 2] and all("unknown level 'west'" in r["error"] for r in got)
    assert "Row 2 not processed" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["synthesize", "explain"])
def test_a_5_mb_cell_is_not_echoed_in_full(tmp_path: Path, spec: dict[str, Path], command: str) -> None:
    rows = people(3)
    rows[1][2] = "x" * 5_000_000
    data = write_csv(tmp_path / "people.csv", HEADER, rows)
    out = tmp_path / "o.jsonl"
    result = invoke([*user_args(command, spec, data), "--json", out])
    assert result.exit_code == 1, result.output[:2000]
    # cut where the schema quotes the value (errors.shown) or where the CLI prints it, but cut
    assert len(result.output) < 20_000 and "characters" in result.output
    assert len(records(out)) == 3


def test_atomic_folder_into_an_existing_folder_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.json").write_text("old")
    (out / "notes.txt").write_text("mine")
    with files.atomic_folder(out) as temp:
        (temp / "model.json").write_text("new")
    assert (out / "model.json").read_text() == "new" and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failed_figure_leaves_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    png = tmp_path / "f.png"
    png.write_bytes(b"previous")
    _fsync_fails(monkeypatch)
    with pytest.raises(ConfigError, match="no space left on device"), files.atomic_path(png) as temp:
        temp.write_bytes(b"new")
    assert png.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
