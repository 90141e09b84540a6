"""The weights of a Keras file, read from HDF5 as Keras's own loaders read them (by order, never reordered).

* Keras 2 (``model_weights``, keras/src/legacy/saving/legacy_h5_format.py ``load_weights_from_hdf5_group``):
  the k-th group of ``layer_names`` that holds weights fills the k-th layer of the config that has weights,
  its datasets in ``weight_names`` order. Keras never matches names, so a file whose weighted groups are
  not the config's weighted layers in order, or whose ``weight_names`` are not in the layer's role order
  (Dense: kernel, bias; BatchNormalization: gamma, beta, moving_mean, moving_variance), would load other
  numbers than it names: it is refused, never silently reordered.
* Keras 3 (``model.weights.h5``): ``layers/<snake_case(class)>[_n]/vars/<i>`` in creation order; a group
  holding variables that no layer of the config claims is refused.

Only hard links are followed; external and virtual datasets, and datasets with no stored values (which
would read as their fill value, however large), are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from actionable.errors import ModelError, shown
from actionable.models.layers import Shape

__all__ = [
    "INPUT",
    "MAX_NAMES",
    "Fetch",
    "KerasLayer",
    "attr",
    "child",
    "fail",
    "keras2_fetch",
    "keras3_fetch",
    "names",
    "snake_case",
    "text",
    "values",
    "weighted",
]

INPUT = "InputLayer"
MAX_NAMES = 100_000  # entries of one names attribute, groups of one weights file
_NAMES_BYTES = 64 * 2**20  # all chunks of one names attribute
_WEIGHTED = ("Dense", "Conv1D", "BatchNormalization", "Normalization")
_RESAVE = "The file is incomplete or not saved by Keras: re-save it (model.save)."


@dataclass(frozen=True)
class KerasLayer:
    """One layer of the config: its position, class, name and (unparsed) config table."""

    index: int
    kind: str
    name: str
    config: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


Fetch = Callable[[KerasLayer, tuple[str, ...]], dict[str, Any]]  # role -> dataset (shape, dtype, [()])


def fail(where: str, layer: KerasLayer | None, problem: str, fix: str = "") -> ModelError:
    """The ``ModelError`` for a problem at ``layer`` (or the model) of the file ``where`` names."""
    at = f"layer {layer.index} ({layer.kind} {shown(layer.name, 60)})" if layer else "model config"
    return ModelError(f"{where}: {at}: {problem}." + (f" {fix}" if fix else ""))


def values(data: Any, role: str, shape: Shape, refuse: Callable[[str, str], ModelError]) -> torch.Tensor:
    """A weight dataset as float64, checked first: the shape its config implies, a float dtype, finite."""
    got = tuple(int(d) for d in data.shape)
    if got != shape:
        fix = "The config and the weights disagree: re-save the model from Keras."
        raise refuse(f"weight {role!r} has shape {got}; its config needs {shape}", fix)
    if data.dtype.kind != "f":
        raise refuse(f"weight {role!r} holds {data.dtype} values, not floats", _RESAVE)
    array = np.asarray(data[()], dtype=np.float64).reshape(shape)
    bad = ~np.isfinite(array).reshape(-1)
    if bad.any():
        j = int(np.argmax(bad))
        fix = "A model's numbers must all be finite: retrain or re-export it."
        raise refuse(f"weight {role!r} holds {array.reshape(-1)[j]} at flat position {j}", fix)
    return torch.from_numpy(array.copy())


def weighted(layer: KerasLayer) -> bool:
    """Whether Keras gives this config layer weights (a Normalization given its mean in the config has none)."""
    if layer.kind == "Normalization":
        return layer.config.get("mean") is None
    return layer.kind in _WEIGHTED


def text(value: Any) -> str:
    """An HDF5 string attribute (bytes, str or a numpy scalar of either) as text."""
    value = value.item() if isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0 else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def attr(node: Any, name: str, where: str, cap: int) -> Any:
    """An attribute's value, its stored size checked first (None where it is absent)."""
    if name not in node.attrs:
        return None
    size = _stored(node, name)
    if size > cap:
        raise ModelError(f"{where}: attribute {name!r} of {node.name} is {size:,} bytes, more than {cap:,}.")
    return node.attrs[name]


