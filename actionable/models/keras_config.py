"""A Keras model config (JSON, already parsed) as a list of layers: Sequential or a linear functional
``Model`` / ``Functional``, in Keras 2's and Keras 3's spellings.

``model_layers`` reads the structure (refusing branches, merges, several inputs, nested models and custom
layers) and the input shape the file records; ``keras_convert.convert`` turns the layers into modules. The
config is data, read key by key: nothing from the file is run.
"""

from __future__ import annotations

import math
from typing import Any

from actionable.errors import shown
from actionable.models.keras_weights import INPUT, KerasLayer, fail
from actionable.models.layers import MAX_DIM, Shape

__all__ = ["FIXED", "FUNCTIONAL", "SEQUENTIAL", "keras_module", "model_layers"]

MAX_LAYERS = 10_000  # layers in one model config
FIXED = "Save a model built on a fixed input shape."
SEQUENTIAL = ("Sequential",)
FUNCTIONAL = ("Model", "Functional")
_LINEAR_ONLY = (
    "Only linear stacks are supported: each layer's single input is the layer before it (no branches, merges, "
    "shared layers or several inputs / outputs). Rebuild the network as a keras.Sequential and save it again."
)


def model_layers(config: Any, where: str) -> tuple[list[KerasLayer], Shape | None]:
    """The layers of a Sequential or linear functional model, in order, and the input shape it records."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise fail(where, None, f"is {shown(config)}; a Keras model config is a table with 'class_name'")
    _check_module(config, where, None)
    kind, body = config["class_name"], config.get("config")
    if kind not in (*SEQUENTIAL, *FUNCTIONAL):
        raise fail(where, None, f"the model is a {shown(kind)}", "Only Sequential and Model files are read.")
    raw = body.get("layers") if isinstance(body, dict) else body if kind in SEQUENTIAL else None
    if not isinstance(raw, list) or not raw:
        raise fail(where, None, f"the {kind} config holds no list of layers (got {shown(raw)})")
    if len(raw) > MAX_LAYERS:
        raise fail(where, None, f"it lists {len(raw):,} layers, more than the {MAX_LAYERS:,} allowed")
    layers, table = (
        [_layer(i, entry, where) for i, entry in enumerate(raw)],
        body if isinstance(body, dict) else {},
    )
    if kind in FUNCTIONAL:
        _check_linear(layers, raw, table, where)
    for layer in layers[1:]:
        if layer.kind == INPUT:
            raise fail(where, layer, "an InputLayer after the first layer", _LINEAR_ONLY)
    return layers, _recorded_shape(layers, table, where)


def _check_module(entry: dict[str, Any], where: str, layer: KerasLayer | None) -> None:
    """Keras 3 names each object's module: anything outside ``keras`` is a custom class, whatever its name."""
    module, registered = entry.get("module"), entry.get("registered_name")
    if not keras_module(module) or (registered is not None and registered != entry.get("class_name")):
        problem = f"a custom class (module {shown(module)}, registered as {shown(registered)})"
        raise fail(where, layer, problem, "Custom classes are code: only Keras's own layers are read.")


def keras_module(module: Any) -> bool:
    """Whether a Keras 3 ``module`` entry (absent in Keras 2) names Keras itself: ``keras`` or ``keras.*``."""
    return module is None or (isinstance(module, str) and module.split(".")[0] == "keras")


def _layer(i: int, entry: Any, where: str) -> KerasLayer:
    config = entry.get("config") if isinstance(entry, dict) else None
    if not isinstance(config, dict) or not isinstance(entry.get("class_name"), str):
        raise fail(
            where, None, f"layer {i} is {shown(entry)}; a layer is a table of 'class_name' and 'config'"
        )
    name = config.get("name", entry.get("name"))
    layer = KerasLayer(i, entry["class_name"][:200], name[:200] if isinstance(name, str) else f"#{i}", config)
    _check_module(entry, where, layer)
    build = entry.get("build_config")
    if isinstance(build, dict) and "input_shape" in build and "build_input_shape" not in config:
        layer.config["build_input_shape"] = build["input_shape"]
    return layer


