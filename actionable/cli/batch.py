"""``actionable batch synthesize``: a whole table, in checksummed parts that a crash does not lose.

The CSV is read in chunks by ``actionable.batch_runs`` (never whole); ``--resume`` finishes a run that
stopped. Exit 1 when some rows were not processed (``error`` records, counted), 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from actionable.cli._shell import console, friendly
from actionable.errors import ConfigError

__all__ = ["batch_app", "synthesize_batch_command"]

batch_app = typer.Typer(
    help="Run a verb over a whole table in resumable, checksummed parts.", no_args_is_help=True
)


def _inputs(
    dataset: str | None, data: Path | None, schema: Path | None, actions: Path | None, model: Path | None
) -> tuple[Path, Any, Any, Any, dict[str, Any]]:
    """(the CSV, schema, model, catalogue, what identifies them in the manifest's settings)."""
    from actionable.actions import ActionSet
    from actionable.batch_runs import file_sha256
    from actionable.models import load_model
    from actionable.schema import Schema

    if dataset is not None:
        if any(p is not None for p in (data, schema, actions, model)):
            raise ConfigError("batch: give either --dataset, or --data --schema --actions --model; not both.")
        from actionable import datasets

        bundle = datasets.load(dataset)
        catalogue = ActionSet.from_toml(bundle.path / "actions.toml", bundle.schema)
        return bundle.path / "data.csv.gz", bundle.schema, bundle.model, catalogue, {"dataset": dataset}
    if data is None or schema is None or actions is None or model is None:
        raise ConfigError("batch: give --dataset NAME, or all of --data --schema --actions --model.")
    the_schema = Schema.from_toml(schema)
    the_model = load_model(model, schema=the_schema)
    catalogue = ActionSet.from_toml(actions, the_schema)
    identity = {
        "schema_sha256": file_sha256(schema),
        "actions_sha256": file_sha256(actions),
        "model_sha256": {p.name: file_sha256(p) for p in sorted(Path(model).iterdir()) if p.is_file()},
    }
    return data, the_schema, the_model, catalogue, identity


@friendly
def synthesize_batch_command(
    out: Annotated[Path, typer.Option(help="The run's folder: parts/ and manifest.json.")],
    dataset: Annotated[str | None, typer.Option(help="A bundled dataset (all its rows).")] = None,
    data: Annotated[Path | None, typer.Option(help="Your CSV file of people (raw columns).")] = None,
    schema: Annotated[Path | None, typer.Option(help="Your schema TOML file.")] = None,
    actions: Annotated[Path | None, typer.Option(help="Your actions TOML file.")] = None,
    model: Annotated[Path | None, typer.Option(help="Your model folder (model.json + weights).")] = None,
    max_length: Annotated[int, typer.Option(help="Longest sequence of actions.")] = 2,
    chunk: Annotated[int, typer.Option(help="Rows per part.")] = 1000,
    resume: Annotated[
        bool, typer.Option(help="Finish the run in --out: keep its good parts, redo the rest.")
    ] = False,
) -> None:
    """The cheapest verified action sequence for every row of a table, in resumable parts."""
    from actionable.batch_runs import run_parts, synthesis_answer

    source, the_schema, the_model, catalogue, identity = _inputs(dataset, data, schema, actions, model)
    settings = {"verb": "synthesize", "max_length": max_length, **identity}
    answer = synthesis_answer(the_model, catalogue, max_length=max_length)
    summary = run_parts(source, out, answer, settings=settings, chunk=chunk, resume=resume, schema=the_schema)
    console.print(
        f"{summary.rows} rows: {summary.written} parts written, {summary.kept} kept from before; "
        f"{summary.failed} rows not processed; records in {summary.out / 'parts'}"
    )
    if summary.failed:
        raise typer.Exit(code=1)
