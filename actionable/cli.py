"""The ``actionable`` command: a thin shell over the library. Exit codes: 0 done, 1 rows failed, 2 bad input."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from actionable.errors import ActionableError, ConfigError, DataError

app = typer.Typer(
    name="actionable",
    help="What a person can do to change a model's decision, and why the model decided.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(command: F) -> F:
    """Turn the library's typed errors into a one-line message and exit code 2 (bad input)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ActionableError as exc:
            errors.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", markup=True, highlight=False)
            raise typer.Exit(code=2) from None

    return run  # type: ignore[return-value]


@app.command("datasets")
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


@app.command("info")
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


def schema_table(schema: Any) -> Table:
    """A rich table of a schema's features."""
    table = Table("feature", "kind", "bounds / levels", "mutability", "direction", "cost +/-", title="Schema")
    for f in schema.features:
        span = ", ".join(f.levels) if f.kind == "category" else f"[{f.bounds[0]:g}, {f.bounds[1]:g}]"
        costs = (
            "" if f.cost_up is None and f.cost_down is None else f"{f.cost_up or 0:g} / {f.cost_down or 0:g}"
        )
        table.add_row(
            f.name, f.kind, span if len(span) < 60 else span[:57] + "...", f.mutability, f.direction, costs
        )
    return table


@app.command("train")
@friendly
def train_command(
    dataset: Annotated[str | None, typer.Option(help="Train a bundled dataset's default models.")] = None,
    data: Annotated[Path | None, typer.Option(help="Your CSV file (with a header row).")] = None,
    schema: Annotated[Path | None, typer.Option(help="Your schema TOML file.")] = None,
    target: Annotated[str | None, typer.Option(help="The label column of your CSV.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write the model(s) into.")] = None,
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, e.g. 40,40.")] = "40,40",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fit the default network: on a bundled dataset, or on your own CSV + schema."""
    from actionable.models import save_model

    if dataset is not None:
        from actionable import datasets
        from actionable.datasets.recipes import train_defaults

        if data is not None or schema is not None:
            raise ConfigError("train: give either --dataset, or --data with --schema and --target; not both.")
        bundle = datasets.load(dataset)
        folder = out or Path("models") / bundle.name
        for name, model in train_defaults(bundle).items():
            save_model(model, folder / name)
            console.print(f"wrote {folder / name}  {model.provenance.get('metrics', {})}")
        return
    if data is None or schema is None or target is None or out is None:
        raise ConfigError(
            "train: give --dataset NAME, or all of --data CSV --schema TOML --target COLUMN --out DIR."
        )
    _train_user(data, schema, target, out, hidden, epochs, seed)


def _train_user(
    data: Path, schema_path: Path, target: str, out: Path, hidden: str, epochs: int, seed: int
) -> None:
    from sklearn.model_selection import train_test_split

    from actionable.models import save_model
    from actionable.schema import Schema
    from actionable.training import Recipe, fit_classifier, fit_regressor

    schema = Schema.from_toml(schema_path)
    frame = read_csv(data)
    if target not in frame.columns:
        raise DataError(
            f"train: target column {target!r} is not in {data.name}; columns are {list(frame.columns)}."
        )
    try:
        sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        raise ConfigError(
            f"train: --hidden {hidden!r} must be comma-separated whole numbers, e.g. 40,40."
        ) from None
    recipe = Recipe(hidden=sizes, epochs=epochs, seed=seed)
    y = frame[target]
    regression = schema.target is not None and schema.target.is_regression
    train, test = train_test_split(
        np.arange(len(frame)), test_size=0.2, random_state=seed, stratify=None if regression else y
    )
    provenance = {
        "data": data.name,
        "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "seed": seed,
    }
    X = schema.validate(frame)
    if regression:
        model = fit_regressor(schema, X.iloc[train], y.iloc[train], recipe, provenance=provenance)
        residual = y.iloc[test].to_numpy(np.float64) - model.predict(X.iloc[test])
        centred = y.iloc[test].to_numpy(np.float64) - y.iloc[test].mean()
        metrics = {"test_r2": float(1 - residual @ residual / (centred @ centred))}
    else:
        model = fit_classifier(schema, X.iloc[train], y.iloc[train], recipe, provenance=provenance)
        metrics = {
            "test_accuracy": float(
                np.mean(model.predict(X.iloc[test]) == y.iloc[test].to_numpy(dtype=object))
            )
        }
    model.provenance["metrics"] = metrics
    save_model(model, out)
    console.print(f"wrote {out}  {metrics}")


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file. Give the path of a CSV file with a header row.")
    try:
        return pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot read it as CSV ({exc}).") from None


@app.command("demo")
@friendly
def demo_command() -> None:
    """Run the main job on bundled German credit with its default model (no arguments)."""
    from actionable import datasets
    from actionable.goals import resolve_goal

    data = datasets.load("german")
    model = data.model
    console.print(
        f"[bold]{data.title}[/]: {len(data.frame)} applicants, {len(data.schema)} features "
        f"({sum(f.mutable for f in data.schema.features)} changeable)."
    )
    metrics = model.provenance.get("metrics", {})
    console.print(
        f"Default model: {_describe_network(model)}; test accuracy {metrics.get('test_accuracy', float('nan')):.3f}."
    )
    goal = resolve_goal(model)
    import torch

    with torch.no_grad():
        out = model(data.schema.encode(data.X_test))
    denied = ~goal.satisfied(out)
    p = goal.probability(out)
    console.print(
        f"Of {len(data.X_test)} test applicants, the model denies {int(denied.sum())} "
        f"(goal: {goal.describe()})."
    )
    table = Table(
        "applicant", "P(good)", "duration", "credit_amount", "savings", "age", title="Some denied applicants"
    )
    rows = data.X_test[denied.numpy()].head(5)
    for (index, row), prob in zip(rows.iterrows(), p[denied][:5], strict=False):
        table.add_row(
            str(index),
            f"{float(prob):.2f}",
            str(row["duration"]),
            str(row["credit_amount"]),
            str(row["savings"]),
            str(row["age"]),
        )
    console.print(table)


def _describe_network(model: Any) -> str:
    from actionable import layers as L

    kinds = [m for m in getattr(model.network, "children", list)() if isinstance(m, L.Linear)]
    hidden = "x".join(str(m.out_features) for m in kinds[:-1])
    return f"MLP {hidden or 'linear'}"


def main() -> None:  # pragma: no cover
    app()
