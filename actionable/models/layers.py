"""The closed set of layers a model file may hold: each is data (a JSON spec plus named tensors), never code.

Every converted or trained network is an ``nn.Sequential`` of these, so it saves to safetensors + JSON
and loads back without pickle. ``LAYERS`` maps a spec's ``type`` to its class. Each layer declares its
keys (``fields``: type, range, default), the tensors it holds (``tensors``: names and shapes), the shape it
gives (``out_shape``) and the values it refuses (``check_values``), so a file can be checked as data
before anything is built (``specs.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from actionable.errors import ModelError

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "MAX_DIM",
    "BinaryLogits",
    "ColumnMap",
    "Conv1d",
    "Field",
    "Flatten",
    "Identity",
    "Layer",
    "Linear",
    "MaxPool1d",
    "ReLU",
    "Sequence1d",
    "Shape",
    "Sigmoid",
    "Standardize",
    "Tanh",
]

MAX_DIM = 2**24  # any one size in a spec (features, channels, kernel, stride, padding)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Field:
    """One key of a layer spec: a whole number in [low, high], or a bool; absent, it takes ``default``."""

    kind: type[int] | type[bool] = int
    low: int = 1
    default: int | bool | None = None
    required: bool = True
    high: int = MAX_DIM

    def check(self, value: object) -> str | None:
        """Why ``value`` does not fit, or None."""
        if self.kind is bool:
            return None if isinstance(value, bool) else f"must be true or false; got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number; got {value!r}"
        if not self.low <= value <= self.high:
            return f"must be in [{self.low}, {self.high}]; got {value}"
        return None


class Layer(nn.Module):
    """A layer that describes itself as a JSON-able spec; tensors travel separately in the state dict."""

    kind: ClassVar[str]
    fields: ClassVar[Mapping[str, Field]] = {}
    integer: ClassVar[frozenset[str]] = frozenset()  # tensors of column indices (int64); the rest are floats

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls()

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        """The tensors a layer built from ``spec`` holds, by state-dict name, with their shapes."""
        return {}

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        """The shape of one row after this layer; ``ValueError`` saying why ``shape`` does not fit."""
        return shape

    @classmethod
    def check_values(cls, spec: Mapping[str, Any], shape: Shape, tensors: Mapping[str, torch.Tensor]) -> None:
        """``ValueError`` naming a tensor whose values this layer cannot use (beyond being finite)."""


class Linear(nn.Linear, Layer):
    kind = "Linear"
    fields: ClassVar[Mapping[str, Field]] = {
        "in": Field(),
        "out": Field(),
        "bias": Field(bool, default=True, required=False),
    }

    def spec(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "in": self.in_features,
            "out": self.out_features,
            "bias": self.bias is not None,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls(int(spec["in"]), int(spec["out"]), bias=bool(spec.get("bias", True)))

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        weight: dict[str, Shape] = {"weight": (spec["out"], spec["in"])}
        return weight | {"bias": (spec["out"],)} if spec["bias"] else weight

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        _last(shape, spec["in"], "'in'")
        return (*shape[:-1], spec["out"])


class ReLU(nn.ReLU, Layer):
    kind = "ReLU"


class Sigmoid(nn.Sigmoid, Layer):
    kind = "Sigmoid"


class Tanh(nn.Tanh, Layer):
    kind = "Tanh"


class Identity(nn.Identity, Layer):
    kind = "Identity"


class Standardize(Layer):
    """(x - mean) / std per column: the scaler in front of a trained network, so inputs stay in raw units."""

    kind = "Standardize"
    fields: ClassVar[Mapping[str, Field]] = {"width": Field()}
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        mean, std = torch.as_tensor(mean).clone(), torch.as_tensor(std).clone()
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ModelError(
                f"Standardize: mean and std must be 1-D of one length; got {tuple(mean.shape)} and "
                f"{tuple(std.shape)}."
            )
        problem = _bad_scale(std)
        if problem:
            raise ModelError(f"Standardize: std {problem}; a column constant in training takes std 1.")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "width": int(self.mean.shape[0])}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        width = int(spec["width"])
        return cls(torch.zeros(width), torch.ones(width))

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        return {"mean": (spec["width"],), "std": (spec["width"],)}

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        _last(shape, spec["width"], "'width'")
        return shape

    @classmethod
    def check_values(cls, spec: Mapping[str, Any], shape: Shape, tensors: Mapping[str, torch.Tensor]) -> None:
        problem = _bad_scale(tensors["std"])
        if problem:
            raise ValueError(f"tensor 'std' {problem}; a scale must be > 0 (a constant column takes 1)")


class ColumnMap(Layer):
    """out[:, j] = x[:, index[j]] * scale[j] + shift[j]: a fitted ColumnTransformer of scalers and one-hot maps."""

    kind = "ColumnMap"
    fields: ClassVar[Mapping[str, Field]] = {"width": Field()}
    integer: ClassVar[frozenset[str]] = frozenset({"index"})
    index: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, index: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        index = torch.as_tensor(index, dtype=torch.int64).clone()
        scale, shift = torch.as_tensor(scale).clone(), torch.as_tensor(shift).clone()
        if index.ndim != 1 or scale.shape != index.shape or shift.shape != index.shape:
            raise ModelError(
                f"ColumnMap: index, scale and shift must be 1-D of one length; got {tuple(index.shape)}, "
                f"{tuple(scale.shape)} and {tuple(shift.shape)}."
            )
        if index.numel() and int(index.min()) < 0:
            j = int(torch.argmax((index < 0).to(torch.int8)))
            raise ModelError(
                f"ColumnMap: index[{j}] = {int(index[j])}; an index is a column of the input, in [0, width) "
                "(a negative one would silently read from the end)."
            )
        self.register_buffer("index", index)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.index] * self.scale + self.shift

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "width": int(self.index.shape[0])}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        width = int(spec["width"])
        return cls(torch.zeros(width, dtype=torch.int64), torch.ones(width), torch.zeros(width))

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        return {name: (spec["width"],) for name in ("index", "scale", "shift")}

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        return (*shape[:-1], spec["width"])

    @classmethod
    def check_values(cls, spec: Mapping[str, Any], shape: Shape, tensors: Mapping[str, torch.Tensor]) -> None:
        index = tensors["index"]
        outside = (index < 0) | (index >= shape[-1])
        if bool(outside.any()):
            j = int(torch.argmax(outside.to(torch.int8)))
            raise ValueError(
                f"tensor 'index' holds {int(index[j])} at position {j}; an index is a column of the "
                f"layer's input, in [0, {shape[-1]})"
            )


class BinaryLogits(Layer):
    """One logit z -> two logits [0, z], so softmax gives [1 - sigmoid(z), sigmoid(z)] exactly."""

    kind = "BinaryLogits"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x), x], dim=-1)

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        return (*shape[:-1], 2 * shape[-1])


class Sequence1d(Layer):
    """(n, length * channels) -> (n, channels, length): canonical columns laid out slot by slot (e.g. 128
    strokes x 4 coordinates) become the channels-first sequence a 1-D convolution reads."""

    kind = "Sequence1d"
    fields: ClassVar[Mapping[str, Field]] = {"length": Field(), "channels": Field()}

    def __init__(self, length: int, channels: int) -> None:
        super().__init__()
        if length < 1 or channels < 1:
            raise ValueError(f"length and channels must be >= 1; got {length} and {channels}")
        self.length, self.channels = int(length), int(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-1], self.length, self.channels).transpose(-1, -2)

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "length": self.length, "channels": self.channels}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls(int(spec["length"]), int(spec["channels"]))

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        _last(shape, spec["length"] * spec["channels"], "length x channels")
        return (*shape[:-1], spec["channels"], spec["length"])


class Conv1d(nn.Conv1d, Layer):
    """A 1-D convolution over (n, channels, length); no dilation or groups, zero padding only."""

    kind = "Conv1d"
    fields: ClassVar[Mapping[str, Field]] = {
        "in": Field(),
        "out": Field(),
        "kernel": Field(),
        "stride": Field(default=1, required=False),
        "padding": Field(low=0, default=0, required=False),
        "bias": Field(bool, default=True, required=False),
    }

    def spec(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "in": self.in_channels,
            "out": self.out_channels,
            "kernel": self.kernel_size[0],
            "stride": self.stride[0],
            "padding": int(self.padding[0]),
            "bias": self.bias is not None,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls(
            int(spec["in"]),
            int(spec["out"]),
            int(spec["kernel"]),
            stride=int(spec.get("stride", 1)),
            padding=int(spec.get("padding", 0)),
            bias=bool(spec.get("bias", True)),
        )

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        weight: dict[str, Shape] = {"weight": (spec["out"], spec["in"], spec["kernel"])}
        return weight | {"bias": (spec["out"],)} if spec["bias"] else weight

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        if len(shape) != 2 or shape[0] != spec["in"]:
            raise ValueError(
                f"reads rows of shape (channels = {spec['in']}, length); the layer before gives {shape} "
                "(put a Sequence1d first)"
            )
        return (spec["out"], _window(shape[1] + 2 * spec["padding"], spec["kernel"], spec["stride"]))


class MaxPool1d(nn.MaxPool1d, Layer):
    """Max over windows of the last axis (stride = window unless given)."""

    kind = "MaxPool1d"
    fields: ClassVar[Mapping[str, Field]] = {"kernel": Field(), "stride": Field(required=False)}

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "kernel": int(self.kernel_size), "stride": int(self.stride)}  # type: ignore[arg-type]

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        kernel = int(spec["kernel"])
        return cls(kernel, stride=int(spec.get("stride") or kernel))

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        if len(shape) > 2:
            raise ValueError(f"reads rows of shape (channels, length); the layer before gives {shape}")
        return (*shape[:-1], _window(shape[-1], spec["kernel"], spec.get("stride") or spec["kernel"]))


class Flatten(nn.Flatten, Layer):
    """(n, ...) -> (n, everything else): the bridge from convolutions to Linear layers."""

    kind = "Flatten"

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        return (math.prod(shape),)


LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Linear,
        ReLU,
        Sigmoid,
        Tanh,
        Identity,
        Standardize,
        ColumnMap,
        BinaryLogits,
        Sequence1d,
        Conv1d,
        MaxPool1d,
        Flatten,
    )
}
ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "logistic": Sigmoid, "tanh": Tanh, "identity": Identity}


def _last(shape: Shape, want: int, what: str) -> None:
    if shape[-1] != want:
        raise ValueError(f"its {what} is {want}, but the layer before gives rows of shape {shape}")


def _window(length: int, kernel: int, stride: int) -> int:
    if kernel > length:
        raise ValueError(f"its window {kernel} is longer than the sequence it reads ({length})")
    return (length - kernel) // stride + 1


def _bad_scale(std: torch.Tensor) -> str | None:
    """Why a tensor of scales cannot divide (NaN, infinite, zero or negative), or None."""
    bad = ~torch.isfinite(std) | (std <= 0)
    if not bool(bad.any()):
        return None
    j = int(torch.argmax(bad.to(torch.int8)))
    return f"holds {float(std[j])} at column {j}"
