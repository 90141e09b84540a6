"""The ``actionable`` command: a thin shell over the library. Exit codes: 0 done, 1 rows failed, 2 bad input."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actionable import files
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


SHOWN = 2000  # the most characters of one message (or one value) the CLI prints; the rest is elided
MAX_BUDGETS = 1000  # the most budgets one invert run sweeps
MAX_COLUMNS = 10_000  # the most columns a CSV header may name (each costs a pass over its column)


def _capped(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out (a 5 MB cell is not echoed)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def friendly(command: F) -> F:
    """The CLI's error boundary: the library's typed errors, an exhausted memory or recursion limit and an
    interrupt each become one line on stderr and exit code 2 (130 for an interrupt), never a traceback.
    Output paths locked by the command (``_writable``) are released however it ends."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as stack:
            _outputs.append(stack)
            try:
                return command(*args, **kwargs)
            except ActionableError as exc:
                _fail(f"{type(exc).__name__}: {exc}")
            except MemoryError:
                _fail(OUT_OF_MEMORY)
            except RecursionError:
                _fail(
                    "the input is nested too deeply to process (recursion limit reached); simplify it, "
                    "e.g. shorter expressions in the spec files."
                )
            except RuntimeError as exc:  # torch's allocator says it this way
                if type(exc).__name__ != "OutOfMemoryError" and "can't allocate memory" not in str(exc):
                    raise
                _fail(OUT_OF_MEMORY)
            except KeyboardInterrupt:
                errors.print("interrupted: no output file was left half written.", highlight=False)
                raise typer.Exit(code=130) from None
            finally:
                _outputs.pop()

    return run  # type: ignore[return-value]


OUT_OF_MEMORY = (
    "out of memory: the input or the settings ask for more memory than this machine has; process fewer rows "
    "at a time (--rows A:B) or lower the settings (budgets, steps, --max-length)."
)
_outputs: list[contextlib.ExitStack] = []  # the running command's locks on its output paths


