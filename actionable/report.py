"""The self-contained HTML summary of one or more finished batch runs (``actionable report``).

Each run folder (``batch_runs.run_parts``) becomes one section of the page: its settings and input, the
rows per status, and for a recourse run (synthesize, invert) the cost of the found plans, the first actions
and the features the plans change, with a few plans in words; for an explain run the reasons against the
favourable outcome; and the most common error messages. The page loads nothing: its style is inline and its
plots are PNGs in ``data:`` addresses (matplotlib on the Agg canvas; without matplotlib the tables alone).
Every text from the records is HTML-escaped; every number of a table is in its cell's ``data-value``.

A run of 10^6-10^7 rows is never held: each run is read in one pass over ``batch_runs.iter_records`` (one
part at a time) into counters, the found plans' costs (8 bytes a row, for exact quantiles) and the first
plans. Rows a run made with ``--only-denied`` left out (already favoured: no record, counted per part in the
manifest) are a row of the status table, and its shares are of all the input rows (``manifest["rows"]``).

Sign convention of the reasons: ``attribute`` explains one output, by default the schema's favourable class
as log-odds (or a regression's output); each record names it as ``target`` (``"good (logit)"``). A negative
attribution pushes that output down, so the report counts, per row, the features among the record's top
``reasons`` with a value < 0: the reasons against approval. A run that explained another output (``target=``)
or a regression whose favourable side is below a threshold reads them as "against the output named", which
the page says.
"""

from __future__ import annotations

import html
import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionable import report_plots
from actionable.batch_runs import iter_records
from actionable.errors import ConfigError
from actionable.files import atomic_write
from actionable.results import PROBABILITY

__all__ = ["EXAMPLES", "MESSAGES", "RECOURSE_VERBS", "TOP", "build_report", "write_report"]

RECOURSE_VERBS = ("synthesize", "invert")
TOP = 15  # rows of each ranking table (first actions, changed features, reasons)
EXAMPLES = 5  # found plans shown in words
MESSAGES = 5  # error messages shown
TEXT = 500  # the most characters of one message or name shown (a 5 MB error text is not echoed)
ATTRIBUTION = "actionable.attribution/1"
STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:left;vertical-align:top}td[data-value]{text-align:right}section{border-top:2px solid #888;"
    "margin-top:2em}.note{color:#555;font-size:.9em}img{max-width:100%}"
)
# the page fetches nothing: no script, no remote style, font or image (only inline style, data: images)
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

Cell = str | int | float | tuple[float, str]  # a tuple: (the raw number, the text shown)
SKIPPED = "skipped (already favoured, --only-denied)"  # the status row of the rows a run left out
DISTINCT = 10_000  # the most distinct error messages counted (a per-row message must not grow the tally)


