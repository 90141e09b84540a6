"""A large CSV read in chunks for a batch run: typed as the schema says, a malformed line kept as a row.

A line with more cells than the header names does not stop the run: it becomes a row of its chunk (so row
numbers stay positions in the file) whose error names its number of cells, and the runner records it as an
``error`` row without passing it to the engine. A short line is a row with missing cells, which the
schema's per-row check names by column. Lines are split by the standard library's ``csv`` reader, which
hands every line to us as it is (pandas' parsers drop or shift a long first line).
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import lzma
import os
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from actionable.csv_text import typed
from actionable.errors import DataError
from actionable.rows import read_rows
from actionable.schema import Schema

__all__ = ["Chunk", "chunks", "count_rows", "streaming_reference"]

_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_ESCAPED = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape decodes it
MAX_CELL = 1 << 24  # the longest cell read (16 MiB; the csv module's default is 128 KiB)


class Chunk:
    """One chunk of the input: the typed rows (indexed by position in the file) and the malformed ones."""

    def __init__(self, frame: pd.DataFrame, malformed: dict[int, str], ids: list[str] | None = None) -> None:
        self.frame = frame
        self.malformed = malformed
        self.ids = ids  # the id column's text per row (``--id``), else None

    @property
    def good(self) -> pd.DataFrame:
        """The rows the engine sees: every row but the malformed lines."""
        if not self.malformed:
            return self.frame
        return self.frame.drop(index=list(self.malformed))


class _Hashing(io.RawIOBase):
    """A binary file that hashes the bytes read through it: the run's identity is what it really read."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw, self.digest = raw, hashlib.sha256()
        # the size when opened: bytes appended later are never read (a file growing as fast as it is read
        # would otherwise never end), and the run refuses a file that changed
        self.size = self.left = os.fstat(raw.fileno()).st_size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self.left]
        n = self.raw.readinto(view) if len(view) else 0  # type: ignore[attr-defined]
        if n:
            self.digest.update(view[:n])
            self.left -= n
        return int(n or 0)


@contextlib.contextmanager
def _text(source: Path) -> Iterator[tuple[io.TextIOWrapper, _Hashing]]:
    """The file as text (decompressed by its suffix; bytes that are not UTF-8 kept as surrogate escapes)
    and the hash of the bytes read so far."""
    with open(source, "rb") as raw:
        hashing = _Hashing(raw)
        opener = _OPENERS.get(source.suffix.lower())
        binary = io.BufferedReader(hashing) if opener is None else opener(hashing, "rb")
        yield io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline=""), hashing


def chunks(
    source: Path,
    chunk: int,
    schema: Schema | None,
    *,
    sha256: str | None = None,
    id_column: str | None = None,
) -> Iterator[Chunk]:
    """The CSV in chunks of ``chunk`` rows (never the whole file in memory), read as the command line's
    ``read_csv`` reads a whole file (every cell text, blank lines skipped, a UTF-8 byte-order mark dropped).

    Every line after the header is a row, so ``row`` numbers lines: a blank line or one with bytes that are
    not UTF-8 is a malformed row like a long one. ``sha256``: the digest the run recorded; the bytes read
    are hashed as they go and a file that changed meanwhile is refused. ``id_column``: a column whose text
    (as written, never typed) each record carries as ``id``."""
    start = 0
    try:
        csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))
        with _text(source) as (handle, hashing):
            lines = csv.reader(handle, skipinitialspace=True)
            header = _header(source, next((line for line in lines if line), None), schema, id_column)
            while True:
                block = list(itertools.islice(lines, chunk))
                if not block:
                    break
                yield _chunk(block, header, start, schema, id_column)
                start += len(block)
            while handle.read(1 << 20):  # to the end, so every byte is hashed
                pass
            digest = hashing.digest.hexdigest()
            if source.stat().st_size != hashing.size:
                digest = ""  # grew or shrank while read: not the file the run recorded
    except (csv.Error, OSError, EOFError, zlib.error, lzma.LZMAError) as error:
        raise DataError(
            f"batch: {source} cannot be read past row {start} ({error}); fix that line, or split the file there."
        ) from None
    if sha256 is not None and digest != sha256:
        raise DataError(
            f"batch: {source} changed while the run read it (its sha256 is not the one recorded at the start); "
            "let the file be written whole first, then run (or --resume) again."
        )


