"""``actionable invert``: budget-constrained inverse classification (Lash et al.) over a sweep of budgets.

Prints the curve (mean probability of the unfavourable class, share below 0.5, mean cost per budget) beside
the result shipped with Lash et al.'s code where there is one, the largest budget's changes, and writes
``--json`` (one record per row and budget) and the curve's figure. ``budgets`` reads ``--budget``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from actionable import files
from actionable.cli._shell import capped, console, friendly, print_plans
from actionable.cli.inputs import Source, labels_of, load_source, select_rows
from actionable.cli.outputs import failures_of, report_failures, writable, write_jsonl
from actionable.cli.progress import QUIET_HELP, bar
from actionable.errors import ConfigError
from actionable.inverse_records import MAX_BUDGETS

__all__ = ["MAX_BUDGETS", "budgets", "invert_command"]


@friendly
def invert_command(
    dataset: Annotated[
        str | None, typer.Option(help="A bundled dataset (its test rows; default models).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Your CSV file of people (raw columns).")] = None,
    schema: Annotated[Path | None, typer.Option(help="Your schema TOML file.")] = None,
    lash_indices: Annotated[
        Path | None, typer.Option(help="Instead of --schema: Lash et al.'s index file for --data.")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="Your classifier folder (model.json + weights).")] = None,
    indirect_model: Annotated[
        Path | None, typer.Option(help="Your indirect model folder (predicts the indirect features).")
    ] = None,
    budget: Annotated[str, typer.Option(help="Budgets: 3, 0:10 (step 1), 0:10:0.5 or 1,2,5.")] = "0:10",
    method: Annotated[str, typer.Option(help="exact (projection) or shrink (Lash's original).")] = "exact",
    whole: Annotated[
        bool, typer.Option("--whole/--continuous", help="Round integer features, or keep Lash's relaxation.")
    ] = True,
    pos_only: Annotated[
        bool,
        typer.Option(
            "--pos-only/--all-rows", help="Only rows whose true label is unfavourable (when labels exist)."
        ),
    ] = True,
    rows: Annotated[
        str | None, typer.Option(help="Row positions A:B to process (counted after --pos-only).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Most gradient steps per budget.")] = 300,
    time_limit: Annotated[
        float, typer.Option(help="Seconds per row and budget for a tree model's mixed-integer programs.")
    ] = 30.0,
    allow_protected: Annotated[
        bool,
        typer.Option(
            "--allow-protected",
            help="Let it change protected features that are direct or re-predicted (only to reproduce a study).",
        ),
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write JSON Lines: one record per row and budget.")
    ] = None,
    figure: Annotated[Path | None, typer.Option(help="Write a PNG: mean probability against budget.")] = None,
    show: Annotated[int, typer.Option(help="Changes to print (at the largest budget).")] = 3,
    quiet: Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)] = False,
) -> None:
    """Budget-constrained inverse classification (Lash et al.): the best change within each budget."""
    writable(reads=(data, schema, lash_indices, model, indirect_model), json=json_path, figure=figure)
    from actionable.inverse import invert_sweep, plot_curves, sweep_curve

    source = load_source(
        "invert",
        dataset,
        data=data,
        schema=schema,
        model=model,
        lash_indices=lash_indices,
        others=(indirect_model,),
        needs=("model",),
        either="--data with --schema/--lash-indices and --model",
        missing="invert: give --dataset NAME, or --data CSV --model DIR with exactly one of --schema TOML "
        "or --lash-indices CSV (and --indirect-model DIR if the schema has indirect features).",
    )
    indirect, reference = _indirect(source, indirect_model), None
    if source.bundle is not None and pos_only and rows is None:
        reference = _shipped(source.bundle.path / "invresult_pos_only.csv")
    frame = select_rows(_pos_only(source) if pos_only else source.frame, rows)
    levels = budgets(budget)
    with bar("inverting", len(frame), quiet) as progress:
        sweep = invert_sweep(
            source.model,
            frame,
            source.schema,
            budgets=levels,
            indirect=indirect,
            steps=steps,
            method=method,  # type: ignore[arg-type]
            rounding=whole,
            allow_protected=allow_protected,
            time_limit=time_limit,
            progress=progress,
        )
    curve = sweep_curve(sweep)
    largest = sweep[max(sweep)]
    print_plans(largest, show)
    console.print(_curve_table(curve, reference))
    report_failures(failures_of(largest))
    if reference is not None:
        console.print("reference: the result shipped with Lash et al.'s code, on their own models.")
    if json_path is not None:
        write_jsonl(json_path, (r.to_dict() for batch in sweep.values() for r in batch))
    if figure is not None:
        curves = {f"ours ({method}{', whole' if whole else ''})": curve}
        if reference is not None:
            curves["reference (Lash et al.)"] = reference
        with files.atomic_path(figure) as temp:
            plot_curves(curves, temp, title=dataset or (data.name if data is not None else ""))
        console.print(f"wrote {figure}")
    if any(r.status == "error" for batch in sweep.values() for r in batch):
        raise typer.Exit(code=1)


def _indirect(source: Source, path: Path | None) -> Any:
    """The indirect model: the bundled one, the user's ``--indirect-model``, or None."""
    from actionable.models import load_model

    if source.bundle is not None:
        return source.bundle.models.get("indirect")
    return load_model(path, schema=source.schema) if path is not None else None


