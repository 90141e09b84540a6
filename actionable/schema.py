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
import numbers
import sys
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch

from actionable.errors import DataError, SpecError, did_you_mean, shown

Kind = Literal["real", "integer", "binary", "category"]
Mutability = Literal["fixed", "direct", "indirect"]
Direction = Literal["increase", "decrease", "both"]
Label = str | int | float | bool

KINDS: tuple[str, ...] = get_args(Kind)
MUTABILITIES: tuple[str, ...] = get_args(Mutability)
DIRECTIONS: tuple[str, ...] = get_args(Direction)
DTYPE = torch.float64
MAX_FILE_BYTES = 4 * 1024**2  # a spec file is a page of text written by a person
MAX_KEY_DEPTH = 32  # dotted keys / table headers (tomllib is quadratic in a dotted key's length)
MAX_NESTING = 16  # tables and arrays inside each other (the bundled specs need 5)
MAX_FEATURES = 10_000
MAX_LEVELS = 10_000
MAX_NAME = 200  # characters of a feature, level or target name


@dataclass(frozen=True)
class Feature:
    """One raw column: its kind, bounds, whether and how it may change, and the cost per raw unit of change."""

    name: str
    kind: Kind = "real"
    bounds: tuple[float, float] = (-math.inf, math.inf)
    levels: tuple[str, ...] = ()
    mutability: Mutability = "fixed"
    direction: Direction = "both"
    cost_up: float | None = None
    cost_down: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"feature {shown(self.name)}"
        if not isinstance(self.name, str) or not self.name or len(self.name) > MAX_NAME:
            raise SpecError(
                f"{where}: 'name' must be a non-empty string of at most {MAX_NAME} characters; "
                f"got {shown(self.name)} ({type_name(self.name)})."
            )
        if not normal_name(self.name):  # expressions are parsed as Python, which reads names in NFKC
            raise SpecError(
                f"{where}: the name is not in Unicode normal form NFKC "
                f"({shown(unicodedata.normalize('NFKC', self.name))}), so an expression naming it would read "
                "another name; write it in that form."
            )
        for key in ("kind", "mutability", "direction", "description"):
            value = getattr(self, key)
            if not isinstance(value, str):
                raise SpecError(
                    f"{where}: {key!r} must be a string, got {shown(value)} ({type_name(value)}); "
                    "quote it in the file."
                )
        _choice(where, "kind", self.kind, KINDS)
        _choice(where, "mutability", self.mutability, MUTABILITIES)
        _choice(where, "direction", self.direction, DIRECTIONS)
        if self.kind == "category" and self.direction != "both":
            raise SpecError(
                f"{where}: direction = {self.direction!r} on a category feature would be ignored (its levels "
                "have no order); direction applies to real, integer and binary features, so remove it."
            )
        if self.kind == "category":
            if not isinstance(self.levels, list | tuple) or len(self.levels) > MAX_LEVELS:
                raise SpecError(
                    f"{where}: 'levels' must be a list of at most {MAX_LEVELS} strings; "
                    f"got {shown(self.levels)} ({type_name(self.levels)})."
                )
            for level in self.levels:
                if not isinstance(level, str) or len(level) > MAX_NAME:
                    raise SpecError(
                        f"{where}: each level must be a string of at most {MAX_NAME} characters; got "
                        f'{shown(level)} ({type_name(level)}); quote it, e.g. levels = ["a", "b"].'
                    )
            levels = tuple(self.levels)
            if len(levels) < 2:
                raise SpecError(
                    f"{where}: a category needs 'levels' with at least two entries; got {levels!r}."
                )
            if len(set(levels)) != len(levels):
                raise SpecError(f"{where}: 'levels' has duplicates: {levels!r}. List each level once.")
            object.__setattr__(self, "levels", levels)
            object.__setattr__(self, "bounds", (0.0, float(len(levels) - 1)))
        elif self.levels:
            raise SpecError(f"{where}: 'levels' is only for kind = 'category' (this one is {self.kind!r}).")
        if self.kind == "binary":
            if (
                not isinstance(self.bounds, list | tuple)
                or not all(is_number(b) for b in self.bounds)
                or tuple(self.bounds) not in ((-math.inf, math.inf), (0, 1))
            ):
                raise SpecError(f"{where}: a binary feature has bounds [0, 1]; got {shown(self.bounds)}.")
            object.__setattr__(self, "bounds", (0.0, 1.0))
        lo, hi = _bounds(where, self.bounds)
        object.__setattr__(self, "bounds", (lo, hi))
        for key in ("cost_up", "cost_down"):
            cost = getattr(self, key)
            if cost is None:
                continue
            if (
                isinstance(cost, bool)
                or not isinstance(cost, int | float)
                or not math.isfinite(cost)
                or cost < 0
            ):
                raise SpecError(
                    f"{where}: {key!r} must be a finite number >= 0 (cost per raw unit); got {shown(cost)} "
                    f"({type_name(cost)})."
                )
            object.__setattr__(self, key, float(cost))

    @property
    def width(self) -> int:
        """Columns this feature takes in the canonical tensor."""
        return len(self.levels) if self.kind == "category" else 1

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of this feature's canonical columns (``name=level`` for a one-hot block)."""
        if self.kind == "category":
            return tuple(f"{self.name}={level}" for level in self.levels)
        return (self.name,)

    @property
    def mutable(self) -> bool:
        """Whether anything may change it (directly, or through the indirect model)."""
        return self.mutability != "fixed"

    # Predicates, so code asks what a feature is instead of comparing kind strings.
    @property
    def is_category(self) -> bool:
        return self.kind == "category"

    @property
    def is_binary(self) -> bool:
        return self.kind == "binary"

    @property
    def is_integer(self) -> bool:
        return self.kind == "integer"

    @property
    def is_whole(self) -> bool:
        """Its values are whole numbers (an integer or a binary feature)."""
        return self.kind in ("integer", "binary")

    @property
    def is_fixed(self) -> bool:
        return self.mutability == "fixed"

    @property
    def is_direct(self) -> bool:
        return self.mutability == "direct"

    @property
    def is_indirect(self) -> bool:
        return self.mutability == "indirect"

    @property
    def may_increase(self) -> bool:
        """The declared direction allows a rise (``increase`` or ``both``)."""
        return self.direction in ("increase", "both")

    @property
    def may_decrease(self) -> bool:
        """The declared direction allows a fall (``decrease`` or ``both``)."""
        return self.direction in ("decrease", "both")

    def level_index(self, level: object) -> int:
        """Position of a level in this category's block; SpecError naming the valid levels otherwise."""
        try:
            return self.levels.index(str(level))
        except ValueError:
            raise SpecError(
                f"feature {self.name!r}: unknown level {level!r}; levels are {list(self.levels)}."
                + did_you_mean(level, self.levels)
            ) from None


