"""The error family: every user-facing failure is an ``ActionableError`` naming where, what, got and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ActionableError(Exception):
    """Base of every error this library raises on purpose."""


class SpecError(ActionableError, ValueError):
    """A schema, action catalogue or expression file is malformed (file, entry, key and fix are named)."""


class DataError(ActionableError, ValueError):
    """A data frame does not fit its schema (row, column and value are named)."""


class ConfigError(ActionableError, ValueError):
    """An argument to a verb is out of range or unknown (the valid choices are listed)."""


class ModelError(ActionableError, TypeError):
    """A model cannot be used: unsupported type or layer, wrong output shape, unreadable model file."""


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """A hint naming the closest valid choice, or an empty string."""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), names, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
