"""The one row pipeline (issue 11): each verb validates its rows exactly once and keeps bad rows in place."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from actionable import datasets, invert_sweep, synthesize
from actionable.actions import ActionSet
from actionable.errors import DataError
from actionable.rows import read_rows
from actionable.schema import Schema


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = Schema.row_errors

    def counting(self: Schema, frame: pd.DataFrame) -> dict[int, str]:
        calls.append(len(frame))
        return original(self, frame)

    monkeypatch.setattr(Schema, "row_errors", counting)
    return calls


def _mixed(frame: pd.DataFrame, column: str, bad: Any) -> pd.DataFrame:
    rows = frame.head(3).copy()
    rows[column] = rows[column].astype(object)
    rows.iloc[1, rows.columns.get_loc(column)] = bad
    return rows


def test_synthesize_validates_its_rows_once(counted: list[int]) -> None:
    german = datasets.load("german")
    actions = ActionSet.from_toml(german.path / "actions.toml", german.schema)
    rows = _mixed(german.X_test, "age", "old")
    counted.clear()
    batch = synthesize(german.model, rows, actions, max_length=1)
    assert counted == [3]
    assert [r.row for r in batch] == [0, 1, 2] and batch[1].status == "error" and "age" in batch[1].error


def test_invert_validates_its_rows_once_across_budgets(counted: list[int]) -> None:
    student = datasets.load("student")
    rows = _mixed(student.X_test, "absences", "many")
    counted.clear()
    sweep = invert_sweep(student.models["regular"], rows, student.schema, budgets=[0, 1, 2])
    assert counted == [3]
    for batch in sweep.values():
        assert [r.status == "error" for r in batch] == [False, True, False]


def test_read_rows_keeps_positions_and_encodes_the_valid_rows_as_the_schema_does() -> None:
    german = datasets.load("german")
    rows = _mixed(german.X_test, "age", -5)
    batch = read_rows(german.schema, rows, "verb")
    assert batch.n == 3 and batch.good == (0, 2) and set(batch.errors) == {1}
    expected = german.schema.encode(rows.iloc[[0, 2]])
    assert batch.x.equal(expected)
    assert [b["age"] for b in batch.before] == rows.iloc[[0, 2]]["age"].tolist()
    with pytest.raises(DataError, match="verb: X must be a pandas DataFrame"):
        read_rows(german.schema, [[1, 2]], "verb")


def test_attribute_validates_its_rows_once(counted: list[int]) -> None:
    from actionable import attribute

    german = datasets.load("german")
    counted.clear()
    attribute(german.model, german.X_test.head(3), "integrated_gradients")
    assert counted == [3]
