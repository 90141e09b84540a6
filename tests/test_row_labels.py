"""Results carry the input frame's index labels (issue 12): ``Recourse.row``, the JSON ``row``, ``by_row`` and
``RecourseBatch.to_frame`` join back to a filtered frame such as ``X[pred == 1]`` without misaligning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import Feature, Schema, Target, as_model
from actionable.actions import Action, ActionSet, Param
from actionable.batch import synthesize_in_chunks
from actionable.errors import ConfigError
from actionable.inverse import invert, invert_sweep
from actionable.results import Recourse, RecourseBatch, json_label
from actionable.synthesis import synthesize
from actionable.testing import check_plans

SETTINGS = {"max_length": 1, "steps": 60}


def _problem() -> tuple[Schema, object, ActionSet]:
    """approved when income - debt > 10: raise income (cost amount / 10) or pay debt down."""
    schema = Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct", direction="increase", cost_up=0.1),
            Feature("debt", "real", (0, 100), mutability="direct", direction="decrease", cost_down=0.1),
            Feature("age", "integer", (18, 99)),
        ),
        Target("approved", favourable=1, classes=(0, 1)),
    )
    net = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, -10.0]))
    actions = ActionSet(
        [
            Action(
                "raise_income",
                {"income": "income + amount"},
                "amount / 10",
                text="Earn {amount:.1f} more",
                params=(Param("amount", (0, 50)),),
            )
        ],
        schema,
    )
    return schema, as_model(net, schema), actions


def _people(index: list[object]) -> pd.DataFrame:
    rows = {"income": [20.0, 40.0, 25.0, 60.0, 30.0], "debt": [20.0, 5.0, 30.0, 10.0, 25.0]}
    frame = pd.DataFrame({**rows, "age": [30, 40, 50, 60, 70]})
    return frame.iloc[: len(index)].set_axis(pd.Index(index), axis=0)


def _denied(model: object, X: pd.DataFrame) -> pd.DataFrame:
    return X[model.predict(X) == 0]  # type: ignore[attr-defined]


def test_synthesize_and_the_chunker_carry_the_frames_labels() -> None:
    _, model, actions = _problem()
    X = _people(["ann", "bob", "cy", "dee", "eve"])
    denied = _denied(model, X)
    assert list(denied.index) == ["ann", "cy", "eve"]  # a filtered frame: labels are not positions
    plans = synthesize(model, denied, actions, **SETTINGS)
    assert [r.row for r in plans] == ["ann", "cy", "eve"]
    assert check_plans(plans, denied, actions, model) == []
    shifted = RecourseBatch(tuple(Recourse(**{**r.__dict__, "row": i}) for i, r in enumerate(plans)))
    assert any("not the input's label 'ann'" in p for p in check_plans(shifted, denied, actions, model))
    assert [r["row"] for r in (r.to_dict() for r in plans)] == ["ann", "cy", "eve"]
    chunked = synthesize_in_chunks(model, X, actions, chunk=1, **SETTINGS)
    assert [r.row for r in chunked] == list(X.index)
    assert chunked.by_row("cy").cost == pytest.approx(plans.by_row("cy").cost, rel=1e-9)


def test_invert_and_its_sweep_carry_the_frames_labels() -> None:
    schema, model, _ = _problem()
    X = _people([10, 20, 30, 40, 50])
    denied = _denied(model, X)
    assert [r.row for r in invert(model, denied, schema, budget=3)] == [10, 30, 50]
    sweep = invert_sweep(model, denied, schema, budgets=[0, 3])
    assert all([r.row for r in batch] == [10, 30, 50] for batch in sweep.values())


def test_to_frame_joins_back_to_a_filtered_frame() -> None:
    """One row per input row indexed by its label; the changed features before and after align with X."""
    _, model, actions = _problem()
    X = _people([7, 3, 11, 0, 5])  # labels in no order, and 0 is not the first row
    denied = _denied(model, X)
    plans = synthesize(model, denied, actions, **SETTINGS)
    table = plans.to_frame()
    assert list(table.index) == list(denied.index) == [7, 11, 5]
    assert {"status", "cost", "p_before", "p_after", "plan", "income_before", "income_after"} <= set(table)
    assert not {"debt_before", "age_before"} & set(table)  # no plan changes them
    joined = X.join(table, how="inner")
    np.testing.assert_array_equal(joined["income"], joined["income_before"])
    assert (joined["income_after"] > joined["income_before"]).all()
    assert (joined["income_after"] - joined["debt"] >= 10 - 1e-9).all()  # each plan fits its own row
    for label in denied.index:
        assert table.loc[label, "income_after"] == plans.by_row(label).x_after["income"]


def test_to_frame_keeps_rows_without_a_plan_and_errors_in_place() -> None:
    _, model, actions = _problem()
    X = _people(["a", "b", "c"]).astype({"age": object})
    X.loc["c", "age"] = "old"  # does not fit the schema: an error record, in place
    table = synthesize(model, X, actions, **SETTINGS).to_frame()
    assert list(table.index) == ["a", "b", "c"]
    assert list(table.status) == ["found", "already_favourable", "error"]
    assert table.loc["b", "income_after"] == table.loc["b", "income_before"] == 40.0
    assert math.isnan(table.loc["c", "income_before"]) and math.isnan(table.loc["c", "income_after"])


def test_by_row_finds_a_label_and_refuses_a_missing_or_repeated_one() -> None:
    _, model, actions = _problem()
    plans = synthesize(model, _people(["x", "y", "x"]), actions, **SETTINGS)
    assert plans[1].row == "y" and plans.by_row("y") is plans[1]
    with pytest.raises(ConfigError, match="2 input rows have the label 'x'"):
        plans.by_row("x")
    with pytest.raises(ConfigError, match="no input row has the label 'z'"):
        plans.by_row("z")
    numbered = synthesize(model, _people([4, 9]), actions, **SETTINGS)
    assert numbered.by_row(np.int64(9)) is numbered[1]


@pytest.mark.parametrize(
    ("label", "written"),
    [
        (np.int64(3), 3),
        ("ann", "ann"),
        (2.5, 2.5),
        (True, True),
        (None, None),
        (math.nan, "nan"),
        (pd.Timestamp("2024-01-02"), "2024-01-02 00:00:00"),
        (("a", 1), "('a', 1)"),
    ],
)
def test_labels_json_cannot_hold_are_written_as_text(label: object, written: object) -> None:
    record = Recourse(row=label, status="not_found")  # type: ignore[arg-type]
    line = json.dumps(record.to_dict(), allow_nan=False)
    assert json.loads(line)["row"] == written == json_label(label)
    assert Recourse.from_dict(json.loads(line)).row == written


def test_a_datetime_index_round_trips_through_jsonl(tmp_path: Path) -> None:
    _, model, actions = _problem()
    X = _people(list(pd.date_range("2024-01-01", periods=3)))
    plans = synthesize(model, X, actions, **SETTINGS)
    assert [r.row for r in plans] == list(X.index)  # kept as the frame's labels in memory
    assert check_plans(plans, X, actions, model) == []  # the contract reads the same labels
    assert list(X.join(plans.to_frame()).status) == [r.status for r in plans]
    back = RecourseBatch.from_jsonl(plans.to_jsonl(tmp_path / "plans.jsonl"))
    assert [r.row for r in back] == [str(t) for t in X.index]
