"""Keras files read without TensorFlow (issue 15, item 1): tiny files written here with h5py in Keras 2's
HDF5 layout and zipped in Keras 3's .keras layout, checked against a NumPy forward pass of the same
weights; the authors' real files against a NumPy pass of their own weights; every bad input a ModelError.

Keras 3's layout, as relied on (keras/src/saving/saving_lib.py): the archive holds config.json,
metadata.json and model.weights.h5; the n-th layer of a class is filed under
``layers/<snake_case(class)>[_n]/vars/<i>``, its variables in creation order (Dense: kernel, bias;
BatchNormalization: gamma, beta, moving_mean, moving_variance).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from actionable import Feature, InputEncoding, ModelError, Schema, Target, as_model, attribute
from actionable.actions import ActionSet
from actionable.certify import certify
from actionable.goals import resolve_goal
from actionable.models import KerasNetwork, TorchModel, load_keras, load_model, read_keras, save_model
from actionable.models import keras as keras_module
from actionable.models import layers as L
from actionable.models import layers_keras as K
from actionable.models import specs as S
from actionable.program import Program

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ATOL = 1e-6


# ----------------------------------------------------------------------------------------- test models
@dataclass
class Spec:
    """One Keras layer as the tests describe it: class, config (name added on writing), weights by role."""

    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    weights: list[tuple[str, np.ndarray]] = field(default_factory=list)


RNG = np.random.default_rng(15)


def _w(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def dense(fan_in: int, units: int, activation: str = "linear", bias: bool = True) -> Spec:
    weights = [("kernel", _w(fan_in, units))] + ([("bias", _w(units))] if bias else [])
    return Spec("Dense", {"units": units, "activation": activation, "use_bias": bias}, weights)


def conv(channels: int, filters: int, kernel: int, **config: Any) -> Spec:
    cfg = {"filters": filters, "kernel_size": [kernel], "strides": [1], "padding": "valid"}
    cfg |= {"data_format": "channels_last", "dilation_rate": [1], "activation": "linear", "use_bias": True}
    cfg |= config
    return Spec("Conv1D", cfg, [("kernel", _w(kernel, channels, filters)), ("bias", _w(filters))])


def norm(width: int, center: bool = True, scale: bool = True, axis: Any = -1) -> Spec:
    roles = (["gamma"] if scale else []) + (["beta"] if center else [])
    weights = [(r, _w(width)) for r in roles]
    weights += [
        ("moving_mean", _w(width)),
        ("moving_variance", RNG.uniform(0.2, 2, width).astype(np.float32)),
    ]
    cfg = {"axis": axis, "momentum": 0.99, "epsilon": 0.001, "center": center, "scale": scale}
    return Spec("BatchNormalization", cfg, weights)


# Keras's to_snake_case of each class (keras/src/utils/naming.py), written out so the writers do not share
# read_keras's code: the name a .keras weights file files a layer under
SNAKE = {
    "Dense": "dense",
    "Conv1D": "conv1d",
    "MaxPooling1D": "max_pooling1d",
    "BatchNormalization": "batch_normalization",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "Activation": "activation",
    "LeakyReLU": "leaky_re_lu",
    "ELU": "elu",
    "ReLU": "re_lu",
    "Softmax": "softmax",
    "Normalization": "normalization",
}


def names(specs: list[Spec]) -> list[str]:
    return [f"{SNAKE[s.kind]}_{i}" for i, s in enumerate(specs)]


# ------------------------------------------------------------------------------------ the NumPy oracle
def _act(name: str, h: np.ndarray, alpha: float | None = None) -> np.ndarray:
    if name == "relu":
        return np.maximum(h, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-h))
    if name == "tanh":
        return np.tanh(h)
    if name == "softmax":
        e = np.exp(h - h.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    if name == "elu":
        a = 1.0 if alpha is None else alpha
        return np.where(h > 0, h, a * (np.exp(np.minimum(h, 0)) - 1))
    if name == "selu":
        a, s = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        return s * np.where(h > 0, h, a * (np.exp(np.minimum(h, 0)) - 1))
    if name == "leaky_relu":
        return np.where(h >= 0, h, (0.2 if alpha is None else alpha) * h)
    assert name == "linear", name
    return h


def _conv(
    h: np.ndarray, kernel: np.ndarray, bias: np.ndarray | float, stride: int, padding: str
) -> np.ndarray:
    k, length = kernel.shape[0], h.shape[1]
    if padding == "same":  # TensorFlow's SAME: ceil(L / s) outputs, the extra pad (if odd) after
        total = max((math.ceil(length / stride) - 1) * stride + k - length, 0)
        h = np.pad(h, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    steps = (h.shape[1] - k) // stride + 1
    out = [np.einsum("nkc,kcf->nf", h[:, t * stride : t * stride + k, :], kernel) for t in range(steps)]
    return np.stack(out, axis=1) + bias


def oracle(shape: tuple[int, ...], specs: list[Spec], x: np.ndarray, logits: bool = True) -> np.ndarray:
    """Keras's inference forward pass in NumPy (float64); with ``logits`` a final softmax (or a sigmoid on
    one unit) is left out, as read_keras separates it."""
    h = x.astype(np.float64).reshape(len(x), *shape)
    last = max(i for i, s in enumerate(specs) if s.kind not in ("Dropout", "InputLayer"))
    for i, s in enumerate(specs):
        w = {role: a.astype(np.float64) for role, a in s.weights}
        c = s.config
        act, alpha = c.get("activation", "linear"), None
        if s.kind == "Dense":
            h = h @ w["kernel"] + w.get("bias", 0.0)
        elif s.kind == "Conv1D":
            h = _conv(h, w["kernel"], w.get("bias", 0.0), c["strides"][0], c["padding"])
        elif s.kind == "MaxPooling1D":
            k, st = c["pool_size"][0], (c.get("strides") or c["pool_size"])[0]
            h = np.stack([h[:, t * st : t * st + k].max(1) for t in range((h.shape[1] - k) // st + 1)], 1)
        elif s.kind == "BatchNormalization":
            h = (h - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"])
            h = h * w.get("gamma", 1.0) + w.get("beta", 0.0)
        elif s.kind == "Normalization":  # Keras 3: (x - mean) / max(sqrt(variance), 1e-7)
            std = np.maximum(np.sqrt(w["variance"]), 1e-7)
            h = w["mean"] + h * std if c.get("invert") else (h - w["mean"]) / std
        elif s.kind == "Flatten":
            h = h.reshape(len(h), -1)
        elif s.kind in ("LeakyReLU", "ELU"):
            act = {"LeakyReLU": "leaky_relu", "ELU": "elu"}[s.kind]
            alpha = c.get("negative_slope", c.get("alpha", 0.3 if s.kind == "LeakyReLU" else 1.0))
        elif s.kind == "ReLU":
            act = "relu"
        elif s.kind == "Softmax":
            act = "softmax"
        else:
            assert s.kind in ("Activation", "Dropout"), s.kind
        separated = act == "softmax" or (act == "sigmoid" and h.shape[-1] == 1)
        if not (logits and i == last and separated):
            h = _act(act, h, alpha)
    return h


# ---------------------------------------------------------------------------------------- the writers
def write_h5(path: Path, shape: tuple[int, ...], specs: list[Spec], style: str = "dict") -> Path:
    """A Keras 2 HDF5 file: ``style`` "list" (Keras 2.1: config is the layer list), "dict" (2.2+:
    {"name", "layers"}) or "model" (a functional Model with an InputLayer and inbound nodes)."""
    layer_names = names(specs)
    entries = []
    for i, (s, name) in enumerate(zip(specs, layer_names, strict=True)):
        cfg = {"name": name, "trainable": True, "dtype": "float32", **s.config}
        if i == 0 and style != "model":
            cfg["batch_input_shape"] = [None, *shape]
        entries.append({"class_name": s.kind, "config": cfg})
    if style == "list":
        config: dict[str, Any] = {"class_name": "Sequential", "config": entries}
    elif style == "dict":
        config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": entries}}
    else:
        first = {"batch_input_shape": [None, *shape], "dtype": "float32", "sparse": False, "name": "input_1"}
        nodes = [{"name": "input_1", "class_name": "InputLayer", "config": first, "inbound_nodes": []}]
        before = "input_1"
        for e, name in zip(entries, layer_names, strict=True):
            nodes.append({"name": name, **e, "inbound_nodes": [[[before, 0, 0, {}]]]})
            before = name
        body = {"name": "model", "layers": nodes, "input_layers": [["input_1", 0, 0]]}
        config = {"class_name": "Model", "config": body | {"output_layers": [[before, 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4-tf"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        for s, name in zip(specs, layer_names, strict=True):
            lg = group.create_group(name)
            wnames = [f"{name}/{role}:0" for role, _ in s.weights]
            lg.attrs["weight_names"] = np.array([n.encode() for n in wnames]) if wnames else np.array([])
            for wname, (_, array) in zip(wnames, s.weights, strict=True):
                lg.create_dataset(wname, data=array)
    return path


def keras3_config(shape: tuple[int, ...], specs: list[Spec], functional: bool = False) -> dict[str, Any]:
    policy = {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }
    entries: list[dict[str, Any]] = []
    inp = {"batch_shape": [None, *shape], "dtype": "float32", "sparse": False, "name": "input_layer"}
    entries.append(
        {"module": "keras.layers", "class_name": "InputLayer", "config": inp, "registered_name": None}
    )
    before = "input_layer"
    for s, name in zip(specs, names(specs), strict=True):
        cfg = {"name": name, "trainable": True, "dtype": policy, **s.config}
        entries.append(
            {"module": "keras.layers", "class_name": s.kind, "config": cfg, "registered_name": None}
        )
        entries[-1]["build_config"] = {"input_shape": [None, *shape]}
        if functional:
            ref = {
                "class_name": "__keras_tensor__",
                "config": {"shape": [None], "keras_history": [before, 0, 0]},
            }
            entries[-1] |= {"name": name, "inbound_nodes": [{"args": [ref], "kwargs": {}}]}
        before = name
    if functional:
        entries[0] |= {"name": "input_layer", "inbound_nodes": []}
        body = {"name": "functional", "trainable": True, "layers": entries}
        body |= {"input_layers": [["input_layer", 0, 0]], "output_layers": [[before, 0, 0]]}
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": body,
            "registered_name": "Functional",
            "build_config": {"input_shape": None},
        }
    body = {"name": "sequential", "trainable": True, "dtype": policy, "layers": entries}
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": body | {"build_input_shape": [None, *shape]},
        "registered_name": None,
        "build_config": {"input_shape": [None, *shape]},
        "compile_config": None,
    }


def weights_h5(specs: list[Spec]) -> bytes:
    """model.weights.h5 in Keras 3's layout (written to memory)."""
    import io

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("vars")
        used: dict[str, int] = {}
        for s in specs:
            base = SNAKE[s.kind]
            used[base] = used.get(base, -1) + 1
            group = f.create_group(f"layers/{base}_{used[base]}" if used[base] else f"layers/{base}")
            variables = group.create_group("vars")
            for i, (_, array) in enumerate(s.weights):
                variables.create_dataset(str(i), data=array)
        f.create_group("optimizer/vars")
    return buffer.getvalue()