@dataclass(frozen=True)
class Target:
    """What the model predicts and which outcome is favourable: a class label, or a regression threshold."""

    name: str
    favourable: Label | None = None
    classes: tuple[Label, ...] = ()
    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:
        where = f"[target] {shown(self.name)}"
        if not isinstance(self.name, str) or not self.name or len(self.name) > MAX_NAME:
            raise SpecError(
                f"{where}: 'name' must be a non-empty string (the label column); got {shown(self.name)} "
                f"({type_name(self.name)})."
            )
        chosen = [k for k in ("favourable", "above", "below") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise SpecError(f"{where}: give one of 'favourable', 'above' or 'below'; got {chosen}.")
        if self.favourable is not None and not _is_label(self.favourable):
            raise SpecError(
                f"{where}: 'favourable' must be a class label (a string, a whole number or true/false); got "
                f"{shown(self.favourable)} ({type_name(self.favourable)})."
            )
        for key in ("above", "below"):
            value = getattr(self, key)
            if value is not None and not (is_number(value) and math.isfinite(value)):
                raise SpecError(
                    f"{where}: {key!r} must be a finite number; got {shown(value)} ({type_name(value)})."
                )
        if isinstance(self.classes, str | bytes) or not isinstance(self.classes, list | tuple):
            raise SpecError(
                f"{where}: 'classes' must be a list of labels; got {shown(self.classes)} "
                f"({type_name(self.classes)})."
            )
        for label in self.classes:
            if not _is_label(label):
                raise SpecError(
                    f"{where}: each of 'classes' must be a label (a string, a whole number or true/false); "
                    f"got {shown(label)} ({type_name(label)})."
                )
        repeated = [c for i, c in enumerate(self.classes) if c in self.classes[:i]]
        if repeated:
            raise SpecError(
                f"{where}: 'classes' lists {shown(repeated[0])} more than once (got {shown(list(self.classes))}); "
                "list each class once, in the model's output order."
            )
        if len(self.classes) == 1:
            raise SpecError(
                f"{where}: 'classes' lists one class ({shown(self.classes[0])}); a classifier has at least two, "
                "in the model's output order (or leave 'classes' out)."
            )
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.classes and self.favourable is not None and self.favourable not in self.classes:
            meant = [c for c in self.classes if str(c).casefold() == str(self.favourable).casefold()]
            hint = f" Did you mean {meant[0]!r}?" if meant else did_you_mean(self.favourable, self.classes)
            raise SpecError(
                f"{where}: favourable = {self.favourable!r} is not one of classes {list(self.classes)}.{hint}"
            )

    @property
    def is_regression(self) -> bool:
        return self.above is not None or self.below is not None


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
        return self._slices[-1].stop

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
            if feature.kind != "category":
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
        frame = _as_frame(frame, self)
        missing = [name for name in self.names if name not in frame.columns]
        if missing:
            raise DataError(
                f"data: missing column(s) {missing}; the schema needs {list(self.names)}, "
                f"the frame has {list(map(str, frame.columns))}."
                + (did_you_mean(missing[0], frame.columns) if len(missing) == 1 else "")
            )
        columns = list(frame.columns)
        repeated = [name for name in self.names if columns.count(name) > 1]
        if repeated:
            raise DataError(
                f"data: column(s) {shown(repeated, 200)} appear more than once; keep one column per feature."
            )
        problems: dict[int, list[str]] = {}
        labels = list(frame.index)
        for feature in self.features:
            for pos, message in _column_problems(feature, frame[feature.name]):
                problems.setdefault(pos, []).append(
                    f"row {pos} (index {shown(labels[pos], 40)}), column {feature.name!r}: {message}"
                )
        return {pos: "; ".join(msgs) for pos, msgs in sorted(problems.items())}

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame's schema columns, in schema order, with clean types; ``DataError`` naming row, column, value."""
        frame = _as_frame(frame, self)
        errors = self.row_errors(frame)
        if errors:
            shown = list(errors.values())[:5]
            more = f" (and {len(errors) - 5} more rows)" if len(errors) > 5 else ""
            raise DataError("data: " + " | ".join(shown) + more)
        out: dict[str, Any] = {}
        for feature in self.features:
            column = frame[feature.name]
            if feature.kind == "category":
                out[feature.name] = pd.Categorical(column.map(str), categories=list(feature.levels))
            elif feature.kind in ("integer", "binary"):
                out[feature.name] = pd.to_numeric(_numbers(column)).astype("int64")
            else:
                out[feature.name] = pd.to_numeric(_numbers(column)).astype("float64")
        return pd.DataFrame(out, index=frame.index)

    # --------------------------------------------------------------- encoding
    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """Validate a raw frame and return the canonical tensor (n x width, float64)."""
        clean = self.validate(frame)
        parts = {}
        for feature in self.features:
            column = clean[feature.name]
            if feature.kind == "category":
                codes = torch.as_tensor(column.cat.codes.to_numpy(np.int64))
                parts[feature.name] = torch.nn.functional.one_hot(codes, len(feature.levels)).to(DTYPE)
            else:
                parts[feature.name] = torch.tensor(column.to_numpy(np.float64), dtype=DTYPE)
        return self.assemble(parts)

    def assemble(self, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable encode: per-feature tensors (values, or one-hot blocks) -> canonical tensor."""
        columns = []
        for feature in self.features:
            if feature.name not in parts:
                raise DataError(f"assemble: no values for feature {feature.name!r}.")
            part = parts[feature.name]
            columns.append(part if feature.kind == "category" else part.unsqueeze(-1))
        return torch.cat(columns, dim=-1)

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable view of a canonical tensor: feature name -> values (or one-hot block)."""
        self._check_width(x)
        return {
            f.name: x[..., s] if f.kind == "category" else x[..., s.start]
            for f, s in zip(self.features, self._slices, strict=True)
        }

    def decode(self, x: torch.Tensor | np.ndarray, index: Sequence[Any] | None = None) -> pd.DataFrame:
        """Canonical tensor -> raw frame: categories by their largest column, integers and binaries rounded."""
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        self._check_width(array)
        out: dict[str, Any] = {}
        for feature, cols in zip(self.features, self._slices, strict=True):
            block = array[:, cols]
            if feature.kind == "category":
                codes = block.argmax(axis=1)
                out[feature.name] = pd.Categorical.from_codes(
                    codes, categories=pd.Index(list(feature.levels))
                )
            elif feature.kind in ("integer", "binary"):
                out[feature.name] = np.rint(block[:, 0]).astype(np.int64)
            else:
                out[feature.name] = block[:, 0].astype(np.float64)
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
        target = None
        if "target" in data:
            entry = data["target"]
            if not isinstance(entry, Mapping):
                raise SpecError(
                    f"{where}, [target]: must be a table with 'name' and 'favourable' or 'above'."
                )
            check_keys(where, "[target]", entry, {"name", "favourable", "classes", "above", "below"})
            if "name" not in entry:
                raise SpecError(f"{where}, [target]: missing key 'name' (the label column).")
            try:
                target = Target(
                    name=entry["name"],
                    favourable=entry.get("favourable"),
                    classes=entry.get("classes", ()),
                    above=_optional_float(where, "[target]", "above", entry.get("above")),
                    below=_optional_float(where, "[target]", "below", entry.get("below")),
                )
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}") from None
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
        features = [_feature_from_dict(where, i, entry) for i, entry in enumerate(entries)]
        try:
            return cls(tuple(features), target, name)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None

    def to_toml(self) -> str:
        """Canonical TOML text; ``Schema.from_toml(s.to_toml()) == s``."""
        lines: list[str] = []
        if self.name:
            lines.append(f"name = {_toml_value(self.name)}")
        if self.target is not None:
            t = self.target
            lines += ["", "[target]", f"name = {_toml_value(t.name)}"]
            for key in ("favourable", "above", "below"):
                if getattr(t, key) is not None:
                    lines.append(f"{key} = {_toml_value(getattr(t, key))}")
            if t.classes:
                lines.append(f"classes = {_toml_value(list(t.classes))}")
        for f in self.features:
            lines += ["", "[[feature]]", f"name = {_toml_value(f.name)}", f"kind = {_toml_value(f.kind)}"]
            if f.kind == "category":
                lines.append(f"levels = {_toml_value(list(f.levels))}")
            elif f.kind != "binary" and f.bounds != (-math.inf, math.inf):
                lines.append(f"bounds = {_toml_value(list(f.bounds))}")
            lines.append(f"mutability = {_toml_value(f.mutability)}")
            if f.direction != "both":
                lines.append(f"direction = {_toml_value(f.direction)}")
            for key in ("cost_up", "cost_down"):
                if getattr(f, key) is not None:
                    lines.append(f"{key} = {_toml_value(getattr(f, key))}")
            if f.description:
                lines.append(f"description = {_toml_value(f.description)}")
        return "\n".join(lines).lstrip("\n") + "\n"

    def save(self, path: str | Path) -> None:
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
        features = []
        for name in frame.columns:
            if name == target:
                continue
            column = frame[name]
            if column.isna().any():
                raise DataError(f"data: column {name!r} has missing values; fill or drop them first.")
            if pd.api.types.is_bool_dtype(column) or (
                pd.api.types.is_numeric_dtype(column) and set(pd.unique(column)) <= {0, 1}
            ):
                features.append(Feature(str(name), "binary"))
            elif pd.api.types.is_numeric_dtype(column):
                values = column.to_numpy(np.float64)
                kind: Kind = "integer" if np.all(values == np.rint(values)) else "real"
                features.append(Feature(str(name), kind, (float(values.min()), float(values.max()))))
            else:
                levels = tuple(sorted(map(str, pd.unique(column))))
                if len(levels) > max_levels:
                    raise DataError(
                        f"data: column {name!r} has {len(levels)} distinct text values (> {max_levels}); "
                        "it does not look like a category. Drop it or encode it first."
                    )
                features.append(Feature(str(name), "category", levels=levels))
        tgt = None
        if target is not None:
            if target not in frame.columns:
                raise DataError(
                    f"data: target column {target!r} not found." + did_you_mean(target, frame.columns)
                )
            classes = tuple(sorted(pd.unique(frame[target]).tolist(), key=str))
            tgt = Target(target, favourable=favourable, classes=classes if favourable is not None else ())
        return cls(tuple(features), tgt)


# ---------------------------------------------------------------- helpers
FEATURE_KEYS = {
    "name",
    "kind",
    "bounds",
    "levels",
    "mutability",
    "direction",
    "cost_up",
    "cost_down",
    "description",
}


def _feature_from_dict(where: str, i: int, entry: Any) -> Feature:
    label = f"[[feature]] #{i + 1}"
    if not isinstance(entry, Mapping):
        raise SpecError(f"{where}, {label}: must be a table.")
    if "name" not in entry:
        raise SpecError(f"{where}, {label}: missing key 'name'.")
    label = f"[[feature]] {shown(entry['name'])}"
    check_keys(where, label, entry, FEATURE_KEYS)
    kwargs = dict(entry)
    if "bounds" in kwargs:
        bounds = kwargs["bounds"]
        if not isinstance(bounds, list) or len(bounds) != 2 or not all(is_number(b) for b in bounds):
            raise SpecError(
                f"{where}, {label}, key 'bounds': give [lower, upper], two numbers without quotes; "
                f"got {shown(bounds)}."
            )
        kwargs["bounds"] = tuple(bounds)
    if "levels" in kwargs:
        if not isinstance(kwargs["levels"], list):
            raise SpecError(
                f"{where}, {label}, key 'levels': give a list of strings; got {shown(kwargs['levels'])}."
            )
        kwargs["levels"] = tuple(kwargs["levels"])
    try:
        return Feature(**kwargs)
    except SpecError as exc:
        raise SpecError(f"{where}, {label}: {str(exc).split(': ', 1)[-1]}") from None


def check_keys(where: str, table: str, entry: Mapping[str, Any], allowed: set[str]) -> None:
    """``SpecError`` naming the first key of a spec table that is not allowed, with a hint."""
    for key in entry:
        if key not in allowed:
            raise SpecError(
                f"{where}, {table}: unknown key {shown(key)}."
                + did_you_mean(key, allowed)
                + f" Allowed keys: {sorted(allowed)}."
            )


def _choice(where: str, key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(
            f"{where}: {key} = {shown(value)} is not one of {list(choices)}." + did_you_mean(value, choices)
        )


def _bounds(where: str, bounds: Any) -> tuple[float, float]:
    """Two numbers, not NaN, lower <= upper, and not both the same infinity: a range a value can be in."""
    if not isinstance(bounds, list | tuple) or len(bounds) != 2 or not all(is_number(b) for b in bounds):
        raise SpecError(
            f"{where}: 'bounds' must be two numbers [lower, upper] (not strings or booleans); got {shown(bounds)}."
        )
    lo, hi = (float(b) for b in bounds)
    if math.isnan(lo) or math.isnan(hi):
        raise SpecError(f"{where}: bounds [{lo}, {hi}] contain NaN; write two numbers, e.g. [0, 100].")
    if lo > hi:
        raise SpecError(
            f"{where}: lower bound {lo} is above upper bound {hi}; write bounds = [lower, upper]."
        )
    if lo == math.inf or hi == -math.inf:
        raise SpecError(
            f"{where}: bounds [{lo}, {hi}] hold no finite value; use finite bounds, or -inf / inf only as the "
            "lower / upper end."
        )
    if math.isfinite(lo) and math.isfinite(hi) and not math.isfinite(hi - lo):
        raise SpecError(
            f"{where}: bounds [{lo:g}, {hi:g}] are so wide that their span overflows to infinity, so values "
            "cannot be scaled; narrow them (or use -inf / inf for an unbounded end)."
        )
    return lo, hi


def normal_name(name: str) -> bool:
    """A name Python's parser reads as itself: expressions are parsed by ``ast``, which applies NFKC."""
    return unicodedata.normalize("NFKC", name) == name


def is_number(value: object) -> bool:
    """An int or a float, but not a bool (which Python counts as an int): what a numeric spec key takes."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_label(value: object) -> bool:
    return isinstance(value, str | bool) or (isinstance(value, int | float) and math.isfinite(value))


def type_name(value: object) -> str:
    """The TOML name of a value's type, for messages such as "got 'false' (a string)"."""
    names = {bool: "a boolean", str: "a string", int: "an integer", float: "a float", list: "an array"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _optional_float(where: str, table: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if not is_number(value):
        raise SpecError(
            f"{where}, {table}, key {key!r}: must be a number; got {shown(value)} ({type_name(value)})."
        )
    return float(value)


def read_toml(source: str | Path, kind: str) -> tuple[dict[str, Any], str]:
    """A spec file's parsed tables and the name errors call it by (the file name, or "<kind> text").

    A spec is data of bounded size: at most ``MAX_FILE_BYTES``, keys at most ``MAX_KEY_DEPTH`` parts, tables
    and arrays at most ``MAX_NESTING`` deep. A UTF-8 byte-order mark is accepted.
    """
    if not isinstance(source, str | Path):
        raise SpecError(
            f"{kind}: the argument 'source' must be a path (str or pathlib.Path) or TOML text, "
            f"got {type_name(source)}; e.g. load {kind}.toml with a path."
        )
    # one line without '=' cannot be TOML tables: it is a path, whatever its extension (schema.toml.bak)
    if isinstance(source, Path) or (
        "\n" not in source and (source.endswith(".toml") or (source.strip() and "=" not in source))
    ):
        path = Path(source)
        if path.is_dir():
            raise SpecError(f"{path}: is a folder; give the path of a {kind} TOML file in it.")
        if not path.is_file():
            raise SpecError(f"{path}: no such file. Give the path of a {kind} TOML file.")
        where = path.name
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SpecError(_too_big(where, size, kind))
            raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
        except OSError as exc:
            raise SpecError(
                f"{where}: cannot be read ({exc.strerror}); check the file's permissions."
            ) from None
        if len(raw) > MAX_FILE_BYTES:
            raise SpecError(_too_big(where, len(raw), kind))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"{path}: not UTF-8 text ({exc}); save the {kind} file as UTF-8.") from None
        if not text.strip():
            raise SpecError(f"{where}: the file is empty; write the {kind} tables into it.")
    else:
        text, where = source, f"{kind} text"
        if len(text) > MAX_FILE_BYTES:
            raise SpecError(_too_big(where, len(text), kind))
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some editors on Windows write
    _check_keys_depth(text, where)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML ({exc}). Fix the syntax at that line.") from None
    except ValueError as exc:  # a whole number of more than 4300 digits (Python's int-from-text limit)
        raise SpecError(
            f"{where}: cannot read a value ({shown(str(exc), 200)}); write a smaller number."
        ) from None
    except RecursionError:
        raise SpecError(
            f"{where}: tables or arrays are nested too deeply to read; a {kind} file needs at most "
            f"{MAX_NESTING} levels."
        ) from None
    if _depth(data) > MAX_NESTING:
        raise SpecError(
            f"{where}: tables or arrays are nested more than {MAX_NESTING} deep; a {kind} file needs far fewer."
        )
    huge = _huge_integer(data)
    if huge is not None:
        raise SpecError(
            f"{where}: the whole number {shown(huge, 40)} is beyond the range of a float (about 1.8e308); "
            "write a smaller number, or inf for an unbounded end."
        )
    return data, where


def _huge_integer(value: Any) -> int | None:
    """The first TOML integer too large for a float (each later ``float()`` raised OverflowError), or None."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return next((h for h in map(_huge_integer, value) if h is not None), None)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        return value
    return None


def _too_big(where: str, size: int, kind: str) -> str:
    return (
        f"{where}: {size} bytes, more than a {kind} file may have ({MAX_FILE_BYTES} bytes); "
        "check that this is the right file."
    )


def _check_keys_depth(text: str, where: str) -> None:
    """Refuse a dotted key or table header of more than ``MAX_KEY_DEPTH`` parts before tomllib sees it
    (it takes seconds on a 40 KB dotted key). A cheap scan of what precedes '=' (or a header's ']') on
    each line, quoted parts skipped, so a dot in a quoted key or in a value never counts."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.count(".") <= MAX_KEY_DEPTH:
            continue
        parts = _key_dots(line)
        if parts > MAX_KEY_DEPTH:
            raise SpecError(
                f"{where}, line {number}: a key of more than {MAX_KEY_DEPTH} dotted parts "
                f"(got {parts + 1} parts in {shown(line.strip(), 60)}); write the tables out."
            )


def _key_dots(line: str) -> int:
    """Dots outside quotes in the key of a ``key = value`` line or a ``[table]`` header (0 for other lines)."""
    header = line.lstrip().startswith("[")
    dots, quote, escaped = 0, "", False
    for char in line:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == ".":
            dots += 1
        elif (char == "=" and not header) or (char == "]" and header):
            return dots
        elif char == "#":
            return 0
    return 0


def _depth(value: Any, level: int = 0) -> int:
    """How deeply tables and arrays nest (stops counting past ``MAX_NESTING``)."""
    if level > MAX_NESTING or not isinstance(value, dict | list):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)


# TOML basic strings: escape the quote, the backslash and every control character (DEL included).
_TOML_ESCAPES = {chr(i): f"\\u{i:04x}" for i in [*range(0x20), 0x7F]} | {'"': '\\"', "\\": "\\\\"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_TOML_ESCAPES.get(c, c) for c in value) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise SpecError(f"to_toml: cannot write a value of type {type(value).__name__}: {value!r}.")


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


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _numeric(column: pd.Series) -> bool:
    """A column of plain numbers (not booleans, not objects): checked without per-value Python calls."""
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def _numbers(column: pd.Series) -> pd.Series:
    return column if _numeric(column) else column.map(_plain)


def _column_problems(feature: Feature, column: pd.Series) -> list[tuple[int, str]]:
    """(row position, message) for each value this feature does not accept; vectorised, loops only on bad rows."""
    values = column.to_numpy(dtype=object)
    missing = column.isna().to_numpy()
    bad: dict[int, str] = {
        int(p): "value is missing (NaN); fill it or drop the row" for p in np.flatnonzero(missing)
    }
    if feature.kind == "category":
        known = column.map(str).isin(feature.levels).to_numpy()
        for pos in np.flatnonzero(~known & ~missing):
            value = _plain(values[pos])
            bad[int(pos)] = f"unknown level {shown(value)}; levels are {shown(list(feature.levels), 200)}" + (
                did_you_mean(value, feature.levels)
            )
        return sorted(bad.items())
    numbers = (
        column
        if _numeric(column)
        else pd.to_numeric(
            column.map(lambda v: int(v) if isinstance(v, bool | np.bool_) else v), errors="coerce"
        )
    )
    x = numbers.to_numpy(dtype=np.float64)
    for pos in np.flatnonzero(np.isnan(x) & ~missing):
        value = _plain(values[pos])
        bad[int(pos)] = f"{shown(value)} ({type(value).__name__}) is not a number"
    lo, hi = feature.bounds
    with np.errstate(invalid="ignore"):
        checks = [
            (~np.isfinite(x) & ~np.isnan(x), "value {!r} is not finite"),
            (
                (x != np.rint(x)) & np.isfinite(x)
                if feature.kind in ("integer", "binary")
                else np.zeros_like(missing),
                f"value {{!r}} is not a whole number (kind = {feature.kind!r})",
            ),
            (((x < lo) | (x > hi)) & np.isfinite(x), f"value {{!r}} is outside bounds [{lo:g}, {hi:g}]"),
        ]
    for flags, message in checks:
        for pos in np.flatnonzero(flags):
            bad.setdefault(int(pos), message.replace("{!r}", "{}").format(shown(_plain(values[pos]))))
    return sorted(bad.items())
