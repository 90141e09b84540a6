"""Keras networks without TensorFlow: a Keras 2 HDF5 file (``.h5``) or a Keras 3 ``.keras`` archive, read as data.

``read_keras`` opens the file with h5py (the ``keras`` extra) and never imports TensorFlow or Keras, never
unpickles and never runs code from the file: the model config is JSON read key by key
(``keras_config.py``, ``keras_convert.py``), each weight a dataset checked against it (shape, float dtype,
finite values, size caps). The result is an ``nn.Sequential`` of the closed set of layers (``layers.py``, ``layers_keras.py``)
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
from actionable.models.keras_config import model_layers
from actionable.models.keras_convert import KINDS, convert
from actionable.models.keras_weights import attr, child, keras2_fetch, keras3_fetch, snake_case, text

__all__ = [
    "HDF5_SIGNATURE",
    "MAX_CONFIG_BYTES",
    "MAX_FILE_BYTES",
    "MAX_MEMBERS",
    "MAX_RATIO",
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
MAX_MEMBERS = 1000  # members of one .keras archive (Keras writes three, and assets)
MAX_RATIO = 1000  # a member inflating over this many times its compressed size is a zip bomb
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
    head, digest, offsets = _digest(file, where)
    h5py = _h5py(where)
    text: bytes | str
    with ExitStack() as stack:
        try:
            if head.startswith(_ZIP_SIGNATURES):
                text, version, h5 = _archive(file, where, h5py, stack)
                layers, shape = model_layers(_json(text, where, "config.json"), where)
                fetch = keras3_fetch(h5, layers, KINDS, where, h5py)
            elif offsets:
                h5 = stack.enter_context(h5py.File(file, "r"))
                text, version = _model_attrs(h5, where)
                layers, shape = model_layers(_json(text, where, "attribute 'model_config'"), where)
                fetch = keras2_fetch(
                    child(h5, "model_weights", where, None, h5py), layers, KINDS, where, h5py
                )
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
    if file.exists() and not file.is_file():
        raise ModelError(
            f"read_keras: {file} is not a regular file (a FIFO, socket or device); give a Keras .h5 or .keras file."
        )
    if not file.is_file():
        raise ModelError(f"read_keras: {file} not found; give the path of a Keras .h5 or .keras file.")
    return file


def _digest(file: Path, where: str) -> tuple[bytes, str, list[int]]:
    """The file's first 4 KiB (to tell the format), the SHA-256 of all its bytes and the offsets at which it
    holds the HDF5 signature: 0, 512, 1024, 2048, ... (HDF5 looks there for the superblock after a user block)."""
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
            offsets = []
            for offset in [0, *(2**k for k in range(9, 64) if 2**k < size)]:
                handle.seek(offset)
                if handle.read(8) == HDF5_SIGNATURE:
                    offsets.append(offset)
    except OSError as exc:
        raise ModelError(f"{where}: cannot be read ({exc}).") from None
    return head, sha.hexdigest(), offsets


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


def _model_attrs(h5: Any, where: str) -> tuple[bytes | str, str]:
    """A Keras 2 file's ``model_config`` (JSON text) and ``keras_version``."""
    config = attr(h5, "model_config", where, MAX_CONFIG_BYTES)
    if config is None:
        raise ModelError(
            f"{where}: holds no 'model_config' attribute: it holds weights only (model.save_weights), or is "
            "not a Keras file. Save the whole model with model.save('model.h5')."
        )
    config = config.item() if isinstance(config, np.ndarray) and config.ndim == 0 else config
    if (
        isinstance(config, bytes | str) and len(config) > MAX_CONFIG_BYTES
    ):  # a variable-length string's true size
        raise ModelError(f"{where}: attribute 'model_config' is larger than {MAX_CONFIG_BYTES:,} bytes.")
    if not isinstance(config, bytes | str):
        raise ModelError(
            f"{where}: attribute 'model_config' is not text ({type(config).__name__}). {_UNREADABLE}"
        )
    version = attr(h5, "keras_version", where, 4096)
    return config, text(version)[:80] if version is not None else "unknown"


def _archive(file: Path, where: str, h5py: Any, stack: ExitStack) -> tuple[bytes, str, Any]:
    """config.json, the Keras version and the opened model.weights.h5 of a .keras zip (nothing else is read)."""
    count = _zip_count(file)
    if count > MAX_MEMBERS:  # before zipfile reads a directory of that many entries into memory
        raise ModelError(f"{where}: is a zip of {count:,} members; a .keras archive holds a few.")
    archive = stack.enter_context(zipfile.ZipFile(file))
    names = archive.namelist()
    if len(names) > MAX_MEMBERS:
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
    """One member's bytes: its declared size and compression ratio checked before inflating, and at most
    ``min(cap, declared size)`` of them read whatever the stream holds (a zip bomb stops there)."""
    info = archive.getinfo(name)
    too_big = f"{where}: its {name} is larger than {cap:,} bytes; that is not a Keras model's."
    if info.file_size > cap:
        raise ModelError(too_big)
    if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise ModelError(
            f"{where}: its {name} inflates {info.compress_size:,} bytes to {info.file_size:,} (over "
            f"{MAX_RATIO} times): a zip bomb, not a Keras model. Save the model again."
        )
    with archive.open(info) as handle:
        data = handle.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise ModelError(f"{where}: its {name} holds more bytes than its header says. {_UNREADABLE}")
    return data


def _zip_count(file: Path) -> int:
    """The member count of a zip's end-of-central-directory record (zip64's where present), read before
    ``zipfile`` parses the directory; 0 where no record is found (zipfile then refuses the file)."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        handle.seek(max(size - (22 + 65_535 + 20), 0))
        tail = handle.read()
        at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return 0
        count = int.from_bytes(tail[at + 10 : at + 12], "little")
        if at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":  # the zip64 locator
            handle.seek(int.from_bytes(tail[at - 12 : at - 4], "little"))
            record = handle.read(56)
            if record[:4] == b"PK\x06\x06":
                count = max(count, int.from_bytes(record[32:40], "little"))
    return count


def _check_closed(network: nn.Sequential, width: int, where: str) -> None:
    """The converted network checked as a model file would be (shapes chain, sizes, values): it saves."""
    specs = S.specs(network)
    if specs is None:  # every converted layer is a closed-set one
        raise ModelError(f"{where}: the converted network holds a layer outside the closed set.")
    plan = S.plan(specs, width, where)
    S.check_values(plan, {k: v.detach() for k, v in network.state_dict().items()}, where)
