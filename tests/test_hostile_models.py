"""Hostile and careless model files (issue 10): a model folder is data, never code.

Each hostile case edits a valid saved model and must be refused by ``load_model`` with a ``ModelError``
naming what is wrong, within the harness's memory and hang guards, without running anything it carries
(the canary stays absent). Careless-but-valid cases must load. A few cases go through the command line.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from actionable import ConfigError, Feature, ModelError, Schema, Target, as_model, load_model, save_model
from actionable.cli import app
from actionable.datasets import folder as dataset_folder
from actionable.models import layers as L
from tests.hostile import attempt, canary, run_cli

SCHEMA = Schema(
    (
        Feature("income", "real", (0, 100), mutability="direct", direction="increase"),
        Feature("years", "integer", (0, 40)),
        Feature("job", "category", levels=("a", "b", "c")),
    ),
    Target("approved", favourable="yes", classes=("no", "yes")),
)
ACTIONS = """
[[action]]
name = "raise_income"
text = "Raise income by {amount:.0f}"
params = { amount = { bounds = [0, 50] } }
effects = { income = "income + amount" }
cost = "amount"
"""
ROWS = pd.DataFrame({"income": [10.0, 20.0], "years": [3, 4], "job": ["a", "c"]})
# layer 0 ColumnMap, 1 Standardize, 2 Linear, 3 ReLU, 4 Linear: tensors 0.index .. 4.bias


def closed_set_model() -> Any:
    torch.manual_seed(0)
    width = SCHEMA.width
    network = torch.nn.Sequential(
        L.ColumnMap(torch.arange(width), torch.ones(width), torch.zeros(width)),
        L.Standardize(torch.full((width,), 5.0), torch.full((width,), 2.0)),
        L.Linear(width, 4),
        L.ReLU(),
        L.Linear(4, 2),
    ).double()
    return as_model(network, SCHEMA)


@dataclass
class Kit:
    """What a case may use: the model folder, a folder outside it, and the canary payloads aim at."""

    folder: Path
    outside: Path
    canary: Path


def meta_edit(change: Callable[[dict[str, Any], Kit], object]) -> Callable[[Kit], None]:
    def mutate(kit: Kit) -> None:
        path = kit.folder / "model.json"
        meta = json.loads(path.read_text())
        change(meta, kit)
        path.write_text(json.dumps(meta))

    return mutate


def layer_edit(i: int, **keys: object) -> Callable[[Kit], None]:
    return meta_edit(lambda m, k: m["layers"][i].update(keys))


def drop(key: str) -> Callable[[Kit], None]:
    return meta_edit(lambda m, k: m.pop(key))


def weight_edit(change: Callable[[dict[str, torch.Tensor]], object]) -> Callable[[Kit], None]:
    def mutate(kit: Kit) -> None:
        path = kit.folder / "model.safetensors"
        state = load_file(str(path))
        change(state)
        save_file(state, str(path))

    return mutate


def set_value(name: str, position: int, value: float) -> Callable[[Kit], None]:
    return weight_edit(lambda s: s[name].view(-1).__setitem__(position, value))


def raw_weights(blob: Callable[[bytes], bytes]) -> Callable[[Kit], None]:
    def mutate(kit: Kit) -> None:
        path = kit.folder / "model.safetensors"
        path.write_bytes(blob(path.read_bytes()))

    return mutate


def raw_meta(text: Callable[[str], str | bytes]) -> Callable[[Kit], None]:
    def mutate(kit: Kit) -> None:
        path = kit.folder / "model.json"
        new = text(path.read_text())
        path.write_bytes(new if isinstance(new, bytes) else new.encode())

    return mutate


@functools.cache
def _clean_program() -> bytes:
    """A genuine ``torch.export`` archive of a small non-closed-set module on ``SCHEMA``."""

    class Custom(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(SCHEMA.width, 2, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w

    scratch = Path(__import__("tempfile").mkdtemp())
    save_model(as_model(Custom(), SCHEMA), scratch)
    blob = (scratch / "model.pt2").read_bytes()
    shutil.rmtree(scratch)
    return blob


class _Touch:
    """A pickle payload: unpickling it creates the canary file (code from the model file ran)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def craft_program(folder: Path, target: Path) -> None:
    """Write ``folder/model.pt2``: a real archive whose weights config says ``use_pickle``, so torch's
    loader unpickles the weight file, which holds a payload that creates ``target``."""
    with zipfile.ZipFile(io.BytesIO(_clean_program())) as archive:
        items = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, blob in items:
            if name.endswith("model_weights_config.json"):
                config = json.loads(blob)
                for entry in config["config"].values():
                    entry["use_pickle"] = True
                blob = json.dumps(config).encode()
            elif "/data/weights/weight_" in name:
                blob = pickle.dumps(_Touch(target))
            archive.writestr(name, blob)
    (folder / "model.pt2").write_bytes(out.getvalue())


