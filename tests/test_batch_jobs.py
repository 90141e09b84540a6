"""Batch runs of the real verbs (issue 14): jobs as bytes, the engine built once, --only-denied, Parquet,
malformed lines as error rows, explain against a streaming mean, Dask identical to local, bad folders."""

from __future__ import annotations

import errno
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ConfigError, datasets
from actionable.batch import run
from actionable.batch_input import chunks, count_rows, streaming_reference
from actionable.batch_jobs import Job, model_files
from actionable.batch_runs import read_parts
from actionable.errors import SpecError


@pytest.fixture(scope="module")
def german() -> datasets.Dataset:
    return datasets.load("german")


def _people(tmp_path: Path, german: datasets.Dataset, n: int = 40) -> tuple[Path, pd.DataFrame]:
    rows = german.X_test.head(n).reset_index(drop=True)
    path = tmp_path / "people.csv"
    rows.to_csv(path, index=False)
    return path, rows


def _same(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _synthesize(german: datasets.Dataset, source: Path, out: Path, **kw: object) -> object:
    return run(
        source,
        out,
        "synthesize",
        model=german.model,
        schema=german.schema,
        actions=german.path / "actions.toml",
        max_length=1,
        **kw,
    )


def test_only_denied_leaves_out_exactly_the_rows_the_model_favours(tmp_path: Path, german) -> None:
    source, rows = _people(tmp_path, german)
    summary = _synthesize(german, source, tmp_path / "run", chunk=15, only_denied=True)
    with torch.no_grad():  # the oracle: the model's own probabilities on the raw rows
        p_good = german.model.predict_proba(rows)[:, list(german.model.classes).index("good")]
    denied = np.flatnonzero(p_good < 0.5).tolist()
    records = read_parts(tmp_path / "run")
    assert [r["row"] for r in records] == denied and summary.skipped == len(rows) - len(denied)
    assert summary.rows == len(rows) and all(r["status"] != "already_favourable" for r in records)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert sum(p["records"] + p["skipped"] for p in manifest["parts"].values()) == len(rows)


def test_malformed_lines_and_bad_cells_are_error_rows_and_every_other_row_is_answered(
    tmp_path: Path, german
) -> None:
    _, rows = _people(tmp_path, german, 8)
    text = rows.to_csv(index=False).splitlines()
    head, lines = text[0], text[1:]
    lines[0] = lines[0] + ",extra"  # a long first line (pandas' python parser would silently cut it)
    lines[2] = ",".join(lines[2].split(",")[:5])  # a short line: its last cells are missing
    bad = rows.iloc[[4]].copy()
    bad["purpose"] = "spaceship"  # an unknown level
    lines[4] = bad.to_csv(index=False, header=False).strip()
    lines[5] = lines[5].replace(str(rows.loc[5, "duration"]), "soon", 1)  # a wrong type
    source = tmp_path / "bad.csv"
    source.write_text("\n".join([head, *lines]) + "\n")
    summary = _synthesize(german, source, tmp_path / "run", chunk=3)
    records = read_parts(tmp_path / "run")
    assert summary.rows == 8 and [r["row"] for r in records] == list(range(8))
    errors = {r["row"]: r["error"] for r in records if r["status"] == "error"}
    assert set(errors) == {0, 2, 4, 5} and summary.failed == 4
    assert "row 0 has 21 cells where the header names 20" in errors[0]
    assert "purpose" in errors[4] and "duration" in errors[5]
    assert any(name in errors[2] for name in rows.columns[5:])  # the first missing cell's column


def test_parquet_parts_hold_the_records_and_a_corrupt_one_is_redone(tmp_path: Path, german) -> None:
    import pyarrow.parquet as pq

    source, _ = _people(tmp_path, german, 20)
    out = tmp_path / "run"
    _synthesize(german, source, out, chunk=8, parquet=True)
    records = read_parts(out)
    table = pd.concat([pq.read_table(p).to_pandas() for p in sorted((out / "parts").glob("*.parquet"))])
    assert table["row"].tolist() == [r["row"] for r in records]
    assert [json.loads(t) for t in table["record"]] == records
    assert table["status"].tolist() == [r["status"] for r in records]
    found = [r for r in records if r["status"] == "found"]
    assert table.loc[table.status == "found", "cost"].tolist() == pytest.approx([r["cost"] for r in found])
    (out / "parts" / "000001.parquet").write_bytes(b"PAR1 not really")
    summary = _synthesize(german, source, out, chunk=8, parquet=True, resume=True)
    assert (summary.written, summary.kept) == (1, 2)
    assert _same(read_parts(out)) == _same(records)


def test_batch_explain_equals_one_attribution_call(tmp_path: Path, german) -> None:
    from actionable.attribution import attribute
    from actionable.baselines import training_mean

    source, rows = _people(tmp_path, german, 30)
    run(
        source,
        tmp_path / "run",
        "explain",
        model=german.model,
        schema=german.schema,
        reference=german.X_train,
        chunk=7,
    )
    direct = attribute(german.model, rows, baseline=training_mean(german.schema, german.X_train)).to_records()
    ours = read_parts(tmp_path / "run")
    assert [r["row"] for r in ours] == list(range(30))
    for a, b in zip(ours, direct, strict=True):
        assert a["top"][0][0] == b["top"][0][0]
        assert list(a["values"].values()) == pytest.approx(list(b["values"].values()), abs=1e-10)


def test_the_streaming_mean_is_the_mean_of_the_valid_rows(tmp_path: Path, german) -> None:
    from actionable.baselines import standard_deviations, training_mean

    source, rows = _people(tmp_path, german, 50)
    with source.open("a") as handle:
        handle.write("1,2,3\n")  # a short, invalid row: left out of the mean
    mean, sd, count = streaming_reference(source, german.schema, 7)
    assert count == 50 and count_rows(source) == 51
    assert mean == pytest.approx(training_mean(german.schema, rows), abs=1e-12)
    assert sd.to_numpy() == pytest.approx(standard_deviations(german.schema, rows).to_numpy(), rel=1e-10)


def test_batch_invert_equals_invert_on_the_frame(tmp_path: Path) -> None:
    from actionable.inverse import invert

    student = datasets.load("student")
    rows = student.X_test.head(12).reset_index(drop=True)
    source = tmp_path / "students.csv"
    rows.to_csv(source, index=False)
    run(source, tmp_path / "run", "invert", model=student.model, schema=student.schema, chunk=12, budget=4.0)
    direct = [
        json.loads(json.dumps(r.to_dict())) for r in invert(student.model, rows, student.schema, budget=4.0)
    ]
    assert _same(read_parts(tmp_path / "run")) == _same(direct)


def test_settings_that_fail_every_row_stop_the_run_with_their_message(tmp_path: Path, german) -> None:
    source, _ = _people(tmp_path, german, 5)
    with pytest.raises(SpecError, match="protected"):  # German's foreign_worker is protected and direct
        run(source, tmp_path / "run", "invert", model=german.model, schema=german.schema, budget=1.0)


def test_a_job_travels_as_bytes_and_refuses_hostile_ones(german) -> None:
    files = model_files(german.model, german.schema)
    job = Job(
        "synthesize", german.schema.to_toml(), files, (german.path / "actions.toml").read_text(), {"k": 1}
    )
    back = Job.from_bytes(job.to_bytes())
    assert back == job and back.key == job.key
    with pytest.raises(ConfigError, match="do not read back"):
        Job.from_bytes(b"\x80 not json")
    with pytest.raises(ConfigError, match="do not read back"):
        Job.from_bytes(job.to_bytes().replace(b'"verb"', b'"exec"'))
    evil = Job("explain", german.schema.to_toml(), {"../../model.json": b"{}"})
    with pytest.raises(ConfigError, match=r"only model\.json and model\.safetensors travel"):
        evil.engine()
    with pytest.raises(ConfigError, match="verb"):
        Job("delete", german.schema.to_toml(), files)


def test_dask_with_two_worker_processes_gives_the_local_records(tmp_path: Path, german) -> None:
    pytest.importorskip("dask.distributed")
    source, _ = _people(tmp_path, german, 24)
    _synthesize(german, source, tmp_path / "local", chunk=6)
    summary = _synthesize(german, source, tmp_path / "dask", chunk=6, backend="dask", workers=2)
    assert summary.written == 4
    assert _same(read_parts(tmp_path / "dask")) == _same(read_parts(tmp_path / "local"))


def test_a_full_disk_stops_the_run_and_resume_finishes_it(tmp_path: Path, german, monkeypatch) -> None:
    from actionable import files

    source, _ = _people(tmp_path, german, 20)
    _synthesize(german, source, tmp_path / "whole", chunk=5)
    real, calls = files.os.replace, []

    def full(a: object, b: object) -> None:
        calls.append(b)
        if str(b).endswith("000002.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(a, b)

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(ConfigError, match="no space left"):
        _synthesize(german, source, tmp_path / "run", chunk=5)
    monkeypatch.setattr(files.os, "replace", real)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert sorted(manifest["parts"]) == ["000000.jsonl", "000001.jsonl"] and not manifest["complete"]
    assert not list((tmp_path / "run" / "parts").glob(".*tmp*"))  # no half-written part left behind
    summary = _synthesize(german, source, tmp_path / "run", chunk=5, resume=True)
    assert (summary.kept, summary.written) == (2, 2)
    assert _same(read_parts(tmp_path / "run")) == _same(read_parts(tmp_path / "whole"))


def test_a_read_only_folder_is_a_clear_error(tmp_path: Path, german, monkeypatch) -> None:
    from actionable import files

    source, _ = _people(tmp_path, german, 5)

    def read_only(*args: object, **kw: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files, "_make", read_only)
    with pytest.raises(ConfigError, match="cannot write"):
        _synthesize(german, source, tmp_path / "run", chunk=5)


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_runs(tmp_path: Path, german) -> None:
    source, _ = _people(tmp_path, german, 5)
    out = tmp_path / "run"
    hold = f"from actionable import files; import time\nwith files.locked({str(out)!r}):\n    print('held', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="another run"):
            _synthesize(german, source, out, chunk=5)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert _synthesize(german, source, out, chunk=5).rows == 5  # free again once the holder is gone


def test_chunks_read_a_gzipped_bundle_like_pandas(german) -> None:
    first = next(chunks(german.path / "data.csv.gz", 100, german.schema))
    with gzip.open(german.path / "data.csv.gz", "rt") as handle:
        expected = pd.read_csv(handle, nrows=100)
    assert first.frame.columns.tolist() == expected.columns.tolist() and not first.malformed
    assert first.frame["credit_amount"].tolist() == expected["credit_amount"].tolist()


def test_the_cli_runs_invert_and_explain_on_bundles_and_refuses_mixed_backends(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from actionable.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "batch",
            "invert",
            "--dataset",
            "student",
            "--budget",
            "3",
            "--out",
            str(tmp_path / "i"),
            "--only-denied",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "already favoured, left out" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        [
            "batch",
            "explain",
            "--dataset",
            "german",
            "--out",
            str(tmp_path / "e"),
            "--parquet",
            "--steps",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        len(read_parts(tmp_path / "e")) == 1000
        and len(list((tmp_path / "e" / "parts").glob("*.parquet"))) == 1
    )
    both = [
        "batch",
        "synthesize",
        "--dataset",
        "german",
        "--out",
        str(tmp_path / "s"),
        "--workers",
        "2",
        "--scheduler",
        "tcp://127.0.0.1:1",
    ]
    result = runner.invoke(app, both)
    assert result.exit_code == 2 and "not both" in " ".join(result.output.split())
    result = runner.invoke(
        app, ["batch", "explain", "--dataset", "german", "--out", str(tmp_path / "z"), "--baseline", "median"]
    )
    assert result.exit_code == 2 and "mean or zeros" in result.output
