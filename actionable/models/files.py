"""Model files: ``save_model`` / ``load_model`` as safetensors + JSON, checked as data before anything is built.

``model.json`` follows a declared structure (``META``) checked key by key; ``model.safetensors`` is checked
tensor by tensor against the planned layers (``specs.py``); no file may lie outside the model folder. Never
pickle: a ``torch.export`` program (what ``save_model`` writes for networks outside the closed set) loads
only with the explicit ``unsafe_allow_program=True``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from actionable.errors import ConfigError, ModelError, SpecError
from actionable.models import specs as S
from actionable.models.core import TorchModel
from actionable.schema import Schema

__all__ = ["DTYPES", "FORMAT", "MAX_META_BYTES", "META", "PROGRAM_REFUSED", "load_model", "save_model"]

FORMAT = "actionable.model/1"
MAX_META_BYTES = 64 * 2**20  # a model.json this large is not a model file
DTYPES = {"float32": torch.float32, "float64": torch.float64}
_STORED = {torch.float32: "F32", torch.float64: "F64"}  # safetensors' names of the dtypes
# model.json, declared: key -> (the JSON type it holds, required). Values are checked in _check_meta.
META: dict[str, tuple[type, bool]] = {
    "format": (str, True),
    "task": (str, True),
    "schema": (str, True),
    "schema_hash": (str, False),
    "dtype": (str, False),
    "classes": (list, False),
    "outputs": (list, False),
    "provenance": (dict, False),
    "layers": (list, False),
    "program": (str, False),
}
_JSON: dict[type, str] = {str: "a string", list: "a list", dict: "a table"}
PROGRAM_REFUSED = (
    "it holds no 'layers'. Model files load only as data: the closed set of layers (model.json + "
    "model.safetensors). A torch.export program (.pt2) is not data: torch unpickles parts of it, so loading "
    "one can run code hidden in the file. Rebuild the network from actionable.models.layers (or convert it with "
    "as_model) and save it again, or keep the torch module in Python and wrap it with as_model(module, "
    "schema). Only for a file you made yourself, from Python: load_model(path, unsafe_allow_program=True)"
)


def save_model(model: TorchModel, path: str | Path) -> Path:
    """Write ``model.json`` + ``model.safetensors`` into ``path``: data only, so loading it runs no code.

    A plain ``nn.Sequential`` (nested or not) of ``nn.Linear``, ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``,
    ``nn.Identity`` and ``actionable.models.layers`` is written as data too. Any other network is written as a
    ``torch.export`` program (``model.pt2``)
    instead; such a file can run code when loaded, so ``load_model`` reads it only with
    ``unsafe_allow_program=True`` (from Python; never from the command line).
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "task": model.task,
        "classes": list(model.classes),
        "outputs": list(model.outputs),
        "dtype": str(model.dtype).removeprefix("torch."),
        "schema_hash": model.schema.hash,
        "schema": model.schema.to_toml(),
        "provenance": model.provenance,
    }
    data = S.as_closed(model.network)  # a plain nn.Sequential of Linear / ReLU / ... is data too
    layer_specs = S.specs(data) if data is not None else None
    if data is not None and layer_specs is not None:
        meta["layers"] = layer_specs
        state = {
            k: (v.to(model.dtype) if v.is_floating_point() else v).detach().contiguous()
            for k, v in data.state_dict().items()
        }
        save_file(state, str(folder / "model.safetensors"))
    else:
        example = torch.zeros(3, model.schema.width, dtype=model.dtype)
        try:
            batch = {0: torch.export.Dim.DYNAMIC}
            program = torch.export.export(model.network, (example,), dynamic_shapes=(batch,))
        except Exception as exc:
            raise ModelError(
                f"save_model: this torch module is not made of actionable's layers and torch.export failed "
                f"({type(exc).__name__}: {str(exc)[:200]}). Build it from actionable.models.layers or make it exportable."
            ) from None
        torch.export.save(program, str(folder / "model.pt2"))
        meta["program"] = "model.pt2"
    (folder / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_model(
    path: str | Path, schema: Schema | None = None, *, unsafe_allow_program: bool = False
) -> TorchModel:
    """Read a model folder written by ``save_model``; if ``schema`` is given it must match the recorded one.

    The folder is data, checked before anything is built: ``model.json`` key by key against the declared
    format (its schema is TOML text, never a path), ``model.safetensors`` tensor by tensor against the
    layers (names, dtypes, shapes; every number finite), and no file may lie outside the folder. Any
    problem is a ``ModelError`` naming the file, the key and the fix.

    ``unsafe_allow_program=True`` also loads a ``torch.export`` program (``model.pt2``). torch unpickles
    parts of such a file, so this RUNS CODE FROM THE FILE: pass it only for files you made yourself.
    """
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"load_model: path must be a folder path; got a {type(path).__name__}.")
    if schema is not None and not isinstance(schema, Schema):
        raise ConfigError(f"load_model: schema must be an actionable Schema; got {type(schema).__name__}.")
    root, meta_path = _locate(path)
    try:
        meta = _read_meta(meta_path)
        recorded = _embedded_schema(meta["schema"], meta_path)
        if schema is None:
            schema = recorded
        elif schema.hash != meta.get("schema_hash", recorded.hash):
            raise ModelError(
                f"load_model: {meta_path} was trained on a schema with another encoding (its features: "
                f"{list(recorded.names)[:6]}...; names, order, kinds and levels must match). Use the schema "
                "it records, or retrain on yours."
            )
        dtype = DTYPES[meta.get("dtype", "float64")]
        if "layers" in meta:
            network = _read_layers(root, meta_path, meta["layers"], schema.width, dtype)
        else:
            network = _read_program(root, meta_path, meta.get("program", "model.pt2"), unsafe_allow_program)
        try:
            return TorchModel(
                network,
                schema,
                task=meta["task"],
                classes=meta.get("classes", ()),
                outputs=meta.get("outputs", ()),
                provenance=meta.get("provenance", {}),
                dtype=dtype,
            )
        except ModelError as exc:
            raise ModelError(f"load_model: {meta_path}: {str(exc).removeprefix('as_model: ')}") from None
    except MemoryError:
        raise ModelError(
            f"load_model: {meta_path}: ran out of memory reading the model; it is larger than this machine "
            "can hold (or not a model file)."
        ) from None
    except RecursionError:
        raise ModelError(
            f"load_model: {meta_path}: nested too deeply to read; a model file is a flat table of layers."
        ) from None


