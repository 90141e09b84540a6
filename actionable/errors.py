"""The error family: every user-facing failure is an ``ActionableError`` naming where, what, got and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "MAX_MESSAGE",
    "MAX_SHOWN",
    "ActionableError",
    "ConfigError",
    "DataError",
    "ModelError",
    "SpecError",
    "did_you_mean",
    "shown",
]


MAX_MESSAGE = 2000  # an error message is read by a person: a hostile value must not flood a terminal or a log
MAX_SHOWN = 80  # characters of one value quoted in a message


def _cap(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut to ``limit`` characters, saying how much was cut."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit} characters cut)"


class ActionableError(Exception):
    """Base of every error this library raises on purpose; its message is capped at ``MAX_MESSAGE`` characters."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_cap(args[0]),)
        super().__init__(*args)


class SpecError(ActionableError, ValueError):
    """A schema, action catalogue or expression file is malformed (file, entry, key and fix are named)."""


class DataError(ActionableError, ValueError):
    """A data frame does not fit its schema (row, column and value are named)."""


class ConfigError(ActionableError, ValueError):
    """An argument to a verb is out of range or unknown (the valid choices are listed)."""


class ModelError(ActionableError, TypeError):
    """A model cannot be used: unsupported type or layer, wrong output shape, unreadable model file."""


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (a 5 MB cell is quoted, not echoed)."""
    text = value if isinstance(value, str) and len(value) > 4 * limit else None
    if text is not None:  # do not build the repr of a huge string only to cut it
        head = repr(text[: limit + 2])
        return f"{head[:limit]}... ({len(text)} characters)"
    try:
        full = repr(value)
    except Exception:  # a hostile object's __repr__ must not replace the message
        return f"<{type(value).__name__}>"
    return full if len(full) <= limit else f"{full[:limit]}... ({len(full)} characters)"


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """A hint naming the closest valid choice, or an empty string (none for an over-long word)."""
    text = word if isinstance(word, str) else str(word)
    if len(text) > 200:
        return ""
    names = [str(c) for c in choices if len(str(c)) <= 200]
    close = difflib.get_close_matches(text, names, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
