"""Features and the target: what one raw column is, which values it accepts, and how it may change.

A ``Feature`` is one input column (its kind, bounds, levels, mutability, direction, costs per raw unit, and
whether it is a protected attribute), checked when it is made and asked through predicates (``is_category``,
``is_whole``, ``may_increase``, ...) rather than by comparing strings. A ``Target`` is the label column and
which outcome is favourable. Each reads its own table of a schema file (``feature_from_table``) and writes it
back (``feature_toml``).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from actionable.errors import SpecError, did_you_mean, shown
from actionable.rounding import ROUNDINGS, RoundingMode
from actionable.specfile import as_flag, check_keys, is_number, normal_name, toml_value, type_name

__all__ = [
    "DIRECTIONS",
    "FEATURE_KEYS",
    "KINDS",
    "MAX_LEVELS",
    "MAX_NAME",
    "MUTABILITIES",
    "Direction",
    "Feature",
    "Kind",
    "Label",
    "Mutability",
    "Target",
    "feature_from_table",
    "feature_toml",
    "target_from_table",
    "target_toml",
]

Kind = Literal["real", "integer", "binary", "category"]
Mutability = Literal["fixed", "direct", "indirect"]
Direction = Literal["increase", "decrease", "both"]
Label = str | int | float | bool

KINDS: tuple[str, ...] = get_args(Kind)
MUTABILITIES: tuple[str, ...] = get_args(Mutability)
DIRECTIONS: tuple[str, ...] = get_args(Direction)
MAX_LEVELS = 10_000
MAX_NAME = 200  # characters of a feature, level or target name


@dataclass(frozen=True)
class Feature:
    """One raw column: its kind, bounds, whether and how it may change, and the cost per raw unit of change.

    ``protected``: a protected attribute (sex, nationality, race, ...) that a lender or school must not ask a
    person to change nor cite as a reason: no action may write it unless its catalogue says
    ``allow_protected``, advice never suggests changing it, and explanations mark it among the reasons.
    """

    name: str
    kind: Kind = "real"
    bounds: tuple[float, float] = (-math.inf, math.inf)
    levels: tuple[str, ...] = ()
    mutability: Mutability = "fixed"
    direction: Direction = "both"
    cost_up: float | None = None
    cost_down: float | None = None
    description: str = ""
    rounding: RoundingMode = "nearest"  # how an action's fractional effect is made whole (integer / binary)
    protected: bool = False

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
        for key in ("kind", "mutability", "direction", "description", "rounding"):
            value = getattr(self, key)
            if not isinstance(value, str):
                raise SpecError(
                    f"{where}: {key!r} must be a string, got {shown(value)} ({type_name(value)}); "
                    "quote it in the file."
                )
        object.__setattr__(self, "protected", as_flag(self.protected))
        if not isinstance(self.protected, bool):
            raise SpecError(
                f"{where}: 'protected' must be true or false (a TOML boolean), got {shown(self.protected)} "
                f"({type_name(self.protected)}); write protected = true without quotes."
            )
        _choice(where, "kind", self.kind, KINDS)
        _choice(where, "mutability", self.mutability, MUTABILITIES)
        _choice(where, "direction", self.direction, DIRECTIONS)
        _choice(where, "rounding", self.rounding, ROUNDINGS)
        if self.rounding != "nearest" and self.kind not in ("integer", "binary"):
            raise SpecError(
                f"{where}: rounding = {self.rounding!r} applies to integer and binary features (how an effect is "
                f"made a whole number); this one is {self.kind!r}, so remove it."
            )
        if self.is_category and self.direction != "both":
            raise SpecError(
                f"{where}: direction = {self.direction!r} on a category feature would be ignored (its levels "
                "have no order); direction applies to real, integer and binary features, so remove it."
            )
        if self.is_category:
            self._check_levels(where)
        elif self.levels:
            raise SpecError(f"{where}: 'levels' is only for kind = 'category' (this one is {self.kind!r}).")
        if self.is_binary:
            if (
                not isinstance(self.bounds, list | tuple)
                or not all(is_number(b) for b in self.bounds)
                or tuple(self.bounds) not in ((-math.inf, math.inf), (0, 1))
            ):
                raise SpecError(f"{where}: a binary feature has bounds [0, 1]; got {shown(self.bounds)}.")
            object.__setattr__(self, "bounds", (0.0, 1.0))
        lo, hi = _bounds(where, self.bounds)
        object.__setattr__(self, "bounds", (lo, hi))
        self._check_costs(where)

    def _check_levels(self, where: str) -> None:
        """A category's levels: a list of distinct strings, at least two; its bounds are their positions."""
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
            raise SpecError(f"{where}: a category needs 'levels' with at least two entries; got {levels!r}.")
        if len(set(levels)) != len(levels):
            raise SpecError(f"{where}: 'levels' has duplicates: {levels!r}. List each level once.")
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "bounds", (0.0, float(len(levels) - 1)))

    def _check_costs(self, where: str) -> None:
        """Each cost given is a finite number >= 0, stored as a float."""
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
        return len(self.levels) if self.is_category else 1

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of this feature's canonical columns (``name=level`` for a one-hot block)."""
        if self.is_category:
            return tuple(f"{self.name}={level}" for level in self.levels)
        return (self.name,)

    @property
    def mutable(self) -> bool:
        """Whether anything may change it (directly, or through the indirect model)."""
        return not self.is_fixed

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