class _Tally:
    """What one streaming pass over a run's records keeps: counts, the found plans' costs, the first plans.

    Memory is flat in the run's size (the records are seen once, one part at a time, and let go) but for
    ``costs``: exact median and percentiles need every found plan's cost, kept as 8 bytes per found row in a
    float64 buffer (``array("d")``, read as a numpy array without a copy), never as a Python float each."""

    def __init__(self) -> None:
        self.records = self.found = self.explained = self.failed = self.unranked = 0
        self.statuses: Counter[str] = Counter()
        self.costs = array("d")
        self.first_actions: Counter[str] = Counter()
        self.changed: Counter[str] = Counter()
        self.examples: list[Mapping[str, Any]] = []  # the first EXAMPLES found plans, in input order
        self.against: Counter[str] = Counter()
        self.protected: set[str] = set()  # features a record marks protected (shown as such)
        self.targets: set[str] = set()
        self.errors: Counter[str] = Counter()  # by the message as shown (cut to TEXT characters)
        self.attribution = False  # some record is an explain record (for a run whose settings name no verb)

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one record."""
        self.records += 1
        status = _status(record)
        self.statuses[status] += 1
        self.attribution = self.attribution or record.get("format") == ATTRIBUTION
        if record.get("status") == "found":
            self._plan(record)
        elif status == "explained":
            self.explained += 1
            self.against.update(_against(record))
            reasons = record.get("reasons")
            if isinstance(reasons, list) and len(self.protected) < DISTINCT:
                self.protected.update(
                    str(r.get("feature"))
                    for r in reasons
                    if isinstance(r, dict) and r.get("protected") is True
                )
            if record.get("target") is not None:
                self.targets.add(str(record.get("target")))
        elif status == "error":
            self.failed += 1
            message = _clip(str(record.get("error") or "(no message)"), TEXT)
            if message in self.errors or len(self.errors) < DISTINCT:
                self.errors[message] += 1
            else:
                self.unranked += 1

    def _plan(self, record: Mapping[str, Any]) -> None:
        """A found plan: its cost, first action and changed features; kept whole if among the first."""
        self.found += 1
        cost = _number(record.get("cost"))
        if cost is not None:
            self.costs.append(cost)
        steps = record.get("steps")
        if isinstance(steps, list) and steps and isinstance(steps[0], dict) and "action" in steps[0]:
            self.first_actions[str(steps[0]["action"])] += 1
        before, after = record.get("x_before"), record.get("x_after")
        if isinstance(before, dict) and isinstance(after, dict):
            self.changed.update(str(k) for k, v in after.items() if k not in before or before[k] != v)
        if len(self.examples) < EXAMPLES:
            self.examples.append(record)


@dataclass(frozen=True)
class _Run:
    """One finished run: its folder, manifest and tally; which kind of verb; all its input rows and how many
    of them ``--only-denied`` left out (the shares of the status table are of ``rows``)."""

    path: Path
    manifest: Mapping[str, Any]
    tally: _Tally
    verb: str
    recourse: bool
    rows: int
    skipped: int


def _load(path: Path) -> _Run:
    """A finished run in one pass over ``iter_records``, which checks every part (its ``ConfigError`` /
    ``DataError`` propagate); no list of its records is ever built."""
    tally = _Tally()
    for record in iter_records(path):
        tally.add(record)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    parts = manifest.get("parts")
    skipped = sum(int(p.get("skipped", 0)) for p in parts.values()) if isinstance(parts, dict) else 0
    rows = manifest.get("rows")
    rows = rows if isinstance(rows, int) and not isinstance(rows, bool) else tally.records + skipped
    settings = manifest.get("settings")
    verb = str(settings.get("verb", "")) if isinstance(settings, dict) else ""
    if verb in RECOURSE_VERBS or verb == "explain":
        return _Run(path, manifest, tally, verb, verb != "explain", rows, skipped)
    # settings name no verb: the records do
    return _Run(path, manifest, tally, verb or "(not named)", not tally.attribution, rows, skipped)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def _e(value: Any, limit: int = TEXT) -> str:
    """Text from a record or a manifest, cut to ``limit`` characters and HTML-escaped."""
    return html.escape(_clip(str(value), limit), quote=True)


def _number(value: Any) -> float | None:
    """A finite JSON number (never a flag), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _cell(value: Cell, limit: int = TEXT) -> str:
    """One table cell: a number in ``data-value`` (exact: ``repr``) and shown short; text cut and escaped."""
    if isinstance(value, tuple):
        raw, shown = value
        return f'<td data-value="{raw!r}">{_e(shown)}</td>'
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"<td>{_e(value, limit)}</td>"
    if isinstance(value, int):
        return f'<td data-value="{value}">{value}</td>'
    return f'<td data-value="{value!r}">{value:.4g}</td>' if math.isfinite(value) else "<td>-</td>"


def _table(name: str, headers: Sequence[str], rows: Iterable[Sequence[Cell]], limit: int = TEXT) -> str:
    """A table a test finds by ``data-table`` and reads back cell by cell (texts cut to ``limit``)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c, limit) for c in row) + "</tr>" for row in rows)
    return f'<table data-table="{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _image(png: str | None, alt: str) -> str:
    return "" if png is None else f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{png}"></p>'


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """The ``TOP`` most common, most first; ties by name, so the page is the same for the same records."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]


def _share(count: int, total: int) -> tuple[float, str]:
    share = count / total if total else math.nan
    return share, f"{100 * share:.1f}%" if total else "-"


def _status(record: Mapping[str, Any]) -> str:
    """A record's status: its own; an explain record has none (``explained``, or ``error`` with an error)."""
    if "status" in record:
        return str(record["status"])
    if "values" in record:
        return "explained"
    return "error" if "error" in record else "unknown"