def _fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(_capped(message))}", markup=True, highlight=False)
    raise typer.Exit(code=2) from None


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
            folder.mkdir(parents=True, exist_ok=True)
            with files.atomic_folder(folder / name) as temp:
                save_model(model, temp)
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
    from actionable.training import Recipe, check_target, fit_classifier, fit_regressor

    schema = Schema.from_toml(schema_path)
    frame = read_csv(data, schema)
    if target not in frame.columns:
        raise DataError(
            f"train: target column {target!r} is not in {data.name}; columns are {list(frame.columns)}."
        )
    check_target(schema, frame, target)
    try:
        sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        raise ConfigError(
            f"train: --hidden {hidden!r} must be comma-separated whole numbers, e.g. 40,40."
        ) from None
    recipe = Recipe(hidden=sizes, epochs=epochs, seed=seed)
    y = frame[target]
    regression = schema.target is not None and schema.target.is_regression
    rare = not regression and int(y.map(str).value_counts().min()) < 2  # too few to stratify the split
    train, test = train_test_split(
        np.arange(len(frame)), test_size=0.2, random_state=seed, stratify=None if regression or rare else y
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
        predicted = [str(label) for label in model.predict(X.iloc[test])]  # labels match as text, as in
        truth = [str(label) for label in y.iloc[test]]  # the fit: classes "0" / "1" against CSV numbers 0 / 1
        metrics = {"test_accuracy": float(np.mean(np.array(predicted) == np.array(truth)))}
    model.provenance["metrics"] = metrics
    out.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_folder(out) as temp:
        save_model(model, temp)
    console.print(f"wrote {out}  {metrics}")


def read_csv(path: Path, schema: Any = None) -> pd.DataFrame:
    """A user's CSV read as the schema says, never guessed: category levels as text (``NA``, ``None``,
    ``null``, ``01`` are levels like any other), numeric features as numbers (a binary one also as
    ``True``/``False``, as pandas writes a bool column), where only an empty cell is
    missing and any other text is kept for the schema's per-row check. Columns outside the schema (labels,
    extras) are numbers when every filled cell is one, else text. A repeated column name is a ``DataError``.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file. Give the path of a CSV file with a header row.")
    _check_header(path)
    try:
        with warnings.catch_warnings():
            # index_col=False: a row longer than the header must never turn its first cells into the
            # index (shifting every value one column over); pandas warns that it drops the extra cells.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            text = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skipinitialspace=True,
                encoding="utf-8-sig",
                index_col=False,
            )
    except pd.errors.ParserWarning:
        raise DataError(
            f"{path}: a row has more cells than the header row names (a trailing comma, or an unquoted comma "
            "in a value); give every row one cell per header column."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as CSV ({_capped(str(exc), 300)}).") from None
    features = {} if schema is None else {f.name: f for f in schema.features}
    columns: dict[str, pd.Series] = {}
    for name in text.columns:
        column = text[name]
        feature = features.get(name)
        if feature is not None and feature.kind == "category":
            empty = column == ""
            columns[name] = column if "" in feature.levels else column.mask(empty, np.nan)
        else:
            if feature is not None and feature.kind == "binary":  # pandas writes a bool column as True/False
                column = column.replace({"True": "1", "False": "0", "true": "1", "false": "0"})
            columns[name] = _numbers_or_text(column, strict=feature is not None)
    return pd.DataFrame(columns, index=text.index)


def _numbers_or_text(column: pd.Series, *, strict: bool) -> pd.Series:
    """Numbers where the text is one, NaN where the cell is empty. A ``strict`` (numeric feature) column
    keeps a non-numeric text in place, for the schema to report by row; a loose one stays text."""
    stripped = column.str.strip()
    empty = stripped == ""
    numbers = pd.to_numeric(stripped.mask(empty, None), errors="coerce")
    bad = numbers.isna() & ~empty
    if not bad.any():
        return numbers
    if not strict:
        return column.mask(empty, np.nan)
    return numbers.astype(object).mask(bad, column)


def _check_header(path: Path) -> None:
    """Refuse a header that names a column twice (pandas would silently rename it ``name.1``)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, skipinitialspace=True), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read its header row as CSV ({_capped(str(exc), 300)}).") from None
    if len(header) > MAX_COLUMNS:
        raise DataError(
            f"{path}: the header row names {len(header)} columns (at most {MAX_COLUMNS}); keep the schema's "
            "columns and the label, and drop the rest."
        )
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise DataError(
            f"{path}: column {_capped(repr(repeated[0]), 80)} appears more than once in the header row; "
            "give each column one unique name."
        )


