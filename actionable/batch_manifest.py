"""A batch run's manifest and parts as files: reading, checking and writing them (``batch_runs`` runs).

``DIR/manifest.json`` names the format, the input's sha256, the settings, the chunk size, the library
version and each finished part's row range, record / skipped / failed counts and checksums; it is checked
key by key before it is trusted (part names are never paths), and links where a run keeps its own files
are refused. ``iter_records`` yields a finished run's records part by part, each part checked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from actionable import files
from actionable.errors import ConfigError, DataError

__all__ = ["FORMAT", "PART", "file_sha256", "iter_records", "plain_file", "read_parts", "save", "start"]

FORMAT = "actionable.batch/1"
PART = re.compile(r"\d{6}\.jsonl")  # a part's name: never a path


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


def start(out: Path, fresh: dict[str, Any], resume: bool) -> dict[str, Any]:
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
                f"batch: --resume with {'other' if key == 'settings' else 'another'} {what} than the run in "
                f"{out} ({_difference(key, old.get(key), fresh[key])}); rerun with the same, or choose another folder."
            )
    return old


def _difference(key: str, there: Any, now: Any) -> str:
    """What differs, briefly: the settings that changed by name, else the two values."""
    if isinstance(there, dict) and isinstance(now, dict):
        changed = sorted(k for k in set(there) | set(now) if there.get(k) != now.get(k))
        shown = "; ".join(f"{k}: {there.get(k)!r} there, {now.get(k)!r} now" for k in changed[:4])
        return shown[:600]
    return f"{key}: {str(there)[:200]!r} there, {str(now)[:200]!r} now"


def plain_file(path: Path) -> bool:
    """A regular file, not a link (a part never points outside its folder)."""
    return path.is_file() and not path.is_symlink() and not path.parent.is_symlink()


def save(out: Path, manifest: Mapping[str, Any]) -> None:
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
        if not plain_file(path) or file_sha256(path) != entry["sha256"]:
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