def _stored(node: Any, name: str) -> int:
    """The bytes an attribute stores (HDF5 reports an empty one, such as ``np.array([])``, as an error)."""
    try:
        return int(node.attrs.get_id(name).get_storage_size())
    except RuntimeError:
        return 0


def names(node: Any, name: str, where: str) -> list[str]:
    """A list-of-names attribute as Keras writes it: ``name``, or, past 64 KB, chunks ``name0``, ``name1``, ...
    (``save_attributes_to_hdf5_group``), all of them read in order."""
    keys = [name] if name in node.attrs else []
    while name not in node.attrs and f"{name}{len(keys)}" in node.attrs and len(keys) < 10_000:
        keys.append(f"{name}{len(keys)}")
    total = sum(_stored(node, key) for key in keys)
    if total > _NAMES_BYTES:
        raise ModelError(
            f"{where}: attribute {name!r} of {node.name} is {total:,} bytes, more than {_NAMES_BYTES:,}."
        )
    chunks = [node.attrs[key] for key in keys]
    values = [v for chunk in chunks for v in np.asarray(chunk).reshape(-1)]
    if len(values) > MAX_NAMES:
        raise ModelError(f"{where}: attribute {name!r} of {node.name} lists {len(values):,} names.")
    return [text(v) for v in values if not isinstance(v, float | np.floating)]


def child(node: Any, path: str, where: str, layer: KerasLayer | None, h5py: Any) -> Any:
    """``node[path]`` through hard links only: a soft or external link (which could lead out of the file)
    is refused, as is a missing member."""
    for part in path.split("/"):
        link = node.get(part, getlink=True) if part not in ("", ".", "..") else None
        if link is None:
            raise fail(
                where, layer, f"the file holds no {shown(path)} (in {node.name})", "Re-save it from Keras."
            )
        if not isinstance(link, h5py.HardLink):
            problem = f"{shown(path)} is a link ({type(link).__name__}), which could lead out of the file"
            raise fail(
                where, layer, problem, "A model file must hold its own weights: re-save it from Keras."
            )
        node = node[part]
    return node


