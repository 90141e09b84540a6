"""Hostile inputs found in review of issue 10: what the first suites did not cover.

Output paths that are not plain files (a device, a pipe, a link; a link planted at the lock file), frames
with a repeated column, names Python's parser reads as another name (NFKC), bounds whose span overflows,
a one-class target, and parameters nothing depends on. Each is refused with a typed error under the
harness's guards; the careless-but-valid neighbours still work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from actionable import (
    ActionSet,
    ConfigError,
    DataError,
    Schema,
    SpecError,
    as_model,
    attribute,
    files,
    synthesize,
)
from actionable.errors import ActionableError
from tests.hostile import attempt

SCHEMA_TEXT = """
[target]
name = "y"
favourable = "good"
classes = ["bad", "good"]

[[feature]]
name = "income"
kind = "real"
bounds = [0, 100]
mutability = "direct"
cost_up = 1
cost_down = 1

[[feature]]
name = "years"
kind = "integer"
bounds = [0, 40]

[[feature]]
name = "job"
kind = "category"
levels = ["a", "b", "c"]
mutability = "direct"
"""
SCHEMA = Schema.from_toml(SCHEMA_TEXT)
ROWS = pd.DataFrame({"income": [10.0, 20.0], "years": [3, 4], "job": ["a", "c"]})


def action(
    params: str = "{ amount = { bounds = [0, 50] } }", effect: str = "income + amount", cost: str = "amount"
) -> str:
    return (
        f'[[action]]\nname = "raise"\ntext = "Raise income"\nparams = {params}\n'
        f'effects = {{ income = "{effect}" }}\ncost = "{cost}"\n'
    )


def model() -> Any:
    """Favourable exactly when income > 50."""
    linear = torch.nn.Linear(SCHEMA.width, 2).double()
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[1, 0] = 1.0
        linear.bias[1] = -50.0
    return as_model(linear, SCHEMA)


def typed(error: BaseException | None, kind: type[ActionableError], phrase: str) -> None:
    assert isinstance(error, kind), f"expected a {kind.__name__}, got {error!r}"
    assert phrase in str(error), str(error)


# ------------------------------------------------------------------------------ output paths
def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "out.jsonl")
    return tmp / "out.jsonl"


def _link_to_elsewhere(tmp: Path) -> Path:
    (tmp / "out.jsonl").symlink_to(tmp / "elsewhere" / "target.jsonl")
    return tmp / "out.jsonl"


def _link_to_a_file(tmp: Path) -> Path:
    (tmp / "elsewhere" / "target.jsonl").write_text("precious\n")
    (tmp / "out.jsonl").symlink_to(tmp / "elsewhere" / "target.jsonl")
    return tmp / "out.jsonl"


def _link_at_the_lock(tmp: Path) -> Path:
    (tmp / "elsewhere" / "precious.txt").write_text("precious\n")
    (tmp / "out.jsonl.lock").symlink_to(tmp / "elsewhere" / "precious.txt")
    return tmp / "out.jsonl"


OUTPUTS = [
    # (id, make the final path, a phrase of the message)
    ("a-fifo", _fifo, "is a device, pipe or socket"),
    ("a-dangling-link", _link_to_elsewhere, "is a symbolic link"),
    ("a-link-to-a-file", _link_to_a_file, "is a symbolic link"),
    ("a-link-planted-at-the-lock", _link_at_the_lock, "lock file"),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in OUTPUTS], ids=[c[0] for c in OUTPUTS])
def test_an_output_path_that_is_not_a_plain_file_is_refused_untouched(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    """The writer renames over the final path: a device (``/dev/full`` as root), a pipe or a link there was
    replaced by a regular file, and a link at ``PATH.lock`` had the file it points at truncated."""
    (tmp_path / "elsewhere").mkdir()
    path = make(tmp_path)
    before = {p: (p.lstat().st_mode, p.read_text() if p.is_file() else None) for p in tmp_path.rglob("*")}

    def write() -> None:
        with files.atomic_write(path) as handle:
            handle.write("{}\n")

    typed(attempt(write).error, ConfigError, message)
    after = {p: (p.lstat().st_mode, p.read_text() if p.is_file() else None) for p in tmp_path.rglob("*")}
    assert after == before


def test_a_folder_output_that_is_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "keep.txt").write_text("keep")
    (tmp_path / "out").symlink_to(tmp_path / "real")

    def write() -> None:
        with files.atomic_folder(tmp_path / "out") as temp:
            (temp / "keep.txt").write_text("replaced")

    typed(attempt(write).error, ConfigError, "is a symbolic link")
    assert (tmp_path / "real" / "keep.txt").read_text() == "keep"


def test_plain_output_paths_still_work(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    for text in ("first\n", "second\n"):  # a new file, then one replaced whole
        with files.atomic_write(path) as handle:
            handle.write(text)
        assert path.read_text() == text
    with files.atomic_folder(tmp_path / "model") as temp:
        (temp / "a.txt").write_text("a")
    with files.atomic_folder(tmp_path / "model") as temp:  # into the existing folder
        (temp / "b.txt").write_text("b")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["a.txt", "b.txt"]


# ------------------------------------------------------------------------------ frames
def _repeated(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame[["income"]]], axis=1)


VERBS = [
    (
        "synthesize",
        lambda X: synthesize(model(), X, ActionSet.from_toml(action(), SCHEMA), max_length=1, steps=5),
    ),
    ("attribute", lambda X: attribute(model(), X, "gradient")),
    ("predict_proba", lambda X: model().predict_proba(X)),
]


@pytest.mark.parametrize("verb", [v[1] for v in VERBS], ids=[v[0] for v in VERBS])
def test_a_repeated_column_in_a_frame_is_a_data_error(verb: Callable[[pd.DataFrame], Any]) -> None:
    typed(attempt(verb, _repeated(ROWS)).error, DataError, "['income'] appear more than once")


CARELESS_FRAMES = [
    ("columns-reordered", lambda f: f[["job", "years", "income"]]),
    ("extra-column", lambda f: f.assign(note="x")),
    (
        "repeated-extra-column",
        lambda f: pd.concat([f.assign(note="x"), f.assign(note="y")[["note"]]], axis=1),
    ),
    ("object-dtype", lambda f: f.astype(object)),
    ("duplicate-index", lambda f: f.set_axis([7, 7])),
    ("multi-index", lambda f: f.set_axis(pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]))),
]


@pytest.mark.parametrize("change", [c[1] for c in CARELESS_FRAMES], ids=[c[0] for c in CARELESS_FRAMES])
def test_careless_but_valid_frames_give_the_same_plans(
    change: Callable[[pd.DataFrame], pd.DataFrame],
) -> None:
    actions = ActionSet.from_toml(action(), SCHEMA)
    expected = [r.to_dict()["steps"] for r in synthesize(model(), ROWS, actions, max_length=1, steps=30)]
    outcome = attempt(synthesize, model(), change(ROWS), actions, max_length=1, steps=30)
    assert outcome.error is None, repr(outcome.error)
    assert [r.to_dict()["steps"] for r in outcome.value] == expected  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ specs
def _schema(old: str, new: str) -> Callable[[], Any]:
    assert old in SCHEMA_TEXT
    return lambda: Schema.from_toml(SCHEMA_TEXT.replace(old, new, 1))


SPECS = [
    # (id, a call, the error type, a phrase of the message)
    (
        "feature-name-a-ligature-that-python-reads-as-another",  # 'ﬁne' is read as 'fine' by ast
        _schema('name = "income"', 'name = "\ufb01ne"'),
        SpecError,
        "normal form NFKC",
    ),
    (
        "feature-name-decomposed-accent",  # 'cafe\u0301' and 'café' look the same; ast reads both as 'café'
        _schema('name = "income"', 'name = "cafe\u0301"'),
        SpecError,
        "normal form NFKC",
    ),
    (
        "parameter-name-a-ligature",
        lambda: ActionSet.from_toml(
            action(params='{ "\ufb01" = { bounds = [0, 50] } }', effect="income + \ufb01", cost="\ufb01"),
            SCHEMA,
        ),
        SpecError,
        "normal form NFKC",
    ),
    (
        "bounds-whose-span-overflows",
        _schema("bounds = [0, 100]", "bounds = [-1e308, 1e308]"),
        SpecError,
        "span overflows",
    ),
    ("one-class", _schema('classes = ["bad", "good"]', 'classes = ["good"]'), SpecError, "lists one class"),
    (
        "parameter-nothing-uses",  # the optimiser asked autograd for a gradient of nothing: a RuntimeError
        lambda: ActionSet.from_toml(action(effect="income + 50", cost="1"), SCHEMA),
        SpecError,
        "appear in no effect and not in the cost",
    ),
]


@pytest.mark.parametrize(("call", "kind", "message"), [c[1:] for c in SPECS], ids=[c[0] for c in SPECS])
def test_hostile_specs_found_in_review_are_refused(
    call: Callable[[], Any], kind: type[ActionableError], message: str
) -> None:
    typed(attempt(call).error, kind, message)


CARELESS_SPECS = [
    ("feature-named-exp", _schema('name = "income"', 'name = "exp"')),
    ("feature-name-accented-nfc", _schema('name = "income"', 'name = "caf\u00e9"')),
    ("feature-name-cyrillic", _schema('name = "years"', 'name = "\u0433\u043e\u0434\u044b"')),
    ("wide-but-finite-span", _schema("bounds = [0, 100]", "bounds = [-1e307, 1e307]")),
    ("one-sided-infinite-bounds", _schema("bounds = [0, 100]", "bounds = [0, inf]")),
    ("parameter-in-the-cost-only", lambda: ActionSet.from_toml(action(effect="income + 50"), SCHEMA)),
    ("parameter-in-the-effect-only", lambda: ActionSet.from_toml(action(cost="1"), SCHEMA)),
]


@pytest.mark.parametrize("call", [c[1] for c in CARELESS_SPECS], ids=[c[0] for c in CARELESS_SPECS])
def test_careless_but_valid_specs_still_load(call: Callable[[], Any]) -> None:
    outcome = attempt(call)
    assert outcome.error is None, repr(outcome.error)


def test_the_cli_refuses_a_non_plain_json_path_before_any_work(tmp_path: Path) -> None:
    from actionable.cli.outputs import writable

    os.mkfifo(tmp_path / "out.jsonl")
    typed(attempt(writable, json=tmp_path / "out.jsonl").error, ConfigError, "--json")
    assert not (tmp_path / "out.jsonl.lock").exists()


# ------------------------------------------------------------------------------ CSV files
CSV_HEADER = "income,years,job,y\n"
HOSTILE_CSVS = [
    # (id, file text, a phrase of the message)
    (
        "a-million-columns",
        CSV_HEADER.strip() + "," + ",".join(f"c{i}" for i in range(10**6)) + "\n",
        "at most",
    ),
    # pandas made the first cell of a longer row the index: every value moved one column over, silently
    ("a-row-one-cell-longer-shifts-its-values", CSV_HEADER + "7,10,3,a,no\n8,20,4,c,yes\n", "more cells"),
    ("trailing-commas", CSV_HEADER + "10,3,a,no,\n20,4,c,yes,\n", "more cells"),
    ("a-later-row-longer", CSV_HEADER + "10,3,a,no\n20,4,c,yes,extra\n", "cannot read it as CSV"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in HOSTILE_CSVS], ids=[c[0] for c in HOSTILE_CSVS])
def test_hostile_csv_layouts_are_refused(tmp_path: Path, text: str, message: str) -> None:
    from actionable.cli.inputs import read_csv

    path = tmp_path / "rows.csv"
    path.write_text(text)
    typed(attempt(read_csv, path, SCHEMA).error, DataError, message)


def test_a_short_row_is_a_row_error_not_a_shift(tmp_path: Path) -> None:
    from actionable.cli.inputs import read_csv

    path = tmp_path / "rows.csv"
    path.write_text(CSV_HEADER + "10,3,a,no\n20,4\n")
    frame = read_csv(path, SCHEMA)
    assert list(frame.index) == [0, 1]
    assert frame.loc[0, "income"] == 10.0
    errors = SCHEMA.row_errors(frame)
    assert list(errors) == [1] and "'job'" in errors[1]


# ------------------------------------------------------------------------------ environment
def test_a_terminal_that_cannot_encode_a_name_gets_it_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PYTHONIOENCODING=ascii`` (or a latin-1 locale) and a non-ASCII output path: the closing line
    "wrote ... to ö.jsonl" raised UnicodeEncodeError, a traceback with exit 1 ("some rows failed")."""
    from actionable import save_model
    from actionable.models import layers as L
    from tests.hostile import run_cli

    linear = L.Linear(SCHEMA.width, 2).double()
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[1, 0] = 1.0
        linear.bias[1] = -50.0
    save_model(as_model(torch.nn.Sequential(linear).double(), SCHEMA), tmp_path / "model")
    (tmp_path / "schema.toml").write_text(SCHEMA_TEXT)
    (tmp_path / "actions.toml").write_text(action())
    (tmp_path / "rows.csv").write_text(CSV_HEADER + "10,3,a,no\n60,4,c,yes\n")
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    args = ["synthesize", "--data", "rows.csv", "--schema", "schema.toml", "--actions", "actions.toml"]
    result = run_cli(
        [*args, "--model", "model", "--max-length", "1", "--steps", "20", "--json", "\u00f6.jsonl"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "\\xf6.jsonl" in result.stdout
    assert len((tmp_path / "\u00f6.jsonl").read_text().splitlines()) == 2


TEXTS = [
    # (id, params, effect, the text): a format the values at one end of the box cannot take
    (
        "char-code-past-unicode-at-the-upper-end",  # failed with OverflowError after the whole search
        '{ amount = { bounds = [1114000, 1114212], kind = "integer" } }',
        "income + (amount - 1114100)",
        "Save {amount:c}",
    ),
    (
        "char-code-of-a-negative-lower-end",  # OverflowError at load, not a SpecError
        '{ amount = { bounds = [-5, 50], kind = "integer" } }',
        "income + amount",
        "Save {amount:c}",
    ),
]


@pytest.mark.parametrize(("params", "effect", "text"), [c[1:] for c in TEXTS], ids=[c[0] for c in TEXTS])
def test_a_text_format_is_checked_at_both_ends_of_the_box(params: str, effect: str, text: str) -> None:
    source = action(params=params, effect=effect).replace('text = "Raise income"', f'text = "{text}"')
    typed(attempt(ActionSet.from_toml, source, SCHEMA).error, SpecError, "cannot be filled")


@pytest.mark.parametrize("output", ["rows.csv", "./sub/../rows.csv", "model/model.json", "link.csv"])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path: Path, output: str) -> None:
    """``--json rows.csv`` (a typo for rows.jsonl) replaced the data it had just read, with exit 0."""
    from actionable.cli.outputs import writable

    (tmp_path / "sub").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "rows.csv").write_text(CSV_HEADER)
    (tmp_path / "model" / "model.json").write_text("{}")
    (tmp_path / "link.csv").symlink_to(tmp_path / "rows.csv")
    reads = (tmp_path / "rows.csv", None, tmp_path / "model")
    typed(attempt(writable, reads, json=tmp_path / output).error, ConfigError, "is an input of this run")
    assert (tmp_path / "rows.csv").read_text() == CSV_HEADER
    writable(reads, json=tmp_path / "rows.jsonl")  # a neighbour is fine


