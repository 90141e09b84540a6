"""The one row pipeline (issue 11): each verb validates its rows exactly once and keeps bad rows in place."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from actionable import datasets, invert_sweep, synthesize
from actionable.actions import ActionSet
from actionable.errors import DataError
from actionable.rows import Outcome, assemble, read_rows
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
    assert (
        [r.row for r in batch] == list(rows.index) and batch[1].status == "error" and "age" in batch[1].error
    )


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


@pytest.mark.parametrize("method", ["gradient", "gradient_x_input", "integrated_gradients", "deeplift"])
def test_attribute_keeps_a_bad_row_in_place_and_explains_the_others_as_alone(method: str) -> None:
    from actionable import attribute

    german = datasets.load("german")
    rows = _mixed(german.X_test, "age", "old")
    mixed = attribute(german.model, rows, method)  # type: ignore[arg-type]
    alone = attribute(german.model, rows.iloc[[0, 2]].astype({"age": "int64"}), method)  # type: ignore[arg-type]
    label = rows.index[1]
    assert mixed.rows == tuple(rows.index) and set(mixed.errors) == {label} and "age" in mixed.errors[label]
    assert np.isnan(mixed.values[1]).all() and np.isnan(mixed.prediction[1])
    np.testing.assert_allclose(mixed.values[[0, 2]], alone.values, rtol=1e-12, atol=1e-12)
    assert mixed.top(2)[1] == [] and len(mixed.top(2)[0]) == 2
    records = mixed.to_records(2)
    assert [r["row"] for r in records] == list(rows.index)
    assert set(records[1]) == {"format", "row", "error"} and "values" in records[0]


def test_attribute_with_no_row_that_fits_records_every_row() -> None:
    from actionable import attribute

    german = datasets.load("german")
    rows = _mixed(german.X_test, "age", "old").iloc[[1]]
    result = attribute(german.model, rows, "integrated_gradients", baseline="mean")
    assert list(result.errors) == list(rows.index) and np.isnan(result.values).all()


def test_a_per_row_baseline_is_cut_to_the_valid_rows() -> None:
    from actionable import attribute

    german = datasets.load("german")
    rows = _mixed(german.X_test, "age", "old")
    base = german.X_train.head(3)
    mixed = attribute(german.model, rows, "integrated_gradients", baseline=base)
    alone = attribute(
        german.model,
        rows.iloc[[0, 2]].astype({"age": "int64"}),
        "integrated_gradients",
        baseline=base.iloc[[0, 2]],
    )
    np.testing.assert_allclose(mixed.values[[0, 2]], alone.values, rtol=1e-12, atol=1e-12)
    with pytest.raises(DataError, match="one per row of X \\(3\\)"):
        attribute(german.model, rows, "integrated_gradients", baseline=german.X_train.head(2))


def test_assemble_puts_error_records_in_place_and_refuses_a_missing_outcome() -> None:
    german = datasets.load("german")
    rows = read_rows(german.schema, _mixed(german.X_test, "age", -5), "verb")
    outcomes = [Outcome("not_found", 0.2, error="none"), Outcome("already_favourable", 0.9, cost=0.0)]
    batch = assemble(rows, outcomes, seconds=0.5, provenance={"method": "m"})
    assert [r.status for r in batch] == ["not_found", "error", "already_favourable"]
    assert batch[0].x_before == rows.before[0] and batch[2].x_before == rows.before[1]
    assert all(r.seconds == 0.5 and r.provenance == {"method": "m"} for r in batch)
    with pytest.raises(ValueError, match="1 outcomes for 2 valid rows"):
        assemble(rows, outcomes[:1], seconds=0.0, provenance={})
