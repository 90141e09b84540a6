"""DeepLift's rescale rule on a sequential network: multipliers that telescope to f(x) - f(baseline).

Each elementwise nonlinearity's derivative is replaced by the ratio of its output's change to its
input's change, so attributions sum exactly to the change of the output on networks of affine layers and
ReLU / Sigmoid / Tanh; ``attribute(method="deeplift")`` calls ``deeplift`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from actionable.errors import ModelError
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.schema import DTYPE

__all__ = ["AFFINE", "EPS", "SLOPES", "deeplift", "flat_layers"]

# Elementwise nonlinearities DeepLift's rescale rule handles, with their derivative (used where the input
# barely changes) and the affine layers it passes through unchanged.
SLOPES: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda h: (h > 0).to(h.dtype),
    nn.Sigmoid: lambda h: torch.sigmoid(h) * (1 - torch.sigmoid(h)),
    nn.Tanh: lambda h: 1 - torch.tanh(h) ** 2,
}
AFFINE = (nn.Linear, nn.Identity, L.Standardize, L.ColumnMap, L.BinaryLogits)
EPS = 1e-10  # |x - baseline| below which DeepLift uses the derivative (as Captum does)


class _Rescale(torch.autograd.Function):
    """Forward: the nonlinearity's output; backward: DeepLift's multiplier in place of the derivative."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, out: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(multiplier)
        return out.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (multiplier,) = ctx.saved_tensors
        return grad * multiplier, None, None


def flat_layers(module: nn.Module) -> list[nn.Module]:
    """The leaf layers of a module, nested ``nn.Sequential`` blocks unrolled in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in flat_layers(child)]
    return [module]


def _slope(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The derivative of a nonlinearity DeepLift rescales, or None for any other layer."""
    for kind, slope in SLOPES.items():
        if isinstance(module, kind):
            return slope
    return None


def deeplift(
    model: TorchModel, x: torch.Tensor, x0: torch.Tensor, index: int, probability: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DeepLift (rescale rule) on a sequential network; inputs and baselines run as one batch.

    Each nonlinearity's derivative is replaced by (f(h) - f(h0)) / (h - h0), so the multipliers telescope
    and attributions sum to f(x) - f(x0) exactly on networks of affine layers and such nonlinearities.
    With ``probability`` the final softmax gets the same treatment (its change spread over the logits in
    proportion to their gradient contributions).
    """
    layers = flat_layers(model.network)
    for i, m in enumerate(layers):
        if _slope(m) is None and not isinstance(m, AFFINE):
            raise ModelError(
                f"attribute: deeplift does not support layer {i} ({type(m).__name__}); it handles Linear, "
                "ReLU, Sigmoid, Tanh, Identity and actionable's scaling layers in an nn.Sequential. "
                "Use integrated_gradients for this model."
            )
    n = len(x)
    start = torch.cat([x, x0]).to(model.dtype).detach().requires_grad_(True)
    with torch.enable_grad():
        h = start
        for m in layers:
            slope = _slope(m)
            if slope is None:
                h = m(h)
                continue
            with torch.no_grad():
                out = m(h)
                dh, dout = h[:n] - h[n:], out[:n] - out[n:]
                ratio = torch.where(dh.abs() < EPS, slope(h[:n]), dout / torch.where(dh.abs() < EPS, 1.0, dh))
                multiplier = torch.cat([ratio, torch.zeros_like(ratio)])
            h = _Rescale.apply(h, out, multiplier)  # type: ignore[no-untyped-call, unused-ignore]
        if probability:
            weights = _softmax_multipliers(h[:n].detach(), h[n:].detach(), index)
            (grad,) = torch.autograd.grad(h[:n], start, grad_outputs=weights)
        else:
            (grad,) = torch.autograd.grad(h[:n, index].sum(), start)
    with torch.no_grad():
        out = (torch.softmax(h, -1) if probability else h)[:, index].to(DTYPE)
    return grad[:n].to(x.dtype) * (x - x0), out[:n], out[n:]


def _softmax_multipliers(z: torch.Tensor, z0: torch.Tensor, index: int) -> torch.Tensor:
    """Multipliers of the logits for p_index: the gradient, rescaled so they sum to p(z) - p(z0)."""
    point = z.clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(torch.softmax(point, -1)[:, index].sum(), point)
    p, p0 = torch.softmax(z, -1)[:, index], torch.softmax(z0, -1)[:, index]
    linear = (g * (z - z0)).sum(1, keepdim=True)
    ratio = torch.where(linear.abs() > 1e-12, (p - p0)[:, None] / linear, torch.ones_like(linear))
    return g * ratio
