"""Bundled datasets: raw human-readable frames, their schemas, seeded splits and default models.

``load(name)`` reads everything from inside the installed package; nothing is downloaded. Frames are
shared between calls (loads are cached): treat them as read-only and copy before changing them.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from actionable.errors import ConfigError, DataError, ModelError, did_you_mean
from actionable.schema import Schema

__all__ = [
    "NAMES",
    "SPLITS",
    "Dataset",
    "folder",
    "load",
    "names",
]


if TYPE_CHECKING:
    from actionable.models import TorchModel

NAMES: tuple[str, ...] = ("german", "adult", "student", "california", "quickdraw")


def names() -> tuple[str, ...]:
    """The names of the bundled datasets."""
    return NAMES


@dataclass(frozen=True)
class Dataset:
    """One bundled dataset: the raw features, the target, the split, the schema and the default models.

    ``frame`` holds the raw features in schema order (validated, index 0..n-1), ``target`` the labels,
    ``split`` "train" / "val" / "test" per row, ``info`` the parsed ``dataset.json``. Loads are cached
    and shared: do not mutate ``frame``, ``target`` or ``split`` (copy them first). Val rows are in
    neither the train nor the test part.
    """

    name: str
    title: str
    description: str
    task: str
    frame: pd.DataFrame = field(repr=False)
    target: pd.Series = field(repr=False)
    split: pd.Series = field(repr=False)
    schema: Schema = field(repr=False)
    info: Mapping[str, Any] = field(repr=False)
    path: Path = field(repr=False)

    def _part(self, part: str) -> pd.Series:
        return self.split == part

    @property
    def X_train(self) -> pd.DataFrame:
        return self.frame[self._part("train")]

    @property
    def y_train(self) -> pd.Series:
        return self.target[self._part("train")]

    @property
    def X_val(self) -> pd.DataFrame:
        return self.frame[self._part("val")]

    @property
    def y_val(self) -> pd.Series:
        return self.target[self._part("val")]

    @property
    def X_test(self) -> pd.DataFrame:
        return self.frame[self._part("test")]

    @property
    def y_test(self) -> pd.Series:
        return self.target[self._part("test")]

    @property
    def models(self) -> Mapping[str, TorchModel]:
        """The default models shipped with the dataset, by name (empty if none are installed)."""
        return _models(self.name)

    @property
    def model(self) -> TorchModel:
        """The default model (``info["default_model"]``)."""
        default = str(self.info.get("default_model", ""))
        models = self.models
        if default not in models:
            raise ModelError(
                f"dataset {self.name!r}: its default model {default!r} is not installed; "
                f"run `actionable train --dataset {self.name} --out {self.path / 'models'}`."
            )
        return models[default]


def load(name: str) -> Dataset:
    """A bundled dataset by name; ``ConfigError`` listing the valid names otherwise."""
    if name not in NAMES:
        raise ConfigError(
            f"dataset {name!r} is not bundled; choose one of {list(NAMES)}." + did_you_mean(name, NAMES)
        )
    return _load(name)


def folder(name: str) -> Path:
    """The folder of a bundled dataset inside the installed package."""
    return Path(str(resources.files("actionable.datasets") / name))


SPLITS = ("train", "val", "test")


@functools.cache
def _load(name: str) -> Dataset:
    files = resources.files("actionable.datasets") / name
    where = f"bundled dataset {name!r}"
    schema = Schema.from_toml(files.joinpath("schema.toml").read_text(encoding="utf-8"))
    info = json.loads(files.joinpath("dataset.json").read_text(encoding="utf-8"))
    if schema.target is None:
        raise DataError(f"{where}: its schema.toml names no [target]; the bundle is damaged, reinstall it.")
    target_name = schema.target.name
    dtypes: dict[str, Any] = {
        f.name: "string" if f.is_category else ("int64" if f.is_whole else "float64") for f in schema.features
    }
    classes = schema.target.classes
    dtypes[target_name] = (
        "float64" if not classes else ("string" if all(isinstance(c, str) for c in classes) else "int64")
    )
    with (
        files.joinpath("data.csv.gz").open("rb") as packed,
        gzip.open(packed, "rt", encoding="utf-8") as text,
    ):
        raw = pd.read_csv(text, dtype=dtypes | {"split": "string"}, keep_default_na=False)
    frame = schema.validate(raw)
    target = raw[target_name].astype(object if dtypes[target_name] == "string" else dtypes[target_name])
    if classes and not target.isin(classes).all():
        raise DataError(
            f"{where}: column {target_name!r} has labels {sorted(set(target) - set(classes), key=str)} "
            f"outside the schema's classes {list(classes)}; the bundle is damaged, reinstall it."
        )
    split = raw["split"].astype(object)
    if not split.isin(SPLITS).all():
        raise DataError(f"{where}: column 'split' has values outside {list(SPLITS)}; reinstall the bundle.")
    path = folder(name)
    return Dataset(
        name=name,
        title=str(info["title"]),
        description=str(info["description"]),
        task=str(info["task"]),
        frame=frame,
        target=target.rename(target_name),
        split=split.rename("split"),
        schema=schema,
        info=info,
        path=path,
    )


@functools.cache
def _models(name: str) -> dict[str, TorchModel]:
    from actionable.models import load_model

    root = folder(name) / "models"
    schema = _load(name).schema
    if not root.is_dir():
        return {}
    return {
        d.name: load_model(d, schema=schema) for d in sorted(root.iterdir()) if (d / "model.json").is_file()
    }
