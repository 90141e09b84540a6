"""Quick, Draw!: the bundled data and model, the add_stroke catalogue, verified plans and the figure."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ConfigError, datasets
from actionable.actions import ActionSet, holds
from actionable.drawing import added, draw_recourse, drawn, stroke_plan_problems, strokes
from actionable.synthesis import synthesize

SHA256 = "219d48e8d389787fab3ee19c52722c11e6f8f13ffd03f10c3ab6989e96d57589"  # shared/data/SOURCES.md
SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "synth-quickdraw" / "cat.missing.npz"


@pytest.fixture(scope="module")
def data() -> datasets.Dataset:
    return datasets.load("quickdraw")


@pytest.fixture(scope="module")
def catalogue(data: datasets.Dataset) -> ActionSet:
    return ActionSet.from_toml(data.path / "actions.toml", data.schema)


def as_array(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(np.float64).reshape(len(frame), 128, 4)


# ------------------------------------------------------------------------------------------ data
def test_dataset_loads_with_licence_checksum_and_split(data: datasets.Dataset) -> None:
    assert data.frame.shape == (1000, 512) and data.task == "classification"
    assert list(data.frame.columns[:5]) == ["x1_0", "y1_0", "x2_0", "y2_0", "x1_1"]
    assert data.target.value_counts().to_dict() == {"no": 500, "yes": 500}
    assert data.split.value_counts().to_dict() == {"train": 800, "test": 200}
    assert (data.target[data.split == "test"] == "yes").sum() == 100  # stratified
    assert data.info["source"][0]["sha256"] == SHA256
    assert "CC BY 4.0" in data.info["license"] and "Google" in data.info["license"]
    note = (data.path / "SOURCE.md").read_text(encoding="utf-8")
    assert SHA256 in note and "CC BY 4.0" in note
    x = as_array(data.frame)
    n = drawn(x.reshape(-1, 4)).reshape(1000, 128).sum(1)
    assert n.min() == 85 and n.max() == 94  # complete cats have 94 segments
    assert (n[data.target.to_numpy() == "yes"] == 94).all()
    empty = (x == 1).all(-1)
    assert all(empty[i, n[i] :].all() for i in range(1000))  # slots fill from the front


@pytest.mark.skipif(not SOURCE.is_file(), reason="the raw shared data is not on this machine")
def test_dataset_equals_the_source_npz_exactly(data: datasets.Dataset) -> None:
    assert hashlib.sha256(SOURCE.read_bytes()).hexdigest() == SHA256
    with np.load(SOURCE, allow_pickle=False) as npz:
        assert np.array_equal(as_array(data.frame), npz["data"])
        assert np.array_equal(data.target.to_numpy() == "yes", npz["labels"][:, 1] == 1)


def test_bundled_model_is_a_conv_net_that_recognises_the_test_drawings(data: datasets.Dataset) -> None:
    model = data.model
    kinds = [layer.spec()["type"] for layer in model.network]
    assert kinds[:3] == ["Sequence1d", "Conv1d", "ReLU"] and "Flatten" in kinds
    accuracy = float(np.mean(model.predict(data.X_test) == data.y_test.to_numpy(dtype=object)))
    assert accuracy >= 0.95
    assert model.provenance["metrics"]["test_accuracy"] == pytest.approx(accuracy)


# ------------------------------------------------------------------------------------ catalogue
def test_catalogue_passes_the_static_check(data: datasets.Dataset, catalogue: ActionSet) -> None:
    catalogue.check(data.schema)
    (action,) = catalogue.actions
    assert action.name == "add_stroke" and action.repeatable
    assert [p.name for p in action.params] == ["x1", "y1", "x2", "y2"]
    assert all(p.bounds == (0.0, 1.0) for p in action.params)
    assert data.info["synthesis"]["max_length"] == 5


def first_empty_oracle(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """numpy: write each row's segment into its first empty slot if that is slot 95 or before."""
    out, allowed = x.copy(), np.zeros(len(x), dtype=bool)
    for i in range(len(x)):
        k = int(np.flatnonzero((x[i] == 1).all(-1))[0])
        if k <= 95:
            out[i, k], allowed[i] = p[i], True
    return out, allowed


def test_add_stroke_writes_the_first_empty_slot_only(data: datasets.Dataset, catalogue: ActionSet) -> None:
    action = catalogue["add_stroke"]
    schema = data.schema
    rows = data.frame.iloc[::50]
    x = schema.encode(rows)
    generator = torch.Generator().manual_seed(1)
    p = torch.rand(len(rows), 4, generator=generator, dtype=torch.float64)
    state = x
    expected = as_array(rows)
    for _ in range(3):  # repeated: each stroke goes into the next empty slot (94 + 3 reaches slot 96)
        env = action.env(schema, state, p)
        pre = holds(action.conditions("pre")[0], env) & holds(action.conditions("pre")[1], env)
        state = action.apply(schema, state, env)
        expected, allowed = first_empty_oracle(expected, p.numpy())
        assert np.array_equal(pre.numpy(), allowed)
        assert np.array_equal(state.numpy().reshape(-1, 128, 4)[allowed], expected[allowed])
    assert not allowed.all()  # the third stroke of a complete cat would pass slot 95
    cost = action.cost_of(action.env(schema, x, p), torch.Size([len(rows)]))
    q = p.numpy()
    length = np.hypot(q[:, 2] - q[:, 0], q[:, 3] - q[:, 1])
    assert np.allclose(cost.numpy(), length + 1, rtol=0, atol=1e-12)
    inside = np.array([bool(holds(c, action.env(schema, x, p)).all()) for c in action.conditions("pre")[2:]])
    assert inside.all() == bool(((length > 0.1) & (length < 1)).all())


