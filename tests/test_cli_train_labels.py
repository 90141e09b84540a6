"""`actionable train` checks the label column before splitting: exit 2 naming row and value, never a
scikit-learn traceback, never a silent one-class model; messages keep their [target] / [[feature]] text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from actionable.cli import app
from tests.test_cli import user_files

runner = CliRunner()


def nan_label(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[5, "approved"] = np.nan
    return frame


def stranger(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[5, "approved"] = "maybe"
    return frame


def one_class(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(approved="yes")


@pytest.mark.parametrize(
    ("change", "target", "message"),
    [
        (nan_label, "approved", "missing in 1 row(s) (rows [5])"),
        (stranger, "approved", "row 5 of 'approved' holds 'maybe', not one of the schema's classes"),
        (stranger, "approved", "fix the data or the [target] classes"),
        (one_class, "approved", "every row of 'approved' is 'yes'"),
        (lambda f: f, "income", "--target 'income' is a feature of the schema"),
    ],
)
def test_bad_labels_exit_2(tmp_path: Path, change: object, target: str, message: str) -> None:
    data, schema = user_files(tmp_path, 40)
    change(pd.read_csv(data)).to_csv(data, index=False)  # type: ignore[operator]
    args = ["train", "--data", str(data), "--schema", str(schema), "--target", target]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--epochs", "1"], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "m").exists()


def test_a_schema_message_keeps_its_brackets(tmp_path: Path) -> None:
    data, schema = user_files(tmp_path, 40)
    schema.write_text(schema.read_text().replace('name = "approved"', 'nme = "approved"'))
    args = ["train", "--data", str(data), "--schema", str(schema), "--target", "approved", "--out", "m"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2 and "[target]: unknown key 'nme'" in result.output, result.output
