"""Layer specs, both ways: a network as specs (``as_closed``, ``specs``) and specs read from a file as a network.

A spec read from a file is checked before anything is built: ``check_spec`` fills defaults and refuses
unknown types and keys, ``plan`` chains the shapes and counts the tensors so a malformed or oversized file
is refused before allocating, ``check_values`` refuses tensors no model should hold (NaN, a zero scale, a
column index outside the input), and ``build`` makes the ``nn.Sequential``. Each is a ``ModelError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from actionable.errors import ModelError, did_you_mean
from actionable.models import layers as _layers
from actionable.models import layers_keras as _keras
from actionable.models.layers import Identity, Layer, Linear, ReLU, Shape, Sigmoid, Tanh
from actionable.models.trees import Log, TreeEnsemble

__all__ = [
    "LAYERS",
    "MAX_ACTIVATION",
    "MAX_ELEMENTS",
    "PLAIN",
    "Plan",
    "as_closed",
    "build",
    "check_spec",
    "check_values",
    "plan",
    "specs",
]

LAYERS: dict[str, type[Layer]] = {
    **_layers.LAYERS,
    Log.kind: Log,
    TreeEnsemble.kind: TreeEnsemble,
    **_keras.LAYERS,
}
MAX_ELEMENTS = 2**27  # all tensors of one model together: 1 GiB in float64
MAX_ACTIVATION = 2**24  # the values one row holds between two layers: 128 MiB in float64


def check_spec(i: int, spec: object, where: str = "model file") -> dict[str, Any]:
    """Layer ``i``'s spec with its defaults filled in; ``ModelError`` naming the key that does not fit."""
    if not isinstance(spec, dict):
        raise ModelError(
            f"{where}: layer {i} is {str(spec)[:80]!r}; each layer is a table with a 'type' key, one "
            f"of {sorted(LAYERS)}."
        )
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in LAYERS:
        raise ModelError(
            f"{where}: layer {i} has type {kind if not isinstance(kind, str) else kind[:80]!r}; supported "
            f"layer types are {sorted(LAYERS)}.{did_you_mean(kind, LAYERS) if isinstance(kind, str) else ''}"
        )
    cls = LAYERS[kind]
    bad = f"{where}: layer {i} ({kind}) has a malformed spec"
    unknown = sorted(str(k)[:40] for k in spec if k != "type" and k not in cls.fields)
    if unknown:
        raise ModelError(
            f"{bad}: unknown key(s) {unknown}; a {kind} layer takes {sorted(cls.fields) or 'no keys'}."
        )
    out: dict[str, Any] = {"type": kind}
    for key, field in cls.fields.items():
        if key not in spec:
            if field.required:
                raise ModelError(f"{bad}: missing key {key!r}; a {kind} layer takes {sorted(cls.fields)}.")
            out[key] = field.default
            continue
        problem = field.check(spec[key])
        if problem:
            raise ModelError(f"{bad}: key {key!r} {problem}.")
        out[key] = spec[key]
    return out


@dataclass(frozen=True)
class Plan:
    """A checked list of layer specs: the shape each layer reads, the tensors each holds, the output shape."""

    specs: list[dict[str, Any]]
    inputs: list[Shape]
    tensors: dict[str, Shape]
    integer: frozenset[str]
    output: Shape


