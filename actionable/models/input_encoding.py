"""A foreign network's input encoding, declared once and checked: the bridge from a schema's raw units.

A network trained elsewhere (a Keras file, a colleague's torch module) reads its own columns: z-scored or
min-max scaled numbers, one-hot blocks in its own level order, constants where it had placeholders, and
not every feature. ``InputEncoding`` lists those columns in order, each tied to a schema feature; checked
against the schema (features, levels, scales) and the network's width, it becomes one ``ColumnMap``
layer in front of the network, so ``as_model(network, schema, encoding=...)`` (or ``on_schema``) gives a
``TorchModel`` on the schema's canonical tensor in raw units. ``decode`` maps rows in the network's space (a paper's instances) back to raw rows.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable.errors import DataError, ModelError, SpecError, did_you_mean, shown
from actionable.models import layers as L
from actionable.models.core import TorchModel, as_model, input_width
from actionable.schema import DTYPE, Schema
from actionable.specfile import check_keys, read_toml

__all__ = ["Column", "InputEncoding", "on_schema"]

Scale = Literal["raw", "zscore", "minmax", "level", "constant"]
KEYS = {"feature", "zscore", "minmax", "level", "levels", "constant"}


@dataclass(frozen=True)
class Column:
    """One input column of the network: ``feature``'s value (raw, z-scored by ``(a, b)`` = (mean, std),
    min-max scaled by ``(a, b)`` = (min, max)), the indicator of one of its levels, or a constant ``a``."""

    scale: Scale
    feature: str | None = None
    a: float = 0.0
    b: float = 1.0
    level: object = None

    @property
    def name(self) -> str:
        """How messages name this column."""
        if self.scale == "constant":
            return f"constant {self.a:g}"
        if self.scale == "level":
            return f"{self.feature}={self.level}"
        return f"{self.feature} ({self.scale})" if self.scale != "raw" else str(self.feature)


@dataclass(frozen=True)
class InputEncoding:
    """The network's input columns, in its order (see ``from_records`` for the declaration format)."""

    columns: tuple[Column, ...]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], schema: Schema) -> InputEncoding:
        """Columns from plain records (TOML ``[[column]]`` tables or JSON objects), in the network's order:

        ``{feature = "duration", zscore = [mean, std]}``, ``{feature = "age", minmax = [min, max]}``,
        ``{feature = "age"}`` (raw), ``{feature = "purpose", level = "car (new)"}`` (one indicator),
        ``{feature = "purpose", levels = [...]}`` (a one-hot block in the file's order; all the schema's
        levels in its order when ``levels = true``), ``{constant = 0.0}`` (a placeholder the network reads).
        """
        if not isinstance(schema, Schema):
            raise SpecError(f"encoding: schema must be an actionable Schema; got {type(schema).__name__}.")
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
            raise SpecError("encoding: give the columns as a list of records (tables / objects), in order.")
        columns: list[Column] = []
        for i, record in enumerate(records):
            columns.extend(_parse(record, f"encoding record {i + 1}", schema))
        encoding = cls(tuple(columns))
        _refuse_repeated_levels(encoding.columns)
        encoding.check(schema)
        return encoding

    @classmethod
    def from_file(cls, source: str | Path, schema: Schema) -> InputEncoding:
        """Columns from a TOML file (or text) of ``[[column]]`` tables, in the network's order."""
        table, _ = read_toml(source, "column encoding")
        check_keys("encoding", "top level", table, {"column"})
        records = table.get("column")
        if not isinstance(records, list):
            raise SpecError("encoding: list the network's input columns as [[column]] tables, in its order.")
        return cls.from_records(records, schema)

    @classmethod
    def canonical(cls, schema: Schema) -> InputEncoding:
        """The schema's own canonical columns (raw values, one-hot blocks in the schema's level order): for a
        network that was trained on ``schema.encode`` output."""
        columns: list[Column] = []
        for f in schema.features:
            if f.is_category:
                columns.extend(Column("level", f.name, level=v) for v in f.levels)
            else:
                columns.append(Column("raw", f.name))
        return cls(tuple(columns))

    @property
    def width(self) -> int:
        return len(self.columns)

    def prepend(self, network: nn.Module, schema: Schema) -> nn.Sequential:
        """``ColumnMap`` (canonical tensor -> the network's columns), then ``network``: widths checked.

        A mismatch is a ``ModelError`` naming the columns past the shorter of the two."""
        width = input_width(network)
        if width is not None and width != self.width:
            names = [c.name for c in self.columns]
            if self.width > width:
                extra = f"the encoding's columns past {width}: {names[width:][:8]}"
            else:
                extra = (
                    f"the last declared column is {names[-1]!r}; {width - self.width} are missing after it"
                )
            raise ModelError(
                f"encoding: the network reads {width} input columns, the encoding declares {self.width} "
                f"({extra}). Declare one column per network input, in the network's order."
            )
        layers = list(network) if isinstance(network, nn.Sequential) else [network]
        dtype = next((p.dtype for p in network.parameters() if p.is_floating_point()), DTYPE)
        return nn.Sequential(self.layer(schema).to(dtype), *layers)  # a float32 network gets float32 input

    def check(self, schema: Schema) -> None:
        """``SpecError`` naming the first column that does not fit ``schema`` (feature, level or scale)."""
        if not self.columns:
            raise SpecError("encoding: no columns; list the network's input columns in its order.")
        for i, column in enumerate(self.columns):
            _check_column(column, schema, f"encoding column {i + 1} ({column.name})")

    def dropped(self, schema: Schema) -> tuple[str, ...]:
        """Schema features the network never reads (they cannot change its output)."""
        read = {c.feature for c in self.columns}
        return tuple(name for name in schema.names if name not in read)

    def layer(self, schema: Schema) -> L.ColumnMap:
        """The ``ColumnMap`` from ``schema``'s canonical tensor to the network's input columns."""
        self.check(schema)
        index, scale, shift = [], [], []
        for column in self.columns:
            i, s, t = _affine(column, schema)
            index.append(i)
            scale.append(s)
            shift.append(t)
        return L.ColumnMap(
            torch.tensor(index, dtype=torch.int64),
            torch.tensor(scale, dtype=DTYPE),
            torch.tensor(shift, dtype=DTYPE),
        )

    def decode(self, Z: Any, schema: Schema) -> pd.DataFrame:
        """Raw rows (in ``schema``'s features; whole numbers rounded) from rows in the network's space.

        A category is the level whose indicator is largest; a feature the network does not read, or a
        category whose block is all zero with more than one level missing from it, is a ``SpecError``."""
        try:
            Z = np.asarray(Z, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("decode: rows must be numbers of equal length (a 2-D array).") from None
        if Z.ndim != 2 or Z.shape[1] != self.width:
            raise SpecError(
                f"decode: rows of {self.width} columns expected (the encoding's width); got shape {Z.shape}."
            )
        dropped = self.dropped(schema)
        if dropped:
            raise SpecError(f"decode: the network does not read {list(dropped)}, so rows cannot give them.")
        if not np.isfinite(Z).all():
            i, j = np.argwhere(~np.isfinite(Z))[0]
            raise DataError(
                f"decode: row {i}, column {j + 1} ({self.columns[j].name}) is {Z[i, j]}; rows must be finite."
            )
        frame = pd.DataFrame({f.name: _decode_feature(self, Z, f.name, schema) for f in schema.features})
        schema.validate(frame)  # a decoded value outside the schema's bounds or kinds is a DataError
        return frame


def on_schema(
    network: nn.Module, schema: Schema, encoding: InputEncoding, *, classes: Sequence[Any] | None = None
) -> TorchModel:
    """``network`` (reading the encoding's columns) as a ``TorchModel`` on ``schema``'s canonical tensor:
    ``as_model(network, schema, encoding=encoding, classes=classes)``."""
    return as_model(network, schema, classes=classes, encoding=encoding)


def _parse(record: Mapping[str, Any], where: str, schema: Schema) -> list[Column]:
    """The column(s) one declaration record stands for."""
    if not isinstance(record, Mapping):
        raise SpecError(f"{where}: a table/object with 'feature' or 'constant' expected; got {record!r}.")
    unknown = set(record) - KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise SpecError(f"{where}: unknown key {key!r}.{did_you_mean(key, KEYS)} Keys are {sorted(KEYS)}.")
    if "constant" in record:
        if set(record) != {"constant"}:
            raise SpecError(f"{where}: 'constant' stands alone (a placeholder column has no feature).")
        return [Column("constant", a=_number(record["constant"], where, "constant"))]
    feature = record.get("feature")
    if not isinstance(feature, str):
        raise SpecError(f"{where}: 'feature' must name a schema feature; got {feature!r}.")
    ways = [k for k in ("zscore", "minmax", "level", "levels") if k in record]
    if len(ways) > 1:
        raise SpecError(f"{where}: give one of zscore, minmax, level, levels; got {ways}.")
    if not ways:
        return [Column("raw", feature)]
    way, value = ways[0], record[ways[0]]
    if way == "level":
        return [Column("level", feature, level=value)]
    if way == "levels":
        if value is True and feature not in schema:
            return [Column("raw", feature)]  # check() names the unknown feature
        if value is True:
            f = schema[feature]
            return [Column("level", feature, level=v) for v in (f.levels if f.is_category else (0, 1))]
        if not isinstance(value, list) or not value:
            raise SpecError(f"{where}: 'levels' must be a non-empty list in the network's order, or true.")
        return [Column("level", feature, level=v) for v in value]
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SpecError(
            f"{where}: {way!r} must be a pair [{'mean, std' if way == 'zscore' else 'min, max'}]."
        )
    a, b = (_number(v, where, way) for v in value)
    return [Column(way, feature, a=a, b=b)]  # type: ignore[arg-type]


def _number(value: object, where: str, key: str) -> float:
    """A finite float from a number of any numeric type (NumPy's too); bools, text and overflow refused."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise SpecError(f"{where}: {key!r} must be finite numbers; got {shown(value)}.")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(f"{where}: {key!r} must be finite numbers; got {shown(value)}.")
    return number


def _refuse_repeated_levels(columns: Sequence[Column]) -> None:
    """One indicator per (feature, level): a repeated one would make ``decode`` and one-hot rows ambiguous."""
    seen: set[tuple[str | None, object]] = set()
    for i, c in enumerate(columns):
        if c.scale == "level":
            if (c.feature, c.level) in seen:
                raise SpecError(
                    f"encoding column {i + 1} ({c.name}): this level's indicator is declared twice."
                )
            seen.add((c.feature, c.level))


def _check_column(column: Column, schema: Schema, where: str) -> None:
    if column.scale == "constant":
        return
    if column.feature not in schema:
        raise SpecError(
            f"{where}: no feature {column.feature!r} in the schema.{did_you_mean(str(column.feature), schema.names)}"
        )
    feature = schema[str(column.feature)]
    if column.scale == "level":
        levels: tuple[object, ...] = (
            feature.levels if feature.is_category else (0, 1) if feature.is_binary else ()
        )
        if not levels:
            raise SpecError(
                f"{where}: {feature.kind} feature {feature.name!r} has no levels; use zscore/minmax/raw."
            )
        if column.level not in levels:
            raise SpecError(
                f"{where}: {column.level!r} is not a level of {feature.name!r}; levels are {list(levels)}."
            )
        return
    if feature.is_category:
        raise SpecError(
            f"{where}: {feature.name!r} is a category; declare its one-hot columns with level(s)."
        )
    if column.scale == "zscore" and not column.b > 0:
        raise SpecError(f"{where}: the std must be > 0; got {column.b}.")
    if column.scale == "minmax" and not column.b > column.a:
        raise SpecError(f"{where}: max must exceed min; got [{column.a}, {column.b}].")
    if column.scale in ("zscore", "minmax"):
        _, scale, shift = _affine(column, schema)
        if not (math.isfinite(scale) and math.isfinite(shift) and scale != 0 and math.isfinite(1 / scale)):
            raise SpecError(
                f"{where}: the scale [{column.a}, {column.b}] cannot be used in float64 (1 / its width is "
                "infinite or 0); declare the mean / std or min / max the network was trained with."
            )


def _affine(column: Column, schema: Schema) -> tuple[int, float, float]:
    """(canonical column, scale, shift) with network input = x[column] * scale + shift."""
    if column.scale == "constant":
        return 0, 0.0, column.a
    feature = schema[str(column.feature)]
    start = schema.slice(feature.name).start
    if column.scale == "level":
        if feature.is_category:
            return start + feature.levels.index(column.level), 1.0, 0.0
        return (start, 1.0, 0.0) if column.level == 1 else (start, -1.0, 1.0)
    if column.scale == "zscore":
        return start, 1 / column.b, -column.a / column.b
    if column.scale == "minmax":
        return start, 1 / (column.b - column.a), -column.a / (column.b - column.a)
    return start, 1.0, 0.0


def _decode_feature(encoding: InputEncoding, Z: np.ndarray, name: str, schema: Schema) -> Any:
    feature = schema[name]
    picks = [(j, c) for j, c in enumerate(encoding.columns) if c.feature == name]
    values = [c for _, c in picks if c.scale != "level"]
    if values:
        j = next(j for j, c in picks if c.scale != "level")
        c = values[0]
        z = Z[:, j]
        x = z * c.b + c.a if c.scale == "zscore" else z * (c.b - c.a) + c.a if c.scale == "minmax" else z
        return np.rint(x).astype(np.int64) if feature.is_whole else x
    levels = [c.level for _, c in picks]
    block = Z[:, [j for j, _ in picks]]
    several = (block > 0.5).sum(axis=1) > 1
    if several.any():
        raise DataError(
            f"decode: row {int(np.argmax(several))} sets more than one level of {name!r} "
            f"({[lv for lv, on in zip(levels, block[int(np.argmax(several))] > 0.5, strict=True) if on]}); a "
            "one-hot block sets exactly one."
        )
    chosen = np.asarray(levels, dtype=object)[block.argmax(axis=1)]
    empty = block.max(axis=1) <= 0.5
    if empty.any():
        missing = [lv for lv in (feature.levels if feature.is_category else (0, 1)) if lv not in levels]
        if len(missing) != 1:
            raise SpecError(
                f"decode: row {int(np.argmax(empty))} has no level of {name!r} set, and the block leaves "
                f"{len(missing)} levels out, so which one is meant is unknown. Declare every level the network "
                "reads of it (a drop-first block may leave out exactly one, the reference level)."
            )
        chosen[empty] = missing[0]
    return chosen if feature.is_category else chosen.astype(np.int64)
