"""A foreign network's input encoding on a schema: equal to encoding by hand, decoded back, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from actionable import DataError, Feature, ModelError, Schema, SpecError, Target, as_model
from actionable.models.input_encoding import InputEncoding, on_schema

SCHEMA = Schema(
    (
        Feature("income", "real", (0, 100)),
        Feature("years", "integer", (0, 40)),
        Feature("job", "category", levels=("clerk", "manager", "owner")),
        Feature("phone", "binary"),
        Feature("age", "integer", (18, 90)),
    ),
    Target("y", favourable="b", classes=("a", "b")),
)


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.uniform(0, 100, n),
            "years": rng.integers(0, 41, n),
            "job": rng.choice(["clerk", "manager", "owner"], n),
            "phone": rng.integers(0, 2, n),
            "age": rng.integers(18, 91, n),
        }
    )


def by_hand(X: pd.DataFrame, records: list[dict]) -> np.ndarray:  # type: ignore[type-arg]
    """The network's input columns computed directly from the raw rows (independent of ColumnMap)."""
    cols = []
    for r in records:
        if "constant" in r:
            cols.append(np.full(len(X), r["constant"], dtype=float))
            continue
        x = X[r["feature"]].to_numpy()
        if "zscore" in r:
            cols.append((x - r["zscore"][0]) / r["zscore"][1])
        elif "minmax" in r:
            cols.append((x - r["minmax"][0]) / (r["minmax"][1] - r["minmax"][0]))
        elif "level" in r:
            cols.append((x == r["level"]).astype(float))
        elif "levels" in r:
            cols.extend((x == level).astype(float) for level in r["levels"])
        else:
            cols.append(x.astype(float))
    return np.stack(cols, axis=1)


RECORDS = [
    {"feature": "job", "levels": ["owner", "clerk", "manager"]},  # the file's own level order
    {"feature": "income", "zscore": [50.0, 28.0]},
    {"constant": 0.25},
    {"feature": "phone", "level": 0},
    {"feature": "phone", "level": 1},
    {"feature": "years", "minmax": [0, 40]},
    {"feature": "years"},
]  # age is dropped: the network never reads it


def test_model_on_schema_equals_the_network_on_columns_encoded_by_hand() -> None:
    encoding = InputEncoding.from_records(RECORDS, SCHEMA)
    assert encoding.width == 9 and encoding.dropped(SCHEMA) == ("age",)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(9, 6), nn.ReLU(), nn.Linear(6, 2)).double()
    model = on_schema(net, SCHEMA, encoding)
    X = frame(200, 1)
    expected = net(torch.as_tensor(by_hand(X, RECORDS))).detach().numpy()
    np.testing.assert_allclose(model(SCHEMA.encode(X)).detach().numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(X)[:, 1], torch.softmax(torch.as_tensor(expected), 1)[:, 1]
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), keep=st.lists(st.booleans(), min_size=5, max_size=5))
def test_decode_inverts_the_encoding(seed: int, keep: list[bool]) -> None:
    rng = np.random.default_rng(seed)
    records: list[dict] = [  # type: ignore[type-arg]
        {"feature": "income", "zscore": [float(rng.normal(50, 5)), float(rng.uniform(1, 30))]},
        {"feature": "years", "minmax": [0, 40]},
        {"feature": "job", "levels": list(rng.permutation(["clerk", "manager", "owner"]))},
        {"feature": "phone", "level": int(rng.integers(0, 2))},
        {"feature": "age", "zscore": [40.0, 12.0]},
    ]
    twice = [r for r, k in zip(records, keep, strict=True) if k and not {"level", "levels"} & set(r)]
    records = twice + records  # some value columns twice (an indicator twice is refused)
    rng.shuffle(records)  # type: ignore[arg-type]
    encoding = InputEncoding.from_records(records, SCHEMA)
    X = frame(50, seed)
    back = encoding.decode(by_hand(X, records).astype(np.float32), SCHEMA)  # float32, as papers store
    np.testing.assert_allclose(back["income"], X["income"], rtol=0, atol=1e-4)  # float32 z-scores
    for name in ("years", "job", "phone", "age"):
        assert (back[name].to_numpy() == X[name].to_numpy()).all(), name