def _shipped(path: Path) -> pd.DataFrame | None:
    """The curve shipped with Lash et al.'s code for this dataset, if there is one."""
    from actionable.lash import reference_curve

    return reference_curve(path) if path.is_file() else None


def _pos_only(source: Source) -> pd.DataFrame:
    """The rows whose true label is not the favourable class (all rows when labels are unknown)."""
    frame, labels = source.frame, labels_of(source)
    if labels is None or source.schema.target is None:
        return frame
    favourable = source.schema.target.favourable
    kept = frame[[str(v) != str(favourable) for v in labels]]
    if kept.empty and not frame.empty:
        raise ConfigError(
            f"invert: all {len(frame)} rows are labelled {favourable!r} (favourable), so --pos-only leaves "
            "nothing to invert; pass --all-rows to process them anyway."
        )
    return kept


def _curve_table(curve: pd.DataFrame, reference: pd.DataFrame | None) -> Table:
    """The sweep's curve per budget, beside the reference curve's values where it has the budget."""
    table = Table(
        "budget", "mean P(unfavourable)", "share < 0.5", "mean cost", "rows", title="Inverse classification"
    )
    if reference is not None:
        table.add_column("reference P")
        table.add_column("reference < 0.5")
    lookup = {} if reference is None else {float(b): i for i, b in enumerate(reference["budget"])}
    for _, line in curve.iterrows():
        cells = [
            f"{line.budget:g}",
            f"{line.mean_p_unfavourable:.3f}",
            f"{line.share_below_half:.2f}",
            f"{line.mean_cost:.2f}",
            str(int(line.rows)),
        ]
        if reference is not None:
            i = lookup.get(float(line.budget))
            cells += (
                ["", ""]
                if i is None
                else [f"{reference.mean_p_unfavourable[i]:.3f}", f"{reference.share_below_half[i]:.2f}"]
            )
        table.add_row(*cells)
    return table


def budgets(text: str) -> list[float]:
    """Budgets from "3", "0:10" (step 1), "0:10:0.5" or "1,2,5": finite, >= 0, at most ``MAX_BUDGETS``.

    A range is counted before it is built, so ``0:1e9`` is refused at once instead of filling memory."""
    fix = "give a number (3), a range (0:10, or 0:10:0.5 with a step) or a list (1,2,5)"
    shown = capped(repr(text), 80)
    try:
        values = _range(text, shown, fix) if ":" in text else [float(p) for p in text.split(",") if p.strip()]
    except ConfigError:  # a ConfigError is also a ValueError
        raise
    except ValueError:
        raise ConfigError(f"--budget {shown}: {fix}.") from None
    if not values:
        raise ConfigError(f"--budget {shown}: no budgets; e.g. --budget 0:10.")
    if len(values) > MAX_BUDGETS:
        raise ConfigError(f"--budget: {len(values)} budgets; at most {MAX_BUDGETS} per run.")
    wrong = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if wrong:
        raise ConfigError(
            f"--budget {shown}: budget {wrong[0]:g} is negative or not finite; a budget (the most a change "
            "may cost) is a finite number >= 0, e.g. --budget 0:10."
        )
    return values


def _range(text: str, shown: str, fix: str) -> list[float]:
    """The budgets of a range A:B or A:B:STEP (``ValueError`` when it is not numbers)."""
    parts = [float(p) for p in text.split(":")]
    if len(parts) not in (2, 3):
        raise ValueError
    start, stop, step = parts[0], parts[1], parts[2] if len(parts) == 3 else 1.0
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise ConfigError(f"--budget {shown}: every number must be finite; {fix}.")
    if step <= 0:
        raise ConfigError(f"--budget {shown}: the step must be > 0; e.g. 0:10:0.5.")
    span = (stop - start) / step  # counted before anything is built: 0:1e9 is refused at once
    if not span < MAX_BUDGETS:
        raise ConfigError(
            f"--budget {shown}: {span + 1:.3g} budgets; at most {MAX_BUDGETS} per run. Use a larger "
            "step or a shorter range, e.g. 0:10:0.5."
        )
    count = max(math.floor(span + 1e-9) + 1, 0)
    return [start + i * step for i in range(count)]