def plan(specs: object, width: int, where: str = "model file") -> Plan:
    """Check layer specs read from a file against an input of ``width`` columns, before building anything.

    ``ModelError`` names the layer and key: unknown type or key, a size of the wrong type or out of range,
    layers whose shapes do not chain, or more than ``MAX_ELEMENTS`` weights / ``MAX_ACTIVATION`` values a row.
    """
    if not isinstance(specs, list) or not specs:
        got = f"{len(specs)} layers" if isinstance(specs, list) else f"a {type(specs).__name__}"
        raise ModelError(f"{where}: 'layers' must be a non-empty list of layer tables; got {got}.")
    checked, inputs, tensors, integer = [], [], {}, set()
    shape: Shape = (width,)
    total = 0
    for i, raw in enumerate(specs):
        spec = check_spec(i, raw, where)
        cls = LAYERS[spec["type"]]
        for name, size in cls.tensors(spec).items():
            tensors[f"{i}.{name}"] = size
            total += math.prod(size)
        integer |= {f"{i}.{name}" for name in cls.integer}
        if total > MAX_ELEMENTS:
            raise ModelError(
                f"{where}: layer {i} ({spec['type']}) brings the weights to {total:,} numbers, more than "
                f"the {MAX_ELEMENTS:,} a model file may hold; check its sizes."
            )
        try:
            out = cls.out_shape(spec, shape)
        except ValueError as exc:
            raise ModelError(f"{where}: layer {i} ({spec['type']}) does not fit: {exc}.") from None
        if math.prod(out) > MAX_ACTIVATION:
            raise ModelError(
                f"{where}: layer {i} ({spec['type']}) gives {math.prod(out):,} values per row, more than "
                f"the {MAX_ACTIVATION:,} allowed; check its sizes."
            )
        checked.append(spec)
        inputs.append(shape)
        shape = out
    return Plan(checked, inputs, tensors, frozenset(integer), shape)


def check_values(the_plan: Plan, state: Mapping[str, torch.Tensor], where: str = "model file") -> None:
    """``ModelError`` naming the first tensor with NaN / infinite values or values its layer cannot use."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int(torch.argmax((~torch.isfinite(tensor)).flatten().to(torch.int8)))
            raise ModelError(
                f"{where}: tensor {name!r} holds {float(tensor.flatten()[bad])} at flat position {bad}; "
                "a model's numbers must all be finite (retrain or re-export it)."
            )
    for i, (spec, shape) in enumerate(zip(the_plan.specs, the_plan.inputs, strict=True)):
        cls = LAYERS[spec["type"]]
        own = {name: state[f"{i}.{name}"] for name in cls.tensors(spec)}
        try:
            cls.check_values(spec, shape, own)
        except ValueError as exc:
            raise ModelError(f"{where}: layer {i} ({spec['type']}): {exc}.") from None


def build(specs: list[dict[str, Any]]) -> nn.Sequential:
    """An ``nn.Sequential`` from layer specs; ``ModelError`` naming an unknown layer type or a bad key."""
    layers = []
    for i, raw in enumerate(specs):
        spec = check_spec(i, raw)
        try:
            layers.append(LAYERS[spec["type"]].from_spec(spec))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model file: layer {i} ({spec['type']}) has a malformed spec {spec!r}: {exc}."
            ) from None
    return nn.Sequential(*layers)


PLAIN: dict[type[nn.Module], type[Layer]] = {
    nn.ReLU: ReLU,
    nn.Sigmoid: Sigmoid,
    nn.Tanh: Tanh,
    nn.Identity: Identity,
}


def as_closed(network: nn.Module) -> nn.Sequential | None:
    """The same network as a flat ``nn.Sequential`` of closed-set layers (nested ``nn.Sequential`` flattened;
    plain ``nn.Linear``, ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.Identity`` replaced by their
    equivalents, weights shared), or None where some module has no equivalent."""
    flat: list[nn.Module] = []

    def walk(module: nn.Module) -> bool:
        if type(module) is nn.Sequential:
            return all(walk(child) for child in module)
        if isinstance(module, Layer):
            flat.append(module)
        elif type(module) is nn.Linear:
            linear = Linear(module.in_features, module.out_features, bias=module.bias is not None)
            linear.weight, linear.bias = module.weight, module.bias
            flat.append(linear)
        elif type(module) in PLAIN:
            flat.append(PLAIN[type(module)]())
        else:
            return False
        return True

    return nn.Sequential(*flat) if walk(network) else None


def specs(network: nn.Module) -> list[dict[str, Any]] | None:
    """The layer specs of a network made only of closed-set layers, else None."""
    modules = list(network) if isinstance(network, nn.Sequential) else [network]
    if not all(isinstance(m, Layer) for m in modules):
        return None
    return [m.spec() for m in modules]  # type: ignore[operator]
