"""Spec files as bounded data: reading TOML a person wrote, the type checks of its values, and writing it back.

Every spec (a schema, an action set) is read through ``read_toml``, which refuses files too large, keys too
deeply dotted and tables too deeply nested before or after ``tomllib`` sees them, so a hostile file costs
little. ``check_keys``, ``is_number`` and ``type_name`` give the messages that name a bad key or value, and
``toml_value`` writes a value back as canonical TOML. This module knows no spec's meaning.
"""

from __future__ import annotations

import math
import numbers
import sys
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from actionable.errors import SpecError, did_you_mean, shown

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_KEY_DEPTH",
    "MAX_NESTING",
    "as_flag",
    "check_keys",
    "is_number",
    "normal_name",
    "read_toml",
    "toml_value",
    "type_name",
]

MAX_FILE_BYTES = 4 * 1024**2  # a spec file is a page of text written by a person
MAX_KEY_DEPTH = 32  # dotted keys / table headers (tomllib is quadratic in a dotted key's length)
MAX_NESTING = 16  # tables and arrays inside each other (the bundled specs need 5)


def check_keys(where: str, table: str, entry: Mapping[str, Any], allowed: set[str]) -> None:
    """``SpecError`` naming the first key of a spec table that is not allowed, with a hint."""
    for key in entry:
        if key not in allowed:
            raise SpecError(
                f"{where}, {table}: unknown key {shown(key)}."
                + did_you_mean(key, allowed)
                + f" Allowed keys: {sorted(allowed)}."
            )


def normal_name(name: str) -> bool:
    """A name Python's parser reads as itself: expressions are parsed by ``ast``, which applies NFKC."""
    return unicodedata.normalize("NFKC", name) == name


def as_flag(value: object) -> object:
    """A numpy bool (read from a frame or an array) as the Python bool it is; anything else unchanged, for
    the caller's ``isinstance(value, bool)`` check to refuse."""
    return bool(value) if isinstance(value, np.bool_) else value


def is_number(value: object) -> bool:
    """An int or a float, but not a bool (which Python counts as an int): what a numeric spec key takes."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def type_name(value: object) -> str:
    """The TOML name of a value's type, for messages such as "got 'false' (a string)"."""
    names = {bool: "a boolean", str: "a string", int: "an integer", float: "a float", list: "an array"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


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
        text, where = _read_file(Path(source), kind)
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


def _read_file(path: Path, kind: str) -> tuple[str, str]:
    """A spec file's text (at most ``MAX_FILE_BYTES``, UTF-8, not empty) and its name for messages."""
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
        raise SpecError(f"{where}: cannot be read ({exc.strerror}); check the file's permissions.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(_too_big(where, len(raw), kind))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc}); save the {kind} file as UTF-8.") from None
    if not text.strip():
        raise SpecError(f"{where}: the file is empty; write the {kind} tables into it.")
    return text, where


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


def toml_value(value: Any) -> str:
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
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise SpecError(f"to_toml: cannot write a value of type {type(value).__name__}: {value!r}.")