def _locate(path: str | Path) -> tuple[Path, Path]:
    """The model folder (links resolved) and its ``model.json``, which must lie inside it."""
    given = Path(path)
    folder = given.parent if given.name == "model.json" else given
    if not (folder / "model.json").is_file():
        raise ModelError(
            f"load_model: {folder / 'model.json'} not found; give the folder written by save_model / train "
            "(or its model.json)."
        )
    try:
        root = folder.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"load_model: cannot read the folder {folder} ({exc}).") from None
    return root, _member(root, "model.json", root / "model.json", "the model file")


def _member(root: Path, name: str, meta_path: Path, what: str) -> Path:
    """``root / name`` for a bare file name whose target, links followed, is a file inside ``root``."""
    if (
        not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
        or Path(name).is_absolute()
        or Path(name).name != name
    ):
        raise ModelError(
            f"load_model: {meta_path}: {what} is {name[:200]!r}; it must be a bare file name inside the model "
            "folder (no folders, no '..', no absolute path). Put the file next to model.json and name it."
        )
    candidate = root / name
    try:
        target = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise ModelError(f"load_model: {candidate} not found next to {meta_path.name}.") from None
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"load_model: cannot read {candidate} ({exc}).") from None
    if not target.is_relative_to(root):
        raise ModelError(
            f"load_model: {candidate} is a link to {target}, outside the model folder {root}; a model "
            "folder may only hold its own files. Copy the file into the folder instead of linking it."
        )
    if not target.is_file():
        raise ModelError(f"load_model: {candidate} is not a file; {what} must be a regular file.")
    return target


def _read_meta(meta_path: Path) -> dict[str, Any]:
    """``model.json`` parsed (size bounded, no duplicate keys) and checked against ``META``."""
    too_big = (
        f"load_model: {meta_path} is larger than {MAX_META_BYTES // 2**20} MiB; a model file describes "
        "its layers in a few kilobytes (the weights are in model.safetensors)."
    )
    try:
        if meta_path.stat().st_size > MAX_META_BYTES:
            raise ModelError(too_big)
        with meta_path.open("rb") as handle:
            blob = handle.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"load_model: cannot read {meta_path} ({exc}).") from None
    if len(blob) > MAX_META_BYTES:
        raise ModelError(too_big)
    try:
        meta = json.loads(blob.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise ModelError(f"load_model: {meta_path} is not UTF-8 text ({exc}).") from None
    except ValueError as exc:  # JSONDecodeError, a repeated key, a number of over 4300 digits
        raise ModelError(f"load_model: {meta_path} is not valid JSON ({str(exc)[:200]}).") from None
    _check_meta(meta, meta_path)
    return dict(meta)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    table = dict(pairs)
    if len(table) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"key {twice[:80]!r} appears twice in one table")
    return table


def _check_meta(meta: Any, meta_path: Path) -> None:
    """``ModelError`` naming the first key of ``model.json`` that does not fit the declared format."""
    where = f"load_model: {meta_path}"
    _check_keys(meta, where)
    if meta["task"] not in ("classification", "regression"):
        raise ModelError(
            f"{where}: key 'task' is {_short(meta['task'])}; use 'classification' or 'regression'."
        )
    if meta.get("dtype", "float64") not in DTYPES:
        raise ModelError(
            f"{where}: key 'dtype' is {_short(meta['dtype'])}; a model's numbers are {' or '.join(DTYPES)}."
        )
    _check_labels(meta, where)
    if "layers" in meta and "program" in meta:
        raise ModelError(f"{where}: has both 'layers' and 'program'; a model file describes one network.")
    if "layers" not in meta and "program" not in meta:
        raise ModelError(f"{where}: {PROGRAM_REFUSED}.")


