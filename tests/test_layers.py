"""The 1-D convolution layers of the closed set: numpy oracles, exact save/load round-trips, seeded training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.signal import correlate

from actionable import ConfigError, Feature, ModelError, Schema, Target, load_model, save_model
from actionable.models import layers as L
from actionable.models import specs as S
from actionable.models.training import ConvRecipe, fit_conv_classifier

LENGTH, CHANNELS = 8, 2
SCHEMA = Schema(
    tuple(Feature(f"c{c}_{k}", "real", (0, 1)) for k in range(LENGTH) for c in range(CHANNELS)),
    Target("y", favourable="yes", classes=("no", "yes")),
)
TINY = ConvRecipe(length=LENGTH, channels=CHANNELS, filters=(3, 2), kernel=3, pool=2, hidden=(4,), epochs=3)


def tiny_data(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = rng.random((n, LENGTH * CHANNELS))
    y = np.where(x[:, ::CHANNELS].sum(1) > LENGTH / 2, "yes", "no")
    return pd.DataFrame(x, columns=list(SCHEMA.names)), pd.Series(y)


def test_new_layers_are_in_the_closed_set_and_rebuild_from_their_specs() -> None:
    for kind in ("Sequence1d", "Conv1d", "MaxPool1d", "Flatten"):
        assert kind in L.LAYERS
    layers = [L.Sequence1d(8, 2), L.Conv1d(2, 3, 3, stride=1, padding=1), L.MaxPool1d(2), L.Flatten()]
    specs = S.specs(torch.nn.Sequential(*layers))
    assert specs is not None
    assert S.specs(S.build(specs)) == specs
    assert specs[1] == {
        "type": "Conv1d",
        "in": 2,
        "out": 3,
        "kernel": 3,
        "stride": 1,
        "padding": 1,
        "bias": True,
    }
    with pytest.raises(ModelError, match="malformed spec"):
        S.build([{"type": "Conv1d", "in": 2}])
    with pytest.raises(ModelError, match="supported layer types"):
        S.build([{"type": "Conv2d"}])


def test_sequence_and_convolution_match_a_numpy_oracle() -> None:
    torch.manual_seed(0)
    x = torch.rand(5, LENGTH * CHANNELS, dtype=torch.float64)
    conv = L.Conv1d(CHANNELS, 3, 3, padding=1).to(torch.float64)
    got = conv(L.Sequence1d(LENGTH, CHANNELS)(x)).detach().numpy()
    seq = x.numpy().reshape(5, LENGTH, CHANNELS).transpose(0, 2, 1)  # slot-major columns -> channels first
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    padded = np.pad(seq, ((0, 0), (0, 0), (1, 1)))
    want = np.stack(
        [
            np.stack(
                [
                    sum(correlate(padded[i, c], w[o, c], mode="valid") for c in range(CHANNELS)) + b[o]
                    for o in range(3)
                ]
            )
            for i in range(5)
        ]
    )
    assert np.allclose(got, want, rtol=0, atol=1e-12)
    pooled = L.MaxPool1d(2)(torch.as_tensor(want)).numpy()
    assert np.array_equal(pooled, want.reshape(5, 3, LENGTH // 2, 2).max(-1))
    assert L.Flatten()(torch.as_tensor(want)).shape == (5, 3 * LENGTH)


def test_conv_classifier_saves_and_loads_exactly(tmp_path: Path) -> None:
    X, y = tiny_data()
    model = fit_conv_classifier(SCHEMA, X, y, TINY)
    folder = save_model(model, tmp_path / "conv")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]  # never pickle
    meta = json.loads((folder / "model.json").read_text())
    assert [spec["type"] for spec in meta["layers"]][:4] == ["Sequence1d", "Conv1d", "ReLU", "Conv1d"]
    back = load_model(folder, schema=SCHEMA)
    x = SCHEMA.encode(X)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
    for (name, a), (_, b) in zip(
        model.network.state_dict().items(), back.network.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert back.provenance["recipe"]["filters"] == [3, 2]


def test_conv_training_is_seeded_and_learns() -> None:
    X, y = tiny_data(200)
    a = fit_conv_classifier(SCHEMA, X, y, ConvRecipe(**{**TINY.__dict__, "epochs": 30, "lr": 1e-2}))
    b = fit_conv_classifier(SCHEMA, X, y, ConvRecipe(**{**TINY.__dict__, "epochs": 30, "lr": 1e-2}))
    for wa, wb in zip(a.network.state_dict().values(), b.network.state_dict().values(), strict=True):
        assert torch.equal(wa, wb)
    assert np.mean(a.predict(X) == y.to_numpy(dtype=object)) > 0.8  # majority class alone is about 0.5


def test_conv_recipe_and_width_are_checked() -> None:
    with pytest.raises(ConfigError, match="kernel must be odd"):
        ConvRecipe(length=8, channels=2, kernel=4)
    X, y = tiny_data()
    with pytest.raises(ConfigError, match="needs exactly that many"):
        fit_conv_classifier(SCHEMA, X, y, ConvRecipe(length=4, channels=2))


def test_every_layer_declares_the_tensors_and_shapes_it_really_has() -> None:
    """``plan`` (what a file is checked against before building) agrees with the built network."""
    network = torch.nn.Sequential(
        L.ColumnMap(torch.tensor([7, 6, 5, 4, 3, 2, 1, 0]), torch.ones(8), torch.zeros(8)),
        L.Standardize(torch.zeros(8), torch.ones(8)),
        L.Sequence1d(4, 2),
        L.Conv1d(2, 3, 3, padding=1),
        L.ReLU(),
        L.MaxPool1d(2),
        L.Flatten(),
        L.Linear(6, 4),
        L.Tanh(),
        L.Sigmoid(),
        L.Identity(),
        L.Linear(4, 1, bias=False),
        L.BinaryLogits(),
    ).double()
    assert {type(m).kind for m in network} == set(L.LAYERS)  # type: ignore[attr-defined]
    specs = S.specs(network)
    assert specs is not None
    plan = S.plan(specs, 8)
    state = network.state_dict()
    assert plan.tensors == {name: tuple(t.shape) for name, t in state.items()}
    assert plan.integer == {name for name, t in state.items() if t.dtype == torch.int64}
    x = torch.rand(3, 8, dtype=torch.float64)
    shapes = []
    for layer in network:
        shapes.append(tuple(x.shape[1:]))
        x = layer(x)
    assert plan.inputs == shapes and plan.output == tuple(x.shape[1:]) == (2,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "Linear", "in": 8, "out": 2, "bias": "yes"}, "key 'bias' must be true or false"),
        ({"type": "Linear", "in": 8.0, "out": 2}, "key 'in' must be a whole number; got 8.0"),
        (
            {"type": "Conv1d", "in": 2, "out": 1, "kernel": 3, "padding": -1},
            r"key 'padding' must be in \[0, ",
        ),
        ({"type": "ReLU", "inplace": True}, r"unknown key\(s\) \['inplace'\]; a ReLU layer takes no keys"),
        ({"type": "Linaer", "in": 8, "out": 2}, "Did you mean 'Linear'"),
        (
            {"type": "Linear", "in": 7, "out": 2},
            r"its 'in' is 7, but the layer before gives rows of shape \(8,\)",
        ),
        ({"type": "Conv1d", "in": 8, "out": 1, "kernel": 3}, "put a Sequence1d first"),
        ({"type": "MaxPool1d", "kernel": 9}, "window 9 is longer than the sequence it reads"),
    ],
    ids=[
        "bias-string",
        "in-float",
        "padding-negative",
        "activation-key",
        "typo",
        "chain",
        "conv-flat",
        "pool-long",
    ],
)
def test_layer_specs_are_checked_before_building(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        S.plan([spec], 8)
