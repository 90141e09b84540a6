"""Lash et al.'s index-file format imports as a Schema; bad files raise SpecError naming line and fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from actionable import SpecError
from actionable.lash import schema_from_indices

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lash-student"
DATA = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "sex": [0, 1, 0],
        "age": [15, 18, 22],
        "romantic": [0, 1, 1],
        "absences": [0, 16, 32],
        "studytime": [1, 2, 4],
        "bad": [1, 0, 1],
    }
)
INDICES = "0,id,,,\n1,unch,,,\n2,unch,,,\n3,ind,,,\n4,dir,0,5,-1\n5,dir,7,7,0\n6,target,,,\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "indices.csv"
    path.write_text(text)
    return path


def test_designations_costs_and_directions(tmp_path: Path) -> None:
    schema = schema_from_indices(write(tmp_path, INDICES), DATA)
    assert schema.names == ("sex", "age", "romantic", "absences", "studytime")
    assert [f.mutability for f in schema.features] == ["fixed", "fixed", "indirect", "direct", "direct"]
    assert [f.kind for f in schema.features] == ["binary", "integer", "binary", "integer", "integer"]
    absences, studytime = schema["absences"], schema["studytime"]
    assert absences.direction == "decrease" and studytime.direction == "both"
    # costs are per normalised unit in the file, per raw unit in the schema
    assert absences.cost_down == pytest.approx(5 / 32) and studytime.cost_up == pytest.approx(7 / 3)
    assert schema.target is not None and schema.target.name == "bad" and schema.target.favourable == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (INDICES.replace("3,ind", "3,sometimes"), "line 4: unknown designation 'sometimes'"),
        (INDICES.replace("6,target,,,\n", ""), "6 rows, but the data has 7 columns"),
        (
            INDICES.replace("4,dir,0,5,-1", "4,dir,0,0,-1"),
            "cost- of 'absences' is 0 but the feature may decrease",
        ),
        (INDICES.replace("4,dir,0,5,-1", "4,dir,0,five,-1"), "cost- 'five' is not a number"),
        (INDICES.replace("4,dir,0,5,-1", "4,dir,0,5,2"), "direction '2' must be -1, 1 or 0"),
        (INDICES.replace("6,target", "6,unch"), "no row is designated 'target'"),
        (INDICES.replace("5,dir", "4,dir"), "out of range or repeated"),
    ],
)
def test_bad_index_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        schema_from_indices(write(tmp_path, text), DATA)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")
def test_the_shipped_student_files() -> None:
    schema = schema_from_indices(SHARED / "stud_indices.csv", SHARED / "stud_port_class.csv")
    assert len(schema) == 43
    assert [f.name for f in schema.features if f.mutability == "direct"] == [
        "goout",
        "Dalc",
        "Walc",
        "absences",
        "studytime",
        "paid",
    ]
    assert [f.name for f in schema.features if f.mutability == "indirect"] == [
        "activities",
        "higher",
        "romantic",
        "freetime",
    ]
    assert schema["paid"].cost_up == 8.0 and schema["goout"].cost_down == pytest.approx(6 / 4)
