"""The file formats of Lash et al.'s inverse-classification code, read as data into a ``Schema``.

An index file has no header; each row is ``column, designation, cost_up, cost_down, direction`` where the
column counts the data CSV's columns (id included), designation is one of id / target / unch / ind / dir,
costs are per unit of the min-max normalised feature, and direction is -1, +1 or 0 (either way).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from actionable.errors import SpecError
from actionable.schema import Direction, Feature, Kind, Mutability, Schema, Target

__all__ = [
    "DESIGNATIONS",
    "DIRECTIONS",
    "reference_curve",
    "schema_from_indices",
]


DESIGNATIONS: dict[str, Mutability | None] = {
    "id": None,
    "target": None,
    "unch": "fixed",
    "ind": "indirect",
    "dir": "direct",
}
DIRECTIONS: dict[str, Direction] = {"-1": "decrease", "1": "increase", "+1": "increase", "0": "both"}


def schema_from_indices(path: str | Path, data: str | Path | pd.DataFrame) -> Schema:
    """A schema from an index file and its data: kinds and bounds from the data, costs per raw unit.

    Costs in the index file are per unit of the feature's min-max normalised range; here they are
    converted to per raw unit (cost / (max - min)), so that the schema speaks raw units like every other.
    The target's favourable class is 0 (the original minimises the probability of class 1).
    """
    path = Path(path)
    where = path.name
    frame = pd.read_csv(data) if not isinstance(data, pd.DataFrame) else data
    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    except OSError as exc:
        raise SpecError(f"{where}: cannot read the index file ({exc}).") from None
    if len(rows) != frame.shape[1]:
        raise SpecError(
            f"{where}: {len(rows)} rows, but the data has {frame.shape[1]} columns; the index file needs "
            "one row per data column (id and target included)."
        )
    features: list[Feature] = []
    target: Target | None = None
    seen: set[int] = set()
    for line, row in enumerate(rows, start=1):
        row = [cell.strip() for cell in row] + [""] * (5 - len(row))
        entry = f"{where}, line {line}"
        try:
            column = int(row[0])
        except ValueError:
            raise SpecError(f"{entry}: column index {row[0]!r} is not a whole number.") from None
        if not 0 <= column < frame.shape[1] or column in seen:
            raise SpecError(
                f"{entry}: column index {column} is out of range or repeated; the data has columns "
                f"0..{frame.shape[1] - 1}, each listed once."
            )
        seen.add(column)
        designation = row[1]
        if designation not in DESIGNATIONS:
            raise SpecError(f"{entry}: unknown designation {designation!r}; use one of {list(DESIGNATIONS)}.")
        name = str(frame.columns[column])
        if designation == "target":
            target = Target(name, favourable=0, classes=(0, 1))
            continue
        mutability = DESIGNATIONS[designation]
        if mutability is None:
            continue
        features.append(_feature(entry, name, mutability, row, frame[name]))
    if target is None:
        raise SpecError(f"{where}: no row is designated 'target'; mark the label column as target.")
    return Schema(tuple(features), target)


def _feature(entry: str, name: str, mutability: Mutability, row: list[str], column: pd.Series) -> Feature:
    """One feature row of an index file: kind and bounds from its data column, costs per raw unit."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any():
        raise SpecError(f"{entry}: column {name!r} has missing or non-numeric values.")
    lo, hi = float(values.min()), float(values.max())
    kind: Kind = (
        "binary"
        if set(np.unique(values)) <= {0.0, 1.0}
        else ("integer" if np.all(values == np.rint(values)) else "real")
    )
    span = hi - lo if hi > lo else 1.0
    cost_up = cost_down = None
    direction: Direction = "both"
    if mutability == "direct":
        if row[4] not in DIRECTIONS:
            raise SpecError(f"{entry}: direction {row[4]!r} must be -1, 1 or 0 for a 'dir' feature.")
        direction = DIRECTIONS[row[4]]
        cost_up, cost_down = (
            _cost(entry, key, cell) / span for key, cell in (("cost+", row[2]), ("cost-", row[3]))
        )
        for allowed, cost, key in (("increase", cost_up, "cost+"), ("decrease", cost_down, "cost-")):
            if direction in (allowed, "both") and cost <= 0:
                raise SpecError(
                    f"{entry}: {key} of {name!r} is {cost * span:g} but the feature may {allowed}; "
                    "give a cost > 0 for every allowed direction."
                )
    return Feature(
        name,
        kind,
        (lo, hi),
        mutability=mutability,
        direction=direction,
        cost_up=cost_up,
        cost_down=cost_down,
    )


def _cost(entry: str, key: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise SpecError(f"{entry}: {key} {cell!r} is not a number; 'dir' rows need both costs.") from None
    if not math.isfinite(value) or value < 0:
        raise SpecError(f"{entry}: {key} must be a finite number >= 0; got {cell!r}.")
    return value


def reference_curve(path: str | Path) -> pd.DataFrame:
    """The published curve from Lash et al.'s shipped result (``invresult_pos_only.csv``): per budget the
    mean probability of the bad outcome and the share of students below 0.5 (same columns as
    ``inverse.sweep_curve``)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise SpecError(f"{Path(path).name}: cannot read the reference result ({exc}).") from None
    missing = {"budget", "p_bad_grade"} - set(frame.columns)
    if missing:
        raise SpecError(f"{Path(path).name}: missing column(s) {sorted(missing)}; is this invresult_*.csv?")
    grouped = frame.groupby("budget")["p_bad_grade"]
    return pd.DataFrame(
        {
            "budget": grouped.mean().index.astype(float),
            "mean_p_unfavourable": grouped.mean().to_numpy(),
            "share_below_half": grouped.apply(lambda p: float((p < 0.5).mean())).to_numpy(),
            "rows": grouped.size().to_numpy(),
        }
    )
