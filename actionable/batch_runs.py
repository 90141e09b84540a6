"""Resumable runs over a CSV too large for memory: checksummed parts and a manifest.

``run_parts`` reads a CSV in chunks of ``chunk`` rows (``batch_input``: never the whole file), asks
``answer`` (a ``Job``'s engine, built once, or any function) for one JSON record per row of each chunk (the
frame's index is the row's position in the file, which records carry as ``row``), and writes each finished
chunk whole or not at all (temporary file, fsync, rename) as ``DIR/parts/NNNNNN.jsonl`` (and
``NNNNNN.parquet``). ``DIR/manifest.json``, rewritten the same way after every part, holds the input's
sha256, the settings, the chunk size, the library version and each finished part's row range, record,
skipped and failed counts and checksums. ``resume=True`` finishes an interrupted run (a crash, ``kill -9``):
a part whose checksum matches is kept, a missing, truncated or corrupt one is computed again; another input,
other settings or another chunk size are refused, as is a folder that holds something else or that another
run is writing. A malformed line, or every row of a chunk whose engine raises, becomes an ``error`` record:
rows out equal rows in, but for the rows ``--only-denied`` leaves out, which the manifest counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from actionable import files
from actionable._version import __version__
from actionable.batch_engine import SKIP, answer_chunk
from actionable.batch_input import Chunk, chunks
from actionable.batch_jobs import Job
from actionable.batch_manifest import FORMAT, file_sha256, iter_records, plain_file, read_parts, save, start
from actionable.batch_parquet import parquet_bytes, require_pyarrow
from actionable.errors import ConfigError, DataError, ModelError, SpecError
from actionable.schema import Schema

__all__ = [
    "FORMAT",
    "Answer",
    "RunSummary",
    "answer_chunk",
    "file_sha256",
    "iter_records",
    "read_parts",
    "run_parts",
    "synthesis_answer",
]

MAX_CHUNK = 10_000_000  # rows per part at most
Progress = Callable[[int], None]
"""Called as ``progress(rows)`` after each part with the rows it held (written or kept)."""
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
    skipped: int = 0


def _merged(chunk: Chunk, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The engine's records with the chunk's malformed lines put back in place as ``error`` records, each
    with its ``id`` (``--id``) when the run has one."""
    answered = iter(records)
    rows = [int(i) for i in chunk.frame.index]
    merged = [
        {"row": row, "status": "error", "error": chunk.malformed[row]}
        if row in chunk.malformed
        else next(answered)
        for row in rows
    ]
    if chunk.ids is not None:
        for row, record in zip(rows, merged, strict=True):
            record.setdefault("id", chunk.ids[row - rows[0]])
    return merged


