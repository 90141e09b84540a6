"""``actionable explain``: why the model decided, per row and raw feature; or the blog's advice view.

Rows that do not fit the schema are reported and recorded in ``--json`` as error records; the others are
explained against the training mean (bundled data) or the mean of the user's valid rows, ``ROWS_PER_CALL``
rows at a time behind a progress bar (a row's attribution does not depend on the others, so the result is
one call's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from actionable import files
from actionable.cli._shell import console, errors, friendly
from actionable.cli.inputs import Source, load_source, select_rows
from actionable.cli.outputs import report_failures, writable, write_jsonl
from actionable.cli.progress import QUIET_HELP, bar
from actionable.errors import ConfigError
from actionable.rows import read_rows

__all__ = ["ROWS_PER_CALL", "explain_command", "in_chunks"]

ROWS_PER_CALL = 256  # rows attributed per call: the bar moves, and memory stays bounded by the chunk


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
        typer.Option(
            help="gradient, gradient_x_input, integrated_gradients, deeplift or coefficients; shap for a "
            "tree model (TreeSHAP, path dependent: --baseline is the training data the trees recorded)."
        ),
    ] = "integrated_gradients",
    baseline: Annotated[
        str, typer.Option(help="mean (of the training rows, or of --data) or zeros (canonical encoding).")
    ] = "mean",
    steps: Annotated[int, typer.Option(help="Integrated Gradients steps.")] = 64,
    target: Annotated[str | None, typer.Option(help="The class or output explained.")] = None,
    top: Annotated[int, typer.Option(help="Reasons shown per row.")] = 3,
    exclude_protected: Annotated[
        bool,
        typer.Option(
            "--exclude-protected",
            help="Leave protected features (protected = true in the schema) out of the reasons shown.",
        ),
    ] = False,
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
    quiet: Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)] = False,
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
    chosen = select_rows(source.frame, rows)
    reference, models = _reference(source)
    if advise:
        failed = _explain_advice(models, source.model, chosen, reference, target, figure)
    else:
        if baseline not in ("mean", "zeros"):
            raise ConfigError(f"explain: --baseline {baseline!r}; use mean or zeros.")
        mean_of = "training mean" if dataset is not None else f"mean of {data}"
        with bar("explaining", len(chosen), quiet) as progress:
            result = _attributions(source, chosen, reference, method, baseline, steps, target, progress)
        if method in ("integrated_gradients", "deeplift", "coefficients"):
            result = dataclasses.replace(result, baseline=mean_of if baseline == "mean" else "zeros")
        _print_reasons(result, method, top, exclude_protected)
        failed = dict(result.errors)
        if json_path is not None:
            write_jsonl(json_path, result.to_records(top))
        if figure is not None and len(failed) < len(chosen):
            from actionable.plotting import plot_attribution, save

            with files.atomic_path(figure) as temp:
                save(plot_attribution(result, 0 if len(result) == 1 else None), temp)
            console.print(f"wrote {figure}")
    report_failures(failed.items(), show=None)
    if failed and len(failed) == len(chosen):
        errors.print(f"explain: none of the {len(failed)} rows selected fits the schema.", highlight=False)
    if failed:
        raise typer.Exit(code=1)


def _reference(source: Source) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference rows (for the mean baseline and the scales: the training rows of a bundled dataset,
    else the user's rows that fit the schema) and the models the advice view compares."""
    if source.bundle is not None:
        return source.bundle.X_train, dict(source.bundle.models)
    valid = read_rows(source.schema, source.frame, "explain")
    labels = source.frame.index[list(valid.good)]
    return pd.DataFrame(list(valid.before), index=labels), {"model": source.model}


