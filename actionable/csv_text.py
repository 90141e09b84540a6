"""A CSV's cells as a schema says, never guessed: the reading options and the typing of text columns.

Shared by the command line's ``read_csv`` (a whole file) and ``batch_runs`` (a file in chunks), so both read
``NA``, ``None`` or ``01`` as the category levels they are and numbers as numbers, and keep a bad cell as text
for the schema's per-row check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from actionable.schema import Schema

__all__ = ["LONG_ROW", "TEXT", "typed"]

# every cell as text, only an empty cell missing; index_col=False keeps a long row from shifting into the index
TEXT: dict[str, Any] = {
    "dtype": str,
    "keep_default_na": False,
    "na_filter": False,
    "skipinitialspace": True,
    "encoding": "utf-8-sig",
    "index_col": False,
}
LONG_ROW = (
    "a row has more cells than the header row names (a trailing comma, or an unquoted comma in a value); give "
    "every row one cell per header column."
)


def typed(text: pd.DataFrame, schema: Schema | None) -> pd.DataFrame:
    """Text columns typed as the schema says: category levels as text (an empty cell missing unless "" is a
    level), numeric features as numbers (a binary one also from ``True``/``False``) with a bad cell kept as
    text; columns outside the schema numbers when every filled cell is one, else text."""
    features = {} if schema is None else {f.name: f for f in schema.features}
    columns: dict[str, pd.Series] = {}
    for name in text.columns:
        column = text[name]
        feature = features.get(name)
        if feature is not None and feature.kind == "category":
            empty = column == ""
            columns[name] = column if "" in feature.levels else column.mask(empty, np.nan)
        else:
            if feature is not None and feature.kind == "binary":  # pandas writes a bool column as True/False
                column = column.replace({"True": "1", "False": "0", "true": "1", "false": "0"})
            columns[name] = _numbers_or_text(column, strict=feature is not None)
    return pd.DataFrame(columns, index=text.index)


def _numbers_or_text(column: pd.Series, *, strict: bool) -> pd.Series:
    """Numbers where the text is one, NaN where the cell is empty. A ``strict`` (numeric feature) column
    keeps a non-numeric text in place, for the schema to report by row; a loose one stays text."""
    stripped = column.str.strip()
    empty = stripped == ""
    numbers = pd.to_numeric(stripped.mask(empty, None), errors="coerce")
    bad = numbers.isna() & ~empty
    if not bad.any():
        return numbers
    if not strict:
        return column.mask(empty, np.nan)
    return numbers.astype(object).mask(bad, column)
