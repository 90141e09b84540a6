"""Keras layers (read by ``keras_config.model_layers``) as closed-set modules of ``layers.py`` /
``layers_keras.py`` equal to them at inference, each layer's weights fetched by the caller (``keras.py``
reads the files) and checked against its config (shapes, dtype, finite values, size caps) before use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from actionable.errors import ModelError, did_you_mean, shown
from actionable.models import layers as L
from actionable.models import layers_keras as K
from actionable.models import specs as S
from actionable.models.keras_config import FIXED, FUNCTIONAL, SEQUENTIAL, keras_module
from actionable.models.keras_weights import INPUT, Fetch, KerasLayer, fail, values
from actionable.models.layers import MAX_DIM, Shape

__all__ = ["KERAS_EPSILON", "KINDS", "Converted", "convert"]

_RESAVE = "Re-save the model from Keras (model.save)."
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": L.ReLU,
    "sigmoid": L.Sigmoid,
    "tanh": L.Tanh,
    "elu": K.ELU,
    "selu": K.SELU,
    "leaky_relu": lambda: K.LeakyReLU(0.2),  # keras.activations.leaky_relu's default slope
}
KERAS_EPSILON = 1e-7  # keras.config.epsilon()'s default, the floor of Normalization's std
_IDENTITY = ("Dropout", "SpatialDropout1D", "AlphaDropout", "GaussianDropout", "GaussianNoise")


@dataclass(frozen=True)
class Converted:
    """The closed-set layers, the final activation separated from them, and the input shape they read."""

    modules: list[nn.Module]
    output: str
    input_shape: Shape


@dataclass(frozen=True)
class _Softmax:
    """A softmax met while converting: allowed only as the network's final activation (then separated)."""

    layer: KerasLayer


class _Build:
    """The layers converted so far, the Keras shape of one row after them, and the config readers."""

    def __init__(self, where: str, fetch: Fetch, shape: Shape | None) -> None:
        self.where, self.fetch, self.shape, self.input_shape = where, fetch, shape, shape
        self.modules: list[nn.Module | _Softmax] = []
        self.total = 0
        if shape is not None and len(shape) == 2:  # (steps, channels) rows, flat: channels-first for Conv1d
            self.modules.append(L.Sequence1d(length=shape[0], channels=shape[1]))

    def fail(self, layer: KerasLayer | None, problem: str, fix: str = _RESAVE) -> ModelError:
        return fail(self.where, layer, problem, fix)

    def add(self, module: nn.Module | _Softmax, layer: KerasLayer, shape: Shape | None = None) -> None:
        self.modules.append(module)
        if shape is not None:
            if math.prod(shape) > S.MAX_ACTIVATION:
                raise self.fail(layer, f"it gives {math.prod(shape):,} values per row; check its sizes")
            self.shape = shape

    def rows(self, layer: KerasLayer, rank: int) -> Shape:
        """The current shape, which must be known and of ``rank`` (1: features, 2: steps x channels)."""
        if self.shape is None or len(self.shape) != rank:
            need = "(features,)" if rank == 1 else "(steps, channels)"
            fix = "A Dense layer needs a Flatten before it; Conv1D and pooling need (steps, channels) inputs."
            raise self.fail(layer, f"it reads rows of shape {need}; the layer before gives {self.shape}", fix)
        return self.shape

    def value(self, layer: KerasLayer, key: str, default: Any, kinds: tuple[type, ...]) -> Any:
        value = layer.config.get(key, default)
        if isinstance(value, list) and len(value) == 1 and int in kinds:  # kernel_size [3], strides [1]
            value = value[0]
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            raise self.fail(layer, f"key {key!r} is {shown(value)}")
        return value

    def int(self, layer: KerasLayer, key: str, default: int | None = None) -> int:
        value: int = self.value(layer, key, default, (int,))
        if not 1 <= value <= MAX_DIM:
            raise self.fail(layer, f"key {key!r} is {value:,}; it must be in [1, {MAX_DIM:,}]")
        return value

    def float(self, layer: KerasLayer, key: str, default: float) -> float:
        value = float(self.value(layer, key, default, (int, float)))
        if not math.isfinite(value):
            raise self.fail(layer, f"key {key!r} is {value}; it must be a finite number")
        return value

    def choice(self, layer: KerasLayer, key: str, allowed: tuple[Any, ...], fix: str) -> Any:
        value = layer.config.get(key, allowed[0])
        if value not in allowed:
            raise self.fail(layer, f"{key} {shown(value)} is not supported (only {list(allowed)})", fix)
        return value

    def weights(self, layer: KerasLayer, want: dict[str, Shape | None]) -> dict[str, torch.Tensor]:
        """The layer's weights by role, each checked against the shape its config implies, as float64
        (a role of shape None is one the file must hold but inference does not use: it is not read)."""
        found, out = self.fetch(layer, tuple(want)), {}
        for role, shape in want.items():
            data = found[role]
            if shape is None:
                continue
            self.total += math.prod(shape)
            if self.total > S.MAX_ELEMENTS:
                fix = "The model is too large to read."
                raise self.fail(layer, f"the weights pass {S.MAX_ELEMENTS:,} numbers", fix)
            out[role] = values(data, role, shape, lambda problem, fix: self.fail(layer, problem, fix))
        return out

    def activation(self, layer: KerasLayer, name: Any) -> None:
        if isinstance(name, dict) and keras_module(name.get("module")):
            name = name.get("config")  # Keras 3 may write a built-in activation as a table
        if name is None or name == "linear":
            return
        if name == "softmax":
            self.add(_Softmax(layer), layer)
        elif isinstance(name, str) and name in _ACTIVATIONS:
            self.add(_ACTIVATIONS[name](), layer)
        else:
            known = ["linear", "softmax", *_ACTIVATIONS]
            raise self.fail(layer, f"activation {shown(name)} is not supported", f"Supported: {known}.")