def as_program(kit: Kit) -> None:
    """The attack of the issue: no 'layers', a crafted program next to model.json."""
    craft_program(kit.folder, kit.canary)
    meta_edit(lambda m, k: (m.pop("layers"), m.update(program="model.pt2")))(kit)
    (kit.folder / "model.safetensors").unlink()


def program(name: str) -> Callable[[Kit], None]:
    return meta_edit(lambda m, k: (m.pop("layers"), m.update(program=name)))


def schema_file(meta: dict[str, Any], kit: Kit) -> None:
    """'schema' names a real, valid schema file: it must not be opened."""
    path = kit.outside / "schema.toml"
    path.write_text(SCHEMA.to_toml())
    meta["schema"] = str(path)


def link(name: str, target: Callable[[Kit], Path]) -> Callable[[Kit], None]:
    def mutate(kit: Kit) -> None:
        path, where = kit.folder / name, target(kit)
        path.unlink(missing_ok=True)
        path.symlink_to(where)

    return mutate


def outside_copy(name: str) -> Callable[[Kit], Path]:
    """A valid model copied outside the folder; the folder's ``name`` will link to its file."""

    def make(kit: Kit) -> Path:
        copy = kit.outside / "copy"
        shutil.copytree(kit.folder, copy)
        return copy / name

    return make


def extra_tensor(state: dict[str, torch.Tensor]) -> None:
    state["payload"] = torch.zeros(3)


