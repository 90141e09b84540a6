"""What a batch run computes, as data: the verb, its options and the model, schema and catalogue as bytes.

A ``Job`` holds only the project's own formats (a model folder's ``model.json`` + ``model.safetensors``, the
schema's and the catalogue's TOML text, plain JSON options), so it travels to another process or a Dask
worker as bytes and is rebuilt there by the same checked loaders a user's files go through: no pickled
model or closure ever crosses. ``Job.engine()`` builds the verb's engine once (model, schema, catalogue,
baseline); the engine then answers chunk after chunk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionable.batch_engine import Engine
from actionable.errors import ConfigError, ModelError
from actionable.schema import Schema

__all__ = ["VERBS", "Job", "model_files"]

VERBS = ("synthesize", "invert", "explain")
JOB_FORMAT = "actionable.batch-job/1"
_MODEL_FILE = re.compile(r"model\.(json|safetensors)")


def model_files(model: Any, schema: Any) -> dict[str, bytes]:
    """A model as the bytes of its folder (``save_model``'s data format); a folder path is read as it is.

    A network that only ``torch.export`` can write (a program file, which runs code when loaded) cannot
    travel: ``ConfigError`` says to build it from actionable's layers."""
    from actionable.models import as_model, save_model

    if isinstance(model, str | Path):
        folder = Path(model)
        if not folder.is_dir():
            raise ConfigError(
                f"batch: model {folder} is not a folder; give a model folder (model.json + weights)."
            )
        named = [p for p in sorted(folder.iterdir()) if _MODEL_FILE.fullmatch(p.name)]
        links = [p.name for p in named if p.is_symlink()]
        if links:
            raise ConfigError(
                f"batch: model {folder}: {links} are links; a model folder holds its own files."
            )
        found = {p.name: p.read_bytes() for p in named}
    else:
        with tempfile.TemporaryDirectory(prefix="actionable-job-") as temp:
            save_model(as_model(model, schema), temp)
            found = {p.name: p.read_bytes() for p in sorted(Path(temp).iterdir()) if p.is_file()}
    if "model.json" in found and "model.safetensors" not in found and isinstance(model, str | Path):
        raise ConfigError(
            f"batch: model {model} has model.json but no model.safetensors (its weights); copy the whole folder "
            "save_model wrote."
        )
    if set(found) != {"model.json", "model.safetensors"}:
        raise ConfigError(
            "batch: the model must be data (model.json + model.safetensors) to travel to workers; a torch.export "
            "program cannot. Build the network from actionable.models.layers (or nn.Sequential of Linear / ReLU)."
        )
    return found


@dataclass(frozen=True)
class Job:
    """One batch run's work: ``verb`` with ``options`` on ``model`` (folder files as bytes), a schema and,
    for ``synthesize``, an action catalogue (TOML text). ``only_denied`` leaves out rows already favoured.
    ``reference``: for ``explain``, the baseline (a canonical row) and per-feature scale."""

    verb: str
    schema: str
    model: Mapping[str, bytes]
    actions: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    only_denied: bool = False
    reference: Mapping[str, Sequence[float]] | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.verb not in VERBS:
            raise ConfigError(f"batch: verb {self.verb!r}; use one of {', '.join(VERBS)}.")
        if self.verb == "synthesize" and self.actions is None:
            raise ConfigError("batch synthesize: give the action catalogue (actions TOML).")
        try:
            json.dumps(dict(self.options), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"batch: options must be plain JSON values: {error}.") from None

    @property
    def key(self) -> str:
        """A digest of everything the job computes with: the same key, the same records."""
        return _sha(json.dumps(self.settings(), sort_keys=True).encode())

    def to_bytes(self) -> bytes:
        """The job as JSON bytes (model files base64): what travels to a worker."""
        data = {
            "format": JOB_FORMAT,
            "verb": self.verb,
            "schema": self.schema,
            "model": {name: base64.b64encode(blob).decode("ascii") for name, blob in self.model.items()},
            "actions": self.actions,
            "options": dict(self.options),
            "only_denied": self.only_denied,
            "reference": None if self.reference is None else {k: list(v) for k, v in self.reference.items()},
        }
        return json.dumps(data, allow_nan=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> Job:
        """A job back from ``to_bytes`` (checked: only this format's keys, model files by their names)."""
        try:
            data = json.loads(blob.decode("utf-8"))
            if not isinstance(data, dict) or data.pop("format", None) != JOB_FORMAT:
                raise ValueError(f"not an {JOB_FORMAT} document")
            model = {str(k): base64.b64decode(v, validate=True) for k, v in dict(data.pop("model")).items()}
            return cls(model=model, **data)
        except RecursionError:
            raise ConfigError("batch: a job's bytes are nested too deeply to be a job.") from None
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as error:
            raise ConfigError(f"batch: a job's bytes do not read back ({error}).") from None

    def settings(self) -> dict[str, Any]:
        """The manifest's record of this job (resuming with other settings is refused)."""
        reference = None if self.reference is None else json.dumps(self.reference, sort_keys=True)
        return {
            "verb": self.verb,
            "options": dict(self.options),
            "only_denied": self.only_denied,
            "schema_sha256": _sha(self.schema.encode()),
            "actions_sha256": None if self.actions is None else _sha(self.actions.encode()),
            "model_sha256": {name: _sha(data) for name, data in sorted(self.model.items())},
            "reference_sha256": None if reference is None else _sha(reference.encode()),
        }

    def parsed_schema(self) -> Schema:
        """The job's schema, read from its TOML text (never as a path to a file)."""
        return Schema.from_toml(_as_text(self.schema))

    def engine(self) -> Engine:
        """The verb's engine, built once: model, schema and catalogue read back through their checked loaders."""
        from actionable.actions import ActionSet
        from actionable.models import load_model

        schema = self.parsed_schema()
        with tempfile.TemporaryDirectory(prefix="actionable-job-") as temp:
            for name, data in self.model.items():
                if not _MODEL_FILE.fullmatch(name):
                    raise ConfigError(
                        f"batch: model file name {name!r}; only model.json and model.safetensors travel."
                    )
                (Path(temp) / name).write_bytes(data)
            try:
                model = load_model(temp, schema)
            except ModelError as error:  # named as the job's model, not by the temporary folder
                raise ModelError(str(error).replace(str(Path(temp)), "<the run's model folder>")) from None
        actions = None if self.actions is None else ActionSet.from_toml(_as_text(self.actions), schema)
        return Engine(self, schema, model, actions)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _as_text(spec: str) -> str:
    """A job's TOML is always text, never a path to read (``read_toml`` reads a one-line string as one)."""
    return spec if "\n" in spec else spec + "\n"


def _check_fields(job: Job) -> None:
    """A job's fields have the types its format allows (a job read from bytes is data from elsewhere)."""
    plain = {"verb": (job.verb, str), "schema": (job.schema, str), "only_denied": (job.only_denied, bool)}
    for name, (value, kind) in plain.items():
        if not isinstance(value, kind):
            raise ConfigError(f"batch: a job's {name} must be {kind.__name__}; got {type(value).__name__}.")
    if job.actions is not None and not isinstance(job.actions, str):
        raise ConfigError("batch: a job's actions must be TOML text or None.")
    if not isinstance(job.options, Mapping) or not isinstance(job.model, Mapping):
        raise ConfigError("batch: a job's options and model must be mappings.")
    if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in job.model.items()):
        raise ConfigError("batch: a job's model maps file names to bytes.")
    if job.reference is not None:
        if not isinstance(job.reference, Mapping) or set(job.reference) - {"baseline", "scale"}:
            raise ConfigError("batch: a job's reference holds only 'baseline' and 'scale'.")
        for name, values in job.reference.items():
            good = isinstance(values, list | tuple) and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
            )
            if not good:
                raise ConfigError(f"batch: a job's reference {name!r} must be a list of finite numbers.")
