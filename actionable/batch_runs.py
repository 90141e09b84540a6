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

import hashlib
import json
import math
import os
import re
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
from actionable.batch_parquet import parquet_bytes, require_pyarrow
from actionable.errors import ConfigError, DataError
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

FORMAT = "actionable.batch/1"
PART = re.compile(r"\d{6}\.jsonl")  # a part's name: never a path
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


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks (memory flat in its size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(out: Path) -> dict[str, Any] | None:
    path = out / "manifest.json"
    if path.is_symlink() or (out / "parts").is_symlink():
        raise ConfigError(
            f"batch: {out} holds a link where a run keeps its own files; use an empty --out folder."
        )
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
    keys = {"start": int, "stop": int, "records": int, "skipped": int, "failed": int, "sha256": str}
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


def _merged(chunk: Chunk, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The engine's records with the chunk's malformed lines put back in place as ``error`` records."""
    if not chunk.malformed:
        return records
    answered = iter(records)
    return [
        {"row": int(i), "status": "error", "error": chunk.malformed[int(i)]}
        if int(i) in chunk.malformed
        else next(answered)
        for i in chunk.frame.index
    ]


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
) -> RunSummary:
    """Run ``answer`` over ``source`` in checksummed, resumable parts under ``out`` (see the module's text).

    ``answer``: a ``Job`` (its engine is built once; with ``backend="dask"`` the chunks run on a Dask
    cluster: ``workers`` local processes, or the one at ``scheduler``) or any function of a chunk.
    ``schema`` types the cells as it says (a job's own schema by default). ``parquet``: each part also as
    ``NNNNNN.parquet`` (``batch_parquet``). ``settings``: what the manifest records of the run (a job's own
    settings are added), so that a resume with others is refused."""
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
        schema = Schema.from_toml(answer.schema)
    plain = _plain_settings(settings, answer, parquet)
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
        manifest = _start(out, fresh, resume)
        (out / "parts").mkdir(parents=True, exist_ok=True)
        _save(out, manifest)
        run = _Run(out, manifest, parquet, progress)
        work = run.todo(chunks(source, chunk, schema, sha256=digest))
        if backend == "dask" and isinstance(answer, Job):
            from actionable.batch_dask import run_on_dask

            results = run_on_dask(answer, work, workers=workers, scheduler=scheduler)
        else:
            engine = answer.engine() if isinstance(answer, Job) else answer
            results = ((number, c, answer_chunk(engine, c.good)) for number, c in work)
        for number, part, records in results:
            run.write(number, part, _merged(part, records))
        stale = [name for name in manifest["parts"] if int(name[:6]) >= run.parts]
        for name in stale:  # entries past the input's last chunk (a hand-edited manifest): never counted
            del manifest["parts"][name]
        manifest["rows"], manifest["complete"] = run.rows, True
        _save(out, manifest)
    return RunSummary(run.rows, run.written, run.kept, run.failed, out, run.skipped)


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
        if not _plain_file(path) or file_sha256(path) != entry["sha256"]:
            return False
        if not self.parquet:
            return True
        table = path.with_suffix(".parquet")
        return _plain_file(table) and file_sha256(table) == entry.get("parquet_sha256")

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
        _save(self.out, self.manifest)
        self.written += 1
        self.failed += entry["failed"]
        self.skipped += entry["skipped"]
        if self.progress is not None:
            self.progress(len(part.frame))


def _plain_file(path: Path) -> bool:
    """A regular file, not a link (a part never points outside its folder)."""
    return path.is_file() and not path.is_symlink() and not path.parent.is_symlink()


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


def _save(out: Path, manifest: Mapping[str, Any]) -> None:
    with files.atomic_write(out / "manifest.json") as handle:
        handle.write(json.dumps(manifest, indent=1, allow_nan=False) + "\n")


def read_parts(out: str | Path) -> list[dict[str, Any]]:
    """Every record of a finished run, in input order (each part checked against the manifest)."""
    return list(iter_records(out))


def iter_records(out: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a finished run one part at a time, in input order (memory flat in the run's size).

    Every part is checked before its records are yielded: its checksum, that it continues the rows before
    it, and that its records and skipped rows fill its range; the run's row count is checked at the end."""
    out = Path(out)
    manifest = _manifest(out)
    if manifest is None or not manifest.get("complete"):
        raise ConfigError(f"batch: {out} holds no finished run; run it (or --resume it) first.")
    seen = 0
    for name in sorted(manifest["parts"]):
        path, entry = out / "parts" / name, manifest["parts"][name]
        if not _plain_file(path) or file_sha256(path) != entry["sha256"]:
            raise DataError(
                f"batch: {path} is missing, a link, or does not match its checksum; --resume the run."
            )
        part = _read_part(path)
        rows = [r.get("row") if isinstance(r, dict) else None for r in part]
        span = entry["stop"] - entry["start"]
        if (
            entry["start"] != seen
            or len(part) != entry["records"]
            or entry["records"] + entry["skipped"] != span
            or any(not isinstance(r, int) or not entry["start"] <= r < entry["stop"] for r in rows)
            or rows != sorted(set(rows))  # type: ignore[type-var]
        ):
            raise DataError(f"batch: {path} does not continue the rows before it; --resume the run.")
        yield from part
        seen = entry["stop"]
    if seen != manifest.get("rows"):
        raise DataError(f"batch: {out} holds parts for {seen} rows of {manifest.get('rows')}; --resume it.")


def _read_part(path: Path) -> list[Any]:
    """A part's records; text that is not JSON Lines (a part written by something else) is a ``DataError``."""
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (ValueError, RecursionError) as error:  # JSON, UTF-8, a 5,000-digit number
        raise DataError(
            f"batch: {path} is not a part this library wrote ({str(error)[:200]}); --resume the run."
        ) from None


def synthesis_answer(model: Any, actions: Any, **options: Any) -> Answer:
    """``synthesize`` on each chunk with fixed options, as ``run_parts`` takes it (records as the JSON Lines)."""
    from actionable.synthesis import synthesize

    def answer(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [r.to_dict() for r in synthesize(model, frame, actions, **options)]

    return answer
