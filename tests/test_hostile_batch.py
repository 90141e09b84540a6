"""Regressions from the hostile review of batch runs (issue 14): each test is one finding, fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from actionable import ConfigError, DataError, datasets
from actionable.batch import run
from actionable.batch_jobs import Job, model_files
from actionable.batch_runs import iter_records, read_parts, run_parts
from actionable.errors import SpecError


@pytest.fixture(scope="module")
def german() -> datasets.Dataset:
    return datasets.load("german")


def _rows(tmp_path: Path, german: datasets.Dataset, n: int = 6) -> tuple[Path, pd.DataFrame]:
    rows = german.X_test.head(n).reset_index(drop=True)
    path = tmp_path / "people.csv"
    rows.to_csv(path, index=False)
    return path, rows


def _echo(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [{"row": int(i), "status": "found", "cost": 1.0} for i in frame.index]


def test_explain_error_rows_are_counted_as_failed(tmp_path: Path, german) -> None:
    source, rows = _rows(tmp_path, german)
    rows.loc[[1, 4], "age"] = None
    rows.to_csv(source, index=False)
    summary = run(source, tmp_path / "run", "explain", model=german.model, schema=german.schema, chunk=4)
    records = read_parts(tmp_path / "run")
    assert summary.failed == 2 and [r["status"] for r in records].count("error") == 2
    assert records[0]["status"] == "explained" and records[1]["error"].startswith("row 1,")  # the file's row


def test_a_file_that_changes_during_the_run_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(30)))

    def appending(frame: pd.DataFrame) -> list[dict[str, object]]:
        with source.open("a") as handle:
            handle.write("99,99\n")
        return _echo(frame)

    with pytest.raises(DataError, match="changed while the run read it"):
        run_parts(source, tmp_path / "run", appending, chunk=10)
    with pytest.raises(ConfigError, match="no finished run"):
        read_parts(tmp_path / "run")


def test_a_link_to_a_busy_folder_is_refused_too(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("a,b\n1,2\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "d")
    hold = f"from actionable import files; import time\nwith files.locked({str(tmp_path / 'd')!r}):\n    print('held', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="another run"):
            run_parts(source, tmp_path / "alias", _echo)
    finally:
        holder.kill()
        holder.wait()


def test_a_jobs_specs_are_text_never_paths_to_read(german, tmp_path: Path) -> None:
    files = model_files(german.model, german.schema)
    schema_file = tmp_path / "schema.toml"
    german.schema.save(schema_file)
    job = Job("explain", str(schema_file), files)  # a path where the TOML text belongs
    with pytest.raises(SpecError, match="schema text"):
        job.engine()  # read as (bad) TOML text, never as the file it names


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"reference": {"baseline": "abc"}}, "list of finite numbers"),
        ({"reference": {"baseline": [float("nan")]}}, "list of finite numbers"),
        ({"reference": {"secret": [1.0]}}, "only 'baseline' and 'scale'"),
        ({"only_denied": "yes"}, "only_denied must be bool"),
        ({"options": [1, 2]}, "mappings"),
    ],
)
def test_hostile_job_fields_are_refused(german, change: dict, match: str) -> None:
    data = json.loads(Job("explain", german.schema.to_toml(), {"model.json": b"{}"}).to_bytes())
    data.update(change)
    with pytest.raises(ConfigError, match=match):
        Job.from_bytes(json.dumps(data).encode())


def test_a_deeply_nested_job_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"nested too deeply|do not read back"):
        Job.from_bytes(b"[" * 100_000 + b"]" * 100_000)


def _finished(tmp_path: Path) -> Path:
    source = tmp_path / "rows.csv"
    source.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(6)))
    run_parts(source, tmp_path / "run", _echo, chunk=3)
    return tmp_path / "run"


def _rewrite_part(out: Path, name: str, data: bytes) -> None:
    import hashlib

    (out / "parts" / name).write_bytes(data)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["parts"][name]["sha256"] = hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_reading_refuses_linked_parts_and_a_linked_parts_folder(tmp_path: Path) -> None:
    out = _finished(tmp_path)
    secret = tmp_path / "secret.jsonl"
    secret.write_bytes((out / "parts" / "000000.jsonl").read_bytes())
    (out / "parts" / "000000.jsonl").unlink()
    (out / "parts" / "000000.jsonl").symlink_to(secret)
    with pytest.raises(DataError, match="a link"):
        list(iter_records(out))
    moved = tmp_path / "elsewhere"
    (out / "parts").rename(moved)
    (out / "parts").symlink_to(moved)
    with pytest.raises(ConfigError, match="holds a link"):
        list(iter_records(out))


@pytest.mark.parametrize("data", [b'{"row": 0, bad}\n', b"\xff\xfe\n", b'{"row": 1' + b"1" * 5000 + b"}\n"])
def test_a_part_that_is_not_json_lines_is_a_data_error(tmp_path: Path, data: bytes) -> None:
    out = _finished(tmp_path)
    _rewrite_part(out, "000000.jsonl", data)
    with pytest.raises(DataError, match="not a part this library wrote"):
        list(iter_records(out))


def test_the_report_survives_costs_at_the_float_limit(tmp_path: Path) -> None:
    from actionable.report import build_report

    source = tmp_path / "rows.csv"
    source.write_text("a\n1\n2\n")

    def extreme(frame: pd.DataFrame) -> list[dict[str, object]]:
        return [
            {"row": int(i), "status": "found", "cost": c}
            for i, c in zip(frame.index, (-1.7e308, 1.7e308), strict=True)
        ]

    run_parts(source, tmp_path / "run", extreme)
    assert "found" in build_report([tmp_path / "run"])


def test_an_edited_manifest_entry_is_redone_and_a_stray_one_dropped(tmp_path: Path) -> None:
    out = _finished(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["parts"]["000000.jsonl"]["failed"] = 999
    manifest["parts"]["000099.jsonl"] = dict(manifest["parts"]["000001.jsonl"])
    (out / "manifest.json").write_text(json.dumps(manifest))
    summary = run_parts(tmp_path / "rows.csv", out, _echo, chunk=3, resume=True)
    assert (summary.written, summary.kept, summary.failed) == (1, 1, 0)
    assert [r["row"] for r in read_parts(out)] == list(range(6))
    assert sorted(json.loads((out / "manifest.json").read_text())["parts"]) == [
        "000000.jsonl",
        "000001.jsonl",
    ]


def test_bytes_that_are_not_utf8_make_one_error_row_and_long_cells_are_read(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(b"a,b\n1,2\n\xe9t\xe9,3\n4," + b"x" * 200_000 + b"\n5,6\n")
    summary = run_parts(source, tmp_path / "run", _echo, chunk=2)
    records = read_parts(tmp_path / "run")
    assert summary.rows == 4 and [r["row"] for r in records] == [0, 1, 2, 3]
    assert records[1]["status"] == "error" and "not UTF-8" in records[1]["error"]
    assert records[2]["status"] == "found"


def test_a_missing_column_stops_the_run_before_any_part(tmp_path: Path, german) -> None:
    source, rows = _rows(tmp_path, german)
    rows.drop(columns=["checking_account"]).to_csv(source, index=False)
    with pytest.raises(DataError, match="checking_account"):
        run(source, tmp_path / "run", "explain", model=german.model, schema=german.schema)
    assert not list((tmp_path / "run" / "parts").glob("*.jsonl"))


def test_explain_with_the_gradient_method_runs_and_top_below_one_is_refused(tmp_path: Path, german) -> None:
    source, _ = _rows(tmp_path, german)
    summary = run(
        source, tmp_path / "g", "explain", model=german.model, schema=german.schema, method="gradient"
    )
    assert summary.failed == 0 and len(read_parts(tmp_path / "g")[0]["top"]) == 3
    with pytest.raises(ConfigError, match="top"):
        run(source, tmp_path / "t", "explain", model=german.model, schema=german.schema, top=0)


def test_options_out_of_range_are_refused_naming_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from actionable.cli import app

    source = tmp_path / "rows.csv"
    source.write_text("a\n1\n")
    with pytest.raises(ConfigError, match="chunk"):
        run_parts(source, tmp_path / "run", _echo, chunk=10**20)
    runner = CliRunner()
    out = ["--out", str(tmp_path / "x")]
    result = runner.invoke(app, ["batch", "invert", "--dataset", "student", "--budget", "nan", *out])
    assert result.exit_code == 2 and "--budget" in result.output
    result = runner.invoke(app, ["batch", "explain", "--dataset", "german", "--top", "0", *out])
    assert result.exit_code == 2 and "--top" in result.output
    started = time.monotonic()
    result = runner.invoke(
        app, ["batch", "explain", "--dataset", "german", "--scheduler", "garbage::://", *out]
    )
    assert result.exit_code == 2 and "scheduler" in result.output and "Traceback" not in result.output
    assert time.monotonic() - started < 60


def test_a_model_folder_with_a_linked_file_is_refused(tmp_path: Path, german) -> None:
    from actionable import save_model

    folder = save_model(german.model, tmp_path / "model")
    (folder / "model.json").rename(tmp_path / "real.json")
    os.symlink(tmp_path / "real.json", folder / "model.json")
    with pytest.raises(ConfigError, match="links"):
        model_files(folder, german.schema)


# ----------------------------------------------------------------------- found by a new user's review
def test_the_report_draws_costs_that_are_all_the_same(tmp_path: Path) -> None:
    from actionable.report import build_report

    source = tmp_path / "rows.csv"
    source.write_text("a\n1\n2\n3\n")

    def at_budget(frame: pd.DataFrame) -> list[dict[str, object]]:
        return [{"row": int(i), "status": "found", "cost": 3.0 + 1e-14 * int(i)} for i in frame.index]

    run_parts(source, tmp_path / "run", at_budget)
    assert "data:image/png;base64" in build_report([tmp_path / "run"])


def test_a_blank_line_is_an_error_row_and_ids_carry_the_text_as_written(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("id,a\n007,1\n\n008,2\n009,3\n")
    summary = run_parts(source, tmp_path / "run", _echo, chunk=2, id_column="id")
    records = read_parts(tmp_path / "run")
    assert summary.rows == 4 and [r["row"] for r in records] == [0, 1, 2, 3]
    assert records[1]["status"] == "error" and "blank line" in records[1]["error"]
    assert [r["id"] for r in records] == ["007", "", "008", "009"]  # row 2 is the line "008,2", not shifted
    with pytest.raises(DataError, match="no column 'key' for --id"):
        run_parts(source, tmp_path / "other", _echo, id_column="key")


def test_explain_can_leave_protected_reasons_out_and_the_report_marks_them(tmp_path: Path, german) -> None:
    from actionable.report import build_report

    source, _ = _rows(tmp_path, german, 40)
    protected = {f.name for f in german.schema.features if f.protected}
    assert protected, "the German schema protects some features"
    run(source, tmp_path / "all", "explain", model=german.model, schema=german.schema, top=20)
    run(
        source,
        tmp_path / "kept",
        "explain",
        model=german.model,
        schema=german.schema,
        top=20,
        exclude_protected=True,
    )
    shown = {f for r in read_parts(tmp_path / "all") for f, _ in r["top"]}
    kept = {f for r in read_parts(tmp_path / "kept") for f, _ in r["top"]}
    assert shown & protected and not kept & protected
    others = len(german.schema.features) - len(protected)
    assert all(len(r["top"]) == others for r in read_parts(tmp_path / "kept"))  # every other feature
    page = build_report([tmp_path / "all"])
    assert any(f"{name} (protected)" in page for name in protected)
    assert read_parts(tmp_path / "all")[0]["baseline"] == "mean of the input's 40 valid rows"


def test_settings_refused_before_any_part_leave_the_folder_as_it_was(tmp_path: Path, german) -> None:
    source, _ = _rows(tmp_path, german)
    out = tmp_path / "run"
    for backend in ("local", "dask"):
        started = time.monotonic()
        with pytest.raises(SpecError, match="protected"):
            run(source, out, "invert", model=german.model, schema=german.schema, budget=1.0, backend=backend)
        assert (time.monotonic() - started < 20 and not out.exists()) or not any(out.iterdir())
    student = datasets.load("student")
    rows = student.X_test.head(4)
    rows.to_csv(source, index=False)
    run(source, out, "invert", model=student.model, schema=student.schema, budget=1.0)  # the folder is free
    with pytest.raises(ConfigError, match=r"options: \{'budget': 1.0.*there, \{'budget': 2.0"):
        run(source, out, "invert", model=student.model, schema=student.schema, budget=2.0, resume=True)


def test_run_refuses_an_unknown_baseline_and_reads_a_catalogue_path_without_suffix(
    tmp_path: Path, german
) -> None:
    source, _ = _rows(tmp_path, german, 3)
    with pytest.raises(ConfigError, match="baseline"):
        run(source, tmp_path / "b", "explain", model=german.model, schema=german.schema, baseline="median")
    catalogue = tmp_path / "catalogue"  # a file name without .toml, as read_toml takes it: a path
    catalogue.write_text((german.path / "actions.toml").read_text())
    summary = run(
        source,
        tmp_path / "s",
        "synthesize",
        model=german.model,
        schema=german.schema,
        actions=str(catalogue),
        max_length=1,
    )
    assert summary.rows == 3 and summary.failed == 0