def _synthesize_with_progress(
    model: Any, frame: pd.DataFrame, actions: Any, *, chunk: int = 100, **options: Any
) -> Any:
    """Synthesis behind a progress bar; one ``RecourseBatch`` in input order, one record per row.

    Rows that need no search (those that fail the schema's checks, and those the model already favours)
    are found first, vectorised, and answered in one call; only the rows that need a plan are cut into
    chunks of ``chunk``, so 500 denied rows among 10^5 cost 5 chunks, not 1,000.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from actionable.results import Recourse, RecourseBatch
    from actionable.synthesis import synthesize

    bad = actions.schema.row_errors(frame)
    good = np.setdiff1d(np.arange(len(frame)), list(bad))
    needing = good[_rows_needing_search(model, frame.iloc[good], actions, options.get("goal"))]
    easy = np.setdiff1d(np.arange(len(frame)), needing)
    answers: dict[int, Recourse] = {}

    def run(positions: np.ndarray) -> int:
        part = synthesize(model, frame.iloc[positions], actions, **options)
        for r in part:
            at = int(positions[r.row])  # an error names the row's position in the frame, not in the part
            answers[at] = dataclasses.replace(r, row=at, error=bad[at] if r.status == "error" else r.error)
        return len(part)

    with Progress(
        TextColumn("synthesising"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        task = progress.add_task("rows", total=len(frame))
        if len(easy):
            progress.advance(task, run(easy))
        for start in range(0, len(needing), chunk):
            progress.advance(task, run(needing[start : start + chunk]))
    return RecourseBatch(tuple(answers[i] for i in range(len(frame))))


def _rows_needing_search(model: Any, valid: pd.DataFrame, actions: Any, goal: Any) -> np.ndarray:
    """Positions of the rows of ``valid`` (rows that fit the schema) that the model does not already favour."""
    import torch

    from actionable.goals import resolve_goal
    from actionable.models import as_model

    if valid.empty:
        return np.zeros(0, dtype=np.int64)
    schema = actions.schema
    torch_model = as_model(model, schema)
    with torch.no_grad():
        favoured = resolve_goal(torch_model, goal).satisfied(torch_model(schema.encode(valid)))
    return np.flatnonzero(~favoured.numpy().astype(bool))


def _print_plans(batch: Any, frame: pd.DataFrame, show: int, reasons: Any = None) -> None:
    shown = 0
    for r in batch:
        if r.status != "found" or shown >= show:
            continue
        shown += 1
        console.print(f"\n[bold]Applicant {frame.index[r.row]}[/]:")
        if reasons is not None:
            console.print(reasons(r.row), highlight=False)
        console.print(_capped(r.describe()), highlight=False, markup=False)


def _print_failures(batch: Any, frame: pd.DataFrame, show: int = 5) -> None:
    """Say which rows failed and why (the first few), so exit code 1 never comes without a reason."""
    failed = [r for r in batch if r.status == "error"]
    for r in failed[:show]:
        _print_failure(frame.index[r.row], r.error)
    if len(failed) > show:
        errors.print(f"... and {len(failed) - show} more failed rows (all are in --json).", highlight=False)


def _print_failure(label: Any, message: str) -> None:
    """One failed row on stderr; a long message (a huge cell quoted in it) is cut, the full text is in --json."""
    errors.print(
        f"Row {_capped(str(label), 80)} not processed: {_capped(message)}", highlight=False, markup=False
    )


def _print_summary(batch: Any, seconds: float) -> None:
    summary = batch.summary()
    table = Table(
        "rows",
        "found",
        "not found",
        "already favourable",
        "errors",
        "median cost",
        "seconds",
        title="Summary",
    )
    table.add_row(
        str(summary["rows"]),
        str(summary["found"]),
        str(summary["not_found"]),
        str(summary["already_favourable"]),
        str(summary["error"]),
        f"{summary['cost_median']:.3g}" if math.isfinite(summary["cost_median"]) else "-",  # none found
        f"{seconds:.1f}",
    )
    console.print(table)


def _rows(frame: pd.DataFrame, rows: str | None) -> pd.DataFrame:
    """The rows at positions A:B (or the one row A); ``ConfigError`` when nothing is left to process."""
    chosen = frame
    if rows is not None:
        try:
            start, colon, stop = rows.partition(":")
            if not colon:
                chosen = frame.iloc[int(start) : int(start) + 1 or None]
            else:
                chosen = frame.iloc[
                    int(start) if start.strip() else None : int(stop) if stop.strip() else None
                ]
        except ValueError:
            raise ConfigError(
                f"--rows {rows!r}: give a range A:B of row positions, e.g. 0:100 (or one position, e.g. 7)."
            ) from None
    if chosen.empty:
        selected = "" if rows is None else f" --rows {rows!r} selects no rows of the {len(frame)}."
        raise ConfigError(
            f"no rows to process: the data has {len(frame)} row(s).{selected} Give data with rows, and "
            f"--rows within 0:{len(frame)}."
        )
    return chosen


def _writable(reads: tuple[Path | None, ...] = (), **paths: Path | None) -> None:
    """Output files are checked (and locked against other runs) before any work, so a typo in a folder name
    or a clash with another run never costs a finished run. An output that is one of the files the command
    ``reads`` (or lies in a model folder it reads) is refused: ``--json rows.csv`` replaced the data."""
    inputs = [Path(os.path.realpath(p)) for p in reads if p is not None]
    for option, path in paths.items():
        if path is None:
            continue
        target = Path(os.path.realpath(path))
        clash = next((p for p in inputs if target == p or p in target.parents), None)
        if clash is not None:
            raise ConfigError(
                f"--{option} {path}: is an input of this run ({clash}); writing it would replace it. Choose "
                "another output path."
            )
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise ConfigError(f"--{option} {path}: is a folder; give a file name inside it.")
        try:
            files.check_target(path)
        except ConfigError as exc:
            raise ConfigError(f"--{option} {exc}") from None
        if not folder.is_dir():
            raise ConfigError(
                f"--{option} {path}: folder {folder} does not exist; create it or choose another path."
            )
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"--{option} {path}: folder {folder} is not writable; choose another path.")
        if _outputs:  # held until the command ends: a second run writing the same path is refused now
            try:
                _outputs[-1].enter_context(files.locked(path))
            except ConfigError as exc:
                raise ConfigError(f"--{option} {exc}") from None


def _relabelled(batch: Any, frame: pd.DataFrame) -> Any:
    """The batch with each record's ``row`` the input row it answers (the CSV's data row, or the dataset's
    row label), not its position in the selection processed."""
    from actionable.results import Recourse, RecourseBatch

    labels = [int(v) if isinstance(v, int | np.integer) else v for v in frame.index]
    return RecourseBatch(tuple(Recourse(**{**r.__dict__, "row": labels[r.row]}) for r in batch))


@app.command("synthesize")
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
    margin: Annotated[float, typer.Option(help="How far past the decision boundary plans go.")] = 0.1,
    search: Annotated[
        str, typer.Option(help="bfs (exhaustive), objective or gradient (best-first).")
    ] = "bfs",
    budget: Annotated[int | None, typer.Option(help="Best-first only: sequences tried per person.")] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write JSON Lines, one record per row.")
    ] = None,
    show: Annotated[int, typer.Option(help="Plans to print.")] = 5,
    figure: Annotated[
        Path | None, typer.Option(help="Drawings only (quickdraw): PNG of found plans, added strokes in red.")
    ] = None,
) -> None:
    """Cheapest verified action sequences that flip the model's decision, one per row."""
    _writable(reads=(data, schema, actions, model), json=json_path, figure=figure)
    import time

    from actionable.actions import ActionSet
    from actionable.models import load_model
    from actionable.schema import Schema

    if dataset is not None:
        if any(v is not None for v in (data, schema, actions, model)):
            raise ConfigError(
                "synthesize: give either --dataset, or --data --schema --actions --model; not both."
            )
        from actionable import datasets

        bundle = datasets.load(dataset)
        catalogue_path = bundle.path / "actions.toml"
        if not catalogue_path.is_file():
            raise ConfigError(f"synthesize: dataset {dataset!r} has no bundled actions.toml; pass --actions.")
        the_schema, the_model, frame = bundle.schema, bundle.model, bundle.X_test
        catalogue = ActionSet.from_toml(catalogue_path, the_schema)
        if max_length is None:
            max_length = int(bundle.info.get("synthesis", {}).get("max_length", 4))
    else:
        if data is None or schema is None or actions is None or model is None:
            raise ConfigError("synthesize: give --dataset NAME, or all of --data --schema --actions --model.")
        the_schema = Schema.from_toml(schema)
        the_model = load_model(model, schema=the_schema)
        catalogue = ActionSet.from_toml(actions, the_schema)
        frame = read_csv(data, the_schema)
    frame = _rows(frame, rows)
    if figure is not None:  # fail before a long search, not after it
        from actionable.drawing import strokes

        strokes(dict.fromkeys(the_schema.names, 1.0))
    started = time.perf_counter()
    options: dict[str, Any] = {"budget": budget} if budget is not None else {}
    batch = _synthesize_with_progress(
        the_model,
        frame,
        catalogue,
        max_length=4 if max_length is None else max_length,
        steps=steps,
        margin=margin,
        search=search,
        **options,
    )
    _print_plans(batch, frame, show)
    _print_summary(batch, time.perf_counter() - started)
    _print_failures(batch, frame)
    if json_path is not None:
        _relabelled(batch, frame).to_jsonl(json_path)
        console.print(f"wrote {len(batch)} records to {json_path}")
    if figure is not None:
        from actionable.drawing import draw_recourse

        with files.atomic_path(figure) as temp:
            draw_recourse(batch, temp)
        console.print(f"wrote {figure}")
    if batch.summary()["error"]:
        raise typer.Exit(code=1)


