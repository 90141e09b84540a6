"""The one row pipeline: a batch of raw rows validated exactly once, bad rows kept in place as messages.

``synthesize`` and ``invert`` both start here, so a row is checked by the schema once per call (not once
per stage), the valid rows are encoded once, and every input position comes back as a record: the bad
ones as ``error`` with the schema's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.columns import clean_frame, encode_frame
from actionable.errors import DataError
from actionable.schema import DTYPE, Schema

__all__ = ["Rows", "read_rows"]


@dataclass(frozen=True)
class Rows:
    """A batch after its one validation: which input positions are valid, and their canonical rows."""

    n: int  # input rows, valid or not
    errors: Mapping[int, str]  # input position -> what the schema found wrong
    good: tuple[int, ...]  # input positions of the valid rows, in input order
    x: torch.Tensor  # canonical rows of ``good``, in that order
    before: tuple[dict[str, Any], ...]  # the valid rows as raw values (a record's ``x_before``)


def read_rows(schema: Schema, X: object, verb: str) -> Rows:
    """Validate ``X`` (a DataFrame of raw rows) once and encode its valid rows; ``DataError`` for a frame
    that is not one (a row's own problem is kept in ``Rows.errors``, never raised)."""
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"{verb}: X must be a pandas DataFrame of raw rows; got {type(X).__name__}.")
    errors = schema.row_errors(X)
    good = tuple(i for i in range(len(X)) if i not in errors)
    if not good:
        return Rows(len(X), errors, good, torch.zeros(0, schema.width, dtype=DTYPE), ())
    clean = clean_frame(schema.features, X.iloc[list(good)])  # checked just above: not validated again
    x = schema.assemble(encode_frame(schema.features, clean, DTYPE))
    before = tuple(
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.astype(object).to_dict("records")
    )
    return Rows(len(X), errors, good, x, before)