def test_add_stroke_is_not_allowed_past_slot_95(data: datasets.Dataset, catalogue: ActionSet) -> None:
    action = catalogue["add_stroke"]
    row = data.frame.iloc[[0]].copy()
    for k in range(int(drawn(strokes(row.iloc[0].to_dict())).sum()), 96):
        row[[f"x1_{k}", f"y1_{k}", f"x2_{k}", f"y2_{k}"]] = [0.1, 0.1, 0.5, 0.5]
    p = torch.tensor([[0.2, 0.2, 0.6, 0.6]], dtype=torch.float64)
    env = action.env(data.schema, data.schema.encode(row), p)
    assert not all(bool(holds(c, env).all()) for c in action.conditions("pre"))


# ----------------------------------------------------------------------------------- synthesis
@pytest.fixture(scope="module")
def plans(data: datasets.Dataset, catalogue: ActionSet) -> list:
    """Plans for two unrecognised test drawings, one missing 1 stroke and one missing 2 (kept small)."""
    x = as_array(data.X_test)
    n = drawn(x.reshape(-1, 4)).reshape(len(x), 128).sum(1)
    unrecognised = data.model.predict(data.X_test) == "no"
    picks = [int(np.flatnonzero(unrecognised & (n == k))[0]) for k in (93, 92)]
    batch = synthesize(data.model, data.X_test.iloc[picks], catalogue, max_length=2, steps=30)
    return list(batch)


def test_found_plans_are_exactly_verified(data: datasets.Dataset, plans: list) -> None:
    found = [r for r in plans if r.status == "found"]
    assert [len(r.steps) for r in found] == [1, 2], [r.status for r in plans]
    for r in found:
        assert stroke_plan_problems(r) == []
        after = pd.DataFrame([r.x_after], columns=list(data.schema.names))
        assert data.model.predict(after)[0] == "yes"
        assert r.p_after > 0.5 > r.p_before
        lengths = [
            math.hypot(s.params["x2"] - s.params["x1"], s.params["y2"] - s.params["y1"]) for s in r.steps
        ]
        assert r.cost == pytest.approx(sum(lengths) + len(lengths), abs=1e-9)


def test_the_independent_check_catches_planted_bugs(plans: list) -> None:
    r = next(r for r in plans if r.status == "found")
    moved = dict(r.x_after)
    n0 = int(drawn(strokes(r.x_before)).sum())
    for c in ("x1", "y1", "x2", "y2"):  # the stroke written one slot too far
        moved[f"{c}_{n0 + 1}"], moved[f"{c}_{n0}"] = moved[f"{c}_{n0}"], 1.0
    assert any(
        "not the first empty" in p for p in stroke_plan_problems(dataclasses.replace(r, x_after=moved))
    )
    assert any("plan cost" in p for p in stroke_plan_problems(dataclasses.replace(r, cost=r.cost + 0.5)))
    step = r.steps[0]
    long = dataclasses.replace(step, params={**step.params, "x1": 0.0, "y1": 0.0, "x2": 1.0, "y2": 1.0})
    flagged = stroke_plan_problems(dataclasses.replace(r, steps=(long, *r.steps[1:])))
    assert any("outside (0.1, 1.0)" in p for p in flagged) and any("holds" in p for p in flagged)


# -------------------------------------------------------------------------------------- figure
def test_figure_is_written(plans: list, tmp_path: Path) -> None:
    out = draw_recourse(plans, tmp_path / "figure.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    empty = draw_recourse([r for r in plans if r.status != "found"], tmp_path / "none.png")
    assert empty.is_file()


def test_strokes_and_added_slots() -> None:
    before = {"x1_0": 0.1, "y1_0": 0.2, "x2_0": 0.3, "y2_0": 0.4, "x1_1": 1, "y1_1": 1, "x2_1": 1, "y2_1": 1}
    after = {**before, "x1_1": 0.5, "y1_1": 0.5, "x2_1": 0.7, "y2_1": 0.6}
    assert strokes(before).tolist() == [[0.1, 0.2, 0.3, 0.4], [1, 1, 1, 1]]
    assert drawn(strokes(before)).tolist() == [True, False]
    assert added(strokes(before), strokes(after)).tolist() == [False, True]
    with pytest.raises(ConfigError, match="no stroke columns"):
        strokes({"age": 30})
