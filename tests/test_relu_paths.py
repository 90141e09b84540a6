"""The hand-written backward of ReLU chains in Integrated Gradients equals autograd's path and Captum's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import actionable.attribution as attribution_module
from actionable import ConfigError, Feature, Schema, Target, as_model, attribute
from actionable.models import layers as L
from actionable.relu_paths import relu_chain

SCHEMA = Schema(
    (Feature("a", "real", (-5, 5)), Feature("b", "real", (-5, 5)), Feature("c", "integer", (0, 9))),
    Target("y", favourable="yes", classes=("no", "yes")),
)


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(-5, 5, n), "b": rng.uniform(-5, 5, n), "c": rng.integers(0, 10, n)})


def relu_net(widths: list[int], seed: int, *, bias: bool = True, outputs: int = 2) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    previous = SCHEMA.width
    for w in widths:
        layers += [nn.Linear(previous, w, bias=bias), nn.ReLU()]
        previous = w
    layers.append(nn.Linear(previous, outputs))
    return nn.Sequential(*layers).double()


def both_paths(
    model: object, X: pd.DataFrame, B: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, **kw: object
):  # type: ignore[no-untyped-def]
    fast = attribute(model, X, "integrated_gradients", baseline=B, **kw)  # type: ignore[arg-type]
    with monkeypatch.context() as m:
        m.setattr(attribution_module, "relu_chain", lambda *a: None)
        general = attribute(model, X, "integrated_gradients", baseline=B, **kw)  # type: ignore[arg-type]
    return fast, general


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    seed=st.integers(0, 10_000),
    steps=st.integers(2, 40),
    rule=st.sampled_from(["gausslegendre", "riemann_left", "riemann_middle", "riemann_trapezoid"]),
    bias=st.booleans(),
)
def test_chain_equals_autograd_path(widths: list[int], seed: int, steps: int, rule: str, bias: bool) -> None:
    model = as_model(relu_net(widths, seed, bias=bias), SCHEMA)
    X, B = frame(30, seed), frame(30, seed + 1)
    with pytest.MonkeyPatch.context() as mp:
        try:
            fast, general = both_paths(model, X, B, mp, steps=steps, rule=rule)
        except ConfigError as exc:  # a dead network (all units off everywhere): refused on both paths
            assert "for every input" in str(exc)
            return
    np.testing.assert_allclose(fast.values, general.values, atol=1e-12, rtol=1e-12)


def test_chain_is_used_and_matches_captum() -> None:
    captum_attr = pytest.importorskip("captum.attr")
    net = relu_net([7, 5, 4], 3)
    model = as_model(net, SCHEMA)
    layers = list(net)
    assert relu_chain(layers[1:], 1, torch.float64) is not None  # the walked part after the first Linear
    X, B = frame(40, 3), frame(40, 4)
    x, b = SCHEMA.encode(X), SCHEMA.encode(B)
    theirs = captum_attr.IntegratedGradients(net).attribute(x, b, target=1, n_steps=50)
    ours = attribute(model, X, "integrated_gradients", baseline=B, steps=50)
    np.testing.assert_allclose(ours.values, theirs.detach().numpy(), atol=1e-10)


def test_one_logit_float32_and_no_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6, bias=False), nn.ReLU(), nn.Linear(6, 1), L.BinaryLogits()).float()
    model = as_model(net, SCHEMA)
    assert model.dtype == torch.float32
    X, B = frame(20, 5), frame(20, 6)
    fast, general = both_paths(model, X, B, monkeypatch, steps=16)
    np.testing.assert_allclose(fast.values, general.values, atol=1e-5)
    assert np.abs(fast.values).max() > 0


@pytest.mark.parametrize(
    "layers",
    [
        [nn.ReLU(), nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)],  # another nonlinearity in the chain
        [nn.LeakyReLU(), nn.Linear(4, 2)],  # not a ReLU
        [nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)],  # two Linears in a row
        [nn.Tanh(), nn.ReLU(), nn.Linear(4, 2)],  # does not start with the ReLU
        [nn.ReLU(), nn.Linear(4, 2), nn.ReLU()],  # nothing after the last ReLU
        [nn.ReLU(), nn.Identity()],  # tail width unknown
    ],
)
def test_other_networks_take_the_general_path(layers: list[nn.Module]) -> None:
    assert relu_chain([m.double() for m in layers], 0, torch.float64) is None


def test_subclasses_are_not_trusted() -> None:
    class Doubled(nn.ReLU):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    head = nn.Linear(4, 2).double()
    assert relu_chain([Doubled(), head], 0, torch.float64) is None
    assert relu_chain([nn.ReLU(), head], 1, torch.float64) is not None
    assert relu_chain([nn.ReLU(), head], 2, torch.float64) is None  # no such output


def test_probability_output_uses_autograd_and_matches_captum() -> None:
    captum_attr = pytest.importorskip("captum.attr")
    net = relu_net([6, 6], 8, outputs=2)
    model = as_model(net, SCHEMA)
    X, B = frame(15, 8), frame(15, 9)
    x, b = SCHEMA.encode(X), SCHEMA.encode(B)
    theirs = captum_attr.IntegratedGradients(lambda z: torch.softmax(net(z), -1)).attribute(
        x, b, target=1, n_steps=20
    )
    ours = attribute(model, X, "integrated_gradients", baseline=B, steps=20, output="probability")
    np.testing.assert_allclose(ours.values, theirs.detach().numpy(), atol=1e-10)
