"""``actionable.batch``: chunked synthesis gives the records of one ``synthesize`` call, and reports progress."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from actionable import datasets, synthesize
from actionable.actions import ActionSet
from actionable.batch import rows_needing_search, synthesize_in_chunks
from actionable.errors import ConfigError

SETTINGS: dict[str, Any] = {"max_length": 1, "steps": 10}


@pytest.fixture(scope="module")
def mixed() -> tuple[Any, pd.DataFrame, ActionSet]:
    """German test rows: two that fail the schema, some the model already favours, some it denies."""
    german = datasets.load("german")
    frame = german.X_test.iloc[:16].copy()
    frame["duration"] = frame["duration"].astype(object)
    frame.iloc[[2, 9], frame.columns.get_loc("duration")] = ["long", -5]
    return german.model, frame, ActionSet.from_toml(german.path / "actions.toml", german.schema)


def close(a: Any, b: Any) -> bool:
    """Equal records, floats to 1e-12 (a batch of another size may round the last bit differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a if k != "seconds")
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (np.isnan(a) and np.isnan(b)) or bool(np.isclose(a, b, rtol=1e-12, atol=1e-12))
    return bool(a == b)


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_chunks_give_the_records_of_one_call(mixed: tuple[Any, pd.DataFrame, ActionSet], chunk: int) -> None:
    model, frame, actions = mixed
    whole = synthesize(model, frame, actions, **SETTINGS)
    statuses = {r.status for r in whole}
    assert {"error", "already_favourable"} <= statuses and statuses & {"found", "not_found"}
    chunked = synthesize_in_chunks(model, frame, actions, chunk=chunk, **SETTINGS)
    assert [r.row for r in chunked] == list(frame.index)  # the frame's labels, in input order
    for a, b in zip(chunked, whole, strict=True):
        assert close(a.to_dict(), b.to_dict()), (a, b)


def test_progress_hears_every_call_and_ends_at_the_total(mixed: tuple[Any, pd.DataFrame, ActionSet]) -> None:
    model, frame, actions = mixed
    heard: list[tuple[int, int]] = []
    batch = synthesize_in_chunks(
        model, frame, actions, chunk=2, progress=lambda done, total: heard.append((done, total)), **SETTINGS
    )
    needing = sum(r.status in ("found", "not_found") for r in batch)
    assert len(heard) == 1 + -(-needing // 2)  # the easy rows in one call, then one call per chunk
    assert [d for d, _ in heard] == sorted(d for d, _ in heard) and heard[-1] == (len(frame), len(frame))


def test_rows_needing_search_are_the_valid_rows_the_model_denies(
    mixed: tuple[Any, pd.DataFrame, ActionSet],
) -> None:
    model, frame, actions = mixed
    valid = actions.schema.validate(frame.drop(index=frame.index[[2, 9]]))
    denied = rows_needing_search(model, valid, actions)
    records = synthesize(model, valid, actions, **SETTINGS)
    assert list(valid.index[denied]) == [r.row for r in records if r.status != "already_favourable"]
    assert len(rows_needing_search(model, valid.iloc[:0], actions)) == 0


@pytest.mark.parametrize("chunk", [0, -1, 2.5, True])
def test_a_bad_chunk_is_a_config_error(mixed: tuple[Any, pd.DataFrame, ActionSet], chunk: Any) -> None:
    model, frame, actions = mixed
    with pytest.raises(ConfigError, match="chunk must be a whole number"):
        synthesize_in_chunks(model, frame, actions, chunk=chunk, **SETTINGS)