def _dense(b: _Build, layer: KerasLayer) -> None:
    units, bias = b.int(layer, "units"), b.value(layer, "use_bias", True, (bool,))
    if b.shape is None:  # the config records no input shape: the first kernel says it
        rows = int(b.fetch(layer, ("kernel", "bias") if bias else ("kernel",))["kernel"].shape[0])
        if not 1 <= rows <= MAX_DIM:
            raise b.fail(layer, f"its kernel has {rows:,} rows")
        b.shape = b.input_shape = (rows,)
    (width,) = b.rows(layer, 1)
    w = b.weights(layer, {"kernel": (width, units)} | ({"bias": (units,)} if bias else {}))
    linear = L.Linear(width, units, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(w["kernel"].T)
        if linear.bias is not None:
            linear.bias.copy_(w["bias"])
    b.add(linear, layer, (units,))
    b.activation(layer, layer.config.get("activation"))


def _conv(b: _Build, layer: KerasLayer) -> None:
    length, channels = b.rows(layer, 2)
    filters, kernel, stride = b.int(layer, "filters"), b.int(layer, "kernel_size"), b.int(layer, "strides", 1)
    bias = b.value(layer, "use_bias", True, (bool,))
    if b.int(layer, "dilation_rate", 1) != 1 or b.int(layer, "groups", 1) != 1:
        raise b.fail(layer, "a dilated or grouped convolution", "Only plain convolutions are read.")
    b.choice(layer, "data_format", ("channels_last",), "Save the model with channels_last inputs.")
    padding = b.choice(layer, "padding", ("valid", "same"), "Use padding 'valid' or 'same'.")
    total = _same_pad(length, kernel, stride) if padding == "same" else 0
    if total % 2:
        raise b.fail(layer, *_uneven(length, kernel, stride, total))
    if kernel > length + total:
        raise b.fail(layer, f"its kernel ({kernel}) is longer than its input ({length} steps)")
    w = b.weights(layer, {"kernel": (kernel, channels, filters)} | ({"bias": (filters,)} if bias else {}))
    conv = L.Conv1d(
        channels, filters, kernel, stride=stride, padding=total // 2, bias=bias, dtype=torch.float64
    )
    with torch.no_grad():
        conv.weight.copy_(w["kernel"].permute(2, 1, 0))  # Keras (kernel, in, out) -> torch (out, in, kernel)
        if conv.bias is not None:
            conv.bias.copy_(w["bias"])
    b.add(conv, layer, ((length + total - kernel) // stride + 1, filters))
    b.activation(layer, layer.config.get("activation"))


def _same_pad(length: int, kernel: int, stride: int) -> int:
    """The total zero padding of TensorFlow's 'same': (ceil(length / stride) - 1) * stride + kernel - length."""
    return max((-(-length // stride) - 1) * stride + kernel - length, 0)


def _uneven(length: int, kernel: int, stride: int, total: int) -> tuple[str, str]:
    """Why 'same' pads unevenly here (Keras puts the odd step after) and what pads evenly instead."""
    problem = (
        f"padding 'same' with kernel {kernel} and stride {stride} on {length} steps pads {total // 2} step(s) "
        f"before and {total - total // 2} after: the total (ceil({length} / {stride}) - 1) * {stride} + {kernel} "
        f"- {length} = {total} is odd"
    )
    kernels = [k for k in (kernel - 1, kernel + 1) if k >= 1 and _same_pad(length, k, stride) % 2 == 0]
    lengths = [
        n
        for n in range(max(length - stride, 1), length + stride + 1)
        if _same_pad(n, kernel, stride) % 2 == 0
    ]
    fix = "Only symmetric padding is read: " + (
        f"use kernel {' or '.join(map(str, kernels))}, " if kernels else ""
    )
    fix += f"an input of {lengths[0]} steps, " if lengths else ""
    return problem, fix + "or padding 'valid' (with stride 1 any odd kernel pads evenly)."


def _pool(b: _Build, layer: KerasLayer) -> None:
    length, channels = b.rows(layer, 2)
    size = b.int(layer, "pool_size", 2)
    stride = size if layer.config.get("strides") is None else b.int(layer, "strides")
    b.choice(layer, "padding", ("valid",), "Use padding 'valid'.")
    b.choice(layer, "data_format", ("channels_last",), "Save the model with channels_last inputs.")
    if size > length:
        raise b.fail(layer, f"its window ({size}) is longer than its input ({length} steps)")
    b.add(L.MaxPool1d(size, stride=stride), layer, ((length - size) // stride + 1, channels))


def _norm(b: _Build, layer: KerasLayer) -> None:
    if b.shape is None:
        raise b.fail(layer, "the file records no input shape", FIXED)
    axis, rank = layer.config.get("axis", -1), len(b.shape) + 1
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if (
        isinstance(axis, bool)
        or not isinstance(axis, int)
        or not -rank <= axis < rank
        or axis % rank != rank - 1
    ):
        raise b.fail(
            layer, f"it normalises axis {shown(axis)}", "Only the last (features / channels) axis is read."
        )
    if layer.config.get("renorm"):
        raise b.fail(layer, "batch renormalization", "Only plain BatchNormalization is read.")
    epsilon, width = b.float(layer, "epsilon", 1e-3), b.shape[-1]
    scale, center = b.value(layer, "scale", True, (bool,)), b.value(layer, "center", True, (bool,))
    roles = [*(["gamma"] if scale else []), *(["beta"] if center else []), "moving_mean", "moving_variance"]
    w = b.weights(layer, {role: (width,) for role in roles})
    variance = w["moving_variance"] + epsilon
    if bool((variance <= 0).any()):
        raise b.fail(layer, "moving_variance + epsilon is not positive at some channel")
    factor = w.get("gamma", torch.ones(width, dtype=torch.float64)) / torch.sqrt(variance)
    shift = w.get("beta", torch.zeros(width, dtype=torch.float64)) - w["moving_mean"] * factor
    _affine(b, layer, factor, shift)


def _affine(b: _Build, layer: KerasLayer, factor: torch.Tensor, shift: torch.Tensor) -> None:
    """x * factor + shift per feature / channel: folded into a Dense or Conv1D right before it (nothing but
    inference identities between), so ReLU networks keep DeepLift and certificates; else a ChannelAffine."""
    last = b.modules[-1] if b.modules else None
    if isinstance(last, L.Linear | L.Conv1d):
        b.modules[-1] = K.fold_affine(last, factor, shift)
    else:
        b.add(K.ChannelAffine(factor, shift, channels=b.shape is not None and len(b.shape) == 2), layer)


def _normalization(b: _Build, layer: KerasLayer) -> None:
    """Keras's Normalization at inference: (x - mean) / max(sqrt(variance), epsilon), epsilon Keras's
    default 1e-7 (keras/src/layers/preprocessing/normalization.py); inverted, mean + x * that."""
    if b.shape is None:
        raise b.fail(layer, "the file records no input shape", FIXED)
    axis = layer.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, len(b.shape)) or isinstance(axis, bool) or layer.config.get("mean") is not None:
        fix = "Declare its mean and std as zscore columns of an InputEncoding, and leave the layer out."
        raise b.fail(layer, f"a Normalization over axis {shown(axis)} or with its mean in the config", fix)
    width = b.shape[-1]
    w = b.weights(layer, {"mean": (width,), "variance": (width,), "count": None})
    std = torch.clamp(torch.sqrt(torch.clamp(w["variance"], min=0)), min=KERAS_EPSILON)
    if b.value(layer, "invert", False, (bool,)):
        _affine(b, layer, std, w["mean"])
    else:
        _affine(b, layer, 1 / std, -w["mean"] / std)


def _flatten(b: _Build, layer: KerasLayer) -> None:
    if b.shape is None:
        raise b.fail(layer, "the file records no input shape", FIXED)
    if len(b.shape) == 2:
        order = b.choice(layer, "data_format", ("channels_last", "channels_first"), "")
        if order == "channels_last":  # Keras flattens (steps, channels) step by step: move channels last
            b.add(K.ChannelsLast(), layer)
        b.add(L.Flatten(), layer, (math.prod(b.shape),))


def _unit(b: _Build, layer: KerasLayer) -> None:
    """Activation, ReLU, LeakyReLU, ELU and Softmax layers."""
    kind = layer.kind
    if kind == "Activation":
        b.activation(layer, layer.config.get("activation"))
    elif kind == "ReLU":
        if layer.config.get("max_value") is not None or layer.config.get("threshold", 0) != 0:
            raise b.fail(layer, "a ReLU with max_value or threshold", "Only ReLU(negative_slope) is read.")
        slope = b.float(layer, "negative_slope", 0.0)
        b.add(K.LeakyReLU(slope) if slope else L.ReLU(), layer)
    elif kind == "LeakyReLU":  # Keras 3 names the slope negative_slope, Keras 2 alpha
        b.add(K.LeakyReLU(b.float(layer, "negative_slope", b.float(layer, "alpha", 0.3))), layer)
    elif kind == "ELU":
        b.add(K.ELU(b.float(layer, "alpha", 1.0)), layer)
    else:
        b.choice(layer, "axis", (-1,), "Only a softmax over the last axis is read.")
        b.add(_Softmax(layer), layer)


_CONVERT: dict[str, Callable[[_Build, KerasLayer], None]] = {
    "Dense": _dense,
    "Conv1D": _conv,
    "MaxPooling1D": _pool,
    "BatchNormalization": _norm,
    "Normalization": _normalization,
    "Flatten": _flatten,
    **dict.fromkeys(("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"), _unit),
    **dict.fromkeys((INPUT, *_IDENTITY), lambda b, layer: None),  # identities at inference: omitted
}
KINDS = frozenset(_CONVERT)  # the layer classes read


def convert(layers: list[KerasLayer], shape: Shape | None, fetch: Fetch, where: str) -> Converted:
    """Closed-set layers equal to the Keras layers at inference; a final softmax (or a sigmoid on one unit) is
    separated, so the network returns logits. ``ModelError`` names the layer, the problem and the fix."""
    b = _Build(where, fetch, shape)
    for layer in layers:
        step = _CONVERT.get(layer.kind)
        if step is None:
            raise _unsupported(b, layer)
        step(b, layer)
    output, modules = "linear", b.modules
    if modules and isinstance(modules[-1], _Softmax):
        if b.shape == (1,):
            fix = "Use sigmoid on one unit, or softmax on two."
            raise b.fail(
                modules[-1].layer, "a softmax over one unit is constantly 1.0, whatever the input", fix
            )
        output, modules = "softmax", modules[:-1]
    elif modules and isinstance(modules[-1], L.Sigmoid) and b.shape == (1,):
        output, modules = "sigmoid", modules[:-1]
    inner = next((m for m in modules if isinstance(m, _Softmax)), None)
    if inner is not None:
        raise b.fail(inner.layer, "a softmax before the output", "Only a final softmax is read (as logits).")
    if b.shape is None or b.input_shape is None or len(b.shape) != 1:
        raise b.fail(None, f"the network gives rows of shape {b.shape}", "End it with Flatten and Dense.")
    kept = [m for m in modules if isinstance(m, nn.Module)]
    return Converted(kept or [L.Identity()], output, b.input_shape)


def _unsupported(b: _Build, layer: KerasLayer) -> ModelError:
    if layer.kind == "Lambda":
        fix = "It is never run: rewrite it as standard layers and save the model again."
        return b.fail(layer, "a Lambda layer holds Python code (marshalled bytecode)", fix)
    if layer.kind in (*SEQUENTIAL, *FUNCTIONAL):
        return b.fail(layer, "a nested model", "Flatten it into one Sequential of layers and save it again.")
    known = [*sorted(k for k in _CONVERT if k not in _IDENTITY), "Dropout"]
    hint = did_you_mean(layer.kind, _CONVERT)
    return b.fail(layer, f"layer class {shown(layer.kind)} is not supported", f"Supported: {known}.{hint}")
