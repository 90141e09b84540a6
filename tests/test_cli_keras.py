"""``actionable import-keras``: a Keras file and its encoding become a model folder that every command reads,
equal to the file's network on its own columns; bad input exits 2 naming the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from actionable import datasets, load_model
from actionable.cli import app
from actionable.models import as_model
from actionable.models.input_encoding import InputEncoding
from actionable.models.keras import read_keras

pytest.importorskip("h5py")

from tests.test_keras import dense, write_h5  # needs h5py

runner = CliRunner()
GERMAN = Path(datasets.__file__).parent / "german"
ENCODING = """
[[column]]
feature = "duration"
zscore = [20.9, 12.1]
[[column]]
feature = "credit_amount"
minmax = [250, 18424]
[[column]]
feature = "savings"
levels = true
[[column]]
feature = "age"
zscore = [35.5, 11.4]
[[column]]
constant = 1.0
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    schema = datasets.load("german").schema
    width = InputEncoding.from_file(ENCODING, schema).width
    h5 = write_h5(tmp_path / "credit.h5", (width,), [dense(width, 6, "relu"), dense(6, 2, "softmax")])
    encoding = tmp_path / "encoding.toml"
    encoding.write_text(ENCODING)
    return h5, encoding


def test_import_keras_writes_a_model_equal_to_the_network_that_the_commands_read(tmp_path: Path) -> None:
    h5, encoding = _files(tmp_path)
    out = tmp_path / "model"
    args = ["import-keras", str(h5), "--schema", str(GERMAN / "schema.toml"), "--encoding", str(encoding)]
    result = runner.invoke(app, [*args, "--out", str(out), "--classes", "bad,good"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "Dense" in result.output
    bundle = datasets.load("german")
    loaded = load_model(out, schema=bundle.schema)
    network = read_keras(h5)
    direct = as_model(
        network.network,
        bundle.schema,
        encoding=InputEncoding.from_file(ENCODING, bundle.schema),
        classes=["bad", "good"],
    )
    X = bundle.X_test.iloc[:25]
    np.testing.assert_allclose(loaded.predict_proba(X), direct.predict_proba(X), atol=1e-12)
    provenance = json.loads((out / "model.json").read_text())["provenance"]
    assert provenance["sha256"] == network.sha256 and provenance["converter"] == "actionable import-keras"
    assert "encoding.toml" in provenance["encoding"] and "checking_account" in provenance["dropped_features"]
    data = tmp_path / "people.csv"
    bundle.X_test.iloc[:3].to_csv(data, index=False)
    run = ["synthesize", "--data", str(data), "--schema", str(GERMAN / "schema.toml"), "--model", str(out)]
    result = runner.invoke(app, [*run, "--actions", str(GERMAN / "actions.toml"), "--max-length", "1"])
    assert result.exit_code == 0, result.output


def test_the_classes_option_orders_the_output_units(tmp_path: Path) -> None:
    h5, encoding = _files(tmp_path)
    schema = str(GERMAN / "schema.toml")
    outs = {}
    for order in ("bad,good", "good,bad"):
        out = tmp_path / order.replace(",", "_")
        args = ["import-keras", str(h5), "--schema", schema, "--encoding", str(encoding), "--out", str(out)]
        assert runner.invoke(app, [*args, "--classes", order]).exit_code == 0
        outs[order] = load_model(out, schema=datasets.load("german").schema)
    X = datasets.load("german").X_test.iloc[:5]
    first, second = outs["bad,good"], outs["good,bad"]
    assert first.classes == ("bad", "good") and second.classes == ("good", "bad")
    # the same units, labelled the other way round: P(good) of one is P(bad) of the other
    np.testing.assert_allclose(first.predict_proba(X)[:, 1], second.predict_proba(X)[:, 1], atol=1e-12)
    assert (first.predict(X) != second.predict(X)).all()  # so every decision is the other one


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ("width", "the network reads 9 input columns"),
        ("feature", "no_such_feature"),
        ("not_keras", "neither an HDF5 file"),
        ("classes", "classes"),
    ],
)
def test_bad_input_exits_2_naming_the_fix(tmp_path: Path, mutate: str, message: str) -> None:
    h5, encoding = _files(tmp_path)
    classes = "bad,good"
    if mutate == "width":
        encoding.write_text(ENCODING + "[[column]]\nconstant = 0.0\n")
    elif mutate == "feature":
        encoding.write_text(ENCODING.replace('feature = "age"', 'feature = "no_such_feature"'))
    elif mutate == "not_keras":
        h5.write_bytes(b"this is not a model" * 10)
    else:
        classes = "bad,good,maybe"
    args = ["import-keras", str(h5), "--schema", str(GERMAN / "schema.toml"), "--encoding", str(encoding)]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "m"), "--classes", classes], terminal_width=200
    )
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()