def _settings(run: _Run) -> str:
    """The run's input and settings (verb, input, sha256, rows, version, chunk, then the verb's options)."""
    m = run.manifest
    rows: list[Sequence[Cell]] = [
        ("verb", run.verb),
        ("input", str(m.get("input", ""))),
        ("input sha256", str(m.get("input_sha256", ""))),
        ("rows", run.rows),
        ("version", str(m.get("version", ""))),
        ("chunk", m["chunk"] if isinstance(m.get("chunk"), int) else str(m.get("chunk"))),
        ("schema", str(m.get("schema"))),
    ]
    settings = m.get("settings")
    for key, value in sorted(settings.items() if isinstance(settings, dict) else ()):
        if key != "verb":
            plain = isinstance(value, str) or _number(value) is not None
            shown = value if plain else json.dumps(value, ensure_ascii=False)
            rows.append((f"settings: {key}", shown))
    return "<h3>Settings and input</h3>" + _table("settings", ("setting", "value"), rows)


def _statuses(run: _Run) -> str:
    """Rows per status, shares of all input rows; the rows ``--only-denied`` left out as a row of their own."""
    counts = run.tally.statuses
    rows: list[Sequence[Cell]] = [
        (s, n, _share(n, run.rows)) for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    note = f"{run.rows} rows."
    if run.skipped:
        rows.append((SKIPPED, run.skipped, _share(run.skipped, run.rows)))
        note += f" {run.skipped} of them already favoured, left out by --only-denied (no record)."
    return f"<h3>Rows by status</h3><p>{_e(note)}</p>" + _table("status", ("status", "count", "share"), rows)


def _costs(tally: _Tally) -> str:
    """count, mean, median, p10 / p90 and max of the found plans' costs, and their histogram."""
    head = "<h3>Cost of the found plans</h3>"
    if not tally.costs:
        return head + "<p>No row has a found plan with a cost.</p>"
    costs = np.frombuffer(tally.costs, dtype=np.float64)  # a view of the buffer, no copy
    p10, median, p90 = (float(q) for q in np.percentile(costs, [10, 50, 90]))
    stats: list[Sequence[Cell]] = [
        ("count", len(costs)),
        ("mean", float(costs.mean())),
        ("median", median),
        ("p10", p10),
        ("p90", p90),
        ("max", float(costs.max())),
    ]
    png = report_plots.histogram(costs, "Cost of the found plans", "cost")
    return head + _table("cost", ("statistic", "value"), stats) + _image(png, "histogram of plan costs")


def _first_actions(tally: _Tally) -> str:
    rows = [(a, n, _share(n, tally.found)) for a, n in _ranked(tally.first_actions)]
    return "<h3>Most common first actions</h3>" + _table(
        "first_actions", ("first action", "rows", "share of found plans"), rows
    )


def _changed(tally: _Tally) -> str:
    """Features whose value after the plan differs from before, counted once per found row."""
    ranked = _ranked(tally.changed)
    rows = [(f, n, _share(n, tally.found)) for f, n in ranked]
    png = report_plots.bars([f for f, _ in ranked], [n for _, n in ranked], "Features the plans change")
    return (
        "<h3>Features people are told to change</h3>"
        + _table("changed_features", ("feature", "rows", "share of found plans"), rows)
        + _image(png, "features the plans change")
    )


def _examples(found: Sequence[Mapping[str, Any]]) -> str:
    """The first found plans, each step as its sentence."""
    parts = [f"<h3>Example plans (the first {EXAMPLES} found)</h3>"]
    for r in found[:EXAMPLES]:
        steps = r.get("steps")
        texts = (
            [s.get("text", "") if isinstance(s, dict) else s for s in steps]
            if isinstance(steps, list)
            else []
        )
        items = "".join(f"<li>{_e(t)}</li>" for t in texts)
        cost, before, after = (_number(r.get(k)) for k in ("cost", "p_before", "p_after"))
        tail = "" if cost is None else f"cost {cost:.3g}"
        if before is not None and after is not None:
            provenance, outcome = r.get("provenance"), PROBABILITY
            if isinstance(provenance, dict):  # a regression's record names its predicted value
                outcome = str(provenance.get("outcome", PROBABILITY))
            tail += f"; {outcome} {before:.3g} -> {after:.3g}"
        parts.append(f"<p>Row {_e(r.get('row'))}:</p><ol>{items}</ol><p class='note'>{_e(tail)}</p>")
    return "".join(parts) if found else parts[0] + "<p>No row has a found plan.</p>"


def _against(record: Mapping[str, Any]) -> set[str]:
    """The features among a row's top reasons with a negative value (see the module's sign convention)."""
    reasons = record.get("reasons")
    if isinstance(reasons, list):
        pairs = [(r.get("feature"), r.get("value")) for r in reasons if isinstance(r, dict)]
    else:  # a record without ``reasons``: its ``top`` pairs
        top = record.get("top")
        pairs = [
            (p[0], p[1])
            for p in (top if isinstance(top, list) else [])
            if isinstance(p, list) and len(p) == 2
        ]
    return {str(f) for f, v in pairs if (n := _number(v)) is not None and n < 0}


def _reasons(tally: _Tally) -> str:
    targets = sorted(tally.targets)
    ranked = _ranked(tally.against)
    named = [f"{f} (protected)" if f in tally.protected else f for f, _ in ranked]
    rows = [(f, n, _share(n, tally.explained)) for f, (_, n) in zip(named, ranked, strict=True)]
    png = report_plots.bars(named, [n for _, n in ranked], "Reasons against approval")
    note = (
        f"Explained output: {', '.join(targets) or 'not named'}. Counted per row: the features among its top "
        "reasons whose attribution is negative, i.e. pushing that output down. For the default output (the "
        "favourable class) these are the reasons against approval; for another output, read them as "
        "against that output. A feature marked (protected) is one the schema protects: a lender may not give "
        "it as a reason (batch explain --exclude-protected leaves it out)."
    )
    return (
        "<h3>Most common reasons against approval</h3>"
        + f"<p class='note'>{_e(note, 10 * TEXT)}</p>"
        + _table("reasons", ("feature", "rows", "share of explained rows"), rows)
        + _image(png, "reasons against approval")
    )


def _errors(tally: _Tally) -> str:
    rows = sorted(tally.errors.items(), key=lambda kv: (-kv[1], kv[0]))[:MESSAGES]
    note = f"{tally.failed} rows not processed."
    if tally.unranked:
        note += (
            f" {tally.unranked} of them carry a message first seen after {DISTINCT} distinct ones: "
            "counted here, not ranked below."
        )
    # the messages are cut to TEXT characters already (with the count of the rest): not cut again
    return f"<h3>Errors</h3><p>{_e(note)}</p>" + _table(
        "errors", ("error message", "rows"), rows, limit=2 * TEXT
    )


def _section(number: int, run: _Run) -> str:
    """One run's part of the page."""
    tally = run.tally
    body = [_settings(run), _statuses(run)]
    if run.recourse:
        body += [_costs(tally), _first_actions(tally), _changed(tally), _examples(tally.examples)]
    else:
        body.append(_reasons(tally))
    body.append(_errors(tally))
    title = f"Run {number + 1}: {run.verb} of {run.manifest.get('input', '')} ({run.path.name})"
    return f'<section data-run="{number}" data-verb="{_e(run.verb)}"><h2>{_e(title)}</h2>{"".join(body)}</section>'


def build_report(dirs: Sequence[str | Path]) -> str:
    """The HTML page (one section per run folder, in the order given) as text; see the module's text.

    ``ConfigError`` for no folder, or for a folder that holds no finished run (``batch_runs.iter_records``)."""
    if isinstance(dirs, str | Path):
        dirs = [dirs]
    if not dirs:
        raise ConfigError("report: no run folder given; give one or more folders written by a batch run.")
    runs = [_load(Path(d)) for d in dirs]
    hint = "" if report_plots.available() else f"<p class='note'>{_e(report_plots.PLOT_HINT)}</p>"
    sections = "".join(_section(i, run) for i, run in enumerate(runs))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>actionable report</title><style>{STYLE}</style></head><body>"
        f"<h1>actionable report: {len(runs)} run{'s' if len(runs) != 1 else ''}</h1>{hint}{sections}"
        "</body></html>\n"
    )


def write_report(dirs: Sequence[str | Path], out: Path) -> Path:
    """``build_report`` written to ``out`` whole or not at all (``files.atomic_write``); returns ``out``."""
    page = build_report(dirs)
    out = Path(out)
    with atomic_write(out) as handle:
        handle.write(page)
    return out
