"""``actionable synthesize``: the cheapest verified action sequence per row, behind a progress bar.

The chunking is the library's (``actionable.batch.synthesize_in_chunks``); this module turns its progress
callback into the shared bar (``cli/progress.py``), prints plans and a summary, and writes ``--json`` and the drawings' figure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from actionable import files
from actionable.cli._shell import console, friendly, print_plans, print_summary
from actionable.cli.inputs import load_source, select_rows
from actionable.cli.outputs import failures_of, report_failures, writable, write_jsonl
from actionable.cli.progress import QUIET_HELP, bar

__all__ = ["synthesize_command", "with_progress"]


@friendly
def synthesize_command(
    dataset: Annotated[str | None, typer.Option(help="A bundled dataset (its test rows are used).")] = None,
    data: Annotated[Path | None, typer.Option(help="Your CSV file of people (raw columns).")] = None,
    schema: Annotated[Path | None, typer.Option(help="Your schema TOML file.")] = None,
    actions: Annotated[Path | None, typer.Option(help="Your actions TOML file.")] = None,
    model: Annotated[Path | None, typer.Option(help="Your model folder (model.json + weights).")] = None,
    rows: Annotated[str | None, typer.Option(help="Row positions A:B to process.")] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Longest sequence of actions (default: the dataset's, else 4).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimisation steps per candidate.")] = 150,
    margin: Annotated[
        float,
        typer.Option(
            help="How far past the decision boundary plans go: for a class, its logit minus the "
            "strongest other class's (the log-odds of a binary model)."
        ),
    ] = 0.1,
    search: Annotated[
        str,
        typer.Option(
            help="vanilla (breadth-first, exhaustive; bfs is an alias), objective or gradient (best-first)."
        ),
    ] = "vanilla",
    budget: Annotated[int | None, typer.Option(help="Best-first only: sequences tried per person.")] = None,
    k: Annotated[
        int, typer.Option("--k", help="Plans per person, each using other actions (alternatives in --json).")
    ] = 1,
    certify: Annotated[
        bool, typer.Option(help="Prove each plan optimal, or that none exists, by mixed-integer programs.")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write JSON Lines, one record per row.")
    ] = None,
    show: Annotated[int, typer.Option(help="Plans to print.")] = 5,
    figure: Annotated[
        Path | None, typer.Option(help="Drawings only (quickdraw): PNG of found plans, added strokes in red.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)] = False,
) -> None:
    """Cheapest verified action sequences that flip the model's decision: one per row, or with --k up to k
    per row, each using a different set of actions with every step needed."""
    writable(reads=(data, schema, actions, model), json=json_path, figure=figure)
    source = load_source(
        "synthesize",
        dataset,
        data=data,
        schema=schema,
        model=model,
        actions=actions,
        needs=("model", "actions"),
        either="--data --schema --actions --model",
        missing="synthesize: give --dataset NAME, or all of --data --schema --actions --model.",
    )
    if max_length is None and source.bundle is not None:
        max_length = int(source.bundle.info.get("synthesis", {}).get("max_length", 4))
    frame = select_rows(source.frame, rows)
    if figure is not None:  # fail before a long search, not after it
        from actionable.drawing import strokes

        strokes(dict.fromkeys(source.schema.names, 1.0))
    started = time.perf_counter()
    batch = with_progress(
        source.model,
        frame,
        source.actions,
        max_length=4 if max_length is None else max_length,
        steps=steps,
        margin=margin,
        search=search,
        budget=budget,
        k=k,
        certify=certify,
        quiet=quiet,
    )
    print_plans(batch, show)
    print_summary(batch, time.perf_counter() - started)
    report_failures(failures_of(batch))
    if json_path is not None:
        write_jsonl(json_path, (r.to_dict() for r in batch))
    if figure is not None:
        from actionable.drawing import draw_recourse

        with files.atomic_path(figure) as temp:
            draw_recourse(batch, temp)
        console.print(f"wrote {figure}")
    if batch.summary()["error"]:
        raise typer.Exit(code=1)


def with_progress(
    model: Any, frame: pd.DataFrame, actions: Any, *, quiet: bool = False, **settings: Any
) -> Any:
    """``synthesize_in_chunks`` behind the shared progress bar on stderr (none with ``quiet``)."""
    from actionable.batch import synthesize_in_chunks

    with bar("synthesising", len(frame), quiet) as progress:
        return synthesize_in_chunks(model, frame, actions, progress=progress, **settings)