def write_keras(
    path: Path,
    shape: tuple[int, ...],
    specs: list[Spec],
    functional: bool = False,
    extra: dict[str, bytes] | None = None,
) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "metadata.json", json.dumps({"keras_version": "3.5.0", "date_saved": "2024-09-01@12:00:00"})
        )
        z.writestr("config.json", json.dumps(keras3_config(shape, specs, functional)))
        z.writestr("model.weights.h5", weights_h5(specs))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def check(net: KerasNetwork, shape: tuple[int, ...], specs: list[Spec], rows: int = 7) -> np.ndarray:
    """The network against the NumPy oracle on random rows; returns the rows."""
    x = RNG.standard_normal((rows, math.prod(shape)))
    got = net.network(torch.as_tensor(x)).detach().numpy()
    want = oracle(shape, specs, x)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    assert all(p.dtype == torch.float64 for p in [*net.network.parameters(), *net.network.buffers()])
    return x


# --------------------------------------------------------------------------------------------- layers
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "elu", "selu", "leaky_relu"]
WRITERS = ["list", "dict", "model", "keras3", "keras3-functional"]


def _write(tmp_path: Path, shape: tuple[int, ...], specs: list[Spec], how: str) -> Path:
    if how.startswith("keras3"):
        return write_keras(tmp_path / "m.keras", shape, specs, functional=how.endswith("functional"))
    return write_h5(tmp_path / "m.h5", shape, specs, style=how)


