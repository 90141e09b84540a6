"""Schema: validation names row/column/value, TOML round-trips, encode/decode is exact (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionable import DataError, Feature, Schema, SpecError, Target

SPEC = """
[target]
name = "credit_risk"
favourable = "good"
classes = ["bad", "good"]

[[feature]]
name = "age"
kind = "integer"
bounds = [18, 100]
mutability = "fixed"

[[feature]]
name = "savings"
kind = "real"
bounds = [0, 100000]
mutability = "direct"
direction = "increase"
cost_up = 0.001

[[feature]]
name = "job"
kind = "category"
levels = ["unemployed", "unskilled", "skilled", "management"]
mutability = "direct"

[[feature]]
name = "phone"
kind = "binary"
"""


@pytest.fixture()
def schema() -> Schema:
    return Schema.from_toml(SPEC)


def frame(**overrides: object) -> pd.DataFrame:
    row = {"age": 30, "savings": 1200.5, "job": "skilled", "phone": 1} | overrides
    return pd.DataFrame([row])


def test_from_toml_reads_every_field(schema: Schema) -> None:
    assert schema.names == ("age", "savings", "job", "phone")
    assert schema["savings"].cost_up == 0.001 and schema["savings"].direction == "increase"
    assert schema["job"].levels[2] == "skilled"
    assert schema["phone"].bounds == (0.0, 1.0)
    assert schema.target == Target("credit_risk", favourable="good", classes=("bad", "good"))
    assert schema.columns == (
        "age",
        "savings",
        "job=unemployed",
        "job=unskilled",
        "job=skilled",
        "job=management",
        "phone",
    )
    assert schema.width == 7 and schema.slice("job") == slice(2, 6)


def test_toml_round_trip(schema: Schema, tmp_path: object) -> None:
    assert Schema.from_toml(schema.to_toml()) == schema
    assert Schema.from_toml(schema.to_toml()).hash == schema.hash


def test_encode_is_one_hot_in_raw_units(schema: Schema) -> None:
    x = schema.encode(frame())
    assert x.dtype == torch.float64
    assert x.tolist() == [[30.0, 1200.5, 0.0, 0.0, 1.0, 0.0, 1.0]]


def test_assemble_is_differentiable(schema: Schema) -> None:
    savings = torch.tensor([10.0], dtype=torch.float64, requires_grad=True)
    parts = schema.split(schema.encode(frame())) | {"savings": savings}
    x = schema.assemble(parts)
    (x[:, 1] * 3).sum().backward()
    assert savings.grad is not None and savings.grad.item() == 3.0


def test_unit_scaling_round_trips(schema: Schema) -> None:
    x = schema.encode(frame(age=59, savings=50000.0))
    u = schema.to_unit(x)
    assert u[0, 0].item() == pytest.approx((59 - 18) / 82) and u[0, 1].item() == pytest.approx(0.5)
    assert torch.allclose(schema.from_unit(u), x)


def test_unit_scaling_needs_finite_bounds() -> None:
    schema = Schema((Feature("a"),))
    with pytest.raises(DataError, match="infinite bounds"):
        schema.to_unit(torch.zeros(1, 1, dtype=torch.float64))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"age": 12}, r"row 0 \(index 0\), column 'age': value 12 is outside bounds \[18, 100\]"),
        ({"age": 30.5}, "not a whole number"),
        ({"savings": float("nan")}, "column 'savings': value is missing"),
        ({"job": "astronaut"}, "column 'job': unknown level 'astronaut'"),
        ({"job": "skiled"}, "Did you mean 'skilled'"),
        ({"phone": 2}, "column 'phone': value 2 is outside bounds"),
        ({"savings": "lots"}, "'lots' \\(str\\) is not a number"),
        ({"savings": float("inf")}, "not finite"),
    ],
)
def test_validate_names_row_column_value(schema: Schema, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        schema.validate(frame(**overrides))


def test_missing_column_is_named(schema: Schema) -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) \['savings'\]"):
        schema.validate(frame().drop(columns="savings"))


def test_row_errors_keep_the_good_rows(schema: Schema) -> None:
    data = pd.concat([frame(), frame(age=5), frame(), frame(job="x")], ignore_index=True)
    errors = schema.row_errors(data)
    assert sorted(errors) == [1, 3]
    assert "row 1 (index 1), column 'age'" in errors[1]


def test_validate_reorders_and_types(schema: Schema) -> None:
    raw = frame()[["phone", "job", "savings", "age"]].assign(extra="ignored")
    clean = schema.validate(raw)
    assert list(clean.columns) == list(schema.names)
    assert clean["age"].dtype == np.int64 and isinstance(clean["job"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[feature]]\nname = 'a'\nkind = 'real'\nbounds = [5, 1]\n",
            "lower bound 5.0 is above upper bound 1.0",
        ),
        ("[[feature]]\nname = 'a'\ncolour = 'red'\n", r"\[\[feature\]\] 'a': unknown key 'colour'"),
        ("[[feature]]\nname = 'a'\nkind = 'reel'\n", "Did you mean 'real'"),
        ("[[feature]]\nname = 'a'\nkind = 'category'\nlevels = ['x']\n", "at least two"),
        ("[[feature]]\nname = 'a'\nlevels = ['x', 'y']\n", "only for kind = 'category'"),
        ("[[feature]]\nname = 'a'\nmutability = 'sometimes'\n", "mutability = 'sometimes'"),
        ("[[feature]]\nname = 'a'\ncost_up = -1\n", "'cost_up' must be a finite number >= 0"),
        ("[[feature]]\nname = 'a'\n[[feature]]\nname = 'a'\n", "declared twice"),
        ("[[feature]\nname = 'a'\n", "not valid TOML"),
        ("name = 'x'\n", r"no \[\[feature\]\] entries"),
        (
            "[target]\nname = 'y'\nfavourable = 'z'\nclasses = ['a', 'b']\n[[feature]]\nname = 'a'\n",
            "favourable = 'z' is not one of classes",
        ),
        ("[tagret]\nname = 'y'\n[[feature]]\nname = 'a'\n", "Did you mean 'target'"),
    ],
)
def test_bad_spec_raises_spec_error(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        Schema.from_toml(text)
    assert str(info.value).startswith("schema text")


def test_spec_error_names_the_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "my_schema.toml"
    path.write_text("[[feature]]\nname = 'a'\nkind = 'real'\nbounds = [5, 1]\n")
    with pytest.raises(SpecError, match=r"^my_schema.toml, \[\[feature\]\] 'a': lower bound"):
        Schema.from_toml(path)
    with pytest.raises(SpecError, match="no such file"):
        Schema.from_toml(Path(str(tmp_path)) / "missing.toml")


def test_infer_builds_a_starting_schema() -> None:
    data = pd.DataFrame({"a": [1.5, 2.0], "n": [1, 3], "b": [0, 1], "c": ["x", "y"], "y": ["no", "yes"]})
    schema = Schema.infer(data, target="y", favourable="yes")
    assert [f.kind for f in schema.features] == ["real", "integer", "binary", "category"]
    assert schema["a"].bounds == (1.5, 2.0) and schema.target is not None
    assert schema.target.classes == ("no", "yes")


# ----------------------------------------------------------------------------- hypothesis
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
levels = st.lists(st.text(min_size=1, max_size=6), min_size=2, max_size=5, unique=True)


@st.composite
def schemas_and_frames(draw: st.DrawFn) -> tuple[Schema, pd.DataFrame]:
    feature_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    features, columns = [], {}
    n = draw(st.integers(1, 8))
    for name in feature_names:
        kind = draw(st.sampled_from(["real", "integer", "binary", "category"]))
        if kind == "category":
            lv = tuple(draw(levels))
            features.append(Feature(name, kind, levels=lv))
            columns[name] = draw(st.lists(st.sampled_from(lv), min_size=n, max_size=n))
        elif kind == "binary":
            features.append(Feature(name, kind))
            columns[name] = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
        elif kind == "integer":
            lo = draw(st.integers(-1000, 1000))
            hi = lo + draw(st.integers(0, 1000))
            features.append(Feature(name, kind, (lo, hi)))
            columns[name] = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
        else:
            values = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
            features.append(
                Feature(
                    name,
                    kind,
                    (-1e9, 1e9),
                    mutability="direct",
                    cost_up=draw(st.floats(0, 10, allow_nan=False)),
                )
            )
            columns[name] = draw(st.lists(values, min_size=n, max_size=n))
    return Schema(tuple(features)), pd.DataFrame(columns)


@given(schemas_and_frames())
@settings(max_examples=60, deadline=None)
def test_decode_encode_round_trip(case: tuple[Schema, pd.DataFrame]) -> None:
    schema, data = case
    decoded = schema.decode(schema.encode(data))
    expected = schema.validate(data)
    for name in schema.names:
        if schema[name].kind == "category":
            assert list(decoded[name].astype(str)) == list(expected[name].astype(str))
        else:
            assert np.array_equal(decoded[name].to_numpy(), expected[name].to_numpy())
    assert Schema.from_toml(schema.to_toml()) == schema


@given(schemas_and_frames())
@settings(max_examples=30, deadline=None)
def test_one_hot_blocks_sum_to_one(case: tuple[Schema, pd.DataFrame]) -> None:
    schema, data = case
    x = schema.encode(data)
    for feature in schema.features:
        if feature.kind == "category":
            assert torch.all(x[:, schema.slice(feature.name)].sum(1) == 1)
    lo, hi = schema.bounds_tensor()
    assert torch.all((x >= lo) & (x <= hi))


def test_feature_bounds_are_floats() -> None:
    f = Feature("a", "integer", (0, 5))
    assert f.bounds == (0.0, 5.0) and all(isinstance(b, float) for b in f.bounds)
    assert Feature("b").bounds == (-math.inf, math.inf)


def test_feature_predicates_say_what_a_feature_is() -> None:
    from actionable.schema import Feature

    cat = Feature("job", "category", levels=("a", "b"), mutability="direct")
    whole = Feature("n", "integer", bounds=(0, 9), mutability="indirect", direction="increase")
    flag = Feature("f", "binary", mutability="fixed", direction="decrease")
    real = Feature("x", "real")
    assert (cat.is_category, cat.is_whole, cat.is_direct, cat.may_increase, cat.may_decrease) == (
        True,
        False,
        True,
        True,
        True,
    )
    assert (whole.is_integer, whole.is_whole, whole.is_indirect, whole.may_increase, whole.may_decrease) == (
        True,
        True,
        True,
        True,
        False,
    )
    assert (flag.is_binary, flag.is_whole, flag.is_fixed, flag.may_increase, flag.may_decrease) == (
        True,
        True,
        True,
        False,
        True,
    )
    assert not (real.is_whole or real.is_category or real.is_binary or real.is_integer)
