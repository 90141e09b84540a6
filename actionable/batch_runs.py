"""Resumable runs over a CSV too large for memory: checksummed parts and a manifest (issue 14, part one).

``run_parts`` reads a CSV in chunks of ``chunk`` rows (never the whole file), asks ``answer`` for one JSON
record per row of each chunk (the frame's index is the row's position in the file, which records carry as
``row``), and writes each finished chunk whole or not at all (temporary file, fsync, rename) as
``DIR/parts/NNNNNN.jsonl``. ``DIR/manifest.json``, rewritten the same way after every part, holds the
input's sha256, the settings, the chunk size, the library version and each finished part's row range,
record count and sha256. ``resume=True`` finishes an interrupted run (a crash, ``kill -9``): a part whose
checksum matches the manifest is kept, a missing, truncated or corrupt one is computed again; another
input, other settings or another chunk size are refused, as is a folder that holds something else. If
``answer`` raises on a chunk, every row of it becomes an ``error`` record naming the failure: rows out
always equal rows in.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from actionable import files
from actionable._version import __version__
from actionable.csv_text import LONG_ROW, TEXT, typed
from actionable.errors import ConfigError, DataError
from actionable.schema import Schema

__all__ = ["FORMAT", "Answer", "RunSummary", "file_sha256", "read_parts", "run_parts", "synthesis_answer"]

FORMAT = "actionable.batch/1"
PART = re.compile(r"\d{6}\.jsonl")  # a part's name: never a path
Answer = Callable[[pd.DataFrame], Sequence[Mapping[str, Any]]]
"""One JSON-ready record per row of a chunk, in order."""


@dataclass(frozen=True)
class RunSummary:
    """What a run did: rows in (= records out), parts written now, parts kept from before, error rows."""

    rows: int
    written: int
    kept: int
    failed: int
    out: Path


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks (memory flat in its size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(out: Path) -> dict[str, Any] | None:
    path = out / "manifest.json"
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"batch: {path} is not a readable manifest ({error}); use an empty --out folder."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"batch: {path} is not an actionable batch manifest; use an empty --out folder.")
    parts = data.get("parts")
    keys = {"start": int, "stop": int, "records": int, "failed": int, "sha256": str}
    good = isinstance(parts, dict) and all(
        isinstance(name, str)
        and PART.fullmatch(name)
        and isinstance(entry, dict)
        and all(isinstance(entry.get(k), t) and not isinstance(entry.get(k), bool) for k, t in keys.items())
        for name, entry in parts.items()
    )
    if not good:
        raise ConfigError(
            f"batch: {path} lists its parts in a shape this library never writes (edited by hand?); start the run "
            "again in an empty --out folder."
        )
    return data


def _start(out: Path, fresh: dict[str, Any], resume: bool) -> dict[str, Any]:
    """The manifest this run continues (``resume``) or starts; refuses a folder holding something else."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"batch: --out {out} is a file; give a folder (new or empty) for the run.")
    old = _manifest(out) if out.is_dir() else None
    if old is None:
        if out.is_dir() and any(out.iterdir()):
            raise ConfigError(
                f"batch: {out} is not empty and holds no batch run; choose an empty --out folder."
            )
        return fresh
    if not resume:
        raise ConfigError(
            f"batch: {out} holds a run already; pass --resume to finish it, or choose another folder."
        )
    pairs = (
        ("input_sha256", "input"),
        ("settings", "settings"),
        ("chunk", "chunk size"),
        ("schema", "schema"),
        ("version", "library version"),
    )
    for key, what in pairs:
        if old.get(key) != fresh[key]:
            raise ConfigError(
                f"batch: --resume with another {what} than the run in {out} ({key}: {old.get(key)!r} there, "
                f"{fresh[key]!r} now); rerun with the same, or choose another folder."
            )
    return old


def _chunks(source: Path, chunk: int, schema: Schema | None) -> Iterator[pd.DataFrame]:
    """The CSV in frames of ``chunk`` rows, typed as the schema says (``csv_text``), indexed by position."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            for text in pd.read_csv(source, chunksize=chunk, **TEXT):
                yield typed(text, schema)
    except pd.errors.ParserWarning:
        raise DataError(f"batch: {source}: {LONG_ROW}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as error:
        raise DataError(f"batch: {source} is not a readable CSV ({error}).") from None


def _records(answer: Answer, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``answer`` on one chunk, checked: one record per row; a failure becomes an error record per row."""
    try:
        records = [dict(r) for r in answer(frame)]
        if len(records) != len(frame):
            raise ValueError(f"{len(records)} records for {len(frame)} rows")
        rows = [r.get("row") for r in records]
        if rows != [int(i) for i in frame.index]:
            raise ValueError("the records' 'row' fields are not the chunk's rows in order")
    except Exception as error:
        message = f"the chunk failed: {type(error).__name__}: {error}"
        return [{"row": int(i), "status": "error", "error": message} for i in frame.index]
    return records