@app.command("explain")
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
    _writable(reads=(data, schema, model), json=json_path, figure=figure)
    from actionable.attribution import attribute, standard_deviations, training_mean
    from actionable.models import load_model
    from actionable.schema import Schema

    if dataset is not None:
        if any(v is not None for v in (data, schema, model)):
            raise ConfigError("explain: give either --dataset, or --data --schema --model; not both.")
        from actionable import datasets

        bundle = datasets.load(dataset)
        the_schema, the_model, frame, reference = bundle.schema, bundle.model, bundle.X_test, bundle.X_train
        models = dict(bundle.models)
    else:
        if data is None or schema is None or model is None:
            raise ConfigError("explain: give --dataset NAME, or all of --data --schema --model.")
        the_schema = Schema.from_toml(schema)
        the_model = load_model(model, schema=the_schema)
        frame = read_csv(data, the_schema)
    bad_rows = the_schema.row_errors(frame)
    if dataset is None:
        usable = sorted(set(range(len(frame))) - set(bad_rows))
        reference, models = the_schema.validate(frame.iloc[usable]), {"model": the_model}
    chosen = _rows(frame, rows)
    # rows that do not fit the schema are reported (and recorded in --json), the others explained
    problems = {frame.index[i]: message for i, message in bad_rows.items()}
    failed = {label: problems[label] for label in chosen.index if label in problems}
    chosen = the_schema.validate(chosen.drop(index=list(failed)))
    if chosen.empty:  # as synthesize does: one error record per row, the reasons on screen, exit 1
        _write_attributions(json_path, [], failed, frame)
        for label, message in failed.items():
            _print_failure(label, message)
        errors.print(f"explain: none of the {len(failed)} rows selected fits the schema.", highlight=False)
        raise typer.Exit(code=1)
    if advise:
        _explain_advice(models, the_model, chosen, reference, target, figure)
        for label, message in failed.items():
            _print_failure(label, message)
        if failed:
            raise typer.Exit(code=1)
        return
    if baseline not in ("mean", "zeros"):
        raise ConfigError(f"explain: --baseline {baseline!r}; use mean or zeros.")
    exact = method in ("integrated_gradients", "deeplift", "coefficients")
    result = attribute(
        the_model,
        chosen,
        method,  # type: ignore[arg-type]
        target=target,
        baseline=training_mean(the_schema, reference) if exact and baseline == "mean" else None,
        steps=steps,
        scale=standard_deviations(the_schema, reference) if method == "gradient" else None,
    )
    if exact:
        mean_of = "training mean" if dataset is not None else f"mean of {data}"
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
    _write_attributions(json_path, result.to_records(top), failed, frame)
    if figure is not None:
        from actionable.plotting import plot_attribution, save

        with files.atomic_path(figure) as temp:
            save(plot_attribution(result, 0 if len(result) == 1 else None), temp)
        console.print(f"wrote {figure}")
    for label, message in failed.items():
        _print_failure(label, message)
    if failed:
        raise typer.Exit(code=1)


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
    order = [label for label in frame.index if label in records]
    with files.atomic_write(json_path) as handle:
        for label in order:
            handle.write(json.dumps(records[label], default=_plain_json) + "\n")
    console.print(f"wrote {len(order)} records to {json_path}")


