"""What a command writes: output paths checked and locked before any work, the one JSON Lines writer, and
the one reporter of rows not processed.

``writable`` refuses an output that would replace an input, lies in a missing or read-only folder, or is
being written by another run, before a long run starts. ``write_jsonl`` writes one record per line whole or
not at all. ``report_failures`` says on stderr which rows were not processed and why, so exit code 1 never
comes without a reason; the full messages are in ``--json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from actionable import files
from actionable.cli._shell import capped, console, errors, locks
from actionable.errors import ConfigError

__all__ = ["failures_of", "report_failures", "writable", "write_jsonl"]


def writable(reads: tuple[Path | None, ...] = (), **paths: Path | None) -> None:
    """Output files are checked (and locked against other runs) before any work, so a typo in a folder name
    or a clash with another run never costs a finished run. An output that is one of the files the command
    ``reads`` (or lies in a model folder it reads) is refused: ``--json rows.csv`` replaced the data."""
    inputs = [Path(os.path.realpath(p)) for p in reads if p is not None]
    for option, path in paths.items():
        if path is None:
            continue
        target = Path(os.path.realpath(path))
        clash = next((p for p in inputs if target == p or p in target.parents), None)
        if clash is not None:
            raise ConfigError(
                f"--{option} {path}: is an input of this run ({clash}); writing it would replace it. Choose "
                "another output path."
            )
        _check_output(option, path)
        if locks:  # held until the command ends: a second run writing the same path is refused now
            try:
                locks[-1].enter_context(files.locked(path))
            except ConfigError as exc:
                raise ConfigError(f"--{option} {exc}") from None


def _check_output(option: str, path: Path) -> None:
    """A file path (not a folder, not a planted link) in an existing, writable folder."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--{option} {path}: is a folder; give a file name inside it.")
    try:
        files.check_target(path)
    except ConfigError as exc:
        raise ConfigError(f"--{option} {exc}") from None
    if not folder.is_dir():
        raise ConfigError(
            f"--{option} {path}: folder {folder} does not exist; create it or choose another path."
        )
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"--{option} {path}: folder {folder} is not writable; choose another path.")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One JSON record per line (UTF-8, numpy scalars as plain numbers), replacing ``path`` whole or not at
    all; says how many were written."""
    count = 0
    with files.atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=_plain_json) + "\n")
            count += 1
    console.print(f"wrote {count} records to {path}")


def _plain_json(value: Any) -> Any:
    """numpy scalars (row labels) as plain JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def failures_of(batch: Any) -> list[tuple[Any, str]]:
    """(row label, message) of each record of ``batch`` that is an error, in order (a record's ``row`` is
    the input row's label: the CSV's data row, or the dataset's row label)."""
    return [(r.row, r.error) for r in batch if r.status == "error"]


def report_failures(failures: Iterable[tuple[Any, str]], show: int | None = 5) -> None:
    """One line on stderr per row not processed (the first ``show``, or all when None), then how many more;
    a long message (a huge cell quoted in it) is cut, the full text is in --json."""
    failed = list(failures)
    for label, message in failed if show is None else failed[:show]:
        errors.print(
            f"Row {capped(str(label), 80)} not processed: {capped(message)}", highlight=False, markup=False
        )
    if show is not None and len(failed) > show:
        errors.print(f"... and {len(failed) - show} more failed rows (all are in --json).", highlight=False)
