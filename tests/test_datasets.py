"""Bundled datasets: counts, labels, readable levels, recorded checksums, splits and default models."""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import train_test_split

from actionable import ConfigError, ModelError, Schema, datasets
from actionable.datasets.recipes import quality

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = SHARED / "SOURCES.md"
ROWS = {"german": 1000, "adult": 45222, "student": 649, "california": 20640, "quickdraw": 1000}
needs_shared = pytest.mark.skipif(not SOURCES.is_file(), reason="shared/data (the raw files) not present")


def needs_models(*names: str) -> pytest.MarkDecorator:
    missing = [n for n in names if not (datasets.folder(n) / "models").is_dir()]
    return pytest.mark.skipif(bool(missing), reason=f"no models folder yet for {missing}")


def test_names() -> None:
    assert datasets.names() == datasets.NAMES == ("german", "adult", "student", "california", "quickdraw")


@pytest.mark.parametrize("name", datasets.NAMES)
def test_loads_validates_and_encodes(name: str) -> None:
    data = datasets.load(name)
    n = ROWS[name]
    assert data.name == name and data.task in ("classification", "regression")
    assert len(data.frame) == len(data.target) == len(data.split) == n
    assert list(data.frame.columns) == list(data.schema.names)
    assert data.frame.index.equals(pd.RangeIndex(n))
    assert data.schema.validate(data.frame).equals(data.frame)
    x = data.schema.encode(data.frame)
    assert x.shape == (n, data.schema.width)
    for feature in data.schema.features:  # every category is one-hot: each row has exactly one 1
        if feature.kind == "category":
            assert torch.equal(x[:, data.schema.slice(feature.name)].sum(1), torch.ones(n, dtype=x.dtype))


@pytest.mark.parametrize("name", datasets.NAMES)
def test_parts_partition_the_rows(name: str) -> None:
    data = datasets.load(name)
    parts = [(data.X_train, data.y_train), (data.X_val, data.y_val), (data.X_test, data.y_test)]
    for X, y in parts:
        assert X.index.equals(y.index)
    assert sorted(i for X, _ in parts for i in X.index) == list(range(ROWS[name]))
    assert set(data.split) <= {"train", "val", "test"} and len(data.X_test) > 0 and len(data.X_train) > 0


@pytest.mark.parametrize("name", datasets.NAMES)
def test_shipped_schema_is_canonical_toml(name: str) -> None:
    data = datasets.load(name)
    assert (data.path / "schema.toml").read_text(encoding="utf-8") == data.schema.to_toml()
    assert Schema.from_toml(data.schema.to_toml()) == data.schema
    assert data.schema.target is not None and data.schema.target.name not in data.frame.columns


def test_german_labels_and_readable_levels() -> None:
    data = datasets.load("german")
    schema = data.schema
    assert data.target.value_counts().to_dict() == {"good": 700, "bad": 300}
    assert schema.target is not None and schema.target.favourable == "good"
    assert schema.target.classes == ("bad", "good")
    assert schema["savings"].levels[:2] == ("< 100 DM", "100 <= ... < 500 DM")  # A61, A62 in code order
    assert schema["checking_account"].levels[3] == "no checking account"  # A14
    assert schema["other_debtors"].levels == ("none", "co-applicant", "guarantor")
    assert schema["job"].levels[1] == "unskilled - resident"  # A172
    assert schema["foreign_worker"].levels == ("yes", "no")
    # A47 is documented but no applicant has it: the level is kept, in code order
    assert schema["purpose"].levels[7] == "vacation" and not (data.frame["purpose"] == "vacation").any()
    assert len(schema["purpose"].levels) == 11
    assert data.frame["checking_account"].iloc[0] == "< 0 DM"  # first row of german.data is A11
    for name in ("duration", "credit_amount", "installment_rate", "age", "existing_credits"):
        assert schema[name].kind == "integer" and data.frame[name].dtype == np.int64
    assert data.split.value_counts().to_dict() == {"train": 800, "test": 200}
    assert data.y_test.value_counts().to_dict() == {"good": 140, "bad": 60}  # stratified