@pytest.mark.parametrize("how", WRITERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_activations_match_numpy(tmp_path: Path, activation: str, how: str) -> None:
    specs = [
        dense(5, 6, activation),
        Spec("Dropout", {"rate": 0.5}),
        dense(6, 4, activation),
        dense(4, 3, "softmax"),
    ]
    net = read_keras(_write(tmp_path, (5,), specs, how))
    check(net, (5,), specs)
    assert net.output == "softmax" and net.input_shape == (5,) and net.input_width == 5
    assert not any(isinstance(m, torch.nn.Softmax | torch.nn.Dropout) for m in net.network)
    probabilities = torch.softmax(net.network(torch.ones(2, 5, dtype=torch.float64)), -1).detach().numpy()
    np.testing.assert_allclose(probabilities, oracle((5,), specs, np.ones((2, 5)), logits=False), atol=ATOL)


@pytest.mark.parametrize("how", WRITERS)
def test_activation_layers_match_numpy(tmp_path: Path, how: str) -> None:
    specs = [
        dense(4, 6),
        Spec("LeakyReLU", {"alpha": 0.1} if how in ("list", "dict", "model") else {"negative_slope": 0.1}),
        dense(6, 6),
        Spec("ELU", {"alpha": 0.7}),
        dense(6, 6),
        Spec("ReLU", {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}),
        dense(6, 5),
        *[
            Spec("Activation", {"activation": a})
            for a in ("elu", "selu", "leaky_relu", "tanh", "relu", "linear")
        ],
        dense(5, 3),
        Spec("Softmax", {"axis": -1}),
    ]
    net = read_keras(_write(tmp_path, (4,), specs, how))
    check(net, (4,), specs)
    assert net.output == "softmax"
    kinds = [type(m).__name__ for m in net.network]
    assert kinds.count("LeakyReLU") == 2 and kinds.count("ELU") == 2 and "SELU" in kinds


def test_a_final_sigmoid_on_one_unit_is_separated_and_kept_elsewhere(tmp_path: Path) -> None:
    one = [dense(3, 4, "relu"), dense(4, 1, "sigmoid")]
    net = read_keras(write_h5(tmp_path / "one.h5", (3,), one))
    check(net, (3,), one)
    assert net.output == "sigmoid" and isinstance(net.network[-1], L.Linear)
    two = [dense(3, 4, "relu"), dense(4, 2), Spec("Activation", {"activation": "sigmoid"})]
    net = read_keras(write_h5(tmp_path / "two.h5", (3,), two))  # multi-label: the sigmoid stays
    check(net, (3,), two)
    assert net.output == "linear" and isinstance(net.network[-1], L.Sigmoid)
    relu = [dense(3, 4, "relu"), dense(4, 2, "relu")]  # a regression ending in relu (Lash's indirect model)
    net = read_keras(write_keras(tmp_path / "relu.keras", (3,), relu))
    check(net, (3,), relu)
    assert net.output == "linear" and isinstance(net.network[-1], L.ReLU)


@pytest.mark.parametrize("how", WRITERS)
@pytest.mark.parametrize(("center", "scale"), [(True, True), (False, True), (True, False), (False, False)])
def test_batch_normalization_matches_numpy(tmp_path: Path, center: bool, scale: bool, how: str) -> None:
    specs = [
        norm(4, center, scale, axis=[1] if how == "dict" else -1),
        dense(4, 5, "tanh"),
        norm(5),
        dense(5, 2),
    ]
    net = read_keras(_write(tmp_path, (4,), specs, how))
    check(net, (4,), specs)
    assert isinstance(net.network[0], K.ChannelAffine) and net.output == "linear"


@pytest.mark.parametrize("how", WRITERS)
def test_a_convolutional_network_matches_numpy(tmp_path: Path, how: str) -> None:
    shape = (12, 3)  # steps x channels, flattened row-major
    specs = [
        conv(3, 4, 3, activation="relu"),  # 10 steps
        norm(4, axis=[2] if how == "dict" else -1),
        Spec(
            "MaxPooling1D",
            {"pool_size": [2], "strides": [2], "padding": "valid", "data_format": "channels_last"},
        ),
        conv(4, 5, 3, padding="same", activation="elu"),  # 5 steps, padded 1 + 1
        conv(5, 4, 3, padding="same", strides=[2]),  # ceil(5 / 2) = 3 steps, padded 1 + 1
        Spec("MaxPooling1D", {"pool_size": [2], "strides": [1], "padding": "valid"}),  # 2 steps
        Spec("Dropout", {"rate": 0.2}),
        Spec("Flatten", {"data_format": "channels_last"}),
        dense(8, 6, "relu"),
        dense(6, 3, "softmax"),
    ]
    net = read_keras(_write(tmp_path, shape, specs, how))
    check(net, shape, specs)
    assert net.input_shape == shape and net.input_width == 36 and net.output == "softmax"
    kinds = [type(m).__name__ for m in net.network]
    assert kinds[0] == "Sequence1d" and kinds[kinds.index("Flatten") - 1] == "ChannelsLast"
    assert net.network[1].padding == (0,) and net.network[5].padding == (1,)


def test_weights_paths_follow_keras_naming(tmp_path: Path) -> None:
    assert {kind: keras_module.snake_case(kind) for kind in SNAKE} == SNAKE
    import io

    specs = [dense(3, 4, "relu"), norm(4), dense(4, 2)]
    buffer = io.BytesIO(weights_h5(specs))
    with h5py.File(buffer, "r+") as f:  # Keras 2.13-2.15 filed a .keras model's layers under this name
        f.move("layers", "_layer_checkpoint_dependencies")
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as z:
        z.writestr("config.json", json.dumps(keras3_config((3,), specs)))
        z.writestr("metadata.json", json.dumps({"keras_version": "2.13.1"}))
        z.writestr("model.weights.h5", buffer.getvalue())
    net = read_keras(tmp_path / "old.keras")
    check(net, (3,), specs)
    assert net.keras_version == "2.13.1"


def test_info_fields_name_the_file(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "model.h5", (3,), [dense(3, 2)], style="list")
    net = read_keras(path)
    assert net.source == "model.h5" and net.keras_version == "2.2.4-tf"
    assert net.layers == ("Dense dense_0",)
    import hashlib

    assert net.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(load_keras(str(path)), torch.nn.Sequential)
    k3 = read_keras(write_keras(tmp_path / "m.keras", (3,), [dense(3, 2)]))
    assert k3.keras_version == "3.5.0" and k3.layers == ("InputLayer input_layer", "Dense dense_0")


def test_the_first_kernel_gives_the_width_when_no_shape_is_recorded(tmp_path: Path) -> None:
    specs = [dense(6, 3, "relu"), dense(3, 2)]
    path = write_h5(tmp_path / "m.h5", (6,), specs)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        del config["config"]["layers"][0]["config"]["batch_input_shape"]
        f.attrs["model_config"] = json.dumps(config).encode()
    net = read_keras(path)
    assert net.input_shape == (6,)
    check(net, (6,), specs)


# ------------------------------------------------------------------------------- saving and the engines
SCHEMA = Schema(
    (
        Feature("a", "integer", (0, 100), mutability="direct"),
        Feature("b", "real", (0, 100), mutability="direct"),
        Feature("c", "real", (0, 10)),
        Feature("d", "real", (0, 10)),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)


def test_a_network_of_the_new_layers_saves_and_loads(tmp_path: Path) -> None:
    shape = (2, 2)
    specs = [
        conv(2, 3, 1, activation="relu"),
        norm(3),  # after an activation: a ChannelAffine (right after the Conv1D it would be folded in)
        Spec("Flatten"),
        dense(6, 5, "elu"),
        Spec("ELU", {"alpha": 0.5}),
        dense(5, 5, "selu"),
        Spec("LeakyReLU", {"alpha": 0.05}),
        norm(5),
        dense(5, 2, "softmax"),
    ]
    net = read_keras(write_h5(tmp_path / "m.h5", shape, specs))
    kinds = {type(m).__name__ for m in net.network}
    assert {"ELU", "SELU", "LeakyReLU", "ChannelAffine", "ChannelsLast", "Sequence1d"} <= kinds
    model = as_model(net.network, SCHEMA, encoding=InputEncoding.canonical(SCHEMA))
    folder = save_model(model, tmp_path / "saved")
    meta = json.loads((folder / "model.json").read_text())
    assert "layers" in meta and "program" not in meta  # data, not a torch.export program
    assert {"type": "ChannelAffine", "width": 3, "channels": True} in meta["layers"]
    back = load_model(folder)
    x = SCHEMA.encode(pd.DataFrame({"a": [1, 50], "b": [2.5, 99.0], "c": [0.0, 3.0], "d": [9.0, 1.0]}))
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
    np.testing.assert_allclose(model(x).detach().numpy(), oracle(shape, specs, x.numpy()), atol=ATOL)
    specs_back = S.specs(S.as_closed(back.network) or back.network)
    assert specs_back is not None and S.specs(S.build(specs_back)) == specs_back


def test_layer_specs_are_checked_as_data() -> None:
    assert all(kind in S.LAYERS for kind in K.LAYERS)
    with pytest.raises(ModelError, match="does not fit"):
        S.plan([{"type": "ChannelAffine", "width": 3, "channels": True}], 3)  # rows of 3 are not (3, length)
    with pytest.raises(ModelError, match="does not fit"):
        S.plan([{"type": "ChannelsLast"}], 4)
    with pytest.raises(ModelError, match="unknown key"):
        S.plan([{"type": "ELU", "alpha": 2}], 4)
    plan = S.plan([{"type": "LeakyReLU"}], 4)
    assert plan.tensors == {"0.slope": (1,)}
    with pytest.raises(ModelError, match="finite"):
        S.check_values(plan, {"0.slope": torch.tensor([math.nan], dtype=torch.float64)})


def _elu_model(tmp_path: Path) -> TorchModel:
    specs = [dense(4, 3, "elu"), dense(3, 2)]
    specs[1].weights[0][1][:] = [[1.0, -1.0], [0.5, -0.5], [0.2, 0.1]]
    return as_model(
        load_keras(write_h5(tmp_path / "elu.h5", (4,), specs)),
        SCHEMA,
        encoding=InputEncoding.canonical(SCHEMA),
    )


def test_deeplift_refuses_an_elu_network_by_name(tmp_path: Path) -> None:
    model = _elu_model(tmp_path)
    x = SCHEMA.encode(pd.DataFrame({"a": [10], "b": [20.0], "c": [1.0], "d": [2.0]}))
    with pytest.raises(ModelError, match=r"deeplift does not support layer 2 \(ELU\)"):
        attribute(model, x, method="deeplift")
    assert attribute(model, x, method="integrated_gradients").values.shape == (1, 4)  # autograd handles it


def test_certify_gives_no_certificate_for_an_elu_network_and_says_why(tmp_path: Path) -> None:
    model = _elu_model(tmp_path)
    catalogue = '[[action]]\nname = "raise_a"\nparams = { p = { bounds = [0, 50], kind = "integer" } }\n'
    catalogue += 'effects = { a = "a + p" }\ncost = "p"\n'
    program = Program(ActionSet.from_toml(catalogue, SCHEMA))
    x = SCHEMA.encode(pd.DataFrame({"a": [10], "b": [20.0], "c": [1.0], "d": [2.0]}))
    (cert,) = certify(model, resolve_goal(model), program, x, max_length=1, margin=0.1)
    assert cert.kind == "none" and "ELU" in cert.reason


# ------------------------------------------------------------------------------------ the authors' files
REAL = {
    "synth-german/model.h5": ("synth-german/data.npy", "linear", 63),
    "lash-student/reg_model.h5": (None, "softmax", 43),
    "lash-student/ind_model.h5": (None, "linear", 39),
    "synth-adult/model.h5": ("synth-adult/data.npy", "linear", 87),
    "synth-fanniemae/model.h5": ("synth-fanniemae/data.npy", "linear", 172),
}


def _own_forward(path: Path, x: np.ndarray) -> tuple[np.ndarray, str]:
    """The file's own Dense / Dropout stack in NumPy, its weights read here with h5py (final softmax left out)."""
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        layers = config["config"] if isinstance(config["config"], list) else config["config"]["layers"]
        h, final = x.astype(np.float64), "linear"
        for layer in layers:
            if layer["class_name"] == "Dropout":
                continue
            assert layer["class_name"] == "Dense"
            group = f["model_weights"][layer["config"]["name"]]
            kernel, bias = (
                np.asarray(group[n.decode()], dtype=np.float64) for n in group.attrs["weight_names"]
            )
            h = h @ kernel + bias
            final = layer["config"]["activation"]
            h = h if final == "softmax" and layer is layers[-1] else _act(final, h)
    return h, final


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.skipif(not DATA.exists(), reason="the authors' files live in ../shared/data (absent on CI)")
def test_the_authors_files_match_numpy_on_their_own_inputs(name: str) -> None:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    inputs, output, width = REAL[name]
    net = read_keras(path)
    assert net.output == output and net.input_width == width and net.input_shape == (width,)
    rows = [RNG.uniform(0, 1, (50, width))]
    if inputs is not None and (DATA / inputs).exists():
        rows.append(np.load(DATA / inputs, allow_pickle=False)[:, :width])
    for x in rows:
        want, final = _own_forward(path, x)
        got = net.network(torch.as_tensor(x, dtype=torch.float64)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    assert (final == "softmax") == (output == "softmax")
    schema = _schema(width, net)
    task = "regression" if schema.target is not None and schema.target.is_regression else None
    outputs = [f"y{j}" for j in range(4)] if task else None
    encoding = InputEncoding.canonical(schema)
    assert isinstance(
        as_model(net.network, schema, task=task, outputs=outputs, encoding=encoding), TorchModel
    )


def _schema(width: int, net: KerasNetwork) -> Schema:
    features = tuple(Feature(f"x{j}", "real", (0, 1)) for j in range(width))
    if (
        net.network(torch.zeros(1, width, dtype=torch.float64)).shape[1] != 2
    ):  # Lash's indirect model: 4 values
        return Schema(features, Target("y", above=0.0))
    return Schema(features, Target("y", favourable="b", classes=("a", "b")))


# ------------------------------------------------------------------------------------------ bad input
def refuse(path: Path, *fragments: str) -> str:
    """read_keras(path) raises a ModelError naming the file and each fragment (never a third-party error)."""
    with pytest.raises(ModelError) as caught:
        read_keras(path)
    message = str(caught.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert caught.value.__cause__ is None
    return message


def _edit_config(path: Path, edit: Any) -> Path:
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config["config"]["layers"])
        f.attrs["model_config"] = json.dumps(config).encode()
    return path


def _small(tmp_path: Path, name: str = "m.h5") -> Path:
    return write_h5(tmp_path / name, (5,), [dense(5, 6, "relu"), dense(6, 2)])


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    whole = _small(tmp_path).read_bytes()
    for cut in (len(whole) // 2, 600, 100):
        path = tmp_path / f"cut{cut}.h5"
        path.write_bytes(whole[:cut])
        refuse(path, "cannot be read", "truncated")
    archive = write_keras(tmp_path / "m.keras", (5,), [dense(5, 2)]).read_bytes()
    (tmp_path / "cut.keras").write_bytes(archive[: len(archive) // 2])
    refuse(tmp_path / "cut.keras", "cannot be read")


def test_files_that_are_not_keras_models_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "model.h5"
    text.write_text("this is not a model\n")
    refuse(text, "neither an HDF5 file nor a zip archive")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    refuse(empty, "neither an HDF5 file nor a zip archive")
    with h5py.File(tmp_path / "weights.h5", "w") as f:  # model.save_weights: no model_config
        f.create_group("dense").attrs["weight_names"] = np.array([b"dense/kernel:0"])
    refuse(tmp_path / "weights.h5", "no 'model_config'", "model.save")
    plain = tmp_path / "other.keras"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("readme.txt", "hello")
        z.writestr("../config.json", "{}")  # not the member named config.json
    refuse(plain, "not a .keras model", "config.json")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w"):
        pass
    refuse(tmp_path / "empty.keras", "not a .keras model")
    with pytest.raises(ModelError, match="not found"):
        read_keras(tmp_path / "absent.h5")
    with pytest.raises(ModelError, match="SavedModel"):
        read_keras(tmp_path)
    with pytest.raises(ValueError, match="path must be a file path"):
        read_keras(3)  # type: ignore[arg-type]


def test_a_config_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = _small(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = b'{"class_name": "Sequential", "config": [ {'
    refuse(path, "attribute 'model_config' is not valid JSON")
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = b"\xff\xfe not text"
    refuse(path, "model_config")
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = b"[" * 100_000 + b"]" * 100_000
    refuse(path, "nested too deeply")
    archive = tmp_path / "m.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "not json")
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights_h5([dense(5, 2)]))
    refuse(archive, "config.json is not valid JSON")


def test_config_shapes_that_disagree_with_the_weights_are_refused(tmp_path: Path) -> None:
    def more_units(layers: list[Any]) -> None:
        layers[1]["config"]["units"] = 3

    refuse(
        _edit_config(_small(tmp_path), more_units), "layer 1 (Dense 'dense_1')", "'kernel' has shape (6, 2)"
    )
    specs = [dense(5, 6, "relu"), dense(6, 2)]
    specs[1].weights[1] = ("bias", _w(3))
    refuse(
        write_keras(tmp_path / "m.keras", (5,), specs), "layer 2 (Dense 'dense_1')", "'bias' has shape (3,)"
    )
    specs = [dense(5, 2)]
    specs[0].weights.append(("extra", _w(2)))
    refuse(write_keras(tmp_path / "x.keras", (5,), specs), "holds 3 variables; its config needs 2")
    specs = [dense(5, 2)]
    specs[0].weights[0] = ("kernel", np.ones((5, 2), dtype=np.int32))
    refuse(write_h5(tmp_path / "int.h5", (5,), specs), "int32 values, not floats")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_or_infinite_weights_are_refused(tmp_path: Path, value: float) -> None:
    specs = [dense(5, 6, "relu"), dense(6, 2)]
    specs[1].weights[0][1][2, 1] = value
    refuse(
        write_h5(tmp_path / "m.h5", (5,), specs),
        "layer 1 (Dense 'dense_1')",
        f"holds {value} at flat position 5",
    )
    refuse(write_keras(tmp_path / "m.keras", (5,), specs), "layer 2 (Dense 'dense_1')", "must all be finite")


def test_lambda_custom_and_unknown_layers_are_refused(tmp_path: Path) -> None:
    def lam(layers: list[Any]) -> None:
        layers.insert(
            1, {"class_name": "Lambda", "config": {"name": "f", "function": ["4wEAAAAAAAAA", None, None]}}
        )

    refuse(_edit_config(_small(tmp_path, "a.h5"), lam), "layer 1 (Lambda 'f')", "Python code", "never run")

    def custom(layers: list[Any]) -> None:
        layers[1]["class_name"] = "MyDense"

    refuse(
        _edit_config(_small(tmp_path, "b.h5"), custom), "layer class 'MyDense' is not supported", "Supported"
    )
    path = write_keras(tmp_path / "c.keras", (5,), [dense(5, 2)])
    config = keras3_config((5,), [dense(5, 2)])
    config["config"]["layers"][1] |= {"module": "my_package.layers", "registered_name": "my_package>Dense"}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights_h5([dense(5, 2)]))
    refuse(path, "layer 1 (Dense 'dense_0')", "a custom class", "my_package")

    def nested(layers: list[Any]) -> None:
        layers[1] = {"class_name": "Sequential", "config": {"name": "inner", "layers": []}}

    refuse(_edit_config(_small(tmp_path, "d.h5"), nested), "a nested model")


def test_an_unknown_activation_or_an_inner_softmax_is_refused(tmp_path: Path) -> None:
    refuse(
        write_h5(tmp_path / "a.h5", (5,), [dense(5, 3, "swish"), dense(3, 2)]),
        "activation 'swish'",
        "Supported",
    )
    refuse(
        write_h5(tmp_path / "b.h5", (5,), [dense(5, 3, "softmax"), dense(3, 2)]),
        "layer 0 (Dense 'dense_0')",
        "softmax before the output",
    )
    sequence = [conv(2, 3, 2, padding="same"), Spec("Flatten"), dense(12, 2)]
    refuse(write_h5(tmp_path / "c.h5", (4, 2), sequence), "pads 0 step(s) before and 1 after", "symmetric")
    refuse(
        write_h5(tmp_path / "d.h5", (4, 2), [conv(2, 3, 2, dilation_rate=[2]), Spec("Flatten")]), "dilated"
    )
    refuse(write_h5(tmp_path / "e.h5", (4, 2), [conv(2, 3, 2, padding="causal")]), "causal")
    refuse(write_h5(tmp_path / "f.h5", (4, 2), [dense(2, 3)]), "Flatten before")
    refuse(write_h5(tmp_path / "g.h5", (4, 2), [conv(2, 3, 2)]), "rows of shape (3, 3)", "Flatten")
    refuse(write_h5(tmp_path / "h.h5", (4,), [norm(4, axis=0)]), "normalises axis 0")


def test_a_missing_weight_dataset_is_refused(tmp_path: Path) -> None:
    path = _small(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_1/dense_1/bias:0"]
    refuse(path, "layer 1 (Dense 'dense_1')", "holds no 'dense_1/bias:0'")
    with h5py.File(path, "r+") as f:
        f["model_weights/dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0"])
    refuse(path, "layer 1 (Dense 'dense_1')", "Keras loads them in order as ['kernel', 'bias']")
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_0"]
    refuse(path, "layer 0 (Dense 'dense_0')", "holds no 'dense_0'")
    archive = write_keras(tmp_path / "m.keras", (5,), [dense(5, 2)])
    with zipfile.ZipFile(archive, "w") as z:  # the weights of another layer class
        z.writestr("config.json", json.dumps(keras3_config((5,), [dense(5, 2)])))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights_h5([conv(5, 2, 1)]))
    refuse(archive, "holds weights (/layers/conv1d) for a layer the config lacks")
    with zipfile.ZipFile(archive, "w") as z:  # no weights for the Dense at all
        z.writestr("config.json", json.dumps(keras3_config((5,), [dense(5, 2)])))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights_h5([Spec("Flatten")]))
    refuse(archive, "layer 1 (Dense 'dense_0')", "holds no 'layers/dense/vars'")


def test_huge_declared_shapes_are_refused_before_reading(tmp_path: Path) -> None:
    def wide(layers: list[Any]) -> None:
        layers[0]["config"]["batch_input_shape"] = [None, 2**40]

    refuse(_edit_config(_small(tmp_path, "a.h5"), wide), "recorded input shape", "[1, 16,777,216]")

    def units(layers: list[Any]) -> None:
        layers[1]["config"]["units"] = 10**12

    refuse(
        _edit_config(_small(tmp_path, "b.h5"), units),
        "layer 1 (Dense 'dense_1')",
        "key 'units' is 1,000,000,000,000",
    )

    def many(layers: list[Any]) -> None:
        layers[0]["config"]["batch_input_shape"] = [None, 8192, 4096]

    refuse(_edit_config(_small(tmp_path, "c.h5"), many), "holds over 16,777,216 values")

    def variable(layers: list[Any]) -> None:
        layers[0]["config"]["batch_input_shape"] = [None, None, 3]

    refuse(_edit_config(_small(tmp_path, "d.h5"), variable), "no variable length")
    big = [dense(5, 6)]
    path = write_h5(tmp_path / "e.h5", (5,), big)
    _edit_config(path, lambda layers: layers[0]["config"].update(units=2**18, use_bias=False))
    with h5py.File(path, "r+") as f:  # 1.3 M numbers, written (all zeros, compressed to a small file)
        del f["model_weights/dense_0/dense_0/kernel:0"], f["model_weights/dense_0/dense_0/bias:0"]
        f["model_weights/dense_0"].attrs["weight_names"] = np.array([b"dense_0/kernel:0"])
        zeros = np.zeros((5, 2**18), dtype="f4")
        f["model_weights/dense_0/dense_0"].create_dataset("kernel:0", data=zeros, compression="gzip")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S, "MAX_ELEMENTS", 2**20)
        refuse(path, "the weights pass 1,048,576 numbers")


def test_only_the_three_known_members_of_a_keras_zip_are_read(tmp_path: Path) -> None:
    specs = [dense(5, 3, "relu"), dense(3, 2)]
    outside = {"../escape.txt": b"x", "/tmp/absolute.txt": b"y", "assets/../../up.txt": b"z"}
    path = write_keras(
        tmp_path / "inner" / "m.keras" if False else tmp_path / "m.keras", (5,), specs, extra=outside
    )
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    check(read_keras(path), (5,), specs)
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as z:
        z.writestr("config.json", "{}")
    refuse(path, "more than once")
    with pytest.MonkeyPatch.context() as patch:  # a member larger than its cap is not read past the cap
        patch.setattr(keras_module, "MAX_CONFIG_BYTES", 64)
        refuse(write_keras(tmp_path / "b.keras", (5,), specs), "config.json is larger than 64 bytes")


def test_links_out_of_the_file_are_refused(tmp_path: Path) -> None:
    other = _small(tmp_path, "other.h5")
    path = _small(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_1/dense_1/kernel:0"]
        f["model_weights/dense_1/dense_1/kernel:0"] = h5py.ExternalLink(
            str(other), "/model_weights/dense_1/dense_1/kernel:0"
        )
    refuse(path, "layer 1 (Dense 'dense_1')", "ExternalLink", "could lead out of the file")
    path = _small(tmp_path, "soft.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_1"]
        f["model_weights/dense_1"] = h5py.SoftLink("/model_weights/dense_0")
    refuse(path, "SoftLink")
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros(12, dtype=np.float32).tobytes())
    path = _small(tmp_path, "external.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/dense_1/dense_1/kernel:0"]
        f["model_weights/dense_1/dense_1"].create_dataset(
            "kernel:0", shape=(6, 2), dtype="f4", external=[(str(raw), 0, 48)]
        )
    refuse(path, "external or virtual dataset")


def test_non_linear_functional_models_are_refused(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "m.h5", (5,), [dense(5, 5, "relu"), dense(5, 5), dense(5, 2)], style="model")

    def skip(layers: list[Any]) -> None:  # dense_2 reads the input and dense_0: a merge
        layers[3]["inbound_nodes"] = [[["input_1", 0, 0, {}], ["dense_0", 0, 0, {}]]]

    refuse(_edit_config(path, skip), "layer 3 (Dense 'dense_2')", "Only linear stacks are supported")
    path = write_h5(tmp_path / "n.h5", (5,), [dense(5, 5, "relu"), dense(5, 5), dense(5, 2)], style="model")
    _edit_config(path, lambda layers: layers[2].update(inbound_nodes=[[["input_1", 0, 0, {}]]]))
    refuse(path, "layer 2 (Dense 'dense_1')", "Only linear stacks")
    path = write_h5(tmp_path / "o.h5", (5,), [dense(5, 2)], style="model")
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["input_layers"].append(["input_2", 0, 0])
        f.attrs["model_config"] = json.dumps(config).encode()
    refuse(path, "model config", "Only linear stacks")
    archive = tmp_path / "m.keras"
    specs = [dense(5, 5, "relu"), dense(5, 2)]
    config = keras3_config((5,), specs, functional=True)
    node = config["config"]["layers"][2]["inbound_nodes"][0]
    node["args"] = [
        [
            node["args"][0],
            {"class_name": "__keras_tensor__", "config": {"keras_history": ["input_layer", 0, 0]}},
        ]
    ]
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights_h5(specs))
    refuse(archive, "layer 2 (Dense 'dense_1')", "Only linear stacks")


# ------------------------------------------------------------------- review findings (issue 15, item 1)
def _relist(path: Path, group: str, attr: str, values: list[str]) -> Path:
    with h5py.File(path, "r+") as f:
        f[group].attrs[attr] = np.array([v.encode() for v in values])
    return path


def test_weights_load_by_keras_order_and_any_other_order_is_refused(tmp_path: Path) -> None:
    specs = [dense(4, 4), norm(4), dense(4, 4, "relu"), dense(4, 2)]
    order = ["gamma", "beta", "moving_mean", "moving_variance"]
    path = write_h5(tmp_path / "a.h5", (4,), specs)
    # BatchNormalization's weight_names beta before gamma: Keras would load beta's numbers into gamma
    wrong = [f"batch_normalization_1/{r}:0" for r in ["beta", "gamma", *order[2:]]]
    _relist(path, "model_weights/batch_normalization_1", "weight_names", wrong)
    refuse(path, "layer 1 (BatchNormalization", "Keras loads them in order as ['gamma', 'beta'")
    # layer_names listing the Dense groups in another order than the config: Keras fills by this order
    path = write_h5(tmp_path / "b.h5", (4,), specs)
    listed = ["dense_0", "batch_normalization_1", "dense_3", "dense_2"]
    refuse(_relist(path, "model_weights", "layer_names", listed), "Keras loads weights by this order")
    # a weighted group the config lacks
    path = write_h5(tmp_path / "c.h5", (4,), specs)
    with h5py.File(path, "r+") as f:
        ghost = f["model_weights"].create_group("ghost")
        ghost.attrs["weight_names"] = np.array([b"ghost/kernel:0"])
        ghost.create_dataset("ghost/kernel:0", data=_w(4, 4))
    refuse(
        _relist(path, "model_weights", "layer_names", [*names(specs), "ghost"]),
        "'ghost' that the config lacks",
    )
    # a Dropout group holding a kernel
    drop = [dense(4, 3), Spec("Dropout", {"rate": 0.5}, [("kernel", _w(3, 3))]), dense(3, 2)]
    refuse(write_h5(tmp_path / "d.h5", (4,), drop), "layer 1 (Dropout 'dropout_1')", "but a Dropout has none")
    # Keras 3: variables filed under a layer the config lacks, or under a Dropout
    archive = write_keras(tmp_path / "e.keras", (4,), [dense(4, 2)])
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", json.dumps(keras3_config((4,), [dense(4, 2)])))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", weights_h5([dense(4, 2), dense(2, 2)]))
    refuse(archive, "layers/dense_1) for a layer the config lacks")
    refuse(
        write_keras(tmp_path / "f.keras", (4,), drop), "layer 2 (Dropout 'dropout_1')", "a Dropout has none"
    )


