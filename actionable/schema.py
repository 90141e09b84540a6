"""Features and schemas: what a person's raw columns are, which may change, and the one canonical tensor.

A ``Schema`` owns the encoding between raw frames (age in years, job as a category) and the canonical
tensor every model reads: one column per real / integer / binary feature in raw units, one one-hot block
per category feature. Bounds, costs, actions and conditions are all written in raw units.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable.columns import clean_frame, decode_block, encode_frame, infer_feature, row_problems
from actionable.errors import DataError, SpecError, did_you_mean, shown
from actionable.features import (
    DIRECTIONS as DIRECTIONS,
)
from actionable.features import (
    KINDS as KINDS,
)
from actionable.features import (
    MUTABILITIES as MUTABILITIES,
)
from actionable.features import (
    Direction as Direction,
)
from actionable.features import (
    Feature as Feature,
)
from actionable.features import (
    Kind as Kind,
)
from actionable.features import (
    Label as Label,
)
from actionable.features import (
    Mutability as Mutability,
)
from actionable.features import (
    Target as Target,
)
from actionable.features import (
    feature_from_table,
    feature_toml,
    target_from_table,
    target_toml,
)
from actionable.specfile import (
    check_keys as check_keys,
)
from actionable.specfile import (
    is_number as is_number,
)
from actionable.specfile import (
    normal_name as normal_name,
)
from actionable.specfile import (
    read_toml as read_toml,
)
from actionable.specfile import (
    toml_value,
)
from actionable.specfile import (
    type_name as type_name,
)

__all__ = ["DTYPE", "MAX_FEATURES", "Schema", "as_rows"]

DTYPE = torch.float64
MAX_FEATURES = 10_000


@dataclass(frozen=True)
class Schema:
    """An ordered tuple of features plus the target; validates, encodes and decodes raw frames."""

    features: tuple[Feature, ...]
    target: Target | None = None
    name: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _slices: tuple[slice, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        features = tuple(self.features)
        if not features:
            raise SpecError("schema: no features; declare at least one [[feature]].")
        index: dict[str, int] = {}
        for i, feature in enumerate(features):
            if not isinstance(feature, Feature):
                raise SpecError(f"schema: entry {i} is a {type(feature).__name__}, not a Feature.")
            if feature.name in index:
                raise SpecError(f"schema: feature {feature.name!r} is declared twice; names must be unique.")
            index[feature.name] = i
        if self.target is not None and self.target.name in index:
            raise SpecError(f"schema: the target {self.target.name!r} is also declared as a feature.")
        starts = np.cumsum([0] + [f.width for f in features])
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "_index", index)
        object.__setattr__(
            self, "_slices", tuple(slice(int(a), int(b)) for a, b in itertools.pairwise(starts))
        )

    # ----------------------------------------------------------------- lookup
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the canonical tensor's columns, in order."""
        return tuple(c for f in self.features for c in f.columns)

    @property
    def width(self) -> int:
        return int(self._slices[-1].stop)

    def __len__(self) -> int:
        return len(self.features)

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Feature:
        return self.features[self.position(name)]

    def position(self, name: str) -> int:
        """Index of a feature in the schema; SpecError with a hint for an unknown name."""
        try:
            return self._index[name]
        except KeyError:
            raise SpecError(
                f"schema: unknown feature {name!r}."
                + did_you_mean(name, self._index)
                + f" Features are {list(self._index)}."
            ) from None

    def slice(self, name: str) -> slice:
        """The canonical columns of one feature."""
        return self._slices[self.position(name)]

    def mask(self, mutability: Mutability) -> torch.Tensor:
        """Boolean mask over canonical columns of the features with this mutability."""
        out = torch.zeros(self.width, dtype=torch.bool)
        for feature, cols in zip(self.features, self._slices, strict=True):
            if feature.mutability == mutability:
                out[cols] = True
        return out

    def bounds_tensor(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds per canonical column (one-hot columns are [0, 1])."""
        lo = torch.zeros(self.width, dtype=DTYPE)
        hi = torch.ones(self.width, dtype=DTYPE)
        for feature, cols in zip(self.features, self._slices, strict=True):
            if not feature.is_category:
                lo[cols], hi[cols] = feature.bounds
        return lo, hi

    @property
    def hash(self) -> str:
        """sha256 of what the canonical encoding depends on (names, order, kinds, levels).

        Model files record it: a model fits any schema with the same encoding, so descriptions, bounds,
        mutability and costs can be edited without retraining.
        """
        encoding = [[f.name, f.kind, list(f.levels)] for f in self.features]
        return hashlib.sha256(json.dumps(encoding, ensure_ascii=False).encode()).hexdigest()

    def with_features(self, **changes: Mapping[str, Any]) -> Schema:
        """A copy with some features' fields replaced, e.g. ``with_features(age={"mutability": "direct"})``."""
        features = list(self.features)
        for name, fields in changes.items():
            features[self.position(name)] = replace(self[name], **dict(fields))
        return Schema(tuple(features), self.target, self.name)

    # ------------------------------------------------------------- validation
    def row_errors(self, frame: pd.DataFrame) -> dict[int, str]:
        """Per-row problems (row position -> message); frame-level problems raise ``DataError``."""
        return row_problems(self.features, _as_frame(frame, self))

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame's schema columns, in schema order, with clean types; ``DataError`` naming row, column, value."""
        frame = _as_frame(frame, self)
        errors = self.row_errors(frame)
        if errors:
            shown = list(errors.values())[:5]
            more = f" (and {len(errors) - 5} more rows)" if len(errors) > 5 else ""
            raise DataError("data: " + " | ".join(shown) + more)
        return clean_frame(self.features, frame)

    # --------------------------------------------------------------- encoding
    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """Validate a raw frame and return the canonical tensor (n x width, float64)."""
        clean = self.validate(frame)
        return self.assemble(encode_frame(self.features, clean, DTYPE))

    def assemble(self, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable encode: per-feature tensors (values, or one-hot blocks) -> canonical tensor."""
        columns = []
        for feature in self.features:
            if feature.name not in parts:
                raise DataError(f"assemble: no values for feature {feature.name!r}.")
            part = parts[feature.name]
            columns.append(part if feature.is_category else part.unsqueeze(-1))
        return torch.cat(columns, dim=-1)

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable view of a canonical tensor: feature name -> values (or one-hot block)."""
        self._check_width(x)
        return {
            f.name: x[..., s] if f.is_category else x[..., s.start]
            for f, s in zip(self.features, self._slices, strict=True)
        }

    def decode(self, x: torch.Tensor | np.ndarray, index: Sequence[Any] | None = None) -> pd.DataFrame:
        """Canonical tensor -> raw frame: categories by their largest column, integers and binaries rounded."""
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        self._check_width(array)
        out = {
            f.name: decode_block(f, array[:, cols])
            for f, cols in zip(self.features, self._slices, strict=True)
        }
        return pd.DataFrame(out, index=None if index is None else list(index))

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Min-max scale numeric columns to [0, 1] by the schema's bounds (the space of Lash et al.)."""
        lo, span = self._unit_affine(x)
        return (x - lo) / span

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Inverse of ``to_unit``."""
        lo, span = self._unit_affine(u)
        return u * span + lo

    def _unit_affine(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_width(x)
        lo, hi = self.bounds_tensor()
        infinite = [f.name for f in self.features if not all(map(math.isfinite, f.bounds))]
        if infinite:
            raise DataError(
                f"schema: features {infinite} have infinite bounds, so they cannot be scaled to [0, 1]; "
                "give them finite 'bounds' in the schema."
            )
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return lo.to(x.dtype), span.to(x.dtype)

    def _check_width(self, x: torch.Tensor | np.ndarray) -> None:
        if x.shape[-1] != self.width:
            raise DataError(
                f"tensor: has {x.shape[-1]} columns, the schema's canonical encoding has {self.width} "
                f"({', '.join(self.columns[:6])}{', ...' if self.width > 6 else ''})."
            )

    # ------------------------------------------------------------------- TOML
    @classmethod
    def from_toml(cls, source: str | Path) -> Schema:
        """Read a schema from a TOML file (or TOML text); ``SpecError`` names file, entry, key and fix."""
        data, where = read_toml(source, "schema")
        return cls.from_dict(data, where=where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "schema") -> Schema:
        """Build a schema from the parsed TOML structure, checking every key."""
        check_keys(where, "top level", data, {"name", "target", "feature"})
        target = target_from_table(where, data["target"]) if "target" in data else None
        entries = data.get("feature", [])
        if not isinstance(entries, list) or not entries:
            raise SpecError(f"{where}: no [[feature]] entries; declare each column as a [[feature]] table.")
        if len(entries) > MAX_FEATURES:
            raise SpecError(f"{where}: {len(entries)} features (at most {MAX_FEATURES}); split the table.")
        name = data.get("name", "")
        if not isinstance(name, str):
            raise SpecError(
                f"{where}, key 'name': must be a string, got {shown(name)} ({type_name(name)}); quote it."
            )
        features = [feature_from_table(where, i, entry) for i, entry in enumerate(entries)]
        try:
            return cls(tuple(features), target, name)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None

    def to_toml(self) -> str:
        """Canonical TOML text; ``Schema.from_toml(s.to_toml()) == s``."""
        lines: list[str] = []
        if self.name:
            lines.append(f"name = {toml_value(self.name)}")
        if self.target is not None:
            lines += ["", *target_toml(self.target)]
        for f in self.features:
            lines += ["", *feature_toml(f)]
        return "\n".join(lines).lstrip("\n") + "\n"

    def save(self, path: str | Path) -> None:
        """Write ``to_toml()`` to a file (UTF-8)."""
        Path(path).write_text(self.to_toml(), encoding="utf-8")

    # ------------------------------------------------------------ inference
    @classmethod
    def infer(
        cls,
        frame: pd.DataFrame,
        *,
        target: str | None = None,
        favourable: Label | None = None,
        max_levels: int = 50,
    ) -> Schema:
        """A starting schema from a frame: kinds, bounds and levels from the data, every feature fixed."""
        features = [infer_feature(name, frame[name], max_levels) for name in frame.columns if name != target]
        tgt = None
        if target is not None:
            if target not in frame.columns:
                raise DataError(
                    f"data: target column {target!r} not found." + did_you_mean(target, frame.columns)
                )
            classes = tuple(sorted(pd.unique(frame[target]).tolist(), key=str))
            tgt = Target(target, favourable=favourable, classes=classes if favourable is not None else ())
        return cls(tuple(features), tgt)


def _as_frame(frame: Any, schema: Schema) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, pd.Series):
        return frame.to_frame().T
    if isinstance(frame, Mapping):
        return pd.DataFrame([frame])
    raise DataError(
        f"data: expected a pandas DataFrame with columns {list(schema.names)[:6]}...; got {type(frame).__name__}. "
        "Build one with pandas.DataFrame(rows, columns=schema.names)."
    )


def as_rows(X: Any) -> Any:
    """A batch of raw rows: a DataFrame as given, a Series or a mapping (one person) as a one-row frame
    (keeping the Series' name as its index label); anything else is returned for the caller to refuse."""
    if isinstance(X, pd.Series):
        return X.to_frame().T
    if isinstance(X, Mapping):
        return pd.DataFrame([X])
    return X