def test_german_mutability_is_as_documented() -> None:
    schema = datasets.load("german").schema
    assert (schema["age"].mutability, schema["age"].direction) == ("direct", "increase")
    for name in ("duration", "credit_amount"):
        assert (schema[name].mutability, schema[name].direction) == ("direct", "both")
    fixed = {
        "personal_status",
        "credit_history",
        "purpose",
        "checking_account",
        "residence_since",
        "liable_people",
        "other_installment_plans",
    }
    assert {f.name for f in schema.features if f.mutability == "fixed"} == fixed
    assert all(f.mutability == "direct" for f in schema.features if f.name not in fixed)


def test_german_split_is_the_seeded_stratified_one() -> None:
    data = datasets.load("german")
    _, test = train_test_split(np.arange(1000), test_size=0.2, random_state=0, stratify=data.target)
    assert sorted(test) == list(data.X_test.index)


def test_adult_labels_re_derived_from_both_files() -> None:
    data = datasets.load("adult")
    assert int((data.target == ">50K").sum()) == 11208
    assert set(data.target) == {"<=50K", ">50K"}
    # labels per file: the test file's ">50K." rows are positives (the synthesis repo had them all negative)
    assert int((data.y_train == ">50K").sum()) == 7508
    assert int((data.y_test == ">50K").sum()) == 3700
    counts = data.info["counts"]
    assert counts["uci-adult/adult.data"] == {
        "rows": 32561,
        "dropped_missing": 2399,
        "kept": 30162,
        "positives": 7508,
    }
    assert counts["uci-adult/adult.test"] == {
        "rows": 16281,
        "dropped_missing": 1221,
        "kept": 15060,
        "positives": 3700,
    }
    notes = " ".join(data.info["notes"])
    assert "7508" in notes and "3700" in notes and "2399" in notes and "1221" in notes
    assert data.split.value_counts().to_dict() == {"train": 30162, "test": 15060}
    assert not any((data.frame[c].astype(str) == "?").any() for c in data.frame.columns)


def test_adult_columns_levels_and_mutability() -> None:
    schema = datasets.load("adult").schema
    assert schema.names == (
        "age",
        "workclass",
        "education_num",
        "marital_status",
        "occupation",
        "relationship",
        "race",
        "sex",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
        "native_country",
    )
    assert schema.target is not None and (schema.target.classes, schema.target.favourable) == (
        ("<=50K", ">50K"),
        ">50K",
    )
    for feature in schema.features:
        if feature.kind == "category":
            assert list(feature.levels) == sorted(feature.levels)
            assert all(level == level.strip() and level != "?" for level in feature.levels)
    assert "United-States" in schema["native_country"].levels
    directions = {f.name: f.direction for f in schema.features if f.mutability == "direct"}
    assert directions == {
        "age": "increase",
        "education_num": "increase",
        "hours_per_week": "both",
        "capital_gain": "both",
        "capital_loss": "both",
        "occupation": "both",
        "workclass": "both",
    }


def test_student_is_lashs_split_and_groups() -> None:
    data = datasets.load("student")
    assert data.split.value_counts().to_dict() == {"train": 519, "val": 65, "test": 65}
    assert int((data.y_test == 1).sum()) == 46
    assert data.schema.target is not None and data.schema.target.favourable == 0
    assert [f.name for f in data.schema.features if f.mutability == "direct"] == [
        "goout",
        "Dalc",
        "Walc",
        "absences",
        "studytime",
        "paid",
    ]
    assert [f.name for f in data.schema.features if f.mutability == "indirect"] == [
        "activities",
        "higher",
        "romantic",
        "freetime",
    ]
    for extra in ("stud_indices.csv", "processed_stud_minmax.csv", "invresult_pos_only.csv"):
        assert (data.path / extra).is_file()