BIG = "1" + "0" * 400  # a TOML integer beyond a float: every float() of it raised OverflowError
HUGE_NUMBERS = [
    ("schema-bounds", lambda: Schema.from_toml(SCHEMA_TEXT.replace("[0, 100]", f"[0, {BIG}]"))),
    ("schema-cost-up", lambda: Schema.from_toml(SCHEMA_TEXT.replace("cost_up = 1", f"cost_up = {BIG}"))),
    (
        "schema-above",
        lambda: Schema.from_toml(
            SCHEMA_TEXT.replace('favourable = "good"\nclasses = ["bad", "good"]', f"above = {BIG}")
        ),
    ),
    (
        "param-bounds",
        lambda: ActionSet.from_toml(action(params=f"{{ amount = {{ bounds = [0, {BIG}] }} }}"), SCHEMA),
    ),
    (
        "param-init",
        lambda: ActionSet.from_toml(
            action(params=f"{{ amount = {{ bounds = [0, 5], init = -{BIG} }} }}"), SCHEMA
        ),
    ),
    (
        "param-resolution",
        lambda: ActionSet.from_toml(
            action(params=f"{{ amount = {{ bounds = [0, 5], resolution = {BIG} }} }}"), SCHEMA
        ),
    ),
    (
        "condition-scale",
        lambda: ActionSet.from_toml(
            action() + f'pre = [{{ condition = "income >= 1", scale = {BIG} }}]\n', SCHEMA
        ),
    ),
]


