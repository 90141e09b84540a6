"""The one row pipeline: a batch of raw rows validated exactly once, bad rows kept in place as messages.

``synthesize`` and ``invert`` both start (``read_rows``) and end (``assemble``) here, so a row is checked
by the schema once per call (not once per stage), the valid rows are encoded once, and every input
position comes back as one ``Recourse``: the bad ones as ``error`` with the schema's message, the others
from what the engine found (an ``Outcome`` per valid row).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.columns import clean_frame, encode_frame
from actionable.errors import DataError
from actionable.results import NOT_REQUESTED, Recourse, RecourseBatch, Status, Step
from actionable.schema import DTYPE, Schema

__all__ = ["Outcome", "Rows", "assemble", "raw_records", "read_rows", "row_label"]


@dataclass(frozen=True)
class Rows:
    """A batch after its one validation: which input positions are valid, and their canonical rows."""

    n: int  # input rows, valid or not
    errors: Mapping[int, str]  # input position -> what the schema found wrong
    good: tuple[int, ...]  # input positions of the valid rows, in input order
    x: torch.Tensor  # canonical rows of ``good``, in that order
    before: tuple[dict[str, Any], ...]  # the valid rows as raw values (a record's ``x_before``)
    labels: tuple[Hashable, ...] = ()  # the input frame's index label of every input row (``Recourse.row``)
    names: tuple[Hashable, ...] = ()  # the input frame's index names (``RecourseBatch.index_names``)


def read_rows(schema: Schema, X: object, verb: str) -> Rows:
    """Validate ``X`` (a DataFrame of raw rows) once and encode its valid rows; ``DataError`` for a frame
    that is not one (a row's own problem is kept in ``Rows.errors``, never raised)."""
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"{verb}: X must be a pandas DataFrame of raw rows; got {type(X).__name__}.")
    errors = schema.row_errors(X)
    good = tuple(i for i in range(len(X)) if i not in errors)
    labels = tuple(row_label(v) for v in X.index)
    names = tuple(X.index.names)
    if not good:
        return Rows(len(X), errors, good, torch.zeros(0, schema.width, dtype=DTYPE), (), labels, names)
    clean = clean_frame(schema.features, X.iloc[list(good)])  # checked just above: not validated again
    x = schema.assemble(encode_frame(schema.features, clean, DTYPE))
    return Rows(len(X), errors, good, x, tuple(_plain(clean)), labels, names)


def row_label(value: Hashable) -> Hashable:
    """An index label as a record keeps it: numpy scalars as Python scalars, anything else as it is (so a
    batch's ``to_frame`` joins back to the input frame; ``Recourse.to_dict`` writes what JSON cannot hold
    as text)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Outcome:
    """What an engine concluded for one valid row: a ``Recourse`` less the row, its ``x_before``, the
    timing and the provenance, which ``assemble`` adds."""

    status: Status
    p_before: float
    steps: tuple[Step, ...] = ()
    cost: float = math.nan
    x_after: Mapping[str, Any] = field(default_factory=dict)
    p_after: float = math.nan
    error: str = ""
    indirect_raw: Mapping[str, float] = field(default_factory=dict)
    alternatives: tuple[Outcome, ...] = ()
    certificate: Mapping[str, Any] = field(default_factory=lambda: dict(NOT_REQUESTED))


def assemble(
    rows: Rows, outcomes: Sequence[Outcome], *, seconds: float, provenance: Mapping[str, Any]
) -> RecourseBatch:
    """One ``Recourse`` per input row, in input order and carrying the row's index label: ``error`` with the
    schema's message for a bad row, else the outcome of that valid row (``outcomes`` in the order of
    ``rows.good``)."""
    if len(outcomes) != len(rows.good):
        raise ValueError(f"assemble: {len(outcomes)} outcomes for {len(rows.good)} valid rows.")
    common: dict[str, Any] = {"seconds": seconds, "provenance": provenance}
    found = dict(zip(rows.good, zip(outcomes, rows.before, strict=True), strict=True))
    labels = rows.labels or tuple(range(rows.n))
    items: list[Recourse] = []
    for row in range(rows.n):
        if row not in found:
            items.append(Recourse(row=labels[row], status="error", error=rows.errors[row], **common))
            continue
        o, before = found[row]
        items.append(_record(labels[row], o, before, **common))
    return RecourseBatch(tuple(items), rows.names)


def _record(row: Any, o: Outcome, before: Mapping[str, Any], **common: Any) -> Recourse:
    """One valid row's record from its outcome; its alternatives are records too (without timing or
    provenance of their own: the record's apply)."""
    return Recourse(
        row=row,
        status=o.status,
        steps=o.steps,
        cost=o.cost,
        x_before=before,
        x_after=o.x_after,
        p_before=o.p_before,
        p_after=o.p_after,
        error=o.error,
        indirect_raw=o.indirect_raw,
        alternatives=tuple(_record(row, a, before) for a in o.alternatives),
        certificate=o.certificate,
        **common,
    )


def raw_records(schema: Schema, x: torch.Tensor) -> list[dict[str, Any]]:
    """Canonical rows decoded to raw values, one plain dict per row (numbers as Python numbers)."""
    return _plain(schema.decode(x)) if len(x) else []


def _plain(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]
