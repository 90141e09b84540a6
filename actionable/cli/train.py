"""``actionable train``: fit the default network on a bundled dataset, or on the user's CSV + schema.

The split and the held-out metrics are the library's (``actionable.metrics``); this module only reads the
options, calls the fit (a bar per epoch on your own CSV) and writes the model folder whole or not at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from actionable import files
from actionable.cli._shell import console, friendly
from actionable.cli.inputs import Source, load_source
from actionable.cli.progress import QUIET_HELP, bar
from actionable.errors import ConfigError, DataError

__all__ = ["train_command"]

if TYPE_CHECKING:
    from actionable.datasets import Dataset


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
    quiet: Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)] = False,
) -> None:
    """Fit the default network: on a bundled dataset, or on your own CSV + schema."""
    source = load_source(
        "train",
        dataset,
        data=data,
        schema=schema,
        complete=target is not None and out is not None,
        either="--data with --schema and --target",
        missing="train: give --dataset NAME, or all of --data CSV --schema TOML --target COLUMN --out DIR.",
    )
    if source.bundle is not None:
        _train_bundled(source.bundle, out)
    else:
        _train_user(source, data, target, out, hidden, epochs, seed, quiet)  # type: ignore[arg-type]


def _train_bundled(bundle: Dataset, out: Path | None) -> None:
    from actionable.datasets.recipes import train_defaults
    from actionable.models import save_model

    folder = out or Path("models") / bundle.name
    for name, model in train_defaults(bundle).items():
        folder.mkdir(parents=True, exist_ok=True)
        with files.atomic_folder(folder / name) as temp:
            save_model(model, temp)
        console.print(f"wrote {folder / name}  {model.provenance.get('metrics', {})}")


def _train_user(
    source: Source, data: Path, target: str, out: Path, hidden: str, epochs: int, seed: int, quiet: bool
) -> None:
    from actionable.metrics import held_out_metrics, holdout
    from actionable.models import save_model
    from actionable.models.training import Recipe, check_target, fit_classifier, fit_regressor

    schema, frame = source.schema, source.frame
    if target not in frame.columns:
        raise DataError(
            f"train: target column {target!r} is not in {data.name}; columns are {list(frame.columns)}."
        )
    check_target(schema, frame, target)
    recipe = Recipe(hidden=_hidden(hidden), epochs=epochs, seed=seed)
    y = frame[target]
    regression = schema.target is not None and schema.target.is_regression
    train, test = holdout(y, regression=regression, seed=seed)
    provenance = {
        "data": data.name,
        "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "seed": seed,
    }
    X = schema.validate(frame)
    fit = fit_regressor if regression else fit_classifier
    with bar("training", recipe.epochs, quiet, unit="epochs") as progress:
        model = fit(schema, X.iloc[train], y.iloc[train], recipe, provenance=provenance, progress=progress)
    metrics = held_out_metrics(model, X.iloc[test], y.iloc[test])
    model.provenance["metrics"] = metrics
    out.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_folder(out) as temp:
        save_model(model, temp)
    console.print(f"wrote {out}  {metrics}")


def _hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes from "40,40"."""
    try:
        return tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise ConfigError(
            f"train: --hidden {text!r} must be comma-separated whole numbers, e.g. 40,40."
        ) from None
