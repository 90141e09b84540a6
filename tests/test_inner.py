"""The inner optimisation program: the folded network, and compiled = eager (with a clean fallback)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch

from actionable import Feature, Schema, Target, as_model, datasets
from actionable import inner as I
from actionable.actions import ActionSet
from actionable.models import layers as L
from actionable.synthesis import synthesize

SCHEMA = Schema(
    (
        Feature("a", "real", (0, 100), mutability="direct"),
        Feature("b", "integer", (0, 100), mutability="direct"),
        Feature("g", "category", levels=("x", "y"), mutability="direct"),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)
ACTIONS = """
[[action]]
name = "raise_a"
params = { d = { bounds = [0, 90] } }
effects = { a = "a + d" }
cost = "(d / 50) ** 2"
post = ["a <= 95"]

[[action]]
name = "raise_b"
params = { d = { bounds = [0, 90], kind = "integer" } }
effects = { b = "b + d" }
cost = "0.5 + d / 40"

[[action]]
name = "switch_g"
effects = { g = "'y'" }
cost = "1.5"
"""
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
PEOPLE = pd.DataFrame(
    [{"a": 40.0, "b": 30, "g": "x"}, {"a": 30.0, "b": 50, "g": "x"}, {"a": 20.0, "b": 45, "g": "y"}]
)


def mlp() -> object:
    """A small ReLU network behind a Standardize layer: the shape every trained model has."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        L.Standardize(torch.tensor([40.0, 40.0, 0.5, 0.5]), torch.tensor([20.0, 20.0, 0.5, 0.5])),
        L.Linear(4, 8),
        L.ReLU(),
        L.Linear(8, 2),
    ).double()
    with torch.no_grad():  # good - bad = mean_j relu(w_j . standardized x + b_j) - 0.6
        net[1].weight.copy_(
            torch.stack(
                [
                    torch.linspace(0.5, 1.5, 8),
                    torch.full((8,), 0.5),
                    torch.zeros(8),
                    torch.linspace(0.2, 1.0, 8),
                ],
                1,
            )
        )
        net[1].bias.copy_(torch.linspace(-1.0, 1.0, 8))
        net[3].weight.copy_(torch.stack([torch.zeros(8), torch.full((8,), 1 / 8)]))
        net[3].bias.copy_(torch.tensor([0.0, -0.6]))
    return as_model(net, SCHEMA)


def test_fold_equals_the_network_on_random_rows() -> None:
    """The folded first layer + float32 rest reproduce the float64 model's logits (to float32 rounding)."""
    data = datasets.load("german")
    model = data.model
    split = I.split_affine(model)
    assert split is not None
    prefix, rest = split
    x = model.schema.encode(data.X_test.head(50))
    touched = torch.tensor([1, 4, 9])
    z = x[:, touched] + torch.randn(50, 3, dtype=torch.float64) * 5
    base, weight = I.fold(model, prefix, x, touched)
    folded = rest(torch.addmm(base, z.to(I.COMPUTE), weight.T)).double()
    expected = model(x.index_copy(1, touched, z))
    assert torch.allclose(folded, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(folded, model(x), atol=1e-3)  # z matters


def test_split_refuses_unknown_networks() -> None:
    """A user's module that is not a Sequential of known layers is used as it is (no fold)."""

    class Custom(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 2).double()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) * 2

    assert I.split_affine(as_model(Custom(), SCHEMA)) is None
    unknown_tail = torch.nn.Sequential(L.Linear(4, 2), torch.nn.ELU()).double()
    assert I.split_affine(as_model(unknown_tail, SCHEMA)) is None
    assert I.split_affine(mlp()) is not None  # type: ignore[arg-type]


def plans(batch: object) -> list[tuple[str, tuple[str, ...], float]]:
    return [(r.status, tuple(s.action for s in r.steps), r.cost) for r in batch]  # type: ignore[attr-defined]


def assert_same(got: object, expected: object, rel: float) -> None:
    """Same statuses and actions per row; costs and parameters equal to ``rel``."""
    assert [p[:2] for p in plans(got)] == [p[:2] for p in plans(expected)]
    for a, b in zip(got, expected, strict=True):  # type: ignore[call-overload]
        assert a.cost == pytest.approx(b.cost, rel=rel, abs=1e-12, nan_ok=True)
        assert [s.params for s in a.steps] == [pytest.approx(s.params, rel=rel, abs=1e-9) for s in b.steps]


def test_synthesis_agrees_with_and_without_the_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same plans (same actions, costs within rounding) when the model is called unfolded."""
    actions = ActionSet.from_toml(ACTIONS, SCHEMA)
    folded = synthesize(mlp(), PEOPLE, actions, max_length=2, steps=80)
    monkeypatch.setattr(I, "split_affine", lambda model: None)
    plain = synthesize(mlp(), PEOPLE, actions, max_length=2, steps=80)
    assert_same(folded, plain, rel=1e-3)
    assert sum(r.status == "found" for r in folded) >= 2


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_equals_eager(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """compile=True traces the same step (torch.func.grad instead of autograd): the same plans."""
    monkeypatch.setattr(I, "BACKEND", backend)
    monkeypatch.setattr(I, "UNROLL", 1)  # the smallest program: quick to build
    actions = ActionSet.from_toml(ACTIONS, SCHEMA)
    eager = synthesize(mlp(), PEOPLE, actions, max_length=1, scan=False, steps=41)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent fallback here
        fast = synthesize(mlp(), PEOPLE, actions, max_length=1, scan=False, steps=41, compile=True)
    assert_same(fast, eager, rel=1e-9)
    assert sum(r.status == "found" for r in fast) >= 1


def test_compile_unavailable_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """No compiler (compile raises) and a failing compiled call: one warning, the eager plans."""
    actions = ActionSet.from_toml(ACTIONS, SCHEMA)
    eager = synthesize(mlp(), PEOPLE, actions, max_length=1, scan=False, steps=30)

    def no_compile(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compile)
    with pytest.warns(RuntimeWarning, match="no C.. compiler"):
        fallback = synthesize(mlp(), PEOPLE, actions, max_length=1, scan=False, steps=30, compile=True)
    assert_same(fallback, eager, rel=0)

    def broken(*args: object, **kwargs: object) -> object:
        def call(*a: object) -> object:
            raise OSError("cc1plus: fatal error")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="cc1plus"):
        fallback = synthesize(mlp(), PEOPLE, actions, max_length=1, scan=False, steps=30, compile=True)
    assert_same(fallback, eager, rel=0)


def test_missing_cxx_compiler_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a C++ compiler: inductor fails to build, synthesis still answers (eagerly)."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/g++",))
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    monkeypatch.setattr(I, "UNROLL", 1)
    actions = ActionSet.from_toml(ACTIONS, SCHEMA)
    eager = synthesize(mlp(), PEOPLE.head(1), actions, max_length=1, scan=False, steps=5)
    torch._dynamo.reset()
    with pytest.warns(RuntimeWarning, match="(?s)C.. compiler.*running eagerly"):
        fallback = synthesize(mlp(), PEOPLE.head(1), actions, max_length=1, scan=False, steps=5, compile=True)
    torch._dynamo.reset()
    assert_same(fallback, eager, rel=1e-9)