def run_parts(
    source: str | Path,
    out: str | Path,
    answer: Answer | Job,
    *,
    settings: Mapping[str, Any] | None = None,
    chunk: int = 1000,
    resume: bool = False,
    schema: Schema | None = None,
    parquet: bool = False,
    backend: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    id_column: str | None = None,
) -> RunSummary:
    """Run ``answer`` over ``source`` in checksummed, resumable parts under ``out`` (see the module's text).

    ``answer``: a ``Job`` (its engine is built once; with ``backend="dask"`` the chunks run on a Dask
    cluster: ``workers`` local processes, or the one at ``scheduler``) or any function of a chunk.
    ``schema`` types the cells as it says (a job's own schema by default). ``parquet``: each part also as
    ``NNNNNN.parquet`` (``batch_parquet``). ``settings``: what the manifest records of the run (a job's own
    settings are added), so that a resume with others is refused. ``id_column``: a column of the CSV each
    record carries as ``id`` (its text as written), to join records back to the input."""
    source, out = Path(source), Path(out)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
        raise ConfigError(f"batch: chunk = {chunk!r}; give a whole number of rows from 1 to {MAX_CHUNK:,}.")
    if backend not in ("local", "dask"):
        raise ConfigError(f"batch: backend = {backend!r}; use 'local' or 'dask'.")
    if backend == "dask" and not isinstance(answer, Job):
        raise ConfigError(
            "batch: backend='dask' runs a Job (its files travel as bytes); give a Job as the answer."
        )
    if not source.is_file():
        raise DataError(f"batch: {source} is not a file; give the CSV of rows to run.")
    if parquet:
        require_pyarrow()
    if isinstance(answer, Job) and schema is None:
        schema = answer.parsed_schema()
    plain = _plain_settings(settings, answer, parquet)
    if id_column is not None:
        plain["id_column"] = str(id_column)
    digest = file_sha256(source)
    fresh = {
        "format": FORMAT,
        "input": source.name,
        "input_sha256": digest,
        "schema": None if schema is None else schema.hash,
        "settings": plain,
        "chunk": chunk,
        "version": __version__,
        "parts": {},
        "complete": False,
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # the lock (``OUT.lock``) lies beside the folder
    except OSError as error:
        raise ConfigError(
            f"batch: cannot make the folder for --out {out} ({error.strerror}); choose another."
        ) from None
    with files.locked(os.path.realpath(out)):  # one lock whatever link names the folder
        manifest = start(out, fresh, resume)
        began = manifest is fresh
        (out / "parts").mkdir(parents=True, exist_ok=True)
        save(out, manifest)
        run = _Run(out, manifest, parquet, progress)
        work = run.todo(chunks(source, chunk, schema, sha256=digest, id_column=id_column))
        try:
            for number, part, records in _results(answer, work, backend, workers, scheduler):
                run.write(number, part, _merged(part, records))
        except (SpecError, ConfigError, ModelError):
            if began and run.written == 0:  # settings refused before any part: the folder is as it was
                _undo(out)
            raise
        stale = [name for name in manifest["parts"] if int(name[:6]) >= run.parts]
        for name in stale:  # entries past the input's last chunk (a hand-edited manifest): never counted
            del manifest["parts"][name]
        manifest["rows"], manifest["complete"] = run.rows, True
        save(out, manifest)
    return RunSummary(run.rows, run.written, run.kept, run.failed, out, run.skipped)


def _results(
    answer: Answer | Job,
    work: Iterator[tuple[int, Chunk]],
    backend: str,
    workers: int | None,
    scheduler: str | None,
) -> Iterator[tuple[int, Chunk, list[dict[str, Any]]]]:
    """``(number, chunk, records)`` for the chunks that need work. With Dask the first chunk is answered
    here first: settings that fail every row stop the run at once, before a cluster starts."""
    engine = answer.engine() if isinstance(answer, Job) else answer
    if backend == "dask" and isinstance(answer, Job):
        from actionable.batch_dask import run_on_dask

        first = next(work, None)
        if first is None:
            return
        yield first[0], first[1], answer_chunk(engine, first[1].good)
        yield from run_on_dask(answer, work, workers=workers, scheduler=scheduler)
        return
    for number, part in work:
        yield number, part, answer_chunk(engine, part.good)


def _undo(out: Path) -> None:
    """Remove what a run that wrote no part left: its manifest and empty parts folder (never anything else)."""
    (out / "manifest.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (out / "parts").rmdir()


def _plain_settings(
    settings: Mapping[str, Any] | None, answer: Answer | Job, parquet: bool
) -> dict[str, Any]:
    if settings is not None and not isinstance(settings, Mapping):
        raise ConfigError(
            f"batch: settings = {settings!r}; give a mapping of JSON values (what the run used)."
        )
    merged = dict(settings or {})
    if isinstance(answer, Job):
        merged = {**answer.settings(), **merged}
    if parquet:
        merged["parquet"] = True
    try:
        plain: dict[str, Any] = json.loads(json.dumps(merged, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"batch: settings must be plain JSON values (finite numbers, text, lists): {error}."
        ) from None
    return plain


class _Run:
    """The parts of one run as they are kept or written, and the counts the summary reports."""

    def __init__(self, out: Path, manifest: dict[str, Any], parquet: bool, progress: Progress | None) -> None:
        self.out, self.manifest, self.parquet, self.progress = out, manifest, parquet, progress
        self.rows = self.written = self.kept = self.failed = self.skipped = self.parts = 0

    def todo(self, parts: Iterable[Chunk]) -> Iterator[tuple[int, Chunk]]:
        """The chunks that still need work, numbered; parts whose files match the manifest are kept."""
        for number, part in enumerate(parts):
            self.rows += len(part.frame)
            self.parts = number + 1
            entry = self.manifest["parts"].get(_name(number))
            if entry is not None and self._intact(number, part, entry):
                self.kept += 1
                self.failed += int(entry["failed"])
                self.skipped += int(entry["skipped"])
                if self.progress is not None:
                    self.progress(len(part.frame))
                continue
            yield number, part

    def _intact(self, number: int, part: Chunk, entry: Mapping[str, Any]) -> bool:
        """The part's files match the manifest, and its entry describes this chunk (else it is redone)."""
        path = self.out / "parts" / _name(number)
        first, last = int(part.frame.index[0]), int(part.frame.index[-1]) + 1
        fits = (entry["start"], entry["stop"]) == (first, last) and 0 <= entry["failed"] <= entry["records"]
        if not fits or entry["records"] + entry["skipped"] != last - first or entry["skipped"] < 0:
            return False
        if not plain_file(path) or file_sha256(path) != entry["sha256"]:
            return False
        if not self.parquet:
            return True
        table = path.with_suffix(".parquet")
        return plain_file(table) and file_sha256(table) == entry.get("parquet_sha256")

    def write(self, number: int, part: Chunk, records: list[dict[str, Any]]) -> None:
        """One finished part: its files written whole (parquet first), then the manifest that counts it."""
        kept = [_clean(r) for r in records if not r.get(SKIP)]
        text = "".join(json.dumps(r, allow_nan=False, default=str) + "\n" for r in kept)
        path = self.out / "parts" / _name(number)
        entry: dict[str, Any] = {
            "start": int(part.frame.index[0]),
            "stop": int(part.frame.index[-1]) + 1,
            "records": len(kept),
            "skipped": len(records) - len(kept),
            "failed": sum(r.get("status") == "error" for r in kept),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
        if self.parquet:
            table = parquet_bytes(kept)
            with files.atomic_write(path.with_suffix(".parquet"), binary=True) as handle:
                handle.write(table)
            entry["parquet_sha256"] = hashlib.sha256(table).hexdigest()
        with files.atomic_write(path) as handle:
            handle.write(text)
        self.manifest["parts"][path.name] = entry
        save(self.out, self.manifest)
        self.written += 1
        self.failed += entry["failed"]
        self.skipped += entry["skipped"]
        if self.progress is not None:
            self.progress(len(part.frame))


def _name(number: int) -> str:
    return f"{number:06d}.jsonl"


def _clean(value: Any) -> Any:
    """A record as strict JSON: non-finite numbers as null, containers walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def synthesis_answer(model: Any, actions: Any, **options: Any) -> Answer:
    """``synthesize`` on each chunk with fixed options, as ``run_parts`` takes it (records as the JSON Lines)."""
    from actionable.synthesis import synthesize

    def answer(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [r.to_dict() for r in synthesize(model, frame, actions, **options)]

    return answer
