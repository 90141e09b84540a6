"""What a command reads: a bundled ``--dataset`` or the user's own files, through one loader.

``load_source`` is the one place that chooses between the two (and says which options are missing or
clash); ``read_csv`` reads a user's table as the schema says, never guessed, refusing a header that repeats
or is absurdly wide; ``select_rows`` applies ``--rows A:B``.
"""

from __future__ import annotations

import csv
import dataclasses
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from actionable.cli._shell import capped
from actionable.csv_text import LONG_ROW, TEXT, typed
from actionable.errors import ConfigError, DataError

__all__ = ["MAX_COLUMNS", "Source", "labels_of", "load_source", "read_csv", "select_rows"]

if TYPE_CHECKING:
    from actionable.actions import ActionSet
    from actionable.datasets import Dataset
    from actionable.models import TorchModel
    from actionable.schema import Schema

MAX_COLUMNS = 10_000  # the most columns a CSV header may name (each costs a pass over its column)


@dataclasses.dataclass(frozen=True)
class Source:
    """What a command works on: the schema, the rows (a bundled dataset's test rows, or the user's CSV),
    the model and the action catalogue (when the command needs them), and the bundled dataset if named."""

    schema: Schema
    frame: pd.DataFrame
    model: TorchModel | None = None
    actions: ActionSet | None = None
    bundle: Dataset | None = None


def load_source(
    command: str,
    dataset: str | None,
    *,
    data: Path | None,
    schema: Path | None,
    model: Path | None = None,
    actions: Path | None = None,
    lash_indices: Path | None = None,
    others: tuple[Path | None, ...] = (),
    needs: tuple[str, ...] = (),
    complete: bool = True,
    either: str,
    missing: str,
) -> Source:
    """A bundled ``dataset`` or the user's files, never both (``either`` names the user's options in the
    message) and never half (``missing`` is the message). ``needs`` names what is loaded besides schema and
    rows ("model", "actions"); ``others`` are further user options that clash with ``--dataset``; ``complete``
    is False when an option the command checks itself is missing. The user's schema is ``schema`` (TOML) or
    ``lash_indices`` (Lash et al.'s index file read against the CSV), exactly one."""
    given = (data, schema, model, actions, lash_indices, *others)
    if dataset is not None:
        if any(p is not None for p in given):
            raise ConfigError(f"{command}: give either --dataset, or {either}; not both.")
        return _bundled(command, dataset, needs)
    named = {"model": model, "actions": actions}
    if data is None or not complete or (schema is None) == (lash_indices is None):
        raise ConfigError(missing)
    if any(named[need] is None for need in needs):
        raise ConfigError(missing)
    return _users(data, schema, lash_indices, model if "model" in needs else None, actions)


def _bundled(command: str, name: str, needs: tuple[str, ...]) -> Source:
    from actionable import datasets
    from actionable.actions import ActionSet

    bundle = datasets.load(name)
    catalogue = None
    if "actions" in needs:
        path = bundle.path / "actions.toml"
        if not path.is_file():
            raise ConfigError(f"{command}: dataset {name!r} has no bundled actions.toml; pass --actions.")
        catalogue = ActionSet.from_toml(path, bundle.schema)
    model = bundle.model if "model" in needs else None
    return Source(bundle.schema, bundle.X_test, model, catalogue, bundle)


def _users(
    data: Path, schema: Path | None, lash_indices: Path | None, model: Path | None, actions: Path | None
) -> Source:
    from actionable.actions import ActionSet
    from actionable.lash import schema_from_indices
    from actionable.models import load_model
    from actionable.schema import Schema

    raw = None
    if schema is not None:
        the_schema = Schema.from_toml(schema)
    else:
        raw = read_csv(data)
        the_schema = schema_from_indices(lash_indices, raw)  # type: ignore[arg-type]
    the_model = load_model(model, schema=the_schema) if model is not None else None
    catalogue = ActionSet.from_toml(actions, the_schema) if actions is not None else None
    frame = raw if raw is not None else read_csv(data, the_schema)
    return Source(the_schema, frame, the_model, catalogue)


def read_csv(path: Path, schema: Schema | None = None) -> pd.DataFrame:
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
            text = pd.read_csv(path, **TEXT)
    except pd.errors.ParserWarning:
        raise DataError(f"{path}: {LONG_ROW}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as CSV ({capped(str(exc), 300)}).") from None
    return typed(text, schema)


def _check_header(path: Path) -> None:
    """Refuse a header that names a column twice (pandas would silently rename it ``name.1``)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, skipinitialspace=True), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read its header row as CSV ({capped(str(exc), 300)}).") from None
    if len(header) > MAX_COLUMNS:
        raise DataError(
            f"{path}: the header row names {len(header)} columns (at most {MAX_COLUMNS}); keep the schema's "
            "columns and the label, and drop the rest."
        )
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise DataError(
            f"{path}: column {capped(repr(repeated[0]), 80)} appears more than once in the header row; "
            "give each column one unique name."
        )


def select_rows(frame: pd.DataFrame, rows: str | None) -> pd.DataFrame:
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


def labels_of(source: Source) -> Any:
    """The true labels of the rows, when known: a bundled dataset's test labels, or the CSV's column named
    by the schema's [target]; else None."""
    if source.bundle is not None:
        return source.bundle.y_test
    target = source.schema.target.name if source.schema.target is not None else None
    return source.frame[target] if target is not None and target in source.frame.columns else None
