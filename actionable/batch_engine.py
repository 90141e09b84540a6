"""A batch job's verb, built once and ready to answer chunk after chunk (``batch_jobs.Job.engine``).

``Engine(frame)`` gives one JSON record per row, in order: ``synthesize`` and ``invert`` records as the
JSON Lines of the commands, ``explain`` records as ``Attribution.to_records`` with a ``status``
("explained" or "error") so failed rows are counted like the others'. A row the job's ``only_denied``
leaves out is a ``{"row": i, "skip": True}`` marker, which the runner counts and does not write. Row
errors name the row by its position in the file (the chunk's index), as every batch record does.
``answer_chunk`` checks an engine's answer for a chunk and turns a failure into error records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.errors import ConfigError, ModelError, SpecError

__all__ = ["EXPLAIN_METHODS", "SKIP", "Engine", "answer_chunk", "denied_rows", "error_records"]

SKIP = "skip"  # a record ``{"row": i, "skip": True}``: a row --only-denied leaves out (counted, not written)
EXPLAIN_METHODS = ("integrated_gradients", "deeplift", "gradient_x_input", "gradient", "coefficients", "shap")
_BASELINE_METHODS = ("integrated_gradients", "deeplift", "coefficients")  # the methods that take a baseline
_OURS = ("method", "top", "exclude_protected", "against")  # the batch's own explain options, not attribute's
_IN_CHUNK = re.compile(r"^row \d+ \(index (\d+)\)")  # "row 0 (index 3)": position in the chunk, file row


class Engine:
    """A job's verb ready to answer chunks: ``engine(frame)`` is one JSON record per row, in order."""

    def __init__(self, job: Any, schema: Any, model: Any, actions: Any) -> None:  # job: batch_jobs.Job
        self.job, self.schema, self.model, self.actions = job, schema, model, actions
        self.options = dict(job.options)
        if job.verb == "explain":
            self._explain_settings()

    def _explain_settings(self) -> None:
        method = self.options.get("method", "integrated_gradients")
        if method not in EXPLAIN_METHODS:
            raise ConfigError(f"batch explain: method {method!r}; use one of {', '.join(EXPLAIN_METHODS)}.")
        top = self.options.get("top", 3)
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"batch explain: top = {top!r}; give a whole number of reasons >= 1.")
        reference = self.job.reference or {}
        baseline, scale = reference.get("baseline"), reference.get("scale")
        names = [f.name for f in self.schema.features]
        if baseline is not None and len(baseline) != self.schema.width:
            raise ConfigError(
                f"batch explain: the baseline has {len(baseline)} values for {self.schema.width} columns."
            )
        if scale is not None and len(scale) != len(names):
            raise ConfigError(f"batch explain: the scale has {len(scale)} values for {len(names)} features.")
        self.baseline = None if baseline is None else np.asarray(baseline, np.float64)
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

            records = [r.to_dict() for r in synthesize(self.model, frame, self.actions, **options)]
        elif verb == "invert":
            from actionable.inverse import invert

            records = [r.to_dict() for r in invert(self.model, frame, self.schema, **options)]
        else:
            records = self._explain(frame)
        for record in records:
            if record.get("error"):
                record["error"] = _IN_CHUNK.sub(r"row \1", str(record["error"]))
        return records

    def _explain(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        from actionable.attribution import attribute

        settings = {k: v for k, v in self.options.items() if k not in _OURS}
        method = self.options.get("method", "integrated_gradients")
        if method in _BASELINE_METHODS:
            settings["baseline"] = self.baseline
        if method == "gradient":
            settings["scale"] = self.scale
        result = attribute(self.model, frame, method, schema=self.schema, **settings)
        top = int(self.options.get("top", 3))
        records = result.to_records(top)
        if self.options.get("exclude_protected"):  # the reasons a lender may give: protected ones left out
            tops = iter(result.top(top, exclude_protected=True))
            for record, chosen in zip(records, tops, strict=True):
                if "error" not in record:
                    record["top"] = [[f, v] for f, v in chosen]
                    record["reasons"] = [{"feature": f, "value": v, "protected": False} for f, v in chosen]
        against = self.options.get("against")
        for record in records:
            record["status"] = "error" if "error" in record else "explained"
            if against and "error" not in record and method in _BASELINE_METHODS:
                record["baseline"] = str(against)
        return records

    def _favoured(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows that fit the schema and that the model already favours (``--only-denied`` leaves them out)."""
        bad = self.schema.row_errors(frame)
        fits = np.setdiff1d(np.arange(len(frame)), list(bad))
        favoured = np.zeros(len(frame), dtype=bool)
        favoured[fits] = True
        favoured[fits[denied_rows(self.model, frame.iloc[fits], self.schema, self.options.get("goal"))]] = (
            False
        )
        return favoured


def denied_rows(model: Any, valid: pd.DataFrame, schema: Any, goal: Any = None) -> np.ndarray:
    """Positions of the rows of ``valid`` (rows that fit ``schema``) that the model does not already favour."""
    from actionable.goals import resolve_goal
    from actionable.models import as_model

    if valid.empty:
        return np.zeros(0, dtype=np.int64)
    torch_model = as_model(model, schema)
    with torch.no_grad():
        favoured = resolve_goal(torch_model, goal).satisfied(torch_model(schema.encode(valid)))
    return np.flatnonzero(~favoured.numpy().astype(bool))


def error_records(rows: Any, message: str) -> list[dict[str, Any]]:
    """An ``error`` record with ``message`` for each of ``rows`` (a chunk whose answer failed)."""
    return [{"row": int(i), "status": "error", "error": message} for i in rows]


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
        return error_records(frame.index, f"the chunk failed: {type(error).__name__}: {error}")
    return records