def test_chunked_names_attributes_are_read_whole(tmp_path: Path) -> None:
    specs = [dense(4, 3, "relu"), Spec("Dropout", {"rate": 0.1}), dense(3, 2)]
    path = write_h5(tmp_path / "m.h5", (4,), specs)
    with h5py.File(path, "r+") as f:  # as Keras writes an attribute over 64 KB: name0, name1, ...
        group = f["model_weights/dense_2"]
        del group.attrs["weight_names"]
        group.attrs["weight_names0"] = np.array([b"dense_2/kernel:0"])
        group.attrs["weight_names1"] = np.array([b"dense_2/bias:0"])
        weights = f["model_weights"]
        del weights.attrs["layer_names"]
        weights.attrs["layer_names0"] = np.array([b"dense_0", b"dropout_1"])
        weights.attrs["layer_names1"] = np.array([b"dense_2"])
    check(read_keras(path), (4,), specs)


# ------------------------------------------------------------------------ review findings (items 2, 5)
def test_a_softmax_over_one_unit_is_refused(tmp_path: Path) -> None:
    fragments = ("a softmax over one unit is constantly 1.0", "Use sigmoid on one unit, or softmax on two")
    refuse(write_h5(tmp_path / "a.h5", (4,), [dense(4, 3, "relu"), dense(3, 1, "softmax")]), *fragments)
    refuse(write_h5(tmp_path / "b.h5", (4,), [dense(4, 1), Spec("Softmax", {"axis": -1})]), *fragments)
    after = [dense(4, 1), Spec("Activation", {"activation": "softmax"})]
    refuse(write_keras(tmp_path / "c.keras", (4,), after), "layer 2 (Activation", *fragments)


