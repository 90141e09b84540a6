"""``actionable explain``: why the model decided, per row and raw feature; or the blog's advice view.

Rows that do not fit the schema are reported and recorded in ``--json`` as error records; the others are
explained against the training mean (bundled data) or the mean of the user's valid rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from actionable import files
from actionable.cli._shell import console, errors, friendly
from actionable.cli.inputs import Source, load_source, select_rows
from actionable.cli.outputs import report_failures, writable, write_jsonl
from actionable.errors import ConfigError

__all__ = ["explain_command"]


@friendly
def explain_command(
    dataset: Annotated[
        str | None, typer.Option(help="A bundled dataset (its test rows are explained).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Your CSV file of rows to explain (raw columns).")] = None,
    schema: Annotated[Path | None, typer.Option(help="Your schema TOML file.")] = None,
    model: Annotated[Path | None, typer.Option(help="Your model folder (model.json + weights).")] = None,
    rows: Annotated[str, typer.Option(help="Row positions A:B to explain.")] = "0:5",
    method: Annotated[
        str,
        typer.Option(help="gradient, gradient_x_input, integrated_gradients, deeplift or coefficients."),
    ] = "integrated_gradients",
    baseline: Annotated[
        str, typer.Option(help="mean (of the training rows, or of --data) or zeros (canonical encoding).")
    ] = "mean",
    steps: Annotated[int, typer.Option(help="Integrated Gradients steps.")] = 64,
    target: Annotated[str | None, typer.Option(help="The class or output explained.")] = None,
    top: Annotated[int, typer.Option(help="Reasons shown per row.")] = 3,
    advise: Annotated[
        bool,
        typer.Option(
            "--advise",
            help="Adversarial advising (the blog): per-sd gradients of every model at the average row and "
            "at the first row, and advice for that row.",
        ),
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write JSON Lines, one record per row.")
    ] = None,
    figure: Annotated[
        Path | None, typer.Option(help="Write a PNG: the bars (or the blog's figures).")
    ] = None,
) -> None:
    """Why the model decided: attributions per row and raw feature (top reasons, JSON, figure)."""
    writable(reads=(data, schema, model), json=json_path, figure=figure)
    source = load_source(
        "explain",
        dataset,
        data=data,
        schema=schema,
        model=model,
        needs=("model",),
        either="--data --schema --model",
        missing="explain: give --dataset NAME, or all of --data --schema --model.",
    )
    chosen, failed, reference, models = _chosen(source, rows)
    if chosen.empty:  # as synthesize does: one error record per row, the reasons on screen, exit 1
        _write_attributions(json_path, [], failed, source.frame)
        report_failures(failed.items(), show=None)
        errors.print(f"explain: none of the {len(failed)} rows selected fits the schema.", highlight=False)
        raise typer.Exit(code=1)
    if advise:
        _explain_advice(models, source.model, chosen, reference, target, figure)
    else:
        if baseline not in ("mean", "zeros"):
            raise ConfigError(f"explain: --baseline {baseline!r}; use mean or zeros.")
        mean_of = "training mean" if dataset is not None else f"mean of {data}"
        result = _attributions(source, chosen, reference, method, baseline, mean_of, steps, target, top)
        _write_attributions(json_path, result.to_records(top), failed, source.frame)
        if figure is not None:
            from actionable.plotting import plot_attribution, save

            with files.atomic_path(figure) as temp:
                save(plot_attribution(result, 0 if len(result) == 1 else None), temp)
            console.print(f"wrote {figure}")
    report_failures(failed.items(), show=None)
    if failed:
        raise typer.Exit(code=1)


def _chosen(source: Source, rows: str) -> tuple[pd.DataFrame, dict[Any, str], pd.DataFrame, dict[str, Any]]:
    """The selected rows that fit the schema (validated), the selected ones that do not (label -> message),
    the reference rows (for the mean baseline and the scales) and the models the advice view compares."""
    schema, frame = source.schema, source.frame
    bad_rows = schema.row_errors(frame)
    models: dict[str, Any]
    if source.bundle is not None:
        reference, models = source.bundle.X_train, dict(source.bundle.models)
    else:
        usable = sorted(set(range(len(frame))) - set(bad_rows))
        reference, models = schema.validate(frame.iloc[usable]), {"model": source.model}
    chosen = select_rows(frame, rows)
    # rows that do not fit the schema are reported (and recorded in --json), the others explained
    problems = {frame.index[i]: message for i, message in bad_rows.items()}
    failed = {label: problems[label] for label in chosen.index if label in problems}
    return schema.validate(chosen.drop(index=list(failed))), failed, reference, models


def _attributions(
    source: Source,
    chosen: pd.DataFrame,
    reference: pd.DataFrame,
    method: str,
    baseline: str,
    mean_of: str,
    steps: int,
    target: str | None,
    top: int,
) -> Any:
    """The attribution of ``chosen``, printed as a table of the top reasons per row."""
    from actionable.attribution import attribute, standard_deviations, training_mean

    exact = method in ("integrated_gradients", "deeplift", "coefficients")
    result = attribute(
        source.model,
        chosen,
        method,  # type: ignore[arg-type]
        target=target,
        baseline=training_mean(source.schema, reference) if exact and baseline == "mean" else None,
        steps=steps,
        scale=standard_deviations(source.schema, reference) if method == "gradient" else None,
    )
    if exact:
        result = dataclasses.replace(result, baseline=mean_of if baseline == "mean" else "zeros")
    table = Table("row", "prediction", f"top {top} reasons", "delta", title=f"{method}: {result.target}")
    for i, reasons in enumerate(result.top(top)):
        table.add_row(
            str(result.rows[i]),
            f"{result.prediction[i]:.4g}",
            ", ".join(f"{name} {value:+.3g}" for name, value in reasons),
            f"{result.delta[i]:.1e}",
        )
    console.print(table)
    console.print(f"values in {result.unit} units; baseline: {result.baseline}", highlight=False)
    return result


def _write_attributions(
    json_path: Path | None, explained: list[dict[str, Any]], failed: dict[Any, str], frame: pd.DataFrame
) -> None:
    """--json for explain: one record per row chosen, in input order; a row that failed gets an error record."""
    if json_path is None:
        return
    records = {r["row"]: r for r in explained}
    records.update(
        {
            label: {"format": "actionable.attribution/1", "row": label, "error": m}
            for label, m in failed.items()
        }
    )
    write_jsonl(json_path, (records[label] for label in frame.index if label in records))


def _explain_advice(
    models: dict[str, Any],
    model: Any,
    chosen: pd.DataFrame,
    reference: pd.DataFrame,
    target: str | None,
    figure: Path | None,
) -> None:
    """The blog's view: the gradient table (per sd) and ranked advice for the first chosen row."""
    from actionable.advice import advise_gradient, gradient_table
    from actionable.attribution import standard_deviations

    table = gradient_table(models, reference, chosen.iloc[:1], target=target)
    shown = Table("feature", *table.columns, title="Input gradient per standard deviation")
    for name, values in table.iterrows():
        shown.add_row(str(name), *(f"{v:+.3f}" for v in values))
    console.print(shown)
    advice = advise_gradient(model, chosen.iloc[0], scale=standard_deviations(model.schema, reference))
    console.print(f"\n[bold]Advice for row {chosen.index[0]}[/]:")
    console.print(advice.describe(), highlight=False)
    if figure is not None:
        from actionable.plotting import plot_gradient_table, save

        with files.atomic_path(figure) as temp:
            save(plot_gradient_table(table), temp)
        console.print(f"wrote {figure}")