BIG = 65 * 2**20
HOSTILE: list[tuple[str, Callable[[Kit], None], str]] = [
    # code and paths
    (
        "crafted-pt2-program",
        as_program,
        r"can run code.*actionable\.models\.layers.*unsafe_allow_program=True",
    ),
    ("no-layers-no-program", drop("layers"), r"holds no 'layers'.*can run code"),
    ("program-absolute-path", program("/etc/passwd"), "bare file name"),
    (
        "layers-and-program",
        meta_edit(lambda m, k: m.update(program="model.pt2")),
        "both 'layers' and 'program'",
    ),
    ("program-dotdot", program("../model.pt2"), "bare file name"),
    (
        "program-symlink-out",
        lambda k: (
            craft_program(k.outside, k.canary),
            as_program(k),
            link("model.pt2", lambda k: k.outside / "model.pt2")(k),
        ),
        "outside the model folder",
    ),
    ("model-json-symlink-out", link("model.json", outside_copy("model.json")), "outside the model folder"),
    (
        "weights-symlink-out",
        link("model.safetensors", outside_copy("model.safetensors")),
        "outside the model folder",
    ),
    (
        "schema-is-a-path",
        meta_edit(schema_file),
        r"'schema' is not valid TOML.*never points to a schema file",
    ),
    ("schema-not-text", meta_edit(lambda m, k: m.update(schema=5)), "'schema' must be a string"),
    (
        "schema-bad-spec",
        meta_edit(lambda m, k: m.update(schema='[[feature]]\nname = "x"\nkind = "bogus"\n')),
        "schema it records is invalid",
    ),
    # the declared structure of model.json
    ("not-a-table", raw_meta(lambda t: "[1, 2]"), "not an actionable model file"),
    ("wrong-format", meta_edit(lambda m, k: m.update(format="other/1")), "not an actionable model file"),
    ("unknown-top-key", meta_edit(lambda m, k: m.update(exec="rm -rf /")), r"unknown key\(s\) \['exec'\]"),
    ("missing-schema", drop("schema"), "missing key 'schema'"),
    ("missing-task", drop("task"), "missing key 'task'"),
    (
        "task-unknown",
        meta_edit(lambda m, k: m.update(task="ranking")),
        "use 'classification' or 'regression'",
    ),
    ("dtype-int64", meta_edit(lambda m, k: m.update(dtype="int64")), "float32 or float64"),
    ("dtype-bool", meta_edit(lambda m, k: m.update(dtype="bool")), "float32 or float64"),
    ("dtype-unknown", meta_edit(lambda m, k: m.update(dtype="Tensor")), "float32 or float64"),
    ("classes-duplicated", meta_edit(lambda m, k: m.update(classes=["no", "no"])), "lists 'no' twice"),
    ("classes-a-string", meta_edit(lambda m, k: m.update(classes="ny")), "'classes' must be a list"),
    ("classes-null-label", meta_edit(lambda m, k: m.update(classes=["no", None])), r"classes\[1\] is None"),
    ("regression-no-outputs", meta_edit(lambda m, k: m.update(task="regression")), "needs 'outputs'"),
    (
        "duplicate-key",
        raw_meta(lambda t: t.rstrip()[:-1] + ', "task": "regression"}'),
        "'task' appears twice",
    ),
    (
        "deep-json",
        raw_meta(lambda t: t.replace('"layers": [', '"layers": [' + "[" * 100_000 + "]" * 100_000 + ",")),
        "nested too deeply|not valid JSON",
    ),
    ("huge-number", raw_meta(lambda t: t.replace('"in": 5', '"in": ' + "9" * 5000)), "not valid JSON"),
    ("not-utf8", raw_meta(lambda t: t.encode()[:-2] + b'\xff"}'), "not UTF-8"),
    ("oversized-file", meta_edit(lambda m, k: m.update(provenance={"pad": "x" * BIG})), "larger than 64 MiB"),
    # layers
    ("layers-a-number", meta_edit(lambda m, k: m.update(layers=5)), "'layers' must be a list"),
    ("layers-empty", meta_edit(lambda m, k: m.update(layers=[])), "non-empty list"),
    ("layer-not-a-table", meta_edit(lambda m, k: m["layers"].append(5)), "each layer is a table"),
    ("layer-type-unknown", layer_edit(3, type="Lambda"), "layer 3 has type 'Lambda'; supported layer types"),
    ("layer-key-unknown", layer_edit(2, activation="eval"), r"unknown key\(s\) \['activation'\]"),
    ("dimension-negative", layer_edit(2, **{"in": -5}), r"key 'in' must be in \[1, "),
    ("dimension-float", layer_edit(4, out=2.5), "key 'out' must be a whole number; got 2.5"),
    ("dimension-bool", layer_edit(2, **{"in": True}), "key 'in' must be a whole number; got True"),
    ("dimension-string", layer_edit(1, width="5"), "key 'width' must be a whole number"),
    ("bias-not-bool", layer_edit(2, bias=1), "key 'bias' must be true or false"),
    ("dimension-missing", meta_edit(lambda m, k: m["layers"][2].pop("out")), "missing key 'out'"),
    (
        "dimensions-huge",
        layer_edit(2, **{"in": 2**24, "out": 2**24}),
        "than the 134,217,728 a model file may hold",
    ),
    ("shapes-do-not-chain", layer_edit(4, **{"in": 7}), r"layer 4 \(Linear\) does not fit"),
    (
        "conv-padding-huge",
        meta_edit(
            lambda m, k: (
                m["layers"].insert(2, {"type": "Sequence1d", "length": 5, "channels": 1})
                or m["layers"].insert(3, {"type": "Conv1d", "in": 1, "out": 1, "kernel": 1, "padding": 2**24})
            )
        ),
        "values per row",
    ),
    # weights
    ("weights-truncated", raw_weights(lambda b: b[:-7]), "not a readable safetensors file"),
    ("weights-garbage", raw_weights(lambda b: b"\x00garbage" * 40), "not a readable safetensors file"),
    ("weights-empty", raw_weights(lambda b: b""), "not a readable safetensors file"),
    ("weights-missing-file", lambda k: (k.folder / "model.safetensors").unlink(), "not found"),
    ("weights-extra-tensor", weight_edit(extra_tensor), r"unexpected \['payload'\]"),
    ("weights-missing-tensor", weight_edit(lambda s: s.pop("4.bias")), r"missing \['4.bias'\]"),
    (
        "weights-wrong-shape",
        weight_edit(lambda s: s.update({"2.weight": torch.zeros(4, 6, dtype=torch.float64)})),
        r"tensor '2.weight' is F64 of shape \(4, 6\).*need F64 of shape \(4, 5\)",
    ),
    (
        "weights-wrong-dtype",
        weight_edit(lambda s: s.update({"2.bias": s["2.bias"].float()})),
        "tensor '2.bias' is F32",
    ),
    (
        "weights-bool",
        weight_edit(lambda s: s.update({"4.bias": torch.ones(2, dtype=torch.bool)})),
        "tensor '4.bias' is BOOL",
    ),
    (
        "index-float",
        weight_edit(lambda s: s.update({"0.index": s["0.index"].double()})),
        "tensor '0.index' is F64",
    ),
    # values
    ("weight-nan", set_value("2.weight", 3, float("nan")), "tensor '2.weight' holds nan at flat position 3"),
    ("bias-inf", set_value("4.bias", 1, float("inf")), "tensor '4.bias' holds inf"),
    ("mean-minus-inf", set_value("1.mean", 0, float("-inf")), "tensor '1.mean' holds -inf"),
    ("std-zero", set_value("1.std", 2, 0.0), r"layer 1 \(Standardize\): tensor 'std' holds 0.0 at column 2"),
    ("std-negative", set_value("1.std", 0, -1.0), "tensor 'std' holds -1.0 at column 0"),
    ("index-negative", set_value("0.index", 4, -1), r"tensor 'index' holds -1 at position 4.*in \[0, 5\)"),
    ("index-past-the-end", set_value("0.index", 0, 5), r"tensor 'index' holds 5 at position 0.*in \[0, 5\)"),
]


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    folder, outside = tmp_path / "model", tmp_path / "outside"
    save_model(closed_set_model(), folder)
    outside.mkdir()
    return Kit(folder, outside, canary(tmp_path))


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_model_files_are_refused(kit: Kit, mutate: Callable[[Kit], None], message: str) -> None:
    mutate(kit)
    outcome = attempt(load_model, kit.folder)
    assert isinstance(outcome.error, ModelError), f"{type(outcome.error).__name__}: {outcome.error}"
    assert re.search(message, str(outcome.error)), str(outcome.error)
    assert not kit.canary.exists()