def _is_label(value: object) -> bool:
    return isinstance(value, str | bool) or (isinstance(value, int | float) and math.isfinite(value))


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
    "rounding",
    "protected",
}


def feature_from_table(where: str, i: int, entry: Any) -> Feature:
    """The ``i``-th ``[[feature]]`` table of a schema file, every key checked; ``SpecError`` naming it."""
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


def _optional_float(where: str, table: str, key: str, value: Any) -> float | None:
    """A number key of a table as a float (None when absent); ``SpecError`` for anything else."""
    if value is None:
        return None
    if not is_number(value):
        raise SpecError(
            f"{where}, {table}, key {key!r}: must be a number; got {shown(value)} ({type_name(value)})."
        )
    return float(value)


def target_from_table(where: str, entry: Any) -> Target:
    """The ``[target]`` table of a schema file, every key checked; ``SpecError`` naming file and key."""
    if not isinstance(entry, Mapping):
        raise SpecError(f"{where}, [target]: must be a table with 'name' and 'favourable' or 'above'.")
    check_keys(where, "[target]", entry, {"name", "favourable", "classes", "above", "below"})
    if "name" not in entry:
        raise SpecError(f"{where}, [target]: missing key 'name' (the label column).")
    try:
        return Target(
            name=entry["name"],
            favourable=entry.get("favourable"),
            classes=entry.get("classes", ()),
            above=_optional_float(where, "[target]", "above", entry.get("above")),
            below=_optional_float(where, "[target]", "below", entry.get("below")),
        )
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


def target_toml(t: Target) -> list[str]:
    """The lines of a ``[target]`` table (read back by ``target_from_table``)."""
    lines = ["[target]", f"name = {toml_value(t.name)}"]
    for key in ("favourable", "above", "below"):
        if getattr(t, key) is not None:
            lines.append(f"{key} = {toml_value(getattr(t, key))}")
    if t.classes:
        lines.append(f"classes = {toml_value(list(t.classes))}")
    return lines


def feature_toml(f: Feature) -> list[str]:
    """The lines of one ``[[feature]]`` table (read back by ``feature_from_table``)."""
    lines = ["[[feature]]", f"name = {toml_value(f.name)}", f"kind = {toml_value(f.kind)}"]
    if f.is_category:
        lines.append(f"levels = {toml_value(list(f.levels))}")
    elif not f.is_binary and f.bounds != (-math.inf, math.inf):
        lines.append(f"bounds = {toml_value(list(f.bounds))}")
    lines.append(f"mutability = {toml_value(f.mutability)}")
    if f.direction != "both":
        lines.append(f"direction = {toml_value(f.direction)}")
    for key in ("cost_up", "cost_down"):
        if getattr(f, key) is not None:
            lines.append(f"{key} = {toml_value(getattr(f, key))}")
    if f.protected:
        lines.append("protected = true")
    if f.description:
        lines.append(f"description = {toml_value(f.description)}")
    if f.rounding != "nearest":
        lines.append(f"rounding = {toml_value(f.rounding)}")
    return lines
