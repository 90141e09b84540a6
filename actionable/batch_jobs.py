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
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.errors import ConfigError, ModelError, SpecError

__all__ = ["SKIP", "VERBS", "Engine", "Job", "answer_chunk", "model_files"]

VERBS = ("synthesize", "invert", "explain")
JOB_FORMAT = "actionable.batch-job/1"
SKIP = "skip"  # a record ``{"row": i, "skip": True}``: a row --only-denied leaves out (counted, not written)
_MODEL_FILE = re.compile(r"model\.(json|safetensors)")
_EXPLAIN_METHODS = (
    "integrated_gradients",
    "deeplift",
    "gradient_x_input",
    "gradient",
    "coefficients",
    "shap",
)


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
        found = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if _MODEL_FILE.fullmatch(p.name)}
    else:
        with tempfile.TemporaryDirectory(prefix="actionable-job-") as temp:
            save_model(as_model(model, schema), temp)
            found = {p.name: p.read_bytes() for p in sorted(Path(temp).iterdir()) if p.is_file()}
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
        except (ValueError, TypeError, KeyError, binascii.Error) as error:
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

    def engine(self) -> Engine:
        """The verb's engine, built once: model, schema and catalogue read back through their checked loaders."""
        from actionable.actions import ActionSet
        from actionable.models import load_model
        from actionable.schema import Schema

        schema = Schema.from_toml(self.schema)
        with tempfile.TemporaryDirectory(prefix="actionable-job-") as temp:
            for name, data in self.model.items():
                if not _MODEL_FILE.fullmatch(name):
                    raise ConfigError(
                        f"batch: model file name {name!r}; only model.json and model.safetensors travel."
                    )
                (Path(temp) / name).write_bytes(data)
            model = load_model(temp, schema)
        actions = None if self.actions is None else ActionSet.from_toml(self.actions, schema)
        return Engine(self, schema, model, actions)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Engine:
    """A job's verb ready to answer chunks: ``engine(frame)`` is one JSON record per row, in order."""

    def __init__(self, job: Job, schema: Any, model: Any, actions: Any) -> None:
        self.job, self.schema, self.model, self.actions = job, schema, model, actions
        self.options = dict(job.options)
        if job.verb == "explain":
            self._explain_settings()

    def _explain_settings(self) -> None:
        method = self.options.get("method", "integrated_gradients")
        if method not in _EXPLAIN_METHODS:
            raise ConfigError(f"batch explain: method {method!r}; use one of {', '.join(_EXPLAIN_METHODS)}.")
        reference = self.job.reference or {}
        self.baseline = None if "baseline" not in reference else np.asarray(reference["baseline"], np.float64)
        scale = reference.get("scale")
        names = [f.name for f in self.schema.features]
        self.scale = None if scale is None else pd.Series(list(scale), index=names, name="sd")

    def __call__(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        skipped = self._favoured(frame) if self.job.only_denied else np.zeros(len(frame), dtype=bool)
        asked = frame[~skipped]
        answers = iter(self._answer(asked) if len(asked) else [])
        return [
            {"row": int(label), SKIP: True} if skip else next(answers)
            for label, skip in zip(frame.index, skipped, strict=True)
        ]

    def _answer(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        verb, options = self.job.verb, self.options
        if verb == "synthesize":
            from actionable.synthesis import synthesize

            return [r.to_dict() for r in synthesize(self.model, frame, self.actions, **options)]
        if verb == "invert":
            from actionable.inverse import invert

            return [r.to_dict() for r in invert(self.model, frame, self.schema, **options)]
        from actionable.attribution import attribute

        settings = {k: v for k, v in options.items() if k not in ("method", "top")}
        method = options.get("method", "integrated_gradients")
        if method != "shap":
            settings["baseline"] = self.baseline
            if method == "gradient":
                settings["scale"] = self.scale
        result = attribute(self.model, frame, method, schema=self.schema, **settings)
        return result.to_records(int(options.get("top", 3)))

    def _favoured(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows that fit the schema and that the model already favours (``--only-denied`` leaves them out)."""
        from actionable.goals import resolve_goal

        bad = self.schema.row_errors(frame)
        fits = np.ones(len(frame), dtype=bool)
        fits[list(bad)] = False
        favoured = np.zeros(len(frame), dtype=bool)
        if fits.any():
            with torch.no_grad():
                goal = resolve_goal(self.model, self.options.get("goal"))
                outputs = self.model(self.schema.encode(frame[fits]))
                favoured[fits] = goal.satisfied(outputs).numpy().astype(bool)
        return favoured


def answer_chunk(
    answer: Callable[[pd.DataFrame], Sequence[Mapping[str, Any]]], frame: pd.DataFrame
) -> list[dict[str, Any]]:
    """``answer`` on one chunk, checked: one record per row, in order (a ``skip`` marker counts as one);
    any failure of the engine becomes an ``error`` record for each row of the chunk, except a problem of
    the run's own settings or files (``SpecError``, ``ConfigError``, ``ModelError``), which would fail every
    chunk alike: it stops the run, naming the fix."""
    try:
        records = [dict(r) for r in answer(frame)] if len(frame) else []
        if len(records) != len(frame):
            raise ValueError(f"{len(records)} records for {len(frame)} rows")
        rows = [r.get("row") for r in records]
        if rows != [int(i) for i in frame.index]:
            raise ValueError("the records' 'row' fields are not the chunk's rows in order")
    except (SpecError, ConfigError, ModelError):
        raise
    except Exception as error:
        message = f"the chunk failed: {type(error).__name__}: {error}"
        return [{"row": int(i), "status": "error", "error": message} for i in frame.index]
    return records