def test_an_activation_from_another_module_is_refused(tmp_path: Path) -> None:
    evil = {
        "module": "keras_evil.acts",
        "class_name": "function",
        "config": "relu",
        "registered_name": "function",
    }
    specs = [dense(4, 2)]
    specs[0].config["activation"] = evil
    refuse(write_keras(tmp_path / "m.keras", (4,), specs), "activation", "is not supported")
    specs[0].config["activation"] = evil | {"module": "keras.activations"}  # Keras's own, as a table
    plain = [Spec("Dense", specs[0].config | {"activation": "relu"}, specs[0].weights)]
    check(read_keras(write_keras(tmp_path / "n.keras", (4,), specs)), (4,), plain)


@pytest.mark.parametrize("block", [512, 4096, 8192])
def test_a_user_block_of_any_power_of_two_is_read(tmp_path: Path, block: int) -> None:
    specs = [dense(4, 2)]
    plain = write_h5(tmp_path / "plain.h5", (4,), specs)
    path = tmp_path / f"ub{block}.h5"
    with h5py.File(plain, "r") as src, h5py.File(path, "w", userblock_size=block) as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        src.copy("model_weights", dst)
    check(read_keras(path), (4,), specs)


def test_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "m.h5"
    os.mkfifo(fifo)
    refuse(fifo, "is not a regular file")


