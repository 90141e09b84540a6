"""A batch part as a Parquet table beside its JSON Lines: flat columns to query, the whole record kept.

Every part of a run has the same columns and types whatever its records hold (a part of only errors, a
part where no plan was found), so a folder of parts reads as one dataset: ``row`` (int64), ``status`` and
``error`` (text), the numbers ``cost``, ``p_before``, ``p_after``, ``prediction``, ``reference``, ``delta``
and ``seconds`` (float64, null where a record has none), ``plan`` (the steps' sentences joined) and
``record`` (the JSON Lines record itself, so nothing is lost). Needs pyarrow (``actionable[parquet]``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from actionable.errors import ConfigError

__all__ = ["NUMBERS", "parquet_bytes", "require_pyarrow"]

NUMBERS = ("cost", "p_before", "p_after", "prediction", "reference", "delta", "seconds")


def require_pyarrow() -> Any:
    """The pyarrow module, or a ``ConfigError`` saying how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(
            "batch: Parquet parts need pyarrow; pip install 'actionable[parquet]', or leave out --parquet."
        ) from None
    return pyarrow


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parquet_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The records as one Parquet file (bytes), with the fixed columns of the module's text."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {
        "row": [int(r["row"]) for r in records],
        "status": [None if r.get("status") is None else str(r["status"]) for r in records],
        "error": [str(r.get("error") or "") for r in records],
        **{name: [_number(r.get(name)) for r in records] for name in NUMBERS},
        "plan": [" then ".join(str(s.get("text", "")) for s in r.get("steps") or ()) for r in records],
        "record": [json.dumps(r, allow_nan=False, default=str) for r in records],
    }
    schema = pa.schema(
        [("row", pa.int64()), ("status", pa.string()), ("error", pa.string())]
        + [(name, pa.float64()) for name in NUMBERS]
        + [("plan", pa.string()), ("record", pa.string())]
    )
    table = pa.table(columns, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