def test_student_keeps_lashs_43_column_names_in_order() -> None:
    data = datasets.load("student")
    reference = pd.read_csv(data.path / "processed_stud_minmax.csv").sort_values("x_index")
    assert list(data.frame.columns) == list(reference["feature"]) and len(data.frame.columns) == 43
    assert "studid" not in data.frame.columns


def test_student_training_ranges_equal_lashs() -> None:
    data = datasets.load("student")
    reference = pd.read_csv(data.path / "processed_stud_minmax.csv").set_index("feature")
    train = data.X_train.astype(float)
    assert np.allclose(train.min().to_numpy(), reference.loc[list(train.columns), "train_min"].to_numpy())
    assert np.allclose(train.max().to_numpy(), reference.loc[list(train.columns), "train_max"].to_numpy())


def test_california_is_a_regression_with_a_threshold() -> None:
    data = datasets.load("california")
    assert data.task == "regression" and data.schema.target is not None
    assert data.schema.target.above == 2.0 and data.schema.target.classes == ()
    assert data.target.dtype == np.float64
    assert data.target.mean() == pytest.approx(2.0686, abs=1e-3)
    assert data.frame["HouseAge"].dtype == np.int64 and data.frame["Population"].dtype == np.int64
    fixed = {f.name for f in data.schema.features if f.mutability == "fixed"}
    assert fixed == {"HouseAge", "Latitude", "Longitude"}
    _, test = train_test_split(np.arange(20640), test_size=0.2, random_state=0)
    assert sorted(test) == list(data.X_test.index)


@pytest.mark.parametrize("name", datasets.NAMES)
def test_dataset_json_has_the_documented_keys(name: str) -> None:
    info = datasets.load(name).info
    keys = {"name", "title", "description", "task", "citation", "license", "source", "split", "notes"}
    assert keys | {"default_model"} <= set(info)
    assert info["name"] == name and info["source"] and info["notes"]
    for source in info["source"]:
        assert set(source) == {"file", "sha256", "origin"} and re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
    text = (datasets.folder(name) / "SOURCE.md").read_text(encoding="utf-8")
    assert all(source["sha256"] in text for source in info["source"])


@needs_shared
@pytest.mark.parametrize("name", datasets.NAMES)
def test_recorded_checksums_equal_sources_md(name: str) -> None:
    text = SOURCES.read_text()
    for source in datasets.load(name).info["source"]:
        basename = re.escape(source["file"].split("/")[-1])
        assert re.search(rf"\| {basename} \|.*{source['sha256']}", text), source
        assert hashlib.sha256((SHARED / source["file"]).read_bytes()).hexdigest() == source["sha256"]


def test_student_extras_are_unaltered_copies() -> None:
    data = datasets.load("student")
    recorded = {s["file"].split("/")[-1]: s["sha256"] for s in data.info["source"]}
    for extra in ("stud_indices.csv", "processed_stud_minmax.csv", "invresult_pos_only.csv"):
        assert hashlib.sha256((data.path / extra).read_bytes()).hexdigest() == recorded[extra]


@needs_shared
def test_adult_positives_counted_independently_from_the_raw_files() -> None:
    found = {}
    for name, skip in (("adult.data", 0), ("adult.test", 1)):
        with (SHARED / "uci-adult" / name).open(newline="") as handle:
            rows = [[c.strip() for c in r] for r in list(csv.reader(handle))[skip:] if r and r[0].strip()]
        kept = [r for r in rows if "?" not in r]
        found[name] = (len(rows), len(kept), sum(r[-1].rstrip(".") == ">50K" for r in kept))
    assert found == {"adult.data": (32561, 30162, 7508), "adult.test": (16281, 15060, 3700)}


