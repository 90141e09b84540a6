"""The values of one raw column under its feature: which are refused and why, their clean types, inference.

``column_problems`` checks a whole column at once (loops run only over bad rows) and says per row what
is wrong; ``clean_column`` and ``decode_block`` give a checked column its feature's type and turn the
canonical columns back into raw values; ``infer_feature`` guesses a feature from a column of data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.errors import DataError, did_you_mean, shown
from actionable.features import Feature, Kind

__all__ = [
    "as_numbers",
    "clean_column",
    "clean_frame",
    "column_problems",
    "decode_block",
    "encode_column",
    "encode_frame",
    "infer_feature",
    "row_problems",
]


def infer_feature(name: object, column: pd.Series, max_levels: int) -> Feature:
    """A fixed feature whose kind, bounds or levels are what a data column holds (``Schema.infer``)."""
    if column.isna().any():
        raise DataError(f"data: column {name!r} has missing values; fill or drop them first.")
    if pd.api.types.is_bool_dtype(column) or (
        pd.api.types.is_numeric_dtype(column) and set(pd.unique(column)) <= {0, 1}
    ):
        return Feature(str(name), "binary")
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(np.float64)
        kind: Kind = "integer" if np.all(values == np.rint(values)) else "real"
        return Feature(str(name), kind, (float(values.min()), float(values.max())))
    levels = tuple(sorted(map(str, pd.unique(column))))
    if len(levels) > max_levels:
        raise DataError(
            f"data: column {name!r} has {len(levels)} distinct text values (> {max_levels}); "
            "it does not look like a category. Drop it or encode it first."
        )
    return Feature(str(name), "category", levels=levels)


def row_problems(features: Sequence[Feature], frame: pd.DataFrame) -> dict[int, str]:
    """Per-row problems of a frame under these features (row position -> message); a missing or repeated
    column raises ``DataError``."""
    names = [f.name for f in features]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(
            f"data: missing column(s) {missing}; the schema needs {names}, "
            f"the frame has {list(map(str, frame.columns))}."
            + (did_you_mean(missing[0], frame.columns) if len(missing) == 1 else "")
        )
    columns = list(frame.columns)
    repeated = [name for name in names if columns.count(name) > 1]
    if repeated:
        raise DataError(
            f"data: column(s) {shown(repeated, 200)} appear more than once; keep one column per feature."
        )
    problems: dict[int, list[str]] = {}
    labels = list(frame.index)
    for feature in features:
        for pos, message in column_problems(feature, frame[feature.name]):
            problems.setdefault(pos, []).append(
                f"row {pos} (index {shown(labels[pos], 40)}), column {feature.name!r}: {message}"
            )
    return {pos: "; ".join(msgs) for pos, msgs in sorted(problems.items())}


def clean_column(feature: Feature, column: pd.Series) -> Any:
    """A checked column with its feature's type: categorical, int64 (whole kinds) or float64."""
    if feature.is_category:
        return pd.Categorical(column.map(str), categories=list(feature.levels))
    if feature.is_whole:
        return pd.to_numeric(as_numbers(column)).astype("int64")
    return pd.to_numeric(as_numbers(column)).astype("float64")


def encode_column(feature: Feature, column: pd.Series, dtype: torch.dtype) -> torch.Tensor:
    """A cleaned column as canonical values: a one-hot block for a category, the raw values otherwise."""
    if feature.is_category:
        codes = torch.as_tensor(column.cat.codes.to_numpy(np.int64))
        return torch.nn.functional.one_hot(codes, len(feature.levels)).to(dtype)
    return torch.tensor(column.to_numpy(np.float64), dtype=dtype)


def clean_frame(features: Sequence[Feature], frame: pd.DataFrame) -> pd.DataFrame:
    """Checked rows as the features' columns, in their order, each with its feature's type."""
    return pd.DataFrame({f.name: clean_column(f, frame[f.name]) for f in features}, index=frame.index)


def encode_frame(
    features: Sequence[Feature], clean: pd.DataFrame, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Cleaned rows as each feature's canonical values (``Schema.assemble`` joins them)."""
    return {f.name: encode_column(f, clean[f.name], dtype) for f in features}


def decode_block(feature: Feature, block: np.ndarray) -> Any:
    """A feature's canonical columns back to raw values: a category by its largest column, whole kinds rounded."""
    if feature.is_category:
        return pd.Categorical.from_codes(block.argmax(axis=1), categories=pd.Index(list(feature.levels)))
    if feature.is_whole:
        return np.rint(block[:, 0]).astype(np.int64)
    return block[:, 0].astype(np.float64)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _numeric(column: pd.Series) -> bool:
    """A column of plain numbers (not booleans, not objects): checked without per-value Python calls."""
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def as_numbers(column: pd.Series) -> pd.Series:
    """A column's values as plain Python numbers where NumPy scalars would be (a numeric column as is)."""
    return column if _numeric(column) else column.map(_plain)


def column_problems(feature: Feature, column: pd.Series) -> list[tuple[int, str]]:
    """(row position, message) for each value this feature does not accept; vectorised, loops only on bad rows."""
    values = column.to_numpy(dtype=object)
    missing = column.isna().to_numpy()
    bad: dict[int, str] = {
        int(p): "value is missing (NaN); fill it or drop the row" for p in np.flatnonzero(missing)
    }
    if feature.is_category:
        known = column.map(str).isin(feature.levels).to_numpy()
        for pos in np.flatnonzero(~known & ~missing):
            value = _plain(values[pos])
            bad[int(pos)] = f"unknown level {shown(value)}; levels are {shown(list(feature.levels), 200)}" + (
                did_you_mean(value, feature.levels)
            )
        return sorted(bad.items())
    numbers = (
        column
        if _numeric(column)
        else pd.to_numeric(
            column.map(lambda v: int(v) if isinstance(v, bool | np.bool_) else v), errors="coerce"
        )
    )
    x = numbers.to_numpy(dtype=np.float64)
    for pos in np.flatnonzero(np.isnan(x) & ~missing):
        value = _plain(values[pos])
        bad[int(pos)] = f"{shown(value)} ({type(value).__name__}) is not a number"
    lo, hi = feature.bounds
    with np.errstate(invalid="ignore"):
        checks = [
            (~np.isfinite(x) & ~np.isnan(x), "value {!r} is not finite"),
            (
                (x != np.rint(x)) & np.isfinite(x) if feature.is_whole else np.zeros_like(missing),
                f"value {{!r}} is not a whole number (kind = {feature.kind!r})",
            ),
            (((x < lo) | (x > hi)) & np.isfinite(x), f"value {{!r}} is outside bounds [{lo:g}, {hi:g}]"),
        ]
    for flags, message in checks:
        for pos in np.flatnonzero(flags):
            bad.setdefault(int(pos), message.replace("{!r}", "{}").format(shown(_plain(values[pos]))))
    return sorted(bad.items())