def test_a_drop_first_block_decodes_the_missing_level() -> None:
    records = [{"feature": f} for f in ("income", "years", "phone", "age")]
    records.append({"feature": "job", "levels": ["manager", "owner"]})  # clerk is the reference level
    encoding = InputEncoding.from_records(records, SCHEMA)
    X = frame(30, 2)
    assert (encoding.decode(by_hand(X, records), SCHEMA)["job"] == X["job"]).all()
    records[-1] = {"feature": "job", "levels": ["manager"]}  # two levels missing: ambiguous
    with pytest.raises(SpecError, match="which one is meant"):
        InputEncoding.from_records(records, SCHEMA).decode(by_hand(X, records), SCHEMA)


def test_levels_true_is_the_schemas_order() -> None:
    encoding = InputEncoding.from_records([{"feature": "job", "levels": True}], SCHEMA)
    assert [c.level for c in encoding.columns] == ["clerk", "manager", "owner"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"feature": "incme"}, "no feature 'incme'.*income"),
        ({"feature": "job", "level": "boss"}, "'boss' is not a level of 'job'"),
        ({"feature": "job"}, "is a category"),
        ({"feature": "job", "zscore": [0, 1]}, "is a category"),
        ({"feature": "income", "zscore": [0, 0]}, "std must be > 0"),
        ({"feature": "income", "zscore": [0, float("nan")]}, "finite"),
        ({"feature": "income", "minmax": [5, 5]}, "max must exceed min"),
        ({"feature": "income", "zscore": [1]}, "pair"),
        ({"feature": "income", "zscore": [0, 1], "minmax": [0, 1]}, "one of"),
        ({"feature": "income", "scale": 2}, "unknown key 'scale'"),
        ({"constant": 1.0, "feature": "income"}, "stands alone"),
        ({"feature": "income", "level": 1}, "has no levels"),
        ({"feature": "phone", "level": 2}, "not a level"),
        ({"feature": "job", "levels": []}, "non-empty list"),
        ("income", "table/object"),
    ],
)
def test_bad_declarations_name_the_record(record: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        InputEncoding.from_records([{"feature": "income"}, record], SCHEMA)  # type: ignore[list-item]


def test_width_mismatch_names_the_columns() -> None:
    encoding = InputEncoding.from_records(RECORDS, SCHEMA)
    with pytest.raises(
        ModelError, match=r"reads 7 input columns.*declares 9.*past 7: \['years \(minmax\)', 'years'\]"
    ):
        on_schema(nn.Sequential(nn.Linear(7, 2)).double(), SCHEMA, encoding)
    with pytest.raises(ModelError, match=r"reads 12 .* 3 are missing after it"):
        on_schema(nn.Sequential(nn.Linear(12, 2)).double(), SCHEMA, encoding)
    with pytest.raises(SpecError, match="no columns"):
        InputEncoding.from_records([], SCHEMA)
    with pytest.raises(SpecError, match="does not read \\['age'\\]"):
        encoding.decode(np.zeros((2, 9)), SCHEMA)
    with pytest.raises(SpecError, match="rows of 9 columns"):
        encoding.decode(np.zeros((2, 8)), SCHEMA)


def test_a_toml_declaration_and_as_model_encoding() -> None:
    text = """
[[column]]
feature = "job"
levels = ["owner", "clerk", "manager"]

[[column]]
feature = "income"
zscore = [50.0, 28.0]

[[column]]
constant = 0.25

[[column]]
feature = "phone"
level = 0

[[column]]
feature = "phone"
level = 1

[[column]]
feature = "years"
minmax = [0, 40]

[[column]]
feature = "years"
"""
    encoding = InputEncoding.from_file(text, SCHEMA)
    assert encoding == InputEncoding.from_records(RECORDS, SCHEMA)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(9, 1)).double()  # one logit: the second class's
    model = as_model(net, SCHEMA, encoding=encoding)
    X = frame(40, 3)
    z = net(torch.as_tensor(by_hand(X, RECORDS))).detach().numpy()[:, 0]
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-12)
    with pytest.raises(SpecError, match="unknown key 'colum'"):
        InputEncoding.from_file("[[colum]]\nfeature = 'income'\n", SCHEMA)
    with pytest.raises(SpecError, match=r"\[\[column\]\] tables"):
        InputEncoding.from_file("column = 3\n", SCHEMA)
    with pytest.raises(ModelError, match="encoding= is for a torch module"):
        as_model(net, SCHEMA, encoding=[{"feature": "income"}])