def run_parts(
    source: str | Path,
    out: str | Path,
    answer: Answer,
    *,
    settings: Mapping[str, Any],
    chunk: int = 1000,
    resume: bool = False,
    schema: Schema | None = None,
) -> RunSummary:
    """Run ``answer`` over ``source`` in checksummed, resumable parts under ``out`` (see the module's text);
    ``schema`` types the cells as it says (category levels as text), else numbers where every cell is one."""
    source, out = Path(source), Path(out)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"batch: chunk = {chunk!r}; give a whole number of rows >= 1.")
    if not source.is_file():
        raise DataError(f"batch: {source} is not a file; give the CSV of rows to run.")
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"batch: settings = {settings!r}; give a mapping of JSON values (what the run used)."
        )
    try:
        plain = json.loads(json.dumps(dict(settings), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"batch: settings must be plain JSON values (finite numbers, text, lists): {error}."
        ) from None
    fresh = {
        "format": FORMAT,
        "input": source.name,
        "input_sha256": file_sha256(source),
        "schema": None if schema is None else schema.hash,
        "settings": plain,
        "chunk": chunk,
        "version": __version__,
        "parts": {},
        "complete": False,
    }
    manifest = _start(out, fresh, resume)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    rows = written = kept = failed = 0
    for number, frame in enumerate(c for c in _chunks(source, chunk, schema) if len(c)):
        name = f"{number:06d}.jsonl"
        path, entry = out / "parts" / name, manifest["parts"].get(name)
        rows += len(frame)
        if entry is not None and path.is_file() and file_sha256(path) == entry["sha256"]:
            kept += 1
            failed += int(entry["failed"])
            continue
        records = _records(answer, frame)
        text = "".join(json.dumps(_clean(r), allow_nan=False, default=str) + "\n" for r in records)
        with files.atomic_write(path) as handle:
            handle.write(text)
        bad = sum(r.get("status") == "error" for r in records)
        manifest["parts"][name] = {
            "start": int(frame.index[0]),
            "stop": int(frame.index[-1]) + 1,
            "records": len(records),
            "failed": bad,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
        _save(out, manifest)
        written += 1
        failed += bad
    manifest["rows"], manifest["complete"] = rows, True
    _save(out, manifest)
    return RunSummary(rows, written, kept, failed, out)


def _clean(value: Any) -> Any:
    """A record as strict JSON: non-finite numbers as null, containers walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _save(out: Path, manifest: Mapping[str, Any]) -> None:
    with files.atomic_write(out / "manifest.json") as handle:
        handle.write(json.dumps(manifest, indent=1, allow_nan=False) + "\n")


def read_parts(out: str | Path) -> list[dict[str, Any]]:
    """Every record of a finished run, in input order (each part checked against the manifest)."""
    out = Path(out)
    manifest = _manifest(out)
    if manifest is None or not manifest.get("complete"):
        raise ConfigError(f"batch: {out} holds no finished run; run it (or --resume it) first.")
    records: list[dict[str, Any]] = []
    for name in sorted(manifest["parts"]):
        path, entry = out / "parts" / name, manifest["parts"][name]
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            raise DataError(f"batch: {path} is missing or does not match its checksum; --resume the run.")
        part = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        span = entry["stop"] - entry["start"]
        if entry["start"] != len(records) or len(part) != entry["records"] or entry["records"] != span:
            raise DataError(f"batch: {path} does not continue the rows before it; --resume the run.")
        records += part
    if len(records) != manifest.get("rows"):
        raise DataError(
            f"batch: {out} holds {len(records)} records for {manifest.get('rows')} rows; --resume it."
        )
    return records


def synthesis_answer(model: Any, actions: Any, **options: Any) -> Answer:
    """``synthesize`` on each chunk with fixed options, as ``run_parts`` takes it (records as the JSON Lines)."""
    from actionable.synthesis import synthesize

    def answer(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [r.to_dict() for r in synthesize(model, frame, actions, **options)]

    return answer
