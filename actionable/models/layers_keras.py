"""Closed-set layers that Keras networks need beyond ``layers.py``: ELU, SELU, LeakyReLU, a per-channel affine
(BatchNormalization at inference) and ChannelsLast (Keras flattens convolutions channels-last).

Each is data like the layers in ``layers.py`` (a JSON spec plus named tensors), so a converted Keras network
saves as model.json + safetensors. A parameter that is not a whole number (ELU's alpha, LeakyReLU's slope)
is a 1-element float tensor: a spec ``Field`` holds only ints and bools. They subclass ``Layer`` alone,
never ``nn.ReLU`` / ``nn.Identity`` / ``nn.Flatten``, so engines that test layer types (DeepLift, the
MIP encoding) refuse them by name instead of mistaking them for a layer they handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from actionable.errors import ModelError
from actionable.models.layers import Conv1d, Field, Layer, Linear, Shape

__all__ = ["ELU", "LAYERS", "SELU", "ChannelAffine", "ChannelsLast", "LeakyReLU", "fold_affine"]


def _scalar(value: float | torch.Tensor, name: str, kind: str) -> torch.Tensor:
    """A 1-element float64 tensor holding ``value`` (a number or a tensor of one element)."""
    tensor = torch.as_tensor(value, dtype=torch.float64).detach().clone().reshape(-1)
    if tensor.numel() != 1:
        raise ModelError(f"{kind}: {name} must be one number; got {tensor.numel()} values.")
    return tensor


class ELU(Layer):
    """x where x > 0, else alpha * (exp(x) - 1) (Keras's ``elu``; alpha 1 unless the ELU layer sets it)."""

    kind = "ELU"
    alpha: torch.Tensor

    def __init__(self, alpha: float | torch.Tensor = 1.0) -> None:
        super().__init__()
        self.register_buffer("alpha", _scalar(alpha, "alpha", self.kind))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # expm1 of the clamped input: the branch not taken never overflows (no inf * 0 in a gradient)
        return torch.where(x > 0, x, self.alpha * torch.expm1(torch.clamp(x, max=0)))

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls()

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        return {"alpha": (1,)}


class SELU(Layer):
    """Keras's ``selu``: scale * elu(x, alpha) with the fixed constants of Klambauer et al. (as torch's)."""

    kind = "SELU"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.selu(x)


class LeakyReLU(Layer):
    """x where x >= 0, else slope * x (Keras's LeakyReLU layer: slope 0.3 by default; ``leaky_relu``: 0.2)."""

    kind = "LeakyReLU"
    slope: torch.Tensor

    def __init__(self, slope: float | torch.Tensor = 0.3) -> None:
        super().__init__()
        self.register_buffer("slope", _scalar(slope, "slope", self.kind))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.slope * x)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls()

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        return {"slope": (1,)}


class ChannelAffine(Layer):
    """x * scale + shift per feature of (width,) rows, or per channel of (channels = width, length) rows:
    a BatchNormalization at inference, folded: scale = gamma / sqrt(variance + epsilon),
    shift = beta - mean * scale."""

    kind = "ChannelAffine"
    fields: ClassVar[Mapping[str, Field]] = {
        "width": Field(),
        "channels": Field(bool, default=False, required=False),
    }
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, *, channels: bool = False) -> None:
        super().__init__()
        scale, shift = torch.as_tensor(scale).detach().clone(), torch.as_tensor(shift).detach().clone()
        if scale.ndim != 1 or shift.shape != scale.shape or scale.numel() < 1:
            raise ModelError(
                f"ChannelAffine: scale and shift must be 1-D of one length; got {tuple(scale.shape)} and "
                f"{tuple(shift.shape)}."
            )
        self.channels = bool(channels)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels:
            return x * self.scale[:, None] + self.shift[:, None]
        return x * self.scale + self.shift

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "width": int(self.scale.shape[0]), "channels": self.channels}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        width = int(spec["width"])
        return cls(torch.ones(width), torch.zeros(width), channels=bool(spec.get("channels", False)))

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        return {"scale": (spec["width"],), "shift": (spec["width"],)}

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        if spec["channels"]:
            if len(shape) != 2 or shape[0] != spec["width"]:
                raise ValueError(
                    f"with 'channels' it reads rows of shape (channels = {spec['width']}, length); the layer "
                    f"before gives {shape}"
                )
        elif len(shape) != 1 or shape[0] != spec["width"]:
            raise ValueError(
                f"it reads rows of {spec['width']} values; the layer before gives rows of shape {shape}"
            )
        return shape


class ChannelsLast(Layer):
    """(n, channels, length) -> (n, length, channels), so a Flatten after it reads Keras's channels-last order."""

    kind = "ChannelsLast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        if len(shape) != 2:
            raise ValueError(f"reads rows of shape (channels, length); the layer before gives {shape}")
        return (shape[1], shape[0])


def fold_affine(layer: Linear | Conv1d, scale: torch.Tensor, shift: torch.Tensor) -> Linear | Conv1d:
    """``layer`` followed by x * scale + shift per output (a BatchNormalization at inference), as one layer of
    the same kind: weight rows times scale, bias * scale + shift (a bias added where it had none). Exact up to
    rounding, and a Linear / Conv1d keeps the engines (DeepLift, the MIP encoding) that a ChannelAffine lacks."""
    weight = layer.weight.detach().to(torch.float64)
    bias = layer.bias.detach().to(torch.float64) if layer.bias is not None else torch.zeros(weight.shape[0])
    if scale.shape != (weight.shape[0],) or shift.shape != scale.shape:
        raise ModelError(f"fold_affine: scale and shift must hold {weight.shape[0]} values, one per output.")
    if isinstance(layer, Conv1d):
        kernel, stride, padding = layer.kernel_size[0], layer.stride[0], int(layer.padding[0])
        folded: Linear | Conv1d = Conv1d(
            layer.in_channels, layer.out_channels, kernel, stride=stride, padding=padding, dtype=torch.float64
        )
    else:
        folded = Linear(layer.in_features, layer.out_features, dtype=torch.float64)
    with torch.no_grad():
        folded.weight.copy_(weight * scale.to(torch.float64).reshape(-1, *[1] * (weight.ndim - 1)))
        folded.bias.copy_(  # type: ignore[union-attr]  # a bias by construction
            bias.to(torch.float64) * scale + shift
        )
    return folded


LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (ELU, SELU, LeakyReLU, ChannelAffine, ChannelsLast)
}