# --------------------------------------------------------------------- review findings (item 4: bounds)
def test_a_zip_of_too_many_members_is_refused_before_its_directory_is_parsed(tmp_path: Path) -> None:
    path = write_keras(tmp_path / "m.keras", (4,), [dense(4, 2)], extra={"a": b"", "b": b""})

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("zipfile.ZipFile was called")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_module, "MAX_MEMBERS", 4)
        patch.setattr(keras_module.zipfile, "ZipFile", never)
        refuse(path, "is a zip of 5 members")


def test_a_member_inflating_absurdly_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", b" " * 2**22)  # 4 MiB of spaces: a thousandfold smaller compressed
        z.writestr("model.weights.h5", weights_h5([dense(4, 2)]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_module, "MAX_RATIO", 100)
        refuse(path, "its config.json inflates", "a zip bomb")


def test_weights_with_no_stored_values_are_refused(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "a.h5", (4,), [dense(4, 16)])
    group = "model_weights/dense_0/dense_0"
    with h5py.File(path, "r+") as f:  # declared, never written: it would read as its fill value
        del f[f"{group}/kernel:0"]
        f[group].create_dataset("kernel:0", shape=(4, 16), dtype="f4", fillvalue=0.5)
    refuse(path, "'dense_0/kernel:0' of shape (4, 16) has no stored values")
    path = write_h5(tmp_path / "b.h5", (4,), [dense(4, 16)])
    with h5py.File(path, "r+") as f:  # chunked, one chunk of four written
        del f[f"{group}/kernel:0"]
        data = f[group].create_dataset("kernel:0", shape=(4, 16), dtype="f4", chunks=(1, 16))
        data[0] = 1.0
    refuse(path, "has no stored values")


# --------------------------------------------------------------- review findings (item 6: a new user)
def normalization(width: int, invert: bool = False) -> Spec:
    variance = RNG.uniform(0.2, 2, width).astype(np.float32)
    variance[0] = 0.0  # a constant feature: Keras divides by epsilon, not by 0
    weights = [("mean", _w(width)), ("variance", variance), ("count", np.array(100, dtype=np.int64))]
    return Spec("Normalization", {"axis": [-1], "invert": invert, "mean": None, "variance": None}, weights)


@pytest.mark.parametrize("how", ["dict", "keras3"])
def test_a_normalization_layer_matches_keras_formula(tmp_path: Path, how: str) -> None:
    specs = [normalization(4), dense(4, 3, "relu"), dense(3, 2)]
    check(read_keras(_write(tmp_path, (4,), specs, how)), (4,), specs)
    specs = [
        dense(4, 3),
        Spec("Activation", {"activation": "relu"}),
        normalization(3, invert=True),
        dense(3, 2),
    ]
    net = read_keras(_write(tmp_path, (4,), specs, how))
    check(net, (4,), specs)
    assert any(isinstance(m, K.ChannelAffine) for m in net.network)
    specs = [Spec("Normalization", {"axis": None, "mean": None}, normalization(4).weights), dense(4, 2)]
    refuse(_write(tmp_path, (4,), specs, how), "zscore columns of an InputEncoding")


def test_batch_normalization_right_after_dense_or_conv_is_folded_exactly(tmp_path: Path) -> None:
    specs = [dense(4, 6), norm(6), Spec("Activation", {"activation": "relu"}), dense(6, 2)]
    specs.insert(1, Spec("Dropout", {"rate": 0.3}))  # an inference identity between keeps it foldable
    net = read_keras(write_h5(tmp_path / "d.h5", (4,), specs))
    assert [type(m).__name__ for m in net.network] == ["Linear", "ReLU", "Linear"]
    x = RNG.standard_normal((9, 4))
    got = net.network(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, oracle((4,), specs, x), rtol=0, atol=1e-12)
    model = as_model(net.network, SCHEMA, encoding=InputEncoding.canonical(SCHEMA))
    rows = SCHEMA.encode(pd.DataFrame({"a": [10], "b": [20.0], "c": [1.0], "d": [2.0]}))
    assert attribute(model, rows, method="deeplift").values.shape == (1, 4)
    shape = (6, 2)
    specs = [
        conv(2, 3, 3, padding="same"),
        norm(3),
        Spec("Flatten"),
        dense(18, 2, "relu", bias=False),
        norm(2),
    ]
    specs[0].weights = specs[0].weights[:1]
    specs[0].config["use_bias"] = False  # a Conv1D without bias gains one
    net = read_keras(write_keras(tmp_path / "c.keras", shape, specs))
    assert not any(isinstance(m, K.ChannelAffine) for m in net.network[:3])
    assert isinstance(net.network[-1], K.ChannelAffine)  # after the ReLU: kept as an affine
    x = RNG.standard_normal((9, 12))
    got = net.network(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, oracle(shape, specs, x), rtol=0, atol=1e-12)


def test_uneven_same_padding_says_what_makes_it_uneven(tmp_path: Path) -> None:
    specs = [conv(3, 4, 3, padding="same", strides=[2]), Spec("Flatten"), dense(24, 2)]
    message = refuse(
        write_h5(tmp_path / "m.h5", (12, 3), specs), "kernel 3 and stride 2 on 12 steps", "is odd"
    )
    assert "use an odd kernel" not in message and "use kernel 2 or 4" in message and "11 steps" in message