@pytest.mark.parametrize("call", [c[1] for c in HUGE_NUMBERS], ids=[c[0] for c in HUGE_NUMBERS])
def test_a_toml_integer_beyond_a_float_is_a_spec_error(call: Callable[[], Any]) -> None:
    typed(attempt(call).error, SpecError, "beyond the range of a float")


def test_a_toml_integer_of_5000_digits_is_a_spec_error() -> None:
    outcome = attempt(Schema.from_toml, SCHEMA_TEXT.replace("[0, 100]", "[0, " + "9" * 5000 + "]"))
    assert isinstance(outcome.error, SpecError), repr(outcome.error)


def test_an_interrupt_just_after_the_temporary_file_is_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT landing between ``mkstemp`` and the cleanup's ``try`` left ``.out.jsonl.XXXX.tmp.jsonl`` behind
    (seen as a flaky ``test_a_kill_during_json_never_leaves_a_file_that_looks_complete[sigint]``): the
    temporary file is now named inside the ``try`` before it is made."""
    made = files._make

    def made_then_interrupted(temp: Path) -> None:
        made(temp)
        raise KeyboardInterrupt  # where the signal's handler would raise it, the file already made

    monkeypatch.setattr(files, "_make", made_then_interrupted)
    with pytest.raises(KeyboardInterrupt), files.atomic_write(tmp_path / "out.jsonl") as handle:
        handle.write("{}\n")
    assert list(tmp_path.iterdir()) == []