def test_a_network_that_does_not_read_the_canonical_tensor_needs_an_encoding() -> None:
    torch.manual_seed(2)
    wrong_width = nn.Sequential(nn.Linear(9, 2)).double()
    with pytest.raises(
        ModelError, match=r"reads 9 input columns, the schema's canonical tensor has 7.*encoding="
    ):
        as_model(wrong_width, SCHEMA)
    canonical = nn.Sequential(nn.Linear(SCHEMA.width, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    X = frame(30, 4)
    plain = as_model(canonical, SCHEMA).predict_proba(X)
    declared = as_model(canonical, SCHEMA, encoding=InputEncoding.canonical(SCHEMA)).predict_proba(X)
    np.testing.assert_allclose(declared, plain, rtol=0, atol=1e-15)
    with pytest.raises(ModelError, match="Sigmoid on 2 outputs: independent probabilities"):
        as_model(nn.Sequential(nn.Linear(SCHEMA.width, 2), nn.Sigmoid()).double(), SCHEMA)


def test_a_keras_network_without_its_encoding_is_refused() -> None:
    pytest.importorskip("h5py")
    from pathlib import Path

    from actionable import datasets, load_keras

    network = load_keras(Path(__file__).parent / "data" / "keras" / "german_aaai2020.h5")
    german = datasets.load("german").schema
    assert network[0].in_features == german.width  # same width: only the tag tells them apart
    with pytest.raises(ModelError, match=r"read from a Keras file.*encoding="):
        as_model(network, german)


@pytest.mark.parametrize(
    ("records", "error", "message"),
    [
        ([{"feature": "job", "levels": ["clerk", "clerk", "owner"]}], SpecError, "declared twice"),
        (
            [{"feature": "job", "level": "owner"}, {"feature": "job", "level": "owner"}],
            SpecError,
            "declared twice",
        ),
        ([{"feature": "income", "zscore": [0, 5e-324]}], SpecError, "cannot be used in float64"),
        ([{"feature": "income", "minmax": [-1e308, 1e308]}], SpecError, "cannot be used in float64"),
        ([{"constant": 10**400}], SpecError, "finite numbers"),
        ([None], SpecError, "table/object"),
        ("income", SpecError, "list of records"),
        ([{"feature": "incme", "levels": True}], SpecError, "no feature 'incme'"),
    ],
)
def test_broken_encodings_are_refused(records: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        InputEncoding.from_records(records, SCHEMA)  # type: ignore[arg-type]


def test_numpy_numbers_are_numbers_and_a_bad_schema_is_named() -> None:
    encoding = InputEncoding.from_records(
        [{"feature": "income", "zscore": [np.float32(1.0), np.int64(2)]}], SCHEMA
    )
    assert encoding.columns[0].a == 1.0 and encoding.columns[0].b == 2.0
    with pytest.raises(SpecError, match="must be an actionable Schema"):
        InputEncoding.from_records([{"feature": "income"}], None)  # type: ignore[arg-type]


def test_decode_refuses_rows_that_are_not_rows_of_the_encoding() -> None:
    records = [{"feature": f} for f in ("income", "years", "phone", "age")] + [
        {"feature": "job", "levels": ["clerk", "manager", "owner"]}
    ]
    encoding = InputEncoding.from_records(records, SCHEMA)
    good = by_hand(frame(3, 5), records)
    for bad, message in [
        (np.where(np.arange(good.size).reshape(good.shape) == 1, np.nan, good), "rows must be finite"),
        (np.hstack([good[:, :4], np.ones((3, 3))]), "sets more than one level of 'job'"),
        (np.hstack([good[:, :1], np.full((3, 1), -8.0), good[:, 2:]]), "years"),  # outside [0, 40]
    ]:
        with pytest.raises(DataError, match=message):
            encoding.decode(bad, SCHEMA)
    with pytest.raises(DataError, match="numbers of equal length"):
        encoding.decode([["a"] * 7] * 2, SCHEMA)


def test_float32_networks_get_float32_input_and_a_model_is_not_encoded_twice() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(9, 2))  # float32
    encoding = InputEncoding.from_records(RECORDS, SCHEMA)
    model = as_model(net, SCHEMA, encoding=encoding)
    X = frame(10, 6)
    expected = net(torch.as_tensor(by_hand(X, RECORDS), dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(model(SCHEMA.encode(X)).detach().numpy(), expected, atol=1e-5)
    with pytest.raises(ModelError, match="already a TorchModel"):
        as_model(model, SCHEMA, encoding=encoding)