def _check_keys(meta: Any, where: str) -> None:
    """The format tag, then every key: known to ``META``, present when required, of its JSON type."""
    fix = "Re-save the model with save_model (or train it again)."
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{where} is not an actionable model file (format {FORMAT!r}). {fix}")
    unknown = sorted(str(k)[:40] for k in meta if k not in META)
    if unknown:
        raise ModelError(f"{where}: unknown key(s) {unknown[:8]}; a model file holds {sorted(META)}. {fix}")
    for key, (kind, required) in META.items():
        if key not in meta:
            if required:
                raise ModelError(f"{where}: missing key {key!r}. {fix}")
        elif not isinstance(meta[key], kind):
            raise ModelError(f"{where}: key {key!r} must be {_JSON[kind]}; got {_short(meta[key])}. {fix}")


def _check_labels(meta: dict[str, Any], where: str) -> None:
    """Class labels are finite scalars, output names are strings, none twice, as many as the task needs."""
    classes, outputs = meta.get("classes", []), meta.get("outputs", [])
    for j, label in enumerate(classes):
        if not isinstance(label, str | int | float) or (isinstance(label, float) and not np.isfinite(label)):
            raise ModelError(
                f"{where}: classes[{j}] is {_short(label)}; a class label is a string, a number or a bool."
            )
    for j, name in enumerate(outputs):
        if not isinstance(name, str):
            raise ModelError(f"{where}: outputs[{j}] is {_short(name)}; an output name is a string.")
    for key, values in (("classes", classes), ("outputs", outputs)):
        if len(set(values)) != len(values):
            seen: list[Any] = []
            twice = next(v for v in values if v in seen or seen.append(v))  # type: ignore[func-returns-value]
            raise ModelError(f"{where}: key {key!r} lists {_short(twice)} twice; each must appear once.")
    if meta["task"] == "classification" and len(classes) < 2:
        raise ModelError(f"{where}: a classifier needs 'classes' listing at least two labels; got {classes}.")
    if meta["task"] == "regression" and not outputs:
        raise ModelError(f"{where}: a regression model needs 'outputs' naming each output column.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _embedded_schema(text: str, meta_path: Path) -> Schema:
    """The schema a model file records: TOML text, parsed as text (never opened as a path)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(
            f"load_model: {meta_path}: key 'schema' is not valid TOML ({exc}). It holds the schema's TOML "
            "text itself (a model file never points to a schema file); re-save the model with save_model."
        ) from None
    try:
        return Schema.from_dict(data, where=f"{meta_path.name}, key 'schema'")
    except SpecError as exc:
        raise ModelError(f"load_model: {meta_path}: the schema it records is invalid: {exc}") from None


def _read_layers(root: Path, meta_path: Path, specs: Any, width: int, dtype: torch.dtype) -> nn.Module:
    """The closed-set network: specs planned, weights checked against the plan, then built and filled."""
    where = f"load_model: {meta_path}"
    plan = S.plan(specs, width, where)
    weights = _member(root, "model.safetensors", meta_path, "the weights file")
    want = {
        name: (shape, "I64" if name in plan.integer else _STORED[dtype])
        for name, shape in plan.tensors.items()
    }
    unreadable = f"load_model: {weights} is not a readable safetensors file"
    try:
        with safe_open(str(weights), framework="pt") as handle:
            names = set(handle.keys())
            missing, extra = sorted(set(want) - names), sorted(names - set(want))
            if missing or extra:
                raise ModelError(
                    f"load_model: {weights} does not hold the tensors the layers in {meta_path.name} need: "
                    f"missing {missing[:6]}, unexpected {[n[:40] for n in extra[:6]]}. Re-save the model "
                    "with save_model."
                )
            for name, (shape, stored) in want.items():
                piece = handle.get_slice(name)
                got = (tuple(piece.get_shape()), piece.get_dtype())
                if got != (shape, stored):
                    raise ModelError(
                        f"load_model: {weights}: tensor {name!r} is {got[1]} of shape {got[0]}; the layers "
                        f"in {meta_path.name} need {stored} of shape {shape}. Re-save the model with save_model."
                    )
            state = {name: handle.get_tensor(name) for name in want}
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{unreadable} ({exc}). Re-save the model with save_model.") from None
    S.check_values(plan, state, where)
    network = S.build(plan.specs).to(dtype)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"load_model: the weights in {weights} do not fit the layers: {exc}") from None
    return network


def _read_program(root: Path, meta_path: Path, name: str, allowed: bool) -> nn.Module:
    """A ``torch.export`` program, only with the caller's explicit, unsafe opt-in (it can run code)."""
    program = _member(root, name, meta_path, "key 'program'")
    if not allowed:
        raise ModelError(f"load_model: {meta_path}: {PROGRAM_REFUSED}.")
    try:
        return torch.export.load(str(program)).module()
    except Exception as exc:
        raise ModelError(
            f"load_model: {program} is not a loadable torch.export program ({type(exc).__name__}: "
            f"{str(exc)[:200]})."
        ) from None