def _check_linear(layers: list[KerasLayer], raw: list[Any], body: dict[str, Any], where: str) -> None:
    """A functional model whose layers form one chain: input, then each layer fed by the one before."""
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise fail(where, None, f"two layers are named {shown(twice)}", _LINEAR_ONLY)
    ins, outs = _endpoints(body.get("input_layers")), _endpoints(body.get("output_layers"))
    if layers[0].kind != INPUT or ins != [names[0]] or outs != [names[-1]]:
        raise fail(where, None, f"the model has inputs {shown(ins)} and outputs {shown(outs)}", _LINEAR_ONLY)
    for layer, entry in zip(layers[1:], raw[1:], strict=True):
        nodes = entry.get("inbound_nodes")
        sources = _sources(nodes[0]) if isinstance(nodes, list) and len(nodes) == 1 else None
        if sources != [names[layer.index - 1]]:
            raise fail(where, layer, f"it reads {shown(sources)}", _LINEAR_ONLY)


def _endpoints(value: Any) -> list[str] | None:
    """Layer names of ``input_layers`` / ``output_layers``: ``[[name, 0, 0], ...]`` or Keras 3's ``[name, 0, 0]``."""
    if not isinstance(value, list):
        return None
    if value and isinstance(value[0], str):
        value = [value]
    out = [v[0] for v in value if isinstance(v, list) and v and isinstance(v[0], str)]
    return out if len(out) == len(value) else None


def _sources(node: Any) -> list[str] | None:
    """The layer names one inbound node reads: Keras 2's ``[[name, 0, 0, {}], ...]`` or Keras 3's
    ``{"args": [...], "kwargs": {...}}`` with ``__keras_tensor__`` entries (found at any depth)."""
    if isinstance(node, list):  # Keras 2
        out = [e[0] for e in node if isinstance(e, list) and e and isinstance(e[0], str)]
        kwargs = [e[3] for e in node if isinstance(e, list) and len(e) > 3 and e[3]]
        return out if len(out) == len(node) and not any(_tensors(k) for k in kwargs) else None
    if isinstance(node, dict):  # Keras 3
        return _tensors(node.get("args", [])) + _tensors(node.get("kwargs", {}))
    return None


def _tensors(value: Any, depth: int = 0) -> list[str]:
    """Names of the layers whose outputs ``value`` holds (Keras 3 tensor references), bounded in depth."""
    if depth > 32:
        return ["<nested too deeply>"]
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            config = value.get("config")
            history = config.get("keras_history") if isinstance(config, dict) else None
            return [
                history[0] if isinstance(history, list) and history and isinstance(history[0], str) else "?"
            ]
        return [n for v in value.values() for n in _tensors(v, depth + 1)]
    if isinstance(value, list):
        return [n for v in value for n in _tensors(v, depth + 1)]
    return []


def _recorded_shape(layers: list[KerasLayer], body: dict[str, Any], where: str) -> Shape | None:
    """The per-row input shape the config records (InputLayer, the first layer, or the model's build shape)."""
    first = layers[0].config
    candidates = [first.get(k) for k in ("batch_shape", "batch_input_shape", "build_input_shape")]
    candidates.append(body.get("build_input_shape"))
    found = next((c for c in candidates if c is not None), None)
    if found is None:
        return None
    dims = found[1:] if isinstance(found, list) and len(found) in (2, 3) else None
    if dims is None:
        fix = "Only flat rows (batch, features) and 1-D sequences (batch, steps, channels) are read."
        raise fail(where, layers[0], f"the recorded input shape is {shown(found)}", fix)
    if not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DIM for d in dims):
        problem = (
            f"the recorded input shape {shown(found)} needs sizes in [1, {MAX_DIM:,}] (no variable length)"
        )
        raise fail(where, layers[0], problem, FIXED)
    if math.prod(dims) > MAX_DIM:
        raise fail(where, layers[0], f"the input shape {tuple(dims)} holds over {MAX_DIM:,} values a row")
    return tuple(dims)
