"""``actionable batch synthesize|invert|explain``: a whole table, in checksummed parts a crash does not lose.

The CSV is read in chunks by ``actionable.batch_runs`` (never whole), the verb's engine is built once
(``batch_jobs``), and ``--resume`` finishes a run that stopped. ``--workers N`` / ``--scheduler ADDRESS``
run the chunks on Dask (``batch_dask``). Exit 1 when some rows were not processed (``error`` records,
counted), 2 on bad input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from actionable.cli._shell import console, friendly
from actionable.cli.progress import QUIET_HELP, bar
from actionable.errors import ConfigError

__all__ = ["batch_app", "explain_batch_command", "invert_batch_command", "synthesize_batch_command"]

batch_app = typer.Typer(
    help="Run a verb over a whole table in resumable, checksummed parts (locally or on Dask).",
    no_args_is_help=True,
)

Out = Annotated[Path, typer.Option(help="The run's folder: parts/ and manifest.json.")]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="A bundled dataset (all its rows).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Your CSV file of people (raw columns).")]
SchemaOpt = Annotated[Path | None, typer.Option("--schema", help="Your schema TOML file.")]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="Your model folder (model.json + weights).")]
ChunkOpt = Annotated[int, typer.Option("--chunk", help="Rows per part.")]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Finish the run in --out: keep its good parts, redo the rest.")
]
DeniedOpt = Annotated[
    bool,
    typer.Option("--only-denied", help="Leave out rows the model already favours (counted as skipped)."),
]
ParquetOpt = Annotated[
    bool, typer.Option("--parquet", help="Also write each part as NNNNNN.parquet (needs pyarrow).")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Run the chunks on a local Dask cluster of N processes.")
]
SchedulerOpt = Annotated[
    str | None, typer.Option("--scheduler", help="Run the chunks on the Dask cluster at this address.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)]
IdOpt = Annotated[
    str | None, typer.Option("--id", help="A column each record carries as `id` (its text), to join back.")
]


@dataclass(frozen=True)
class _Common:
    out: Path
    dataset: str | None
    data: Path | None
    schema: Path | None
    model: Path | None
    chunk: int
    resume: bool
    only_denied: bool
    parquet: bool
    workers: int | None
    scheduler: str | None
    quiet: bool
    id_column: str | None = None


def _inputs(common: _Common, actions: Path | None, needs_actions: bool) -> dict[str, Any]:
    """The CSV, schema, model (folder) and catalogue of a bundled dataset or of the user's files."""
    given = (common.data, common.schema, common.model) + ((actions,) if needs_actions else ())
    if common.dataset is not None:
        if any(p is not None for p in (*given, actions)):
            raise ConfigError(
                "batch: give either --dataset, or your own files (--data --schema ...); not both."
            )
        from actionable import datasets

        bundle = datasets.load(common.dataset)
        default = str(bundle.info.get("default_model", ""))
        found = {
            "source": bundle.path / "data.csv.gz",
            "schema": bundle.schema,
            "model": bundle.path / "models" / default,
            "actions": bundle.path / "actions.toml" if needs_actions else None,
            "reference": bundle.X_train,
        }
        return found
    if any(p is None for p in given):
        names = "--data --schema --model" + (" --actions" if needs_actions else "")
        raise ConfigError(f"batch: give --dataset NAME, or all of {names}.")
    from actionable.schema import Schema

    return {
        "source": common.data,
        "schema": Schema.from_toml(common.schema),  # type: ignore[arg-type]
        "model": common.model,
        "actions": actions,
        "reference": None,
    }


def _run(verb: str, common: _Common, actions: Path | None, reference: Path | None, **options: Any) -> None:
    from actionable.batch import run
    from actionable.batch_input import count_rows

    found = _inputs(common, actions, verb == "synthesize")
    if verb == "explain" and common.dataset is not None and reference is None:
        options.setdefault("against", "training mean")
    if reference is not None:
        found["reference"] = _reference_rows(reference, found["schema"])
    backend = "dask" if common.workers is not None or common.scheduler is not None else "local"
    total = 0 if common.quiet or not _terminal() else count_rows(Path(found["source"]))
    with bar(f"batch {verb}", total, common.quiet or not total) as show:
        done = [0]

        def progress(rows: int) -> None:
            done[0] += rows
            show(done[0], total)

        summary = run(
            found["source"],
            common.out,
            verb,
            model=found["model"],
            schema=found["schema"],
            actions=found["actions"],
            reference=found["reference"] if verb == "explain" else None,
            chunk=common.chunk,
            resume=common.resume,
            only_denied=common.only_denied,
            parquet=common.parquet,
            backend=backend,
            workers=common.workers,
            scheduler=common.scheduler,
            progress=progress,
            id_column=common.id_column,
            **options,
        )
    skipped = f"; {summary.skipped} already favoured, left out" if summary.skipped else ""
    console.print(
        f"{summary.rows} rows: {summary.written} parts written, {summary.kept} kept from before; "
        f"{summary.failed} rows not processed{skipped}; records in {summary.out / 'parts'}"
    )
    if summary.failed:
        raise typer.Exit(code=1)


