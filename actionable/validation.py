"""Declarative checks of configuration values: one rule per parameter, one message format for every verb.

A rule says what a keyword accepts (a whole number, a real number, one of some choices, a flag) and its
range; ``check`` returns the value in its plain Python type or raises ``ConfigError`` with the message
``"<verb>: <name> = <value!r> (<type>); give <what the rule accepts>"``, e.g.
``synthesize: steps = '10' (str); give a whole number >= 1``.

Careless but valid values are accepted and normalised: numpy integers and floats, and floats that are
whole numbers (``steps=10.0`` is taken as 10) where a whole number is asked for. Booleans are never taken
for numbers, strings are never parsed, NaN and infinities are refused unless a rule allows infinity.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np

from actionable.errors import ConfigError, did_you_mean

__all__ = [
    "FLAG",
    "Kind",
    "Rule",
    "check",
    "choice",
    "known_keywords",
    "real",
    "whole",
]


Kind = Literal["whole", "real", "choice", "flag"]


@dataclass(frozen=True)
class Rule:
    """What one keyword accepts: ``kind``, an optional range (``low`` / ``high``; ``open_low`` / ``open_high``
    exclude the end), ``choices`` for ``kind="choice"``, ``optional`` to accept None, ``infinite`` to accept
    +inf for a real number (an unlimited amount)."""

    kind: Kind
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    infinite: bool = False

    def wanted(self) -> str:
        """What the rule accepts, in words ("a whole number >= 1", "one of 'bfs', 'objective'")."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "flag":
            text = "True or False"
        else:
            text = "a whole number" if self.kind == "whole" else "a finite number"
            if self.kind == "real" and self.infinite:
                text = "a number (inf allowed)"
            parts = []
            if self.low is not None:
                parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
            if self.high is not None:
                parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
            if parts:
                text += " " + " and ".join(parts)
        return text + (" (or None)" if self.optional else "")

    def check(self, where: str, name: str, value: Any) -> Any:
        """``value`` as a plain Python value if the rule accepts it; else a ``ConfigError`` naming the fix."""
        if value is None and self.optional:
            return None
        if self.kind == "choice":
            if isinstance(value, str | int | float | bool | None) and value in self.choices:
                return value
            hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
            raise ConfigError(_message(where, name, value, self.wanted()) + hint)
        if self.kind == "flag":
            if isinstance(value, bool | np.bool_):
                return bool(value)
            raise ConfigError(_message(where, name, value, self.wanted()))
        number = _as_number(value)
        if number is None or math.isnan(number):
            raise ConfigError(_message(where, name, value, self.wanted()))
        if math.isinf(number) and not (self.kind == "real" and self.infinite and number > 0):
            raise ConfigError(_message(where, name, value, self.wanted()))
        if self.kind == "whole":
            if not math.isfinite(number) or number != math.floor(number):
                raise ConfigError(_message(where, name, value, self.wanted()))
            number = int(number) if not isinstance(value, int | np.integer) else int(value)
        if not self._in_range(number):
            raise ConfigError(_message(where, name, value, self.wanted()))
        return number if self.kind == "whole" else float(number)

    def _in_range(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.open_low else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.open_high else x > self.high))


def _as_number(value: Any) -> float | int | None:
    """An int or float from a Python or numpy number (never from a bool or a string); None otherwise."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return None


def _message(where: str, name: str, value: Any, wanted: str) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{where}: {name} = {shown} ({type(value).__name__}); give {wanted}."


def check(where: str, rules: Mapping[str, Rule], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value checked by its rule (names without a rule pass unchanged): name -> normalised value."""
    return {name: rules[name].check(where, name, v) if name in rules else v for name, v in values.items()}


def whole(low: float | None = 1, high: float | None = None, *, optional: bool = False) -> Rule:
    """A whole number in [low, high]."""
    return Rule("whole", low=low, high=high, optional=optional)


def real(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    infinite: bool = False,
) -> Rule:
    """A finite real number in the range (ends open or closed)."""
    return Rule("real", low=low, high=high, open_low=open_low, open_high=open_high, infinite=infinite)


def choice(options: Sequence[Any]) -> Rule:
    """One of ``options``."""
    return Rule("choice", choices=tuple(options))


FLAG = Rule("flag")


P = ParamSpec("P")
R = TypeVar("R")


def known_keywords(verb: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: the function refuses unknown keywords with a ``ConfigError`` naming the ones it takes
    (and the nearest one), not Python's bare ``TypeError``."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        known = [p.name for p in inspect.signature(function).parameters.values() if p.kind is p.KEYWORD_ONLY]

        @functools.wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            unknown = sorted(set(kwargs) - set(known))
            if unknown:
                hint = did_you_mean(unknown[0], known)
                raise ConfigError(f"{verb}: unknown option(s) {unknown}; it takes {known}.{hint}")
            return function(*args, **kwargs)

        return checked

    return decorate
