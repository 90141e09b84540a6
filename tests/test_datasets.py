"""Bundled datasets: counts, labels, readable levels, recorded checksums, splits and default models."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from actionable import ConfigError, datasets
from actionable.datasets.recipes import quality

SOURCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "SOURCES.md"
ROWS = {"german": 1000, "adult": 45222, "student": 649, "california": 20640}


@pytest.mark.parametrize("name", datasets.NAMES)
def test_loads_validates_and_encodes(name: str) -> None:
    data = datasets.load(name)
    assert len(data.frame) == len(data.target) == len(data.split) == ROWS[name]
    assert list(data.frame.columns) == list(data.schema.names)
    data.schema.validate(data.frame)
    assert data.schema.encode(data.frame.head(50)).shape == (50, data.schema.width)
    assert set(data.split) <= {"train", "val", "test"}
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == ROWS[name]


def test_german_labels_and_readable_levels() -> None:
    data = datasets.load("german")
    assert data.target.value_counts().to_dict() == {"good": 700, "bad": 300}
    assert "< 100 DM" in data.schema["savings"].levels
    assert data.schema["other_debtors"].levels == ("none", "co-applicant", "guarantor")
    assert data.frame["checking_account"].iloc[0] == "< 0 DM"  # first row of german.data is A11
    assert data.split.value_counts().to_dict() == {"train": 800, "test": 200}
    assert data.y_test.value_counts().to_dict() == {"good": 140, "bad": 60}  # stratified


def test_adult_labels_re_derived_from_both_files() -> None:
    data = datasets.load("adult")
    assert int((data.target == ">50K").sum()) == 11208
    counts = data.info["counts"]
    assert counts["uci-adult/adult.test"]["positives"] == 3700
    assert counts["uci-adult/adult.data"]["positives"] == 7508
    assert data.split.value_counts().to_dict() == {"train": 30162, "test": 15060}
    assert not any((data.frame[c].astype(str) == "?").any() for c in data.frame.columns)


def test_student_is_lashs_split_and_groups() -> None:
    data = datasets.load("student")
    assert data.split.value_counts().to_dict() == {"train": 519, "val": 65, "test": 65}
    assert int((data.y_test == 1).sum()) == 46
    assert [f.name for f in data.schema.features if f.mutability == "direct"] == [
        "goout",
        "Dalc",
        "Walc",
        "absences",
        "studytime",
        "paid",
    ]
    assert (data.path / "stud_indices.csv").is_file() and (data.path / "invresult_pos_only.csv").is_file()


def test_student_training_ranges_equal_lashs() -> None:
    import pandas as pd

    data = datasets.load("student")
    reference = pd.read_csv(data.path / "processed_stud_minmax.csv").set_index("feature")
    train = data.X_train.astype(float)
    assert np.allclose(train.min().to_numpy(), reference.loc[list(train.columns), "train_min"].to_numpy())
    assert np.allclose(train.max().to_numpy(), reference.loc[list(train.columns), "train_max"].to_numpy())


def test_california_is_a_regression_with_a_threshold() -> None:
    data = datasets.load("california")
    assert data.task == "regression" and data.schema.target is not None
    assert data.schema.target.above == 2.0
    assert data.target.mean() == pytest.approx(2.0686, abs=1e-3)


@pytest.mark.skipif(not SOURCES.is_file(), reason="shared/data/SOURCES.md not present")
@pytest.mark.parametrize("name", datasets.NAMES)
def test_recorded_checksums_equal_sources_md(name: str) -> None:
    text = SOURCES.read_text()
    for source in datasets.load(name).info["source"]:
        assert re.search(rf"\| {re.escape(source['file'].split('/')[-1])} \|.*{source['sha256']}", text), (
            source
        )


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"'germna' is not bundled; choose one of \['german'.*Did you mean 'german'"
    ):
        datasets.load("germna")


def test_loads_are_deterministic() -> None:
    a = datasets._load.__wrapped__("german")  # bypass the cache
    b = datasets.load("german")
    assert a.frame.equals(b.frame) and a.split.equals(b.split) and a.target.equals(b.target)


QUALITY = {
    ("german", "mlp"): ("test_accuracy", 0.74),
    ("adult", "mlp"): ("test_accuracy", 0.84),
    ("student", "regular"): ("test_accuracy", 0.70),
    ("california", "mlp"): ("test_r2", 0.70),
    ("california", "linear"): ("test_r2", 0.55),
}


@pytest.mark.parametrize(("name", "model_name"), list(QUALITY))
def test_default_models_meet_their_quality(name: str, model_name: str) -> None:
    data = datasets.load(name)
    model = data.models[model_name]
    key, floor = QUALITY[(name, model_name)]
    measured = quality(model, data)[key]
    assert measured >= floor
    assert measured == pytest.approx(model.provenance["metrics"][key])  # the recorded number is the real one


def test_default_architectures() -> None:
    def linears(model: object) -> list[tuple[int, int]]:
        return [tuple(m.weight.shape[::-1]) for m in model.network if hasattr(m, "weight")]  # type: ignore[attr-defined]

    # 63 inputs as in the AAAI 2020 code: purpose keeps the "vacation" level absent from the data
    assert linears(datasets.load("german").model) == [(63, 40), (40, 40), (40, 2)]
    adult = datasets.load("adult")
    assert linears(adult.model) == [(adult.schema.width, 50), (50, 50), (50, 2)]
    student = datasets.load("student").models
    assert linears(student["regular"]) == [(43, 15), (15, 2)]
    assert linears(student["indirect"]) == [(39, 10), (10, 4)]
    assert linears(datasets.load("california").models["mlp"]) == [(8, 200), (200, 1)]


def test_indirect_model_reads_only_fixed_and_direct_features() -> None:
    data = datasets.load("student")
    model = data.models["indirect"]
    x = data.schema.encode(data.X_test)
    changed = x.clone()
    changed[:, data.schema.mask("indirect")] += 1
    assert torch.equal(model(x), model(changed))
    assert model.outputs == ("activities", "higher", "romantic", "freetime")