def _plain_json(value: Any) -> Any:
    """numpy scalars (row labels) as plain JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


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


@app.command("invert")
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
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write JSON Lines: one record per row and budget.")
    ] = None,
    figure: Annotated[Path | None, typer.Option(help="Write a PNG: mean probability against budget.")] = None,
    show: Annotated[int, typer.Option(help="Changes to print (at the largest budget).")] = 3,
) -> None:
    """Budget-constrained inverse classification (Lash et al.): the best change within each budget."""
    _writable(reads=(data, schema, lash_indices, model, indirect_model), json=json_path, figure=figure)
    from actionable.inverse import invert_sweep, plot_curves, sweep_curve
    from actionable.lash import reference_curve, schema_from_indices
    from actionable.models import load_model
    from actionable.schema import Schema

    reference = None
    if dataset is not None:
        if any(v is not None for v in (data, schema, lash_indices, model, indirect_model)):
            raise ConfigError(
                "invert: give either --dataset, or --data with --schema/--lash-indices and --model."
            )
        from actionable import datasets

        bundle = datasets.load(dataset)
        the_schema, the_model = bundle.schema, bundle.model
        the_indirect = bundle.models.get("indirect")
        frame: pd.DataFrame = bundle.X_test
        labels: pd.Series | None = bundle.y_test
        shipped = bundle.path / "invresult_pos_only.csv"
        if shipped.is_file() and pos_only and rows is None:
            reference = reference_curve(shipped)
    else:
        if data is None or model is None or (schema is None) == (lash_indices is None):
            raise ConfigError(
                "invert: give --dataset NAME, or --data CSV --model DIR with exactly one of --schema TOML "
                "or --lash-indices CSV (and --indirect-model DIR if the schema has indirect features)."
            )
        if schema is not None:
            the_schema = Schema.from_toml(schema)
            raw = read_csv(data, the_schema)
        else:
            raw = read_csv(data)
            the_schema = schema_from_indices(lash_indices, raw)  # type: ignore[arg-type]
        the_model = load_model(model, schema=the_schema)
        the_indirect = load_model(indirect_model, schema=the_schema) if indirect_model is not None else None
        frame = raw
        target = the_schema.target.name if the_schema.target is not None else None
        labels = raw[target] if target is not None and target in raw.columns else None
    if pos_only and labels is not None and the_schema.target is not None:
        favourable = the_schema.target.favourable
        kept = frame[[str(v) != str(favourable) for v in labels]]
        if kept.empty and not frame.empty:
            raise ConfigError(
                f"invert: all {len(frame)} rows are labelled {favourable!r} (favourable), so --pos-only leaves "
                "nothing to invert; pass --all-rows to process them anyway."
            )
        frame = kept
    frame = _rows(frame, rows)
    sweep = invert_sweep(
        the_model,
        frame,
        the_schema,
        budgets=_budgets(budget),
        indirect=the_indirect,
        steps=steps,
        method=method,  # type: ignore[arg-type]
        rounding=whole,
    )
    curve = sweep_curve(sweep)
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
    largest = sweep[max(sweep)]
    _print_plans(largest, frame, show)
    console.print(table)
    _print_failures(largest, frame)
    if reference is not None:
        console.print("reference: the result shipped with Lash et al.'s code, on their own models.")
    if json_path is not None:
        with files.atomic_write(json_path) as handle:
            for batch in sweep.values():
                for r in _relabelled(batch, frame):
                    handle.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        console.print(f"wrote {len(sweep) * len(largest)} records to {json_path}")
    if figure is not None:
        curves = {f"ours ({method}{', whole' if whole else ''})": curve}
        if reference is not None:
            curves["reference (Lash et al.)"] = reference
        with files.atomic_path(figure) as temp:
            plot_curves(curves, temp, title=dataset or (data.name if data is not None else ""))
        console.print(f"wrote {figure}")
    if any(r.status == "error" for batch in sweep.values() for r in batch):
        raise typer.Exit(code=1)


def _budgets(text: str) -> list[float]:
    """Budgets from "3", "0:10" (step 1), "0:10:0.5" or "1,2,5": finite, >= 0, at most ``MAX_BUDGETS``.

    A range is counted before it is built, so ``0:1e9`` is refused at once instead of filling memory."""
    fix = "give a number (3), a range (0:10, or 0:10:0.5 with a step) or a list (1,2,5)"
    shown = _capped(repr(text), 80)
    try:
        if ":" in text:
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
            values = [start + i * step for i in range(count)]
        else:
            values = [float(p) for p in text.split(",") if p.strip()]
    except ConfigError:
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


@app.command("demo")
@friendly
def demo_command() -> None:
    """Run the main job on bundled German credit with its default model (no arguments)."""
    import time

    import torch

    from actionable import datasets
    from actionable.actions import ActionSet
    from actionable.goals import resolve_goal

    data = datasets.load("german")
    model = data.model
    metrics = model.provenance.get("metrics", {})
    console.print(
        f"[bold]{data.title}[/]: {len(data.frame)} applicants, {len(data.schema)} features "
        f"({sum(f.mutable for f in data.schema.features)} changeable)."
    )
    console.print(
        f"Default model: {_describe_network(model)}; test accuracy {metrics.get('test_accuracy', float('nan')):.3f}."
    )
    goal = resolve_goal(model)
    with torch.no_grad():
        favourable = goal.satisfied(model(data.schema.encode(data.X_test))).numpy()
    denied: pd.DataFrame = data.X_test.loc[~favourable]
    console.print(
        f"Of {len(data.X_test)} test applicants the model denies {len(denied)}; "
        "finding the cheapest verified plan for each (at most 4 actions):"
    )
    catalogue = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    started = time.perf_counter()
    batch = _synthesize_with_progress(model, denied, catalogue, max_length=4)
    _print_plans(batch, denied, 5, reasons=_denial_reasons(model, denied, data.X_train))
    _print_summary(batch, time.perf_counter() - started)


def _denial_reasons(model: Any, denied: pd.DataFrame, train: pd.DataFrame) -> Callable[[int], str]:
    """A sentence per denied row: the three features pulling hardest toward denial (Integrated
    Gradients of the favourable class's logit against the average training applicant)."""
    from actionable.attribution import attribute, training_mean

    result = attribute(model, denied, "integrated_gradients", baseline=training_mean(model.schema, train))
    tops = result.top(3, sign="negative")

    def sentence(row: int) -> str:
        person = denied.iloc[row]  # each reason shows this applicant's own value, e.g. savings '< 100 DM'
        named = ", ".join(f"{name} {_shown(person[name])} ({value:+.2f})" for name, value in tops[row])
        return f"Top reasons against approval (Integrated Gradients, logit, vs. the average applicant): {named or 'none'}."

    return sentence


def _shown(value: Any) -> str:
    """A raw value as text: a category level quoted, a number plain (24, not np.int64(24))."""
    plain = value.item() if isinstance(value, np.generic) else value
    if isinstance(plain, int | float) and not isinstance(plain, bool):
        return f"{plain:g}"
    return _capped(repr(_capped(str(plain), 60)), 80)  # a 5 MB cell is not echoed


def _describe_network(model: Any) -> str:
    from actionable import layers as L

    kinds = [m for m in getattr(model.network, "children", list)() if isinstance(m, L.Linear)]
    hidden = "x".join(str(m.out_features) for m in kinds[:-1])
    return f"MLP {hidden or 'linear'}"


def _printable_streams() -> None:
    """A terminal or pipe that cannot encode a name or level (``PYTHONIOENCODING=ascii``, a latin-1
    locale) shows it escaped rather than failing with a traceback (which would exit 1, "rows failed")."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]


def main() -> None:  # pragma: no cover
    _printable_streams()
    app()
