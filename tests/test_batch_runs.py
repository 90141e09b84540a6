"""Resumable batch runs (issue 14, part one): parts, manifest, resume after kill -9, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actionable import ConfigError
from actionable.batch_runs import read_parts, run_parts


def _csv(tmp_path: Path, n: int = 250) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "rows.csv"
    pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 9, n)}).to_csv(path, index=False)
    return path


def _answer(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [{"row": int(i), "status": "found", "value": float(r.a * r.b)} for i, r in frame.iterrows()]


def test_rows_out_equal_rows_in_in_order_and_parts_are_checksummed(tmp_path: Path) -> None:
    source = _csv(tmp_path)
    summary = run_parts(source, tmp_path / "run", _answer, settings={"k": 1}, chunk=40)
    assert (summary.rows, summary.written, summary.kept) == (250, 7, 0)
    records = read_parts(tmp_path / "run")
    assert [r["row"] for r in records] == list(range(250))
    frame = pd.read_csv(source)
    assert [r["value"] for r in records] == pytest.approx((frame.a * frame.b).tolist())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["parts"]["000006.jsonl"] == {
        **manifest["parts"]["000006.jsonl"],
        "start": 240,
        "stop": 250,
        "records": 10,
    }


def test_resume_keeps_good_parts_and_redoes_a_corrupt_or_missing_one(tmp_path: Path) -> None:
    source, out = _csv(tmp_path), tmp_path / "run"
    run_parts(source, out, _answer, settings={}, chunk=50)
    before = read_parts(out)
    (out / "parts" / "000001.jsonl").write_text('{"row": 50}\n')  # truncated
    (out / "parts" / "000003.jsonl").unlink()
    summary = run_parts(source, out, _answer, settings={}, chunk=50, resume=True)
    assert (summary.written, summary.kept) == (2, 3)
    assert read_parts(out) == before


def test_a_failing_chunk_becomes_error_records_and_loses_no_row(tmp_path: Path) -> None:
    def flaky(frame: pd.DataFrame) -> list[dict[str, object]]:
        if frame.index[0] == 100:
            raise ValueError("boom")
        return _answer(frame)

    summary = run_parts(_csv(tmp_path), tmp_path / "run", flaky, settings={}, chunk=50)
    records = read_parts(tmp_path / "run")
    assert summary.failed == 50 and len(records) == 250
    assert all(r["status"] == "error" and "boom" in r["error"] for r in records[100:150])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resume": False}, "holds a run already"),
        ({"settings": {"k": 2}}, "other settings"),
        ({"chunk": 7}, "another chunk size"),
    ],
)
def test_resuming_with_something_else_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    source, out = _csv(tmp_path), tmp_path / "run"
    run_parts(source, out, _answer, settings={"k": 1}, chunk=50)
    options = {"settings": {"k": 1}, "chunk": 50, "resume": True} | change
    with pytest.raises(ConfigError, match=message):
        run_parts(source, out, _answer, **options)


def test_another_input_and_a_foreign_folder_are_refused(tmp_path: Path) -> None:
    source, out = _csv(tmp_path), tmp_path / "run"
    run_parts(source, out, _answer, settings={}, chunk=50)
    other = tmp_path / "other.csv"
    pd.read_csv(source).head(10).to_csv(other, index=False)
    with pytest.raises(ConfigError, match="another input"):
        run_parts(other, out, _answer, settings={}, chunk=50, resume=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        run_parts(source, foreign, _answer, settings={}, chunk=50)


SLOW = """
import sys, time
import pandas as pd
sys.path.insert(0, {tests!r})
from test_batch_runs import _answer
from actionable.batch_runs import run_parts

def slow(frame):
    time.sleep(0.05)
    return _answer(frame)

