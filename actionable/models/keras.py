"""Keras networks without TensorFlow: a Keras 2 HDF5 file (``.h5``) or a Keras 3 ``.keras`` archive, read as data.

``read_keras`` opens the file with h5py (the ``keras`` extra) and never imports TensorFlow or Keras, never
unpickles and never runs code from the file: the model config is JSON read key by key
(``keras_config.py``), each weight a dataset checked against it (shape, float dtype, finite values, size
caps). The result is an ``nn.Sequential`` of the closed set of layers (``layers.py``, ``layers_keras.py``)
in float64, so it saves as model.json + safetensors like every model here. Layouts read:

* Keras 2 HDF5: attributes ``model_config`` (JSON text) and ``keras_version``; weights in
  ``model_weights/<layer>/<weight name>``, names listed (in order) by the group attribute ``weight_names``.
* Keras 3 ``.keras``: a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``, the weights of
  the model's n-th layer of a class in ``layers/<snake_case(class)>[_n]/vars/0, 1, ...`` in creation order
  (keras/src/saving/saving_lib.py: ``_save_container_state`` and ``H5Entry``). Only those three members
  are read, by name and size-capped; nothing is extracted.

A link inside an HDF5 file (soft or external) and external or virtual datasets are refused, so no read
leaves the file. Every problem is a ``ModelError`` naming the file, the layer and the fix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from actionable.errors import ActionableError, ConfigError, ModelError, shown
from actionable.models import specs as S
from actionable.models.keras_config import INPUT, Fetch, KerasLayer, convert, fail, model_layers

__all__ = [
    "HDF5_SIGNATURE",
    "MAX_CONFIG_BYTES",
    "MAX_FILE_BYTES",
    "MAX_WEIGHTS_BYTES",
    "MEMBERS",
    "KerasNetwork",
    "load_keras",
    "read_keras",
    "snake_case",
]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # at offset 0, or 512, 1024, ... after a user block
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive's end record
MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
MAX_FILE_BYTES = 4 * 2**30  # a model file larger than this is not read (nor hashed)
MAX_CONFIG_BYTES = 64 * 2**20  # model_config / config.json / metadata.json
MAX_WEIGHTS_BYTES = 2 * 2**30  # model.weights.h5 inside a .keras archive (read into memory)
_MAX_NAMES = 100_000  # entries of one names attribute, members of one archive
_UNREADABLE = "It is truncated, corrupt or not a Keras model file: save the model again (model.save)."


@dataclass(frozen=True)
class KerasNetwork:
    """A Keras network as closed-set layers (float64) and what the file says about it.

    ``network`` reads rows of ``input_width`` columns: a row of ``input_shape`` (``(features,)`` or
    ``(steps, channels)``) flattened row-major. ``output`` is the final activation separated from the
    network ("softmax", or "sigmoid" on one unit: the network returns its logits), else "linear".
    ``layers`` names the file's layers as "ClassName name"; ``sha256`` hashes the file's bytes.
    """

    network: nn.Sequential
    input_shape: tuple[int, ...]
    input_width: int
    output: str
    layers: tuple[str, ...]
    keras_version: str
    sha256: str
    source: str


def load_keras(path: str | os.PathLike[str]) -> nn.Sequential:
    """The network of a Keras ``.h5`` / ``.keras`` file (``read_keras(path).network``)."""
    return read_keras(path).network


def read_keras(path: str | os.PathLike[str]) -> KerasNetwork:
    """Read a Keras 2 HDF5 file or a Keras 3 ``.keras`` archive (told apart by their bytes, not the name).

    Sequential models and linear functional models of Dense, Conv1D, MaxPooling1D, BatchNormalization,
    Flatten, Dropout, InputLayer and activation layers are read; anything else is a ``ModelError`` naming
    the layer and the fix.
    """
    file = _file(path)
    where = f"read_keras: {file}"
    head, digest = _digest(file, where)
    h5py = _h5py(where)
    text: bytes | str
    with ExitStack() as stack:
        try:
            if head.startswith(_ZIP_SIGNATURES):
                text, version, h5 = _archive(file, where, h5py, stack)
                layers, shape = model_layers(_json(text, where, "config.json"), where)
                fetch = _keras3_fetch(h5, layers, where, h5py)
            elif any(head[k : k + 8] == HDF5_SIGNATURE for k in (0, 512, 1024, 2048)):
                h5 = stack.enter_context(h5py.File(file, "r"))
                text, version = _model_attrs(h5, where)
                layers, shape = model_layers(_json(text, where, "attribute 'model_config'"), where)
                fetch = _keras2_fetch(_child(h5, "model_weights", where, None, h5py), where, h5py)
            else:
                raise ModelError(
                    f"{where}: is neither an HDF5 file nor a zip archive (it starts {head[:8]!r}). Give a Keras "
                    "model saved with model.save('model.h5') or model.save('model.keras')."
                )
            converted = convert(layers, shape, fetch, where)
        except ActionableError:
            raise
        except (
            OSError,
            KeyError,
            ValueError,
            TypeError,
            RuntimeError,
            EOFError,
            zlib.error,
            zipfile.BadZipFile,
        ) as exc:
            raise ModelError(
                f"{where}: cannot be read ({type(exc).__name__}: {str(exc)[:200]}). {_UNREADABLE}"
            ) from None
        except (MemoryError, RecursionError, NotImplementedError) as exc:
            raise ModelError(f"{where}: cannot be read ({type(exc).__name__}). {_UNREADABLE}") from None
    network = nn.Sequential(*converted.modules).to(torch.float64)
    object.__setattr__(network, "reads_own_columns", True)  # as_model asks for encoding=: its own columns
    width = int(np.prod(converted.input_shape))
    _check_closed(network, width, where)
    return KerasNetwork(
        network=network,
        input_shape=tuple(converted.input_shape),
        input_width=width,
        output=converted.output,
        layers=tuple(layer.label for layer in layers),
        keras_version=version,
        sha256=digest,
        source=file.name,
    )


def _file(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"read_keras: path must be a file path; got a {type(path).__name__}.")
    file = Path(path)
    if file.is_dir():
        raise ModelError(
            f"read_keras: {file} is a folder. A TensorFlow SavedModel folder is not read: save the model as "
            "one file with model.save('model.h5') or model.save('model.keras')."
        )
    if not file.is_file():
        raise ModelError(f"read_keras: {file} not found; give the path of a Keras .h5 or .keras file.")
    return file


def _digest(file: Path, where: str) -> tuple[bytes, str]:
    """The file's first 4 KiB (to tell the format) and the SHA-256 of all its bytes."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelError(
                f"{where}: is {size:,} bytes, more than the {MAX_FILE_BYTES:,} a model file may be."
            )
        sha = hashlib.sha256()
        with file.open("rb") as handle:
            head = handle.read(4096)
            sha.update(head)
            for block in iter(lambda: handle.read(2**20), b""):
                sha.update(block)
    except OSError as exc:
        raise ModelError(f"{where}: cannot be read ({exc}).") from None
    return head, sha.hexdigest()


