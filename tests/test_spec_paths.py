"""Spec files named by a string: any one-line name is a path (whatever its extension), so a missing or
misnamed file is reported as such, never parsed as TOML text; a non-UTF-8 file is a SpecError."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionable import ActionSet, Schema, SpecError, datasets


def test_a_missing_file_of_any_extension_is_named() -> None:
    with pytest.raises(SpecError, match=r"schema.toml.bak: no such file"):
        Schema.from_toml("schema.toml.bak")
    with pytest.raises(SpecError, match=r"my_actions: no such file"):
        ActionSet.from_toml("my_actions", datasets.load("german").schema)


def test_an_existing_file_without_the_toml_extension_is_read(tmp_path: Path) -> None:
    german = datasets.load("german")
    copy = tmp_path / "schema.txt"
    copy.write_text((german.path / "schema.toml").read_text(encoding="utf-8"), encoding="utf-8")
    assert Schema.from_toml(str(copy)) == german.schema


def test_a_file_that_is_not_utf8_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "schema.toml"
    path.write_bytes(b'[[feature]]\nname = "caf\xe9"\n')
    with pytest.raises(SpecError, match="not UTF-8"):
        Schema.from_toml(path)