def test_the_crafted_program_really_runs_code_with_the_opt_in(kit: Kit) -> None:
    """The refusal above is meaningful: the opt-in does hand the file to torch, which runs its payload."""
    as_program(kit)
    attempt(load_model, kit.folder, unsafe_allow_program=True)
    assert kit.canary.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [((None,), "path must be a folder path; got a NoneType"), ((".", "schema.toml"), "schema must be an")],
    ids=["path-none", "schema-a-string"],
)
def test_wrong_argument_types_are_config_errors(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_model(*args)


def test_an_opted_in_program_still_stays_in_its_folder(kit: Kit) -> None:
    as_program(kit)
    meta_edit(lambda m, k: m.update(program=str(k.folder / "model.pt2")))(kit)
    with pytest.raises(ModelError, match="bare file name"):
        load_model(kit.folder, unsafe_allow_program=True)
    assert not kit.canary.exists()


# ------------------------------------------------------------------------------ careless but valid
BUNDLED = sorted(p.parent for p in Path(dataset_folder("german")).parent.glob("*/models/*/model.json"))


@pytest.mark.parametrize("bundled", BUNDLED, ids=[f"{p.parent.parent.name}-{p.name}" for p in BUNDLED])
def test_every_bundled_model_round_trips(bundled: Path, tmp_path: Path) -> None:
    model = load_model(bundled / "model.json")  # a path to the file itself works too
    again = load_model(save_model(model, tmp_path / "copy"), schema=model.schema)  # an equal schema
    lo, hi = model.schema.bounds_tensor()
    u = torch.rand(4, model.schema.width, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.where(torch.isfinite(lo) & torch.isfinite(hi), lo + u * (hi - lo), u)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert again.schema == model.schema and again.classes == model.classes


def optional_keys_absent(meta: dict[str, Any], kit: Kit) -> None:
    for key in ("dtype", "provenance", "schema_hash", "outputs"):
        meta.pop(key)
    for layer in meta["layers"]:
        layer.pop("bias", None)


def symlinked_folder(kit: Kit) -> Any:
    kit.outside.rmdir()
    kit.outside.symlink_to(kit.folder)
    return load_model(kit.outside)


def then_load(change: Callable[[Kit], None]) -> Callable[[Kit], Any]:
    return lambda kit: (change(kit), load_model(kit.folder))[1]


CARELESS: list[tuple[str, Callable[[Kit], Any], bool]] = [  # id, load, predicts as saved
    ("folder-given-as-model-json", lambda k: load_model(k.folder / "model.json"), True),
    ("folder-given-as-str", lambda k: load_model(str(k.folder)), True),
    ("folder-is-a-symlink", symlinked_folder, True),
    ("equal-schema-given", lambda k: load_model(k.folder, schema=Schema.from_toml(SCHEMA.to_toml())), True),
    ("optional-keys-absent", then_load(meta_edit(optional_keys_absent)), True),
    ("json-reindented", then_load(raw_meta(lambda t: json.dumps(json.loads(t), indent=8))), True),
    ("zero-scale-column", then_load(set_value("0.scale", 4, 0.0)), False),  # a category never seen
]


@pytest.mark.parametrize(("load", "same"), [c[1:] for c in CARELESS], ids=[c[0] for c in CARELESS])
def test_careless_but_valid_model_folders_load(kit: Kit, load: Callable[[Kit], Any], same: bool) -> None:
    model = load(kit)
    assert model.schema == SCHEMA
    p = model.predict_proba(ROWS)
    assert np.isfinite(p).all()
    assert np.allclose(p, closed_set_model().predict_proba(ROWS)) == same


def test_float32_models_round_trip(tmp_path: Path) -> None:
    model = closed_set_model()
    single = as_model(model.network.float(), SCHEMA)
    back = load_model(save_model(single, tmp_path / "f32"))
    assert back.dtype == torch.float32
    assert np.array_equal(back.predict_proba(ROWS), single.predict_proba(ROWS))


def test_a_non_closed_set_module_saves_and_says_how_to_load_it(tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "model.pt2").write_bytes(_clean_program())
    save_model(closed_set_model(), tmp_path / "plain")
    meta = json.loads((tmp_path / "plain" / "model.json").read_text())
    meta.pop("layers")
    meta["program"] = "model.pt2"
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="unsafe_allow_program=True"):
        load_model(folder)
    assert load_model(folder, unsafe_allow_program=True).predict_proba(ROWS).shape == (2, 2)


# ------------------------------------------------------------------------------ models built in Python
def nan_linear() -> torch.nn.Module:
    layer = torch.nn.Linear(SCHEMA.width, 2).double()
    with torch.no_grad():
        layer.weight[0, 1] = float("nan")
    return layer


def inf_buffer() -> torch.nn.Module:
    module = torch.nn.Linear(SCHEMA.width, 2).double()
    module.register_buffer("offset", torch.tensor([0.0, float("inf")], dtype=torch.float64))
    return module


def nan_logistic() -> LogisticRegression:
    x = pd.DataFrame(
        SCHEMA.encode(ROWS.sample(20, replace=True, random_state=0)).numpy(), columns=SCHEMA.columns
    )
    fitted = LogisticRegression().fit(x, ["no", "yes"] * 10)
    fitted.coef_[0, 0] = np.nan
    return fitted


def overflowing() -> torch.nn.Module:
    layer = torch.nn.Linear(SCHEMA.width, 2).double()
    with torch.no_grad():
        layer.weight.fill_(1e308)
    return layer


PYTHON_MODELS: list[tuple[str, Callable[[], Any], str]] = [
    ("torch-nan-weight", nan_linear, "tensor 'weight' holds NaN or infinite values"),
    ("torch-inf-buffer", inf_buffer, "tensor 'offset' holds NaN or infinite values"),
    ("sklearn-nan-coefficient", nan_logistic, "holds NaN or infinite values"),
    ("torch-overflowing-output", overflowing, "returns NaN or infinite values"),
    (
        "standardize-zero-std",
        lambda: L.Standardize(torch.zeros(5), torch.tensor([1.0, 0, 1, 1, 1])),
        "std holds 0.0 at column 1",
    ),
    (
        "standardize-nan-std",
        lambda: L.Standardize(torch.zeros(2), torch.tensor([1.0, float("nan")])),
        "std holds nan at column 1",
    ),
    (
        "columnmap-negative-index",
        lambda: L.ColumnMap(torch.tensor([0, -1]), torch.ones(2), torch.zeros(2)),
        r"index\[1\] = -1",
    ),
    (
        "columnmap-ragged",
        lambda: L.ColumnMap(torch.tensor([0, 1]), torch.ones(3), torch.zeros(2)),
        "1-D of one length",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [c[1:] for c in PYTHON_MODELS], ids=[c[0] for c in PYTHON_MODELS]
)
def test_unusable_python_models_are_refused(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        as_model(make(), SCHEMA, classes=("no", "yes"))


# ------------------------------------------------------------------------------ the command line
def cli_inputs(tmp_path: Path) -> list[str]:
    (tmp_path / "schema.toml").write_text(SCHEMA.to_toml())
    (tmp_path / "actions.toml").write_text(ACTIONS)
    ROWS.to_csv(tmp_path / "rows.csv", index=False)
    return ["--data", str(tmp_path / "rows.csv"), "--schema", str(tmp_path / "schema.toml")]


CLI_CASES = [
    "crafted-pt2-program",
    "schema-is-a-path",
    "weights-garbage",
    "std-zero",
    "deep-json",
    "dtype-int64",
]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_hostile_model_folders_with_exit_2(kit: Kit, case: str) -> None:
    mutate, message = next((m, msg) for name, m, msg in HOSTILE if name == case)
    mutate(kit)
    args = cli_inputs(kit.folder.parent)
    result = CliRunner().invoke(app, ["explain", *args, "--model", str(kit.folder)], terminal_width=400)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "ModelError" in said and re.search(message, said), said
    assert not kit.canary.exists()


@pytest.mark.parametrize("command", ["synthesize", "invert"])
def test_cli_never_runs_a_crafted_program(kit: Kit, command: str) -> None:
    as_program(kit)
    args = cli_inputs(kit.folder.parent)
    extra = ["--actions", str(kit.folder.parent / "actions.toml")] if command == "synthesize" else []
    result = run_cli([command, *args, *extra, "--model", kit.folder])
    assert result.returncode == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert "Traceback" not in said
    assert "ModelError" in said and "can run code" in said and "actionable.models.layers" in said, said
    assert not kit.canary.exists()