run_parts({source!r}, {out!r}, slow, settings={{}}, chunk=10, resume=True)
"""


def test_a_run_killed_at_a_random_point_resumes_to_the_same_records(tmp_path: Path) -> None:
    source = _csv(tmp_path, 400)
    run_parts(source, tmp_path / "whole", _answer, settings={}, chunk=10)
    out = tmp_path / "killed"
    script = SLOW.format(tests=str(Path(__file__).parent), source=str(source), out=str(out))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "parts" / "000003.jsonl").exists():
        time.sleep(0.01)
    time.sleep(float(np.random.default_rng().uniform(0, 0.3)))
    process.send_signal(signal.SIGKILL)
    process.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and 4 <= len(manifest["parts"]) < 40
    summary = run_parts(source, out, _answer, settings={}, chunk=10, resume=True)
    assert summary.kept >= 4 and summary.kept + summary.written == 40
    assert read_parts(out) == read_parts(tmp_path / "whole")


def test_synthesis_through_parts_equals_one_call(tmp_path: Path) -> None:
    from actionable import datasets
    from actionable.actions import ActionSet
    from actionable.batch_runs import synthesis_answer
    from actionable.synthesis import synthesize

    german = datasets.load("german")
    actions = ActionSet.from_toml(german.path / "actions.toml", german.schema)
    rows = german.X_test.head(12).reset_index(drop=True)
    rows.loc[3, "duration"] = -5  # a bad row: an error record, the others still answered
    source = tmp_path / "people.csv"
    rows.to_csv(source, index=False)
    answer = synthesis_answer(german.models["mlp"], actions, max_length=2)
    run_parts(source, tmp_path / "run", answer, settings={"max_length": 2}, chunk=5, schema=german.schema)
    direct = [r.to_dict() for r in synthesize(german.models["mlp"], rows, actions, max_length=2)]
    ours = read_parts(tmp_path / "run")

    def same(record: dict) -> dict:  # timing aside; probabilities to the last bits a batch's size moves
        skip = ("seconds", "provenance", "p_before", "p_after")
        return {k: v for k, v in record.items() if k not in skip}

    direct = [json.loads(json.dumps(r)) for r in direct]
    assert [same(r) for r in ours] == [same(r) for r in direct]
    for key in ("p_before", "p_after"):
        assert [r[key] for r in ours] == pytest.approx([r[key] for r in direct], abs=1e-12)
    assert ours[3]["status"] == "error" and "duration" in ours[3]["error"]


def test_cells_are_read_as_the_schema_says_in_every_chunk(tmp_path: Path) -> None:
    from actionable import Feature, Schema

    schema = Schema((Feature("code", "category", levels=("NA", "01", "x")), Feature("n", "integer", (0, 9))))
    source = tmp_path / "codes.csv"
    source.write_text("code,n\nNA,1\n01,2\nx,3\nNA,\n")

    def echo(frame: pd.DataFrame) -> list[dict[str, object]]:
        return [{"row": int(i), "code": r.code, "n": r.n} for i, r in frame.iterrows()]

    run_parts(source, tmp_path / "run", echo, settings={}, chunk=3, schema=schema)
    records = read_parts(tmp_path / "run")
    assert [r["code"] for r in records] == ["NA", "01", "x", "NA"]
    assert [r["n"] for r in records] == [1, 2, 3, None] and [r["row"] for r in records] == [0, 1, 2, 3]


def test_the_cli_runs_a_bundled_dataset_in_parts_and_resumes(tmp_path: Path) -> None:
    import gzip

    from typer.testing import CliRunner

    from actionable import datasets, save_model
    from actionable.cli import app

    german = datasets.load("german")
    with gzip.open(german.path / "data.csv.gz", "rt") as handle:
        head = "".join(next(handle) for _ in range(9))  # the header and 8 people
    data = tmp_path / "people.csv"
    data.write_text(head + head.splitlines()[1].replace(",", ",,", 1) + "\n")  # and a row one cell too long
    save_model(german.model, tmp_path / "model")
    schema = tmp_path / "schema.toml"
    german.schema.save(schema)
    args = [
        "batch",
        "synthesize",
        "--data",
        str(data),
        "--schema",
        str(schema),
        "--model",
        str(tmp_path / "model"),
    ]
    args += ["--actions", str(german.path / "actions.toml"), "--out", str(tmp_path / "run"), "--chunk", "4"]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 1 and "1 rows not processed" in " ".join(result.output.split()), result.output
    records = read_parts(tmp_path / "run")  # the long line is an error record; the 8 people are answered
    assert [r["row"] for r in records] == list(range(9)) and records[8]["status"] == "error"
    assert "has 23 cells where the header names 22" in records[8]["error"]
    assert all(r["status"] != "error" for r in records[:8])
    data.write_text(head)
    result = CliRunner().invoke(app, [*args, "--resume"], terminal_width=200)
    assert result.exit_code == 2 and "another input" in " ".join(result.output.split())  # the first run's
    result = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "run2"), "--chunk", "4"])
    assert result.exit_code == 0, result.output
    assert "8 rows: 2 parts written" in " ".join(result.output.split())
    result = CliRunner().invoke(
        app, [*args[:-2], "--out", str(tmp_path / "run2"), "--chunk", "4", "--resume"]
    )
    assert result.exit_code == 0 and "2 kept from before" in " ".join(result.output.split())
    assert [r["row"] for r in read_parts(tmp_path / "run2")] == list(range(8))


def test_a_bundled_dataset_names_its_own_files_and_refuses_a_mix() -> None:
    from actionable import datasets
    from actionable.cli.batch import _Common, _inputs

    def common(**kw: object) -> _Common:
        base = dict.fromkeys(("dataset", "data", "schema", "model", "workers", "scheduler"))
        flags = {"out": Path("run"), "chunk": 10, "resume": False, "only_denied": False, "parquet": False}
        return _Common(**{**base, **flags, "quiet": True, **kw})  # type: ignore[arg-type]

    found = _inputs(common(dataset="german"), None, True)
    german = datasets.load("german")
    assert found["source"] == german.path / "data.csv.gz" and found["schema"] == german.schema
    assert found["model"] == german.path / "models" / german.info["default_model"]
    assert found["actions"] == german.path / "actions.toml" and found["reference"].equals(german.X_train)
    with pytest.raises(ConfigError, match="not both"):
        _inputs(common(dataset="german", data=Path("x.csv")), None, True)
    with pytest.raises(ConfigError, match="--actions"):
        _inputs(common(data=Path("x.csv"), schema=Path("s.toml"), model=Path("m")), None, True)


# ----------------------------------------------------------------------- found by a hostile review
def test_a_header_only_csv_is_a_finished_run_of_no_rows(tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("a,b\n")
    assert run_parts(source, tmp_path / "run", _answer, settings={}).rows == 0
    assert read_parts(tmp_path / "run") == []


def test_a_tampered_manifest_is_refused_never_read(tmp_path: Path) -> None:
    from actionable import DataError

    source, out = _csv(tmp_path, 70), tmp_path / "run"
    run_parts(source, out, _answer, settings={}, chunk=20)
    path = out / "manifest.json"
    good = json.loads(path.read_text())
    dropped = json.loads(path.read_text())
    del dropped["parts"]["000001.jsonl"]
    path.write_text(json.dumps(dropped))
    with pytest.raises(DataError, match="does not continue"):
        read_parts(out)
    outside = json.loads(json.dumps(good))
    outside["parts"]["../../x.jsonl"] = outside["parts"]["000000.jsonl"]
    path.write_text(json.dumps(outside))
    with pytest.raises(ConfigError, match="shape"):
        read_parts(out)
    path.write_text(json.dumps({**good, "parts": []}))
    with pytest.raises(ConfigError, match="shape"):
        run_parts(source, out, _answer, settings={}, chunk=20, resume=True)


@pytest.mark.parametrize(
    "broken",
    [
        lambda frame: list(reversed(_answer(frame))),
        lambda frame: [{"row": 0, "status": "found"} for _ in frame.index],
        lambda frame: [{"status": "found"} for _ in frame.index],
        lambda frame: [1] * len(frame),
        lambda frame: {}["missing"],
    ],
)
def test_an_engine_that_misreports_its_rows_gives_error_records(tmp_path: Path, broken: object) -> None:
    run_parts(_csv(tmp_path, 30), tmp_path / "run", broken, settings={}, chunk=10)  # type: ignore[arg-type]
    records = read_parts(tmp_path / "run")
    assert [r["row"] for r in records] == list(range(30)) and {r["status"] for r in records} == {"error"}


def test_settings_a_file_as_out_and_another_schema_are_refused_before_any_work(tmp_path: Path) -> None:
    from actionable import Feature, Schema

    source = _csv(tmp_path)
    with pytest.raises(ConfigError, match="plain JSON"):
        run_parts(source, tmp_path / "a", _answer, settings={"x": float("nan")})
    with pytest.raises(ConfigError, match="plain JSON"):
        run_parts(source, tmp_path / "a", _answer, settings={"x": object()})
    assert not (tmp_path / "a").exists()
    with pytest.raises(ConfigError, match="is a file"):
        run_parts(source, source, _answer, settings={})
    schema = Schema((Feature("a", "real", (-9, 9)), Feature("b", "integer", (0, 9))))
    run_parts(source, tmp_path / "run", _answer, settings={}, chunk=50, schema=schema)
    with pytest.raises(ConfigError, match="another schema"):
        run_parts(source, tmp_path / "run", _answer, settings={}, chunk=50, resume=True)