def _attributions(
    source: Source,
    chosen: pd.DataFrame,
    reference: pd.DataFrame,
    method: str,
    baseline: str,
    steps: int,
    target: str | None,
    progress: Callable[[int, int], None],
) -> Any:
    """The attribution of ``chosen`` against the chosen baseline, in chunks of rows (``in_chunks``)."""
    from actionable.attribution import attribute, standard_deviations, training_mean

    if method == "shap":  # path dependent: the reference is what the trees recorded of their training data
        if baseline != "mean":
            raise ConfigError(
                "explain: --method shap explains against the trees' training data; drop --baseline."
            )
        return in_chunks(
            lambda part: attribute(source.model, part, "shap", target=target), source, chosen, progress
        )
    exact = method in ("integrated_gradients", "deeplift", "coefficients")
    settings: dict[str, Any] = {
        "target": target,
        # no reference row fits the schema: no chosen row does either, each is an error record
        "baseline": training_mean(source.schema, reference)
        if exact and baseline == "mean" and len(reference)
        else None,
        "steps": steps,
        "scale": standard_deviations(source.schema, reference) if method == "gradient" else None,
    }
    return in_chunks(
        lambda part: attribute(source.model, part, method, **settings),  # type: ignore[arg-type]
        source,
        chosen,
        progress,
    )


def in_chunks(
    explain: Callable[[pd.DataFrame], Any],
    source: Source,
    chosen: pd.DataFrame,
    progress: Callable[[int, int], None],
    rows_per_call: int | None = None,
) -> Any:
    """``explain(chosen)`` (an ``Attribution``) computed ``rows_per_call`` (default ``ROWS_PER_CALL``)
    valid rows at a time, with ``progress(rows done, rows)`` after each call. A row's attribution does not
    depend on the other rows (the baseline and scales are fixed beforehand), so the values are one call's;
    the rows that do not fit the schema are found once, on the whole selection, so their messages name
    positions in it."""
    size = ROWS_PER_CALL if rows_per_call is None else rows_per_call
    bad = source.schema.row_errors(chosen)
    good = [i for i in range(len(chosen)) if i not in bad]
    if len(good) <= size:  # one call: no chunks to join
        result = explain(chosen)
        progress(len(chosen), len(chosen))
        return result
    parts = []
    for start in range(0, len(good), size):
        parts.append(explain(chosen.iloc[good[start : start + size]]))
        progress(len(bad) + min(start + size, len(good)), len(chosen))

    def placed(name: str) -> np.ndarray:
        joined = np.concatenate([getattr(part, name) for part in parts])
        out = np.full((len(chosen), *joined.shape[1:]), np.nan)
        out[good] = joined
        return out

    labels = tuple(chosen.index)
    return dataclasses.replace(
        parts[0],
        values=placed("values"),
        delta=placed("delta"),
        prediction=placed("prediction"),
        reference=placed("reference"),
        rows=labels,
        errors={labels[i]: message for i, message in bad.items()},
    )


def _print_reasons(result: Any, method: str, top: int, exclude_protected: bool) -> None:
    """A table of the top reasons per row, each protected feature marked "(protected)" (or left out)."""
    table = Table("row", "prediction", f"top {top} reasons", "delta", title=f"{method}: {result.target}")
    cited = False
    for i, reasons in enumerate(result.top(top, exclude_protected=exclude_protected)):
        if result.rows[i] in result.errors:
            continue
        marked = [name in result.protected for name, _ in reasons]
        cited = cited or any(marked)
        table.add_row(
            str(result.rows[i]),
            f"{result.prediction[i]:.4g}",
            ", ".join(
                f"{name} {value:+.3g}" + (" (protected)" if flag else "")
                for (name, value), flag in zip(reasons, marked, strict=True)
            ),
            f"{result.delta[i]:.1e}",
        )
    console.print(table)
    console.print(f"values in {result.unit} units; baseline: {result.baseline}", highlight=False)
    if cited:
        console.print(
            "(protected): a protected feature of the schema; an adverse-action reason must not cite it "
            "(--exclude-protected leaves such features out).",
            highlight=False,
        )


def _explain_advice(
    models: dict[str, Any],
    model: Any,
    chosen: pd.DataFrame,
    reference: pd.DataFrame,
    target: str | None,
    figure: Path | None,
) -> dict[Any, str]:
    """The blog's view: the gradient table (per sd) and ranked advice for the first chosen row that fits
    the schema; the chosen rows that do not (label -> message)."""
    from actionable.advice import advise_gradient, gradient_table
    from actionable.attribution import standard_deviations

    valid = read_rows(model.schema, chosen, "explain")
    failed = {chosen.index[i]: message for i, message in valid.errors.items()}
    if not valid.good:
        return failed
    chosen = chosen.iloc[list(valid.good)]

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
    return failed
