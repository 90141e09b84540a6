"""The closed set of layers a model file may hold: each is data (a JSON spec plus named tensors), never code.

Every converted or trained network is an ``nn.Sequential`` of these, so it saves to safetensors + JSON
and loads back without pickle. ``LAYERS`` maps a spec's ``type`` to its class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from actionable.errors import ModelError


class Layer(nn.Module):
    """A layer that describes itself as a JSON-able spec; tensors travel separately in the state dict."""

    kind: ClassVar[str]

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        return cls()


class Linear(nn.Linear, Layer):
    kind = "Linear"

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
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean).clone())
        self.register_buffer("std", torch.as_tensor(std).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "width": int(self.mean.shape[0])}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        width = int(spec["width"])
        return cls(torch.zeros(width), torch.ones(width))


class ColumnMap(Layer):
    """out[:, j] = x[:, index[j]] * scale[j] + shift[j]: a fitted ColumnTransformer of scalers and one-hot maps."""

    kind = "ColumnMap"
    index: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, index: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.int64).clone())
        self.register_buffer("scale", torch.as_tensor(scale).clone())
        self.register_buffer("shift", torch.as_tensor(shift).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.index] * self.scale + self.shift

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "width": int(self.index.shape[0])}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        width = int(spec["width"])
        return cls(torch.zeros(width, dtype=torch.int64), torch.ones(width), torch.zeros(width))


class BinaryLogits(Layer):
    """One logit z -> two logits [0, z], so softmax gives [1 - sigmoid(z), sigmoid(z)] exactly."""

    kind = "BinaryLogits"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x), x], dim=-1)


class Sequence1d(Layer):
    """(n, length * channels) -> (n, channels, length): canonical columns laid out slot by slot (e.g. 128
    strokes x 4 coordinates) become the channels-first sequence a 1-D convolution reads."""

    kind = "Sequence1d"

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


class Conv1d(nn.Conv1d, Layer):
    """A 1-D convolution over (n, channels, length); no dilation or groups, zero padding only."""

    kind = "Conv1d"

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


class MaxPool1d(nn.MaxPool1d, Layer):
    """Max over windows of the last axis (stride = window unless given)."""

    kind = "MaxPool1d"

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "kernel": int(self.kernel_size), "stride": int(self.stride)}  # type: ignore[arg-type]

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        kernel = int(spec["kernel"])
        return cls(kernel, stride=int(spec.get("stride", kernel)))


class Flatten(nn.Flatten, Layer):
    """(n, ...) -> (n, everything else): the bridge from convolutions to Linear layers."""

    kind = "Flatten"


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


def build(specs: list[dict[str, Any]]) -> nn.Sequential:
    """An ``nn.Sequential`` from layer specs; ``ModelError`` naming an unknown layer type."""
    layers = []
    for i, spec in enumerate(specs):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in LAYERS:
            raise ModelError(
                f"model file: layer {i} has type {kind!r}; supported layer types are {sorted(LAYERS)}."
            )
        try:
            layers.append(LAYERS[kind].from_spec(spec))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model file: layer {i} ({kind}) has a malformed spec {spec!r}: {exc}."
            ) from None
    return nn.Sequential(*layers)


def specs(network: nn.Module) -> list[dict[str, Any]] | None:
    """The layer specs of a network made only of closed-set layers, else None."""
    modules = list(network) if isinstance(network, nn.Sequential) else [network]
    if not all(isinstance(m, Layer) for m in modules):
        return None
    return [m.spec() for m in modules]  # type: ignore[operator]
