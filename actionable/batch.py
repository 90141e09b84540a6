"""Runs of a verb over large tables: chunks, and progress while they run.

``synthesize_in_chunks`` answers what one ``synthesize`` call over the whole frame would (one ``Recourse``
per row, in input order, carrying the frame's index label, an error naming the row's position in the whole
frame) but searches only where a search is needed: rows that fail the schema's checks and rows the model
already favours are found first, vectorised, and answered in one call; only the rows that need a plan are
cut into chunks, so 500 denied rows among 10^5 cost 5 search calls, not 1,000. A ``progress`` callback hears after every call how many rows are
answered. It calls only the public verb ``synthesize``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from actionable import synthesis
from actionable.actions import ActionSet
from actionable.batch_engine import denied_rows
from actionable.errors import ConfigError
from actionable.results import Recourse, RecourseBatch
from actionable.schema import Schema

if TYPE_CHECKING:
    from actionable.batch_runs import RunSummary

__all__ = ["Progress", "rows_needing_search", "run", "synthesize_in_chunks"]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)``: rows answered so far, rows in the frame."""


def synthesize_in_chunks(
    model: Any,
    frame: pd.DataFrame,
    actions: ActionSet,
    *,
    chunk: int = 100,
    progress: Progress | None = None,
    goal: Any = None,
    max_length: int = 4,
    search: str | None = None,
    margin: float = 0.1,
    steps: int = 150,
    seed: int = 0,
    budget: int | None = None,
    k: int = 1,
    certify: bool = False,
) -> RecourseBatch:
    """``synthesize(model, frame, actions, ...)`` with the rows that need a search in chunks of ``chunk``.

    The keywords after ``progress`` are ``synthesize``'s; ``search`` and ``budget`` are passed on only when
    given (else ``synthesize``'s own defaults apply)."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"synthesize_in_chunks: chunk must be a whole number >= 1; got {chunk!r}.")
    settings: dict[str, Any] = {
        "goal": goal,
        "max_length": max_length,
        "margin": margin,
        "steps": steps,
        "seed": seed,
        "k": k,
        "certify": certify,
    }
    if search is not None:
        settings["search"] = search
    if budget is not None:
        settings["budget"] = budget
    bad = actions.schema.row_errors(frame)
    good = np.setdiff1d(np.arange(len(frame)), list(bad))
    needing = good[rows_needing_search(model, frame.iloc[good], actions, goal)]
    easy = np.setdiff1d(np.arange(len(frame)), needing)
    answers: dict[int, Recourse] = {}

    def run(positions: np.ndarray) -> None:
        part = synthesis.synthesize(model, frame.iloc[positions], actions, **settings)
        for at, r in zip(positions.tolist(), part, strict=True):  # r.row: the frame's own label already
            error = (
                bad.get(at, r.error) if r.status == "error" else r.error
            )  # names the position in the frame
            answers[at] = dataclasses.replace(r, error=error)
        if progress is not None:
            progress(len(answers), len(frame))

    if len(easy):
        run(easy)
    for start in range(0, len(needing), chunk):
        run(needing[start : start + chunk])
    return RecourseBatch(tuple(answers[i] for i in range(len(frame))), tuple(frame.index.names))


def rows_needing_search(model: Any, valid: pd.DataFrame, actions: ActionSet, goal: Any = None) -> np.ndarray:
    """Positions of the rows of ``valid`` (rows that fit the schema) that the model does not already favour."""
    return denied_rows(model, valid, actions.schema, goal)


def run(
    source: str | Path,
    out: str | Path,
    verb: str,
    *,
    model: Any,
    schema: Schema | str | Path,
    actions: str | Path | None = None,
    reference: pd.DataFrame | None = None,
    chunk: int = 1000,
    resume: bool = False,
    only_denied: bool = False,
    parquet: bool = False,
    backend: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
    id_column: str | None = None,
    **options: Any,
) -> RunSummary:
    """``verb`` ("synthesize", "invert" or "explain") over every row of the CSV ``source``, in resumable,
    checksummed parts under ``out`` (``batch_runs``); ``options`` are the verb's own keywords.

    ``model``: a model folder, ``TorchModel``, torch module or fitted scikit-learn model; ``schema``: a
    ``Schema`` or its TOML file / text; ``actions``: the catalogue's TOML file or text (synthesize). For
    ``explain`` the baseline and scale are the mean and spread of ``reference`` (training rows) or, without
    it, of the input's valid rows (one streaming pass), unless ``options`` asks ``baseline="zeros"``.
    ``backend="dask"``: chunks on ``workers`` local processes or the cluster at ``scheduler``; the records
    are the same as the local run's. ``id_column``: a column each record carries as ``id`` (its text)."""
    from actionable.batch_input import streaming_reference
    from actionable.batch_jobs import Job, model_files
    from actionable.batch_runs import run_parts

    the_schema = schema if isinstance(schema, Schema) else Schema.from_toml(schema)
    text = None if actions is None else _toml_text(actions)
    refs: dict[str, list[float]] | None = None
    baseline = options.pop("baseline", "mean") if verb == "explain" else None
    if baseline not in (None, "mean", "zeros"):
        raise ConfigError(f"batch explain: baseline = {baseline!r}; use 'mean' or 'zeros'.")
    if verb == "explain" and options.get("method", "integrated_gradients") != "shap":
        if baseline == "zeros":
            refs = {"baseline": [0.0] * the_schema.width}
            options["against"] = "zeros"
        elif reference is not None:
            from actionable.baselines import standard_deviations, training_mean

            refs = {
                "baseline": training_mean(the_schema, reference).tolist(),
                "scale": standard_deviations(the_schema, reference).tolist(),
            }
            options.setdefault("against", f"mean of {len(reference)} reference rows")
        else:
            mean, sd, count = streaming_reference(Path(source), the_schema, chunk)
            refs = {"baseline": mean.tolist(), "scale": sd.tolist()}
            options["against"] = f"mean of the input's {count} valid rows"
    job = Job(
        verb,
        the_schema.to_toml(),
        model_files(model, the_schema),
        text,
        options,
        only_denied=only_denied,
        reference=refs,
    )
    return run_parts(
        source,
        out,
        job,
        chunk=chunk,
        resume=resume,
        parquet=parquet,
        backend=backend,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        id_column=id_column,
    )


def _toml_text(source: str | Path) -> str:
    """A spec's TOML text: a path is read (checked as every spec file is), text is kept."""
    from actionable.specfile import read_toml

    read_toml(source, "actions")  # refuses what the loaders refuse, naming the file
    one_line = isinstance(source, str) and "\n" not in source
    if isinstance(source, Path) or (one_line and (source.endswith(".toml") or "=" not in source)):
        return Path(source).read_text(encoding="utf-8-sig")
    return source
