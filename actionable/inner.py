"""The inner optimisation program of synthesis: the model seen from the few columns actions write.

Inside one optimisation every (sequence, person) pair's final state is a constant row with a handful of
columns replaced by the numeric state ``z`` the parameters move. When the network opens with affine layers
(``Standardize``, ``ColumnMap``, ``Linear``: every converted or trained model), those layers fold into one
pre-activation per pair, ``base + z @ weight.T``, computed once per optimisation: each step then multiplies
``z``'s few columns instead of the whole canonical row, and the rest of the network runs in float32 (the
exact re-check afterwards is float64 on the real model). Any other model is called unchanged.

``compiled`` wraps a step function in ``torch.compile`` (inductor) and falls back to the plain function,
with one warning, when compilation is unavailable or fails (no C++ compiler, unsupported operations).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from actionable.models import TorchModel
from actionable.models import layers as L

AFFINE = (L.Standardize, L.ColumnMap, nn.Linear, nn.Identity)
KNOWN = (L.Layer, nn.Linear, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Identity)
COMPUTE = torch.float32  # the dtype of the folded network inside the optimisation
BACKEND = "inductor"  # torch.compile's backend for compile=True


def fold(
    model: TorchModel, prefix: nn.Module, static: torch.Tensor, touched: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(base, weight)`` with ``prefix(x) == base + z @ weight.T`` for ``x = static`` with columns ``touched``
    replaced by ``z`` (``prefix``: the affine layers from ``split_affine``), in float32.

    The map's columns are probed exactly: ``prefix(e_j) - prefix(0)`` for each touched column ``j``.
    """
    with torch.no_grad():
        base = prefix(static.index_fill(1, touched, 0.0).to(model.dtype))
        probe = torch.zeros(len(touched) + 1, static.shape[1], dtype=model.dtype)
        probe[torch.arange(1, len(touched) + 1), touched] = 1.0
        out = prefix(probe)
        weight = (out[1:] - out[:1]).T
    return base.to(COMPUTE), weight.to(COMPUTE).contiguous()


def split_affine(model: TorchModel) -> tuple[nn.Module, nn.Module] | None:
    """The network as (its leading affine layers up to the first ``Linear``, a float32 copy of the rest).

    None when the network is not an ``nn.Sequential`` of the library's layers opening with affine layers,
    or when a layer is not one of the known types (a user's module is then used as it is).
    """
    network = model.network
    if not isinstance(network, nn.Sequential):
        return None
    layers = list(network)
    for i, layer in enumerate(layers):
        if not isinstance(layer, AFFINE):
            return None
        if isinstance(layer, nn.Linear):
            rest = layers[i + 1 :]
            if not all(isinstance(r, KNOWN) for r in rest):
                return None
            tail = copy.deepcopy(nn.Sequential(*rest)).to(COMPUTE)
            for p in tail.parameters():
                p.requires_grad_(False)
            return nn.Sequential(*layers[: i + 1]), tail
    return None


def compiled(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``function`` compiled with ``torch.compile`` (inductor); on any failure, ``function`` itself.

    A failure (at wrapping or at the first call, where inductor builds its C++ kernels) is reported once as
    a ``RuntimeWarning`` and the plain function is used from then on: results equal up to float rounding.
    """
    try:
        program = torch.compile(function, backend=BACKEND, dynamic=False, fullgraph=True)
    except Exception as error:
        return _fallback(function, name, error)
    state: dict[str, Any] = {"call": program}

    def call(*args: Any) -> Any:
        try:
            return state["call"](*args)
        except Exception as error:
            if state["call"] is function:
                raise
            state["call"] = _fallback(function, name, error)
            return function(*args)

    return call


def _fallback(function: Callable[..., Any], name: str, error: Exception) -> Callable[..., Any]:
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    warnings.warn(
        f"synthesize: torch.compile is unavailable for {name} ({type(error).__name__}: {first}); "
        "running eagerly (same results, slower). Pass compile=False to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )
    return function