def _h5py(where: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise ModelError(
            f"{where}: reading Keras files needs h5py: pip install 'actionable[keras]' (or pip install h5py)."
        ) from None
    return h5py


def _json(blob: bytes | str, where: str, what: str) -> Any:
    try:
        text = blob.decode("utf-8") if isinstance(blob, bytes) else blob
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise ModelError(f"{where}: {what} is not UTF-8 text ({exc}). {_UNREADABLE}") from None
    except ValueError as exc:
        raise ModelError(f"{where}: {what} is not valid JSON ({str(exc)[:200]}). {_UNREADABLE}") from None
    except RecursionError:
        raise ModelError(
            f"{where}: {what} is nested too deeply to be a Keras config. {_UNREADABLE}"
        ) from None


def _text(value: Any) -> str:
    """An HDF5 string attribute (bytes, str or a numpy scalar of either) as text."""
    value = value.item() if isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0 else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _attr(node: Any, name: str, where: str, cap: int = MAX_CONFIG_BYTES) -> Any:
    """An attribute's value, its stored size checked first (None where it is absent)."""
    if name not in node.attrs:
        return None
    size = node.attrs.get_id(name).get_storage_size()
    if size > cap:
        raise ModelError(f"{where}: attribute {name!r} of {node.name} is {size:,} bytes, more than {cap:,}.")
    return node.attrs[name]


def _names(node: Any, name: str, where: str) -> list[str]:
    """A list-of-names attribute as Keras writes it: ``name``, or chunks ``name0``, ``name1``, ... when long."""
    chunks = [_attr(node, name, where)] if name in node.attrs else []
    while not chunks and f"{name}{len(chunks)}" in node.attrs and len(chunks) < 1000:
        chunks.append(_attr(node, f"{name}{len(chunks)}", where))
    values = [v for chunk in chunks for v in np.asarray(chunk).reshape(-1)]
    if len(values) > _MAX_NAMES:
        raise ModelError(f"{where}: attribute {name!r} of {node.name} lists {len(values):,} names.")
    return [_text(v) for v in values if not isinstance(v, float | np.floating)]


def _model_attrs(h5: Any, where: str) -> tuple[bytes | str, str]:
    """A Keras 2 file's ``model_config`` (JSON text) and ``keras_version``."""
    text = _attr(h5, "model_config", where)
    if text is None:
        raise ModelError(
            f"{where}: holds no 'model_config' attribute: it holds weights only (model.save_weights), or is "
            "not a Keras file. Save the whole model with model.save('model.h5')."
        )
    text = text.item() if isinstance(text, np.ndarray) and text.ndim == 0 else text
    if isinstance(text, bytes | str) and len(text) > MAX_CONFIG_BYTES:  # a variable-length string's true size
        raise ModelError(f"{where}: attribute 'model_config' is larger than {MAX_CONFIG_BYTES:,} bytes.")
    if not isinstance(text, bytes | str):
        raise ModelError(
            f"{where}: attribute 'model_config' is not text ({type(text).__name__}). {_UNREADABLE}"
        )
    version = _attr(h5, "keras_version", where, 4096)
    return text, _text(version)[:80] if version is not None else "unknown"


def _child(node: Any, path: str, where: str, layer: KerasLayer | None, h5py: Any) -> Any:
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
    data = _child(node, path, where, layer, h5py)
    if not isinstance(data, h5py.Dataset):
        raise fail(where, layer, f"{shown(path)} is not a dataset", "Re-save the model from Keras.")
    if data.external or data.is_virtual:
        problem = f"{shown(path)} keeps its values in other files (an external or virtual dataset)"
        raise fail(where, layer, problem, "A model file must hold its own weights: re-save it from Keras.")
    return data


def _keras2_fetch(weights: Any, where: str, h5py: Any) -> Fetch:
    """Weights of a Keras 2 file: ``model_weights/<layer>/<name>`` for each name in ``weight_names``."""

    def fetch(layer: KerasLayer, roles: tuple[str, ...]) -> dict[str, Any]:
        group = _child(weights, layer.name, where, layer, h5py)
        names = _names(group, "weight_names", where)
        found: dict[str, str] = {}
        for name in names:  # "dense_1/kernel:0" -> kernel
            found.setdefault(name.rsplit("/", 1)[-1].split(":", 1)[0], name)
        missing = [r for r in roles if r not in found]
        if missing or len(found) != len(roles) or len(names) != len(roles):
            problem = f"its weight_names are {shown(names, 160)}; its config needs {list(roles)}"
            raise fail(where, layer, problem, "The file is incomplete or not saved by Keras: re-save it.")
        return {role: _dataset(group, found[role], where, layer, h5py) for role in roles}

    return fetch


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: a class name as the name a .keras weights file files its layers under."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_fetch(h5: Any, layers: list[KerasLayer], where: str, h5py: Any) -> Fetch:
    """Weights of a .keras archive: ``layers/<snake_case(class)>[_n]/vars/<i>`` in the layer's creation order."""
    paths: dict[int, str] = {}
    used: dict[str, int] = {}
    for layer in layers:
        if layer.kind != INPUT:
            base = snake_case(layer.kind)
            used[base] = used.get(base, -1) + 1
            paths[layer.index] = f"{base}_{used[base]}" if used[base] else base
    root = (
        "_layer_checkpoint_dependencies" if "layers" not in h5 else "layers"
    )  # Keras 2.13-2.15 used the first

    def fetch(layer: KerasLayer, roles: tuple[str, ...]) -> dict[str, Any]:
        path = f"{root}/{paths[layer.index]}/vars"
        group = _child(h5, path, where, layer, h5py)
        count = len(group)
        if count != len(roles) or sorted(group.keys()) != sorted(str(i) for i in range(count)):
            problem = f"{path} holds {count} variables; its config needs {len(roles)} ({', '.join(roles)})"
            raise fail(where, layer, problem, "The file is incomplete or not saved by Keras: re-save it.")
        return {role: _dataset(group, str(i), where, layer, h5py) for i, role in enumerate(roles)}

    return fetch


def _archive(file: Path, where: str, h5py: Any, stack: ExitStack) -> tuple[bytes, str, Any]:
    """config.json, the Keras version and the opened model.weights.h5 of a .keras zip (nothing else is read)."""
    archive = stack.enter_context(zipfile.ZipFile(file))
    names = archive.namelist()
    if len(names) > _MAX_NAMES:
        raise ModelError(f"{where}: is a zip of {len(names):,} members; a .keras archive holds a few.")
    missing = [m for m in MEMBERS if m not in names]
    if missing:
        raise ModelError(
            f"{where}: is a zip archive but not a .keras model: it lacks {missing} (a .keras archive holds "
            f"{list(MEMBERS)}; members found: {shown(names[:6], 200)}). Save the model with model.save('model.keras')."
        )
    twice = [m for m in MEMBERS if names.count(m) > 1]
    if twice:
        raise ModelError(f"{where}: holds {twice[0]!r} more than once; which one is the model is ambiguous.")
    config = _member(archive, "config.json", MAX_CONFIG_BYTES, where)
    metadata = _json(_member(archive, "metadata.json", MAX_CONFIG_BYTES, where), where, "metadata.json")
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    blob = _member(archive, "model.weights.h5", MAX_WEIGHTS_BYTES, where)
    if not blob.startswith(HDF5_SIGNATURE):
        raise ModelError(f"{where}: its model.weights.h5 is not an HDF5 file. {_UNREADABLE}")
    h5 = stack.enter_context(h5py.File(io.BytesIO(blob), "r"))
    return config, str(version)[:80] if isinstance(version, str) else "unknown", h5


def _member(archive: zipfile.ZipFile, name: str, cap: int, where: str) -> bytes:
    """One member's bytes, at most ``cap`` of them whatever its header claims (a zip bomb stops at the cap)."""
    info = archive.getinfo(name)
    too_big = f"{where}: its {name} is larger than {cap:,} bytes; that is not a Keras model's."
    if info.file_size > cap:
        raise ModelError(too_big)
    with archive.open(info) as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ModelError(too_big)
    return data


def _check_closed(network: nn.Sequential, width: int, where: str) -> None:
    """The converted network checked as a model file would be (shapes chain, sizes, values): it saves."""
    specs = S.specs(network)
    if specs is None:  # every converted layer is a closed-set one
        raise ModelError(f"{where}: the converted network holds a layer outside the closed set.")
    plan = S.plan(specs, width, where)
    S.check_values(plan, {k: v.detach() for k, v in network.state_dict().items()}, where)
