"""``actionable datasets`` and ``actionable info NAME``: the bundled datasets, their schemas and models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from actionable.cli._shell import console, friendly

__all__ = ["datasets_command", "info_command", "schema_table"]

if TYPE_CHECKING:
    from actionable.schema import Schema


@friendly
def datasets_command() -> None:
    """List the bundled datasets."""
    from actionable import datasets

    table = Table("name", "title", "task", "rows", "features", "default model")
    for name in datasets.NAMES:
        data = datasets.load(name)
        table.add_row(
            name,
            data.title,
            data.task,
            str(len(data.frame)),
            str(len(data.schema)),
            str(data.info.get("default_model", "")),
        )
    console.print(table)


@friendly
def info_command(
    name: Annotated[str, typer.Argument(help="A bundled dataset, see `actionable datasets`.")],
) -> None:
    """Show a bundled dataset: its schema and its default models' quality."""
    from actionable import datasets

    data = datasets.load(name)
    console.print(f"[bold]{data.title}[/] ({data.name}): {len(data.frame)} rows, task {data.task}")
    console.print(data.description)
    console.print("split: " + ", ".join(f"{k} {int(v)}" for k, v in data.split.value_counts().items()))
    console.print(schema_table(data.schema))
    models = Table("model", "task", "outputs", "quality", "trainer", title="Default models")
    for model_name, model in data.models.items():
        metrics = model.provenance.get("metrics", {})
        models.add_row(
            model_name,
            model.task,
            ", ".join(map(str, model.classes or model.outputs)),
            ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
            str(model.provenance.get("trainer", "")),
        )
    console.print(models)


def schema_table(schema: Schema) -> Table:
    """A rich table of a schema's features (a protected one has a star beside its mutability)."""
    protected = any(f.protected for f in schema.features)
    table = Table(
        "feature",
        "kind",
        "bounds / levels",
        "mutability",
        "direction",
        "cost +/-",
        title="Schema",
        caption="* protected: never changed by recourse, never cited as a reason" if protected else None,
    )
    for f in schema.features:
        span = ", ".join(f.levels) if f.kind == "category" else f"[{f.bounds[0]:g}, {f.bounds[1]:g}]"
        costs = (
            "" if f.cost_up is None and f.cost_down is None else f"{f.cost_up or 0:g} / {f.cost_down or 0:g}"
        )
        table.add_row(
            f.name,
            f.kind,
            span if len(span) < 60 else span[:57] + "...",
            f.mutability + ("*" if f.protected else ""),  # as narrow as before: the caption says it
            f.direction,
            costs,
        )
    return table
