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

from actionable.errors import ConfigError, ModelError, did_you_mean
from actionable.schema import Schema

if TYPE_CHECKING:
    from actionable.models import TorchModel

NAMES: tuple[str, ...] = ("german", "adult", "student", "california")


def names() -> tuple[str, ...]:
    """The names of the bundled datasets."""
    return NAMES


@dataclass(frozen=True)
class Dataset:
    """One bundled dataset: the raw features, the target, the split, the schema and the default models."""

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
        """The default models shipped with the dataset, by name."""
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
    return Path(str(resources.files("actionable.datasets") / name))


@functools.cache
def _load(name: str) -> Dataset:
    path = folder(name)
    schema = Schema.from_toml(path / "schema.toml")
    info = json.loads((path / "dataset.json").read_text(encoding="utf-8"))
    dtypes: dict[str, Any] = {
        f.name: "string"
        if f.kind == "category"
        else ("int64" if f.kind in ("integer", "binary") else "float64")
        for f in schema.features
    }
    with gzip.open(path / "data.csv.gz", "rt", encoding="utf-8") as handle:
        raw = pd.read_csv(handle, dtype=dtypes | {"split": "string"}, keep_default_na=False)
    frame = schema.validate(raw)
    if schema.target is None:
        raise ConfigError(f"dataset {name!r}: its schema.toml names no [target]; the bundle is damaged.")
    target = raw[schema.target.name]
    if schema.target.classes:
        kinds = {type(c) for c in schema.target.classes}
        target = target.astype(object) if kinds == {str} else target.astype("int64")
    return Dataset(
        name=name,
        title=str(info["title"]),
        description=str(info["description"]),
        task=str(info["task"]),
        frame=frame,
        target=target.rename(schema.target.name),
        split=raw["split"].astype(object).rename("split"),
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