def _dataset(node: Any, path: str, where: str, layer: KerasLayer, h5py: Any) -> Any:
    data = child(node, path, where, layer, h5py)
    if not isinstance(data, h5py.Dataset):
        raise fail(where, layer, f"{shown(path)} is not a dataset", "Re-save the model from Keras.")
    if data.external or data.is_virtual:
        problem = f"{shown(path)} keeps its values in other files (an external or virtual dataset)"
        raise fail(where, layer, problem, "A model file must hold its own weights: re-save it from Keras.")
    if data.size and data.shape:
        chunks = data.chunks
        stored = data.id.get_storage_size() > 0
        if stored and chunks is not None:
            whole = math.prod(-(-int(n) // int(c)) for n, c in zip(data.shape, chunks, strict=True))
            stored = data.id.get_num_chunks() >= whole
        if not stored:
            problem = (
                f"{shown(path)} of shape {data.shape} has no stored values (all or part of it is unwritten)"
            )
            raise fail(where, layer, problem, "Keras writes every weight: re-save the model from Keras.")
    return data


def _roles(weight_names: list[str]) -> list[str]:
    return [n.rsplit("/", 1)[-1].split(":", 1)[0] for n in weight_names]  # "dense_1/kernel:0" -> kernel


def _check_order(
    weights: Any, layers: list[KerasLayer], kinds: frozenset[str], where: str, h5py: Any
) -> dict[str, list[str]]:
    """The ``weight_names`` of each weighted group, its groups checked to be the config's weighted layers in
    order (as Keras 2 loads them)."""
    groups: dict[str, list[str]] = {}
    by_name = {layer.name: layer for layer in layers}
    if "layer_names" not in weights.attrs and "layer_names0" not in weights.attrs:
        problem = (
            "model_weights holds no 'layer_names' attribute, which lists the layers Keras loads weights into"
        )
        raise fail(where, None, problem, _RESAVE)
    for name in names(weights, "layer_names", where):
        listed = names(child(weights, name, where, by_name.get(name), h5py), "weight_names", where)
        if listed:
            groups[name] = listed
    want = [layer.name for layer in layers if weighted(layer)]
    if list(groups) == want or any(layer.kind not in kinds for layer in layers):  # unknown: refused later
        return groups
    for k, name in enumerate(groups):
        layer = by_name.get(name)
        if layer is not None and not weighted(layer):
            problem = (
                f"the file holds weights for it ({shown(groups[name], 120)}), but a {layer.kind} has none"
            )
            raise fail(where, layer, problem, _RESAVE)
        if layer is None:
            problem = f"the file holds weights for a layer {shown(name)} that the config lacks"
            raise fail(where, None, problem, _RESAVE)
        if k >= len(want) or want[k] != name:
            break
    problem = (
        f"the weighted layers of the file's layer_names are {shown(list(groups), 200)}, of the config "
        f"{shown(want, 200)}; Keras loads weights by this order, so they would land in other layers than named"
    )
    raise fail(where, None, problem, _RESAVE)


def keras2_fetch(
    weights: Any, layers: list[KerasLayer], kinds: frozenset[str], where: str, h5py: Any
) -> Fetch:
    """Weights of a Keras 2 file: ``model_weights/<layer>/<name>`` for each name in ``weight_names``, the
    groups and names in the order Keras loads them."""
    groups = _check_order(weights, layers, kinds, where, h5py)

    def fetch(layer: KerasLayer, roles: tuple[str, ...]) -> dict[str, Any]:
        listed = groups.get(layer.name, [])
        if _roles(listed) != list(roles):
            problem = f"its weight_names are {shown(listed, 160)}; Keras loads them in order as {list(roles)}"
            raise fail(where, layer, problem, _RESAVE)
        group = child(weights, layer.name, where, layer, h5py)
        return {
            role: _dataset(group, name, where, layer, h5py) for role, name in zip(roles, listed, strict=True)
        }

    return fetch


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: a class name as the name a .keras weights file files its layers under."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_fetch(h5: Any, layers: list[KerasLayer], kinds: frozenset[str], where: str, h5py: Any) -> Fetch:
    """Weights of a .keras archive: ``layers/<snake_case(class)>[_n]/vars/<i>`` in the layer's creation order."""
    paths: dict[int, str] = {}
    used: dict[str, int] = {}
    for layer in layers:
        if layer.kind != INPUT:
            base = snake_case(layer.kind)
            used[base] = used.get(base, -1) + 1
            paths[layer.index] = f"{base}_{used[base]}" if used[base] else base
    root = "_layer_checkpoint_dependencies" if "layers" not in h5 else "layers"  # Keras 2.13-2.15: the first
    if root in h5 and all(layer.kind in kinds for layer in layers):
        _check_claimed(child(h5, root, where, None, h5py), layers, paths, where, h5py)

    def fetch(layer: KerasLayer, roles: tuple[str, ...]) -> dict[str, Any]:
        path = f"{root}/{paths[layer.index]}/vars"
        group = child(h5, path, where, layer, h5py)
        count = len(group)
        if count != len(roles) or sorted(group.keys()) != sorted(str(i) for i in range(count)):
            problem = f"{path} holds {count} variables; its config needs {len(roles)} ({', '.join(roles)})"
            raise fail(where, layer, problem, _RESAVE)
        return {role: _dataset(group, str(i), where, layer, h5py) for i, role in enumerate(roles)}

    return fetch


def _check_claimed(root: Any, layers: list[KerasLayer], paths: dict[int, str], where: str, h5py: Any) -> None:
    """Every group of ``root`` holding variables belongs to a weighted layer of the config."""
    if len(root) > MAX_NAMES:
        raise fail(where, None, f"{root.name} holds {len(root):,} groups", _RESAVE)
    owner = {paths[layer.index]: layer for layer in layers if layer.index in paths}
    for key in root:
        link = root.get(key, getlink=True)
        node = root[key] if isinstance(link, h5py.HardLink) else None
        held = node.get("vars", getlink=True) if isinstance(node, h5py.Group) else None
        count = len(node["vars"]) if isinstance(held, h5py.HardLink) and node is not None else 0
        layer = owner.get(key)
        if count and layer is None:
            raise fail(
                where,
                None,
                f"the file holds weights ({root.name}/{key}) for a layer the config lacks",
                _RESAVE,
            )
        if count and layer is not None and not weighted(layer):
            raise fail(
                where,
                layer,
                f"the file holds {count} variable(s) for it, but a {layer.kind} has none",
                _RESAVE,
            )