@needs_shared
def test_california_values_equal_the_source_exactly() -> None:
    data = datasets.load("california")
    source = pd.read_csv(SHARED / "california-housing" / "california_housing.csv", dtype=str)
    for column in source.columns:
        expected = source[column].map(float).to_numpy()  # Python's float() rounds correctly
        got = (data.target if column == "MedHouseVal" else data.frame[column]).to_numpy(np.float64)
        assert np.array_equal(got, expected), column


@needs_shared
def test_german_first_row_decoded_from_the_raw_file() -> None:
    first = (SHARED / "uci-german" / "german.data").read_text().splitlines()[0].split()
    assert first[:5] == ["A11", "6", "A34", "A43", "1169"]
    row = datasets.load("german").frame.iloc[0]
    assert (row["duration"], row["credit_history"], row["purpose"], row["credit_amount"]) == (
        6,
        "critical account / other credits elsewhere",
        "radio/television",
        1169,
    )


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"'germna' is not bundled; choose one of \['german'.*Did you mean 'german'"
    ) as caught:
        datasets.load("germna")
    assert all(name in str(caught.value) for name in datasets.NAMES)
    with pytest.raises(ConfigError, match="california"):
        datasets.load("nope")


def test_loads_are_deterministic() -> None:
    for name in datasets.NAMES:
        a = datasets._load.__wrapped__(name)  # bypass the cache
        b = datasets.load(name)
        assert a.frame.equals(b.frame) and a.split.equals(b.split) and a.target.equals(b.target)
    assert datasets.load("german") is datasets.load("german")  # cached


@pytest.mark.parametrize("name", datasets.NAMES)
def test_data_files_are_deterministic_gzip(name: str) -> None:
    packed = (datasets.folder(name) / "data.csv.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b" and packed[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    header = gzip.decompress(packed).split(b"\n", 1)[0].decode()
    data = datasets.load(name)
    assert header.split(",") == [*data.schema.names, data.target.name, "split"]


def test_bundle_is_small() -> None:
    root = datasets.folder("german").parent
    size = sum(p.stat().st_size for n in datasets.NAMES for p in (root / n).rglob("*") if p.is_file())
    assert size < 3 * 2**20


def test_missing_default_model_names_the_fix() -> None:
    data = datasets.load("german")
    broken = replace(data, info={**data.info, "default_model": "absent"})
    with pytest.raises(ModelError, match=r"actionable train --dataset german"):
        _ = broken.model


QUALITY = {
    ("german", "mlp"): ("test_accuracy", 0.74),
    ("adult", "mlp"): ("test_accuracy", 0.84),
    ("student", "regular"): ("test_accuracy", 0.70),
    ("california", "mlp"): ("test_r2", 0.70),
    ("california", "linear"): ("test_r2", 0.55),
    ("quickdraw", "conv"): ("test_accuracy", 0.95),
}


@pytest.mark.parametrize(
    ("name", "model_name"), [pytest.param(*key, marks=needs_models(key[0])) for key in QUALITY]
)
def test_default_models_meet_their_quality(name: str, model_name: str) -> None:
    data = datasets.load(name)
    model = data.models[model_name]
    key, floor = QUALITY[(name, model_name)]
    measured = quality(model, data)[key]
    assert measured >= floor
    assert measured == pytest.approx(model.provenance["metrics"][key])  # the recorded number is the real one


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_models(n)) for n in datasets.NAMES])
def test_default_model_is_the_named_one(name: str) -> None:
    data = datasets.load(name)
    assert data.model is data.models[data.info["default_model"]]
    assert data.model.schema == data.schema


@needs_models(*datasets.NAMES)
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


@needs_models("student")
def test_indirect_model_reads_only_fixed_and_direct_features() -> None:
    data = datasets.load("student")
    model = data.models["indirect"]
    x = data.schema.encode(data.X_test)
    changed = x.clone()
    changed[:, data.schema.mask("indirect")] += 1
    assert torch.equal(model(x), model(changed))
    assert model.outputs == ("activities", "higher", "romantic", "freetime")