def _header(
    source: Path, header: list[str] | None, schema: Schema | None, id_column: str | None
) -> list[str]:
    """The header row, checked: present, each name once, every schema feature (and the id column) there."""
    if header is None:
        raise DataError(f"batch: {source} is empty; give a CSV with a header row.")
    if len(set(header)) != len(header):
        repeated = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"batch: {source}: the header names {repeated} twice; name each column once.")
    missing = [] if schema is None else [name for name in schema.names if name not in header]
    if missing:
        raise DataError(
            f"batch: {source} has no column(s) {missing[:8]} that the schema declares (its header: "
            f"{[h[:40] for h in header[:8]]}{' ...' if len(header) > 8 else ''}); name the columns as the schema does."
        )
    if id_column is not None and id_column not in header:
        raise DataError(
            f"batch: {source} has no column {id_column!r} for --id; name one of its header's columns."
        )
    return header


def _chunk(
    block: list[list[str]], header: list[str], start: int, schema: Schema | None, id_column: str | None
) -> Chunk:
    width = len(header)
    at = None if id_column is None else header.index(id_column)
    ids = None if at is None else [cells[at] if len(cells) > at else "" for cells in block]
    malformed: dict[int, str] = {}
    for i, cells in enumerate(block):
        if not cells:
            malformed[start + i] = (
                f"row {start + i} is a blank line; remove it or give it one cell per column."
            )
            block[i] = [""] * width
        elif len(cells) > width:
            malformed[start + i] = (
                f"row {start + i} has {len(cells)} cells where the header names {width} (a trailing comma, or "
                "an unquoted comma in a value); give it one cell per header column."
            )
            block[i] = [""] * width
        elif _ESCAPED.search("".join(cells)):
            malformed[start + i] = (
                f"row {start + i} holds bytes that are not UTF-8 text; save the file as UTF-8."
            )
            block[i] = [""] * width
        elif len(cells) < width:  # a short line: its last cells are missing, named by the schema's check
            block[i] = cells + [""] * (width - len(cells))
    text = pd.DataFrame(block, columns=header, index=pd.RangeIndex(start, start + len(block)), dtype=object)
    return Chunk(typed(text, schema), malformed, ids)


def streaming_reference(source: Path, schema: Schema, chunk: int) -> tuple[np.ndarray, pd.Series, int]:
    """The mean canonical row and per-feature standard deviations of the input's valid rows, in one pass.

    What ``explain`` uses as its baseline and scale when no training rows are given (as ``training_mean``
    and ``standard_deviations`` on the whole frame), computed chunk by chunk, memory flat in the number of
    rows; chunk statistics are merged exactly (Chan et al.), never as a difference of large sums. The number
    of rows that entered it is returned too."""
    numeric = [f.name for f in schema.features if not f.is_category]
    at = [schema.columns.index(name) for name in numeric]  # a number's canonical column is its raw value
    total = np.zeros(schema.width)
    mean, m2 = np.zeros(len(numeric)), np.zeros(len(numeric))
    count = 0
    for part in chunks(source, chunk, schema):
        x = read_rows(schema, part.good, "batch explain").x.numpy()  # the valid rows, checked once
        if not len(x):
            continue
        total += x.sum(0)
        values = x[:, at]
        n, here = len(values), values.mean(0)
        delta = here - mean
        m2 += ((values - here) ** 2).sum(0) + delta**2 * count * n / (count + n)
        mean += delta * n / (count + n)
        count += n
    if count == 0:
        raise DataError(
            f"batch explain: no row of {source} fits the schema, so there is no mean to explain against; "
            "give --reference rows or --baseline zeros."
        )
    spread = dict(zip(numeric, np.sqrt(m2 / count), strict=True))
    sd = {
        f.name: 1.0 if f.is_category or spread[f.name] <= 0 else float(spread[f.name])
        for f in schema.features
    }
    return total / count, pd.Series(sd, name="sd"), count


def count_rows(source: Path) -> int:
    """The number of rows ``chunks`` will read (one quick pass; for a progress bar's total)."""
    try:
        csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))
        with _text(source) as (handle, _):
            lines = csv.reader(handle, skipinitialspace=True)
            return sum(1 for _ in lines) if next((line for line in lines if line), None) is not None else 0
    except (csv.Error, OSError, EOFError, zlib.error, lzma.LZMAError) as error:
        raise DataError(f"batch: {source} is not a readable CSV ({error}).") from None
