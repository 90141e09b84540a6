"""A large CSV read in chunks for a batch run: typed as the schema says, a malformed line kept as a row.

A line with more cells than the header names does not stop the run: it becomes a row of its chunk (so row
numbers stay positions in the file) whose error names its number of cells, and the runner records it as an
``error`` row without passing it to the engine. A short line is a row with missing cells, which the
schema's per-row check names by column. Lines are split by the standard library's ``csv`` reader, which
hands every line to us as it is (pandas' parsers drop or shift a long first line).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import itertools
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from actionable.csv_text import typed
from actionable.errors import DataError
from actionable.schema import Schema

__all__ = ["Chunk", "chunks", "count_rows", "streaming_reference"]

_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


class Chunk:
    """One chunk of the input: the typed rows (indexed by position in the file) and the malformed ones."""

    def __init__(self, frame: pd.DataFrame, malformed: dict[int, str]) -> None:
        self.frame = frame
        self.malformed = malformed

    @property
    def good(self) -> pd.DataFrame:
        """The rows the engine sees: every row but the malformed lines."""
        if not self.malformed:
            return self.frame
        return self.frame.drop(index=list(self.malformed))


def chunks(source: Path, chunk: int, schema: Schema | None) -> Iterator[Chunk]:
    """The CSV in chunks of ``chunk`` rows (never the whole file in memory), read as the command line's
    ``read_csv`` reads a whole file (every cell text, blank lines skipped, a UTF-8 byte-order mark dropped)."""
    opener: Callable[..., Any] = _OPENERS.get(source.suffix.lower(), open)
    try:
        with opener(source, "rt", encoding="utf-8-sig", newline="") as handle:
            lines = (line for line in csv.reader(handle, skipinitialspace=True) if line)
            header = next(lines, None)
            if header is None:
                raise DataError(f"batch: {source} is empty; give a CSV with a header row.")
            if len(set(header)) != len(header):
                repeated = sorted({h for h in header if header.count(h) > 1})
                raise DataError(f"batch: {source}: the header names {repeated} twice; name each column once.")
            start = 0
            while True:
                block = list(itertools.islice(lines, chunk))
                if not block:
                    return
                yield _chunk(block, header, start, schema)
                start += len(block)
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as error:
        raise DataError(f"batch: {source} is not a readable CSV ({error}).") from None


def _chunk(block: list[list[str]], header: list[str], start: int, schema: Schema | None) -> Chunk:
    width = len(header)
    malformed: dict[int, str] = {}
    for i, cells in enumerate(block):
        if len(cells) > width:
            malformed[start + i] = (
                f"row {start + i} has {len(cells)} cells where the header names {width} (a trailing comma, or "
                "an unquoted comma in a value); give it one cell per header column."
            )
            block[i] = [""] * width
        elif len(cells) < width:  # a short line: its last cells are missing, named by the schema's check
            block[i] = cells + [""] * (width - len(cells))
    text = pd.DataFrame(block, columns=header, index=pd.RangeIndex(start, start + len(block)), dtype=object)
    return Chunk(typed(text, schema), malformed)


def streaming_reference(source: Path, schema: Schema, chunk: int) -> tuple[np.ndarray, pd.Series, int]:
    """The mean canonical row and per-feature standard deviations of the input's valid rows, in one pass.

    What ``explain`` uses as its baseline and scale when no training rows are given (as ``training_mean``
    and ``standard_deviations`` on the whole frame), computed chunk by chunk, memory flat in the number of
    rows; chunk statistics are merged exactly (Chan et al.), never as a difference of large sums. The number
    of rows that entered it is returned too."""
    numeric = [f.name for f in schema.features if not f.is_category]
    total = np.zeros(schema.width)
    mean, m2 = np.zeros(len(numeric)), np.zeros(len(numeric))
    count = 0
    for part in chunks(source, chunk, schema):
        good = part.good
        bad = schema.row_errors(good)
        valid = good.drop(index=[good.index[i] for i in bad]) if bad else good
        if not len(valid):
            continue
        clean = schema.validate(valid)
        total += schema.encode(clean).sum(0).numpy().astype(np.float64)
        values = clean[numeric].to_numpy(np.float64)
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
    opener: Callable[..., Any] = _OPENERS.get(source.suffix.lower(), open)
    try:
        with opener(source, "rt", encoding="utf-8-sig", newline="") as handle:
            return max(sum(1 for line in csv.reader(handle, skipinitialspace=True) if line) - 1, 0)
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as error:
        raise DataError(f"batch: {source} is not a readable CSV ({error}).") from None
