"""The HTML report of batch runs: every number read back from the page equals one computed from the records."""

from __future__ import annotations

import base64
import html
import json
import sys
import tracemalloc
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from actionable import ConfigError, datasets, report, report_plots
from actionable.actions import ActionSet
from actionable.attribution import attribute, training_mean
from actionable.batch_runs import iter_records, read_parts, run_parts, synthesis_answer
from actionable.cli.report import report_command
from actionable.report import SKIPPED, TOP, build_report, write_report

HOSTILE = "<script>alert(1)</script>"


class Page(HTMLParser):
    """The page's sections: per run, each table (by ``data-table``) as rows of (text, data-value)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.runs: list[dict[str, Any]] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self._table: list[list[tuple[str, str | None]]] | None = None
        self._cell: list[str] | None = None
        self._value: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.runs.append({"verb": a.get("data-verb"), "tables": {}})
        elif tag == "table":
            self._table = self.runs[-1]["tables"].setdefault(str(a["data-table"]), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag == "td":
            self._cell, self._value = [], a.get("data-value")
        elif tag == "img":
            self.images.append(str(a["src"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._table is not None and self._cell is not None:
            self._table[-1].append(("".join(self._cell), self._value))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def table(self, run: int, name: str) -> list[list[tuple[str, str | None]]]:
        return [row for row in self.runs[run]["tables"][name] if row]  # the header row has no td

    def counts(self, run: int, name: str) -> dict[str, float]:
        """A ranking table as {label: the number in its second column (from data-value)}."""
        return {row[0][0]: float(str(row[1][1])) for row in self.table(run, name)}

    def shares(self, run: int, name: str) -> dict[str, float]:
        return {row[0][0]: float(str(row[2][1])) for row in self.table(run, name)}


def _ranked(counts: Counter[str]) -> dict[str, float]:
    return {k: float(n) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]}


def _check_self_contained(text: str) -> None:
    lower = text.lower()
    assert "<script" not in lower
    assert "http://" not in lower and "https://" not in lower
    page = Page(text)
    for src in page.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data, validate=True).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.fixture(scope="module")
def german_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthesize run and an explain run over the same 30 German rows (3 parts each)."""
    root = tmp_path_factory.mktemp("german")
    b = datasets.load("german")
    source = root / "people.csv"
    pd.read_csv(b.path / "data.csv.gz").head(30).to_csv(source, index=False)
    actions = ActionSet.from_toml(b.path / "actions.toml", b.schema)
    recourse, explain = root / "synthesize", root / "explain"
    answer = synthesis_answer(b.model, actions, max_length=1)
    run_parts(
        source, recourse, answer, settings={"verb": "synthesize", "max_length": 1}, chunk=10, schema=b.schema
    )
    baseline = training_mean(b.schema, b.X_train)

    def reasons(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return attribute(b.model, frame, "integrated_gradients", baseline=baseline, steps=16).to_records()

    settings = {"verb": "explain", "method": "integrated_gradients"}
    run_parts(source, explain, reasons, settings=settings, chunk=10, schema=b.schema)
    return recourse, explain


def test_a_recourse_run_reports_the_records_numbers(german_runs: tuple[Path, Path]) -> None:
    recourse, _ = german_runs
    text = build_report([recourse])
    _check_self_contained(text)
    page, records = Page(text), read_parts(recourse)
    statuses = Counter(r["status"] for r in records)
    assert page.counts(0, "status") == {s: float(n) for s, n in statuses.items()}
    assert page.shares(0, "status") == pytest.approx({s: n / 30 for s, n in statuses.items()})
    found = [r for r in records if r["status"] == "found"]
    assert found, "the German rows give some plans"
    costs = np.array([r["cost"] for r in found])
    stats = page.counts(0, "cost")
    expected = {
        "mean": costs.mean(),
        "median": np.median(costs),
        "p10": np.percentile(costs, 10),
        "p90": np.percentile(costs, 90),
        "max": costs.max(),
    }
    assert {k: stats[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    assert stats["count"] == len(found)
    assert page.counts(0, "first_actions") == _ranked(Counter(r["steps"][0]["action"] for r in found))
    changed: Counter[str] = Counter()
    for r in found:
        changed.update({name for name, after in r["x_after"].items() if r["x_before"][name] != after})
    assert changed and page.counts(0, "changed_features") == _ranked(changed)
    assert len(page.images) == 2  # the cost histogram and the changed features
    for r in found[:5]:
        assert r["steps"][0]["text"] in text
    assert page.runs[0]["verb"] == "synthesize"
    settings = {row[0][0]: row[1] for row in page.table(0, "settings")}
    assert settings["rows"] == ("30", "30") and settings["chunk"][1] == "10"
    assert settings["input"][0] == "people.csv"
    assert settings["input sha256"][0] == json.loads((recourse / "manifest.json").read_text())["input_sha256"]


def test_an_explain_run_counts_the_reasons_against_approval(german_runs: tuple[Path, Path]) -> None:
    _, explain = german_runs
    text = build_report([explain])
    _check_self_contained(text)
    page, records = Page(text), read_parts(explain)
    against: Counter[str] = Counter()
    for r in records:
        # the explained output is the favourable class: a negative attribution pushes toward "bad"
        assert r["target"] == "good (logit)"
        against.update(
            {
                reason["feature"] + (" (protected)" if reason["protected"] else "")
                for reason in r["reasons"]
                if reason["value"] < 0
            }
        )
    assert sum(against.values()) > 0 and any("(protected)" in f for f in against)  # marked as such
    assert page.counts(0, "reasons") == _ranked(against)
    assert page.shares(0, "reasons") == pytest.approx({f: n / 30 for f, n in _ranked(against).items()})
    assert page.counts(0, "status") == {"explained": 30.0}
    assert len(page.images) == 1 and "good (logit)" in text


def _crafted(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Chosen records for rows 0-11 (statuses, costs, hostile names and texts); rows 12-17 fail as a chunk."""
    if frame.index[0] >= 12:
        raise RuntimeError(HOSTILE)
    plans = {0: (1.5, "save"), 1: (2.5, HOSTILE), 2: (0.5, "save"), 3: (4.0, "save"), 4: (3.0, HOSTILE)}
    kinds = {5: "not_found", 6: "not_found", 7: "infeasible", 8: "already_favourable", 11: "skipped"}
    out: list[dict[str, Any]] = []
    for i in (int(i) for i in frame.index):
        if i in plans:
            cost, action = plans[i]
            before = {"income": 10, HOSTILE: "a", "age": 30}
            after = {"income": 11 + i, HOSTILE: "a" if i % 2 else "b", "age": 30}
            steps = [{"action": action, "params": {}, "cost": cost, "text": f"{HOSTILE} step of row {i}"}]
            out.append(
                {
                    "row": i,
                    "status": "found",
                    "cost": cost,
                    "steps": steps,
                    "x_before": before,
                    "x_after": after,
                }
            )
        elif i in kinds:
            out.append(
                {"row": i, "status": kinds[i], "steps": [], "cost": None, "x_before": {}, "x_after": {}}
            )
        else:  # rows 9 and 10: the same hostile message
            out.append({"row": i, "status": "error", "error": f"bad row {HOSTILE}", "steps": []})
    return out


def test_crafted_records_give_exact_counts_and_hostile_text_stays_text(tmp_path: Path) -> None:
    source, out = tmp_path / "rows.csv", tmp_path / "run"
    pd.DataFrame({"x": range(18)}).to_csv(source, index=False)
    run_parts(source, out, _crafted, settings={"verb": "synthesize", HOSTILE: HOSTILE}, chunk=6)
    text = build_report([out])
    _check_self_contained(text)
    page = Page(text)
    expected = {
        "found": 5,
        "not_found": 2,
        "infeasible": 1,
        "already_favourable": 1,
        "skipped": 1,
        "error": 8,
    }
    assert page.counts(0, "status") == expected
    assert page.shares(0, "status") == pytest.approx({s: n / 18 for s, n in expected.items()})
    costs = np.array([1.5, 2.5, 0.5, 4.0, 3.0])
    stats = page.counts(0, "cost")
    assert stats["count"] == 5 and stats["mean"] == pytest.approx(2.3) and stats["median"] == 2.5
    assert stats["p10"] == pytest.approx(np.percentile(costs, 10)) and stats["max"] == 4.0
    assert page.counts(0, "first_actions") == {"save": 3, HOSTILE: 2}
    # income changes in every plan; the hostile feature in rows 0, 2 and 4; age never
    assert page.counts(0, "changed_features") == {"income": 5, HOSTILE: 3}
    chunk = f"the chunk failed: RuntimeError: {HOSTILE}"
    assert page.counts(0, "errors") == {chunk: 6, f"bad row {HOSTILE}": 2}
    assert HOSTILE not in text and "&lt;script&gt;" in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt; step of row") == 5  # the 5 example plans


def test_several_runs_make_one_page_with_a_section_each(
    german_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = write_report(list(german_runs), tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert text == build_report(list(german_runs))
    page = Page(text)
    assert [r["verb"] for r in page.runs] == ["synthesize", "explain"]
    assert "changed_features" in page.runs[0]["tables"] and "reasons" in page.runs[1]["tables"]
    assert "reasons" not in page.runs[0]["tables"] and "cost" not in page.runs[1]["tables"]


def test_no_folder_or_an_unfinished_run_is_refused(german_runs: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no run folder"):
        build_report([])
    with pytest.raises(ConfigError, match="no finished run"):
        build_report([german_runs[0], tmp_path])
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    manifest = json.loads((german_runs[0] / "manifest.json").read_text())
    (unfinished / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(ConfigError, match="no finished run"):
        write_report([unfinished], tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_without_matplotlib_the_tables_remain_and_the_page_says_how_to_plot(
    german_runs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    text = build_report(list(german_runs))
    page = Page(text)
    assert page.images == [] and "pip install 'actionable[plot]'" in html.unescape(text)
    assert page.counts(0, "status") == Counter(r["status"] for r in read_parts(german_runs[0]))


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A group, so the command is called by name as in ``actionable report``."""

    app.command("report")(report_command)
    return app


def test_the_command_writes_the_page_and_refuses_a_folder_without_a_run(
    german_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    runner, out = CliRunner(), tmp_path / "report.html"
    result = runner.invoke(_app(), ["report", *map(str, german_runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["verb"] for r in Page(out.read_text(encoding="utf-8")).runs] == ["synthesize", "explain"]
    missing = tmp_path / "other.html"
    result = runner.invoke(_app(), ["report", str(tmp_path / "empty"), "--out", str(missing)])
    assert result.exit_code == 2 and "no finished run" in " ".join(result.output.split())
    assert not missing.exists()
    into_parts = german_runs[0] / "parts" / "report.html"
    result = runner.invoke(_app(), ["report", str(german_runs[0]), "--out", str(into_parts)])
    assert result.exit_code == 2 and not into_parts.exists()


def _some_skipped(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows i % 4 == 0 left out as --only-denied does (a skip marker), i % 4 == 1 not found, others found."""
    out: list[dict[str, Any]] = []
    for i in (int(i) for i in frame.index):
        if i % 4 == 0:
            out.append({"row": i, "skip": True})
        elif i % 4 == 1:
            out.append({"row": i, "status": "not_found", "steps": [], "cost": None})
        else:
            steps = [{"action": "save", "params": {}, "cost": float(i), "text": f"save for row {i}"}]
            out.append({"row": i, "status": "found", "cost": float(i), "steps": steps})
    return out


def test_rows_left_out_by_only_denied_are_a_status_row_and_shares_are_of_all_rows(tmp_path: Path) -> None:
    source, out = tmp_path / "rows.csv", tmp_path / "run"
    lines = ["x"] + [f"{i},{i}" if i == 6 else str(i) for i in range(20)]  # row 6 is malformed (2 cells)
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run_parts(source, out, _some_skipped, settings={"verb": "synthesize"}, chunk=7)
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary.skipped == 5 and manifest["rows"] == 20
    assert sum(p["skipped"] for p in manifest["parts"].values()) == 5 and len(read_parts(out)) == 15
    page = Page(build_report([out]))
    found = [2, 3, 7, 10, 11, 14, 15, 18, 19]
    expected = {"found": len(found), "not_found": 5, "error": 1, SKIPPED: 5}  # 0, 4, 8, 12, 16 skipped
    assert page.counts(0, "status") == expected
    assert page.shares(0, "status") == pytest.approx({s: n / 20 for s, n in expected.items()})
    assert [row[0][0] for row in page.table(0, "status")][-1] == SKIPPED
    assert {row[0][0]: row[1] for row in page.table(0, "settings")}["rows"] == ("20", "20")
    stats = page.counts(0, "cost")
    assert stats["count"] == len(found) and stats["median"] == np.median(np.array(found, dtype=float))
    assert page.shares(0, "first_actions") == {"save": 1.0}  # shares of found plans, not of all rows
    assert page.counts(0, "errors") == {
        "row 6 has 2 cells where the header names 1 (a trailing comma, or an unquoted comma in a value); "
        "give it one cell per header column.": 1
    }


def _one_message_per_row(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"row": int(i), "status": "error", "error": f"row {int(i)} is bad"} for i in frame.index]


def test_distinct_error_messages_are_counted_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = tmp_path / "rows.csv", tmp_path / "run"
    pd.DataFrame({"x": range(10)}).to_csv(source, index=False)
    run_parts(source, out, _one_message_per_row, settings={"verb": "synthesize"}, chunk=4)
    monkeypatch.setattr(report, "DISTINCT", 3)
    text = build_report([out])
    assert Page(text).counts(0, "errors") == {f"row {i} is bad": 1 for i in range(3)}
    assert "10 rows not processed. 7 of them carry a message first seen after 3 distinct ones" in text


FEATURES = [f"feature_{k}" for k in range(20)]


def _bulky(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Records of about 1.2 KB of JSON each: every tenth row an error, the others a found one-step plan."""
    out: list[dict[str, Any]] = []
    for i in (int(i) for i in frame.index):
        if i % 10 == 9:
            out.append({"row": i, "status": "error", "error": f"row {i}: a value out of bounds"})
            continue
        name, cost = FEATURES[i % 20], 1.0 + i % 13
        before = {f: float(k) for k, f in enumerate(FEATURES)}
        step = {"action": f"act_{i % 7}", "params": {"amount": 1.0}, "cost": cost, "text": f"Raise {name}"}
        out.append(
            {
                "row": i,
                "status": "found",
                "cost": cost,
                "steps": [step],
                "x_before": before,
                "x_after": {**before, name: before[name] + 1.0},
                "p_before": 0.25,
                "p_after": 0.75,
                "provenance": {"method": "fake", "config": {"max_length": 1}},
            }
        )
    return out


def test_the_report_streams_its_memory_stays_well_below_the_records(tmp_path: Path) -> None:
    source, out, n = tmp_path / "rows.csv", tmp_path / "run", 20_000
    pd.DataFrame({"x": range(n)}).to_csv(source, index=False)
    run_parts(source, out, _bulky, settings={"verb": "synthesize"}, chunk=500)
    report_plots.histogram([1.0, 2.0, 3.0], "warm", "up")  # matplotlib's import and fonts: not the report's
    report_plots.bars(["a"], [1], "warm")
    tracemalloc.start()
    try:
        records = list(iter_records(out))
        _, whole = tracemalloc.get_traced_memory()
        costs = np.array([r["cost"] for r in records if r["status"] == "found"])
        del records
        tracemalloc.reset_peak()
        text = build_report([out])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole / 4, (peak, whole)
    page = Page(text)
    assert page.counts(0, "status") == {"found": n * 9 / 10, "error": n / 10}
    stats = page.counts(0, "cost")
    assert stats["count"] == len(costs) and stats["median"] == np.median(costs)
    assert stats["p90"] == pytest.approx(np.percentile(costs, 90), rel=1e-12)