def _reference_rows(path: Path, schema: Any) -> Any:
    """The valid rows of ``--reference`` (their mean is explain's baseline); none valid is refused, named."""
    from actionable.cli.inputs import read_csv

    frame = read_csv(path, schema)
    bad = schema.row_errors(frame)
    if len(bad) == len(frame):
        first = next(iter(bad.values()), "it has no rows")
        raise ConfigError(f"batch explain: --reference {path}: no row fits the schema ({first[:200]}).")
    return frame.drop(index=[frame.index[i] for i in bad])


def _terminal() -> bool:
    from actionable.cli._shell import errors

    return bool(errors.is_terminal)


@friendly
def synthesize_batch_command(
    out: Out,
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    schema: SchemaOpt = None,
    actions: Annotated[Path | None, typer.Option(help="Your actions TOML file.")] = None,
    model: ModelOpt = None,
    max_length: Annotated[int, typer.Option(help="Longest sequence of actions.")] = 2,
    margin: Annotated[
        float, typer.Option(help="How far past the decision boundary plans go (logits).")
    ] = 0.1,
    k: Annotated[int, typer.Option("--k", help="Plans per person, each with another set of actions.")] = 1,
    certify: Annotated[
        bool, typer.Option("--certify", help="Prove plans optimal (or none exists) where a program can.")
    ] = False,
    chunk: ChunkOpt = 1000,
    resume: ResumeOpt = False,
    only_denied: DeniedOpt = False,
    parquet: ParquetOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    id_column: IdOpt = None,
) -> None:
    """The cheapest verified action sequence for every row of a table, in resumable parts."""
    common = _Common(
        out,
        dataset,
        data,
        schema,
        model,
        chunk,
        resume,
        only_denied,
        parquet,
        workers,
        scheduler,
        quiet,
        id_column,
    )
    options: dict[str, Any] = {"max_length": max_length, "margin": margin, "k": k, "certify": certify}
    _run("synthesize", common, actions, None, **options)


@friendly
def invert_batch_command(
    out: Out,
    budget: Annotated[float, typer.Option(help="The most each person may spend (the schema's cost units).")],
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    schema: SchemaOpt = None,
    model: ModelOpt = None,
    rounding: Annotated[
        bool, typer.Option("--rounding/--continuous", help="Whole-number features in whole numbers.")
    ] = True,
    time_limit: Annotated[
        float, typer.Option(help="Seconds per row for an exact solve on a tree model (then the best found).")
    ] = 30.0,
    chunk: ChunkOpt = 1000,
    resume: ResumeOpt = False,
    only_denied: DeniedOpt = False,
    parquet: ParquetOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    id_column: IdOpt = None,
) -> None:
    """The change within a budget that most lowers each row's risk (Lash et al.), in resumable parts."""
    if not math.isfinite(budget) or budget < 0:
        raise ConfigError(
            f"batch invert: --budget {budget}; give a finite budget >= 0 (the schema's cost units)."
        )
    common = _Common(
        out,
        dataset,
        data,
        schema,
        model,
        chunk,
        resume,
        only_denied,
        parquet,
        workers,
        scheduler,
        quiet,
        id_column,
    )
    _run("invert", common, None, None, budget=budget, rounding=rounding, time_limit=time_limit)


@friendly
def explain_batch_command(
    out: Out,
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    schema: SchemaOpt = None,
    model: ModelOpt = None,
    method: Annotated[
        str,
        typer.Option(
            help="integrated_gradients, deeplift, gradient_x_input, gradient, coefficients or shap."
        ),
    ] = "integrated_gradients",
    baseline: Annotated[
        str, typer.Option(help="mean (of --reference, the training rows, or the input's rows) or zeros.")
    ] = "mean",
    reference: Annotated[
        Path | None, typer.Option(help="A CSV of training rows whose mean is the baseline (your own data).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Integrated Gradients steps.")] = 64,
    top: Annotated[int, typer.Option(help="Reasons kept per row.")] = 3,
    exclude_protected: Annotated[
        bool,
        typer.Option("--exclude-protected", help="Leave protected features out of the reasons kept."),
    ] = False,
    chunk: ChunkOpt = 1000,
    resume: ResumeOpt = False,
    only_denied: DeniedOpt = False,
    parquet: ParquetOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
    id_column: IdOpt = None,
) -> None:
    """Why the model decided, for every row of a table (attributions and top reasons), in resumable parts."""
    if baseline not in ("mean", "zeros"):
        raise ConfigError(f"batch explain: --baseline {baseline!r}; use mean or zeros.")
    if top < 1:
        raise ConfigError(f"batch explain: --top {top}; give the number of reasons kept per row (>= 1).")
    common = _Common(
        out,
        dataset,
        data,
        schema,
        model,
        chunk,
        resume,
        only_denied,
        parquet,
        workers,
        scheduler,
        quiet,
        id_column,
    )
    options: dict[str, Any] = {"method": method, "top": top, "baseline": baseline}
    if exclude_protected:
        options["exclude_protected"] = True
    if method == "integrated_gradients":
        options["steps"] = steps
    _run("explain", common, None, reference, **options)
