"""Hostile and careless spec files (issue 10): schema.toml and actions.toml are data.

Every hostile case is refused at load with a ``SpecError`` whose message names the fix, without exhausting
the machine (each runs under ``tests.hostile.attempt``'s memory and hang guards); every careless-but-valid
case loads. A few cases run the real CLI to check exit code 2 and a clean stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from actionable import ActionSet, DataError, Schema, SpecError, datasets
from actionable.cli import app
from actionable.errors import MAX_MESSAGE, ActionableError, shown
from tests.hostile import attempt, run_cli

SCHEMA_TEXT = """
[target]
name = "y"
favourable = "good"
classes = ["bad", "good"]

[[feature]]
name = "age"
kind = "integer"
bounds = [18, 100]
mutability = "direct"
direction = "increase"

[[feature]]
name = "savings"
kind = "real"
bounds = [0, 100000]
mutability = "direct"

[[feature]]
name = "duration"
kind = "integer"
bounds = [1, 120]
mutability = "direct"

[[feature]]
name = "debtors"
kind = "category"
levels = ["none", "guarantor"]
mutability = "direct"
"""
SCHEMA = Schema.from_toml(SCHEMA_TEXT)

ACTION = """
[[action]]
name = "save"
text = "Save {amount:.0f} DM more"
params = { amount = { bounds = [0, 20000] } }
effects = { savings = "savings + amount" }
cost = "amount / 1000"
"""


def action(**changes: str) -> str:
    """The one-action catalogue with some lines replaced: key -> its new TOML line (or "" to drop it)."""
    lines = []
    for line in ACTION.strip().splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(changes.pop(key) if key in changes else line)
    return "\n".join([*lines, *changes.values()]) + "\n"


def schema_with(line: str, replacing: str) -> str:
    assert replacing in SCHEMA_TEXT
    return SCHEMA_TEXT.replace(replacing, line, 1)


# ------------------------------------------------------------------------------------------ refusals
def refused(outcome_error: BaseException | None, message: str) -> None:
    assert isinstance(outcome_error, SpecError), f"expected a SpecError, got {outcome_error!r}"
    text = str(outcome_error)
    assert message in text, text
    assert len(text) <= MAX_MESSAGE + 40


HOSTILE_ACTIONS = [
    # (id, catalogue text, a phrase of the message)
    (
        "negative-constant-cost-behind-a-rare-precondition",
        action(cost='cost = "-5"', pre='pre = ["age == 57", "savings > 99999.5"]'),
        "is negative (at most -5) everywhere",
    ),
    (
        "negative-cost-only-at-a-narrowed-corner",
        action(cost='cost = "amount / 1000 - 1"', pre='pre = ["age == 57", "savings > 99999.5"]'),
        "can be negative on the parameter box where the action applies",
    ),
    ("cost-10-to-the-10-to-the-10", action(cost='cost = "10 ** 10 ** 10"'), "is infinite everywhere"),
    ("cost-1e309", action(cost='cost = "1e309"'), "is infinite everywhere"),
    ("cost-nan-everywhere", action(cost='cost = "sqrt(-1 - amount)"'), "is not a number (NaN) everywhere"),
    (
        "cost-infinite-at-a-corner",
        action(cost='cost = "1 / (duration - 1)"'),
        "can be infinite or NaN on the parameter box",
    ),
    (
        "cost-negative-infinity-at-a-corner",
        action(cost='cost = "log(amount)"'),
        "can be negative on the parameter box",
    ),
    ("cost-a-boolean", action(cost="cost = true"), "key 'cost': must be a string"),
    ("cost-an-array", action(cost="cost = [5]"), "key 'cost': must be a string"),
    (
        "repeatable-as-a-string",
        action(repeatable='repeatable = "false"'),
        "key 'repeatable': must be true or",
    ),
    ("repeatable-as-a-number", action(repeatable="repeatable = 0"), "key 'repeatable': must be true or"),
    ("name-not-a-string", action(name="name = 5"), "key 'name': must be a string"),
    ("text-not-a-string", action(text="text = 3"), "key 'text': must be a string"),
    (
        "param-bounds-as-strings",
        action(params='params = { amount = { bounds = ["0", "20000"] } }'),
        "'bounds' must be [lower, upper], two numbers",
    ),
    (
        "param-bounds-as-booleans",
        action(params="params = { amount = { bounds = [false, true] } }"),
        "'bounds' must be [lower, upper], two numbers",
    ),
    (
        "param-kind-not-a-string",
        action(params="params = { amount = { bounds = [0, 1], kind = 1 } }"),
        "key 'kind': must be a string",
    ),
    (
        "param-init-as-a-string",
        action(params='params = { amount = { bounds = [0, 1], init = "0.5" } }'),
        "init must be a number",
    ),
    (
        "param-resolution-as-a-boolean",
        action(params="params = { amount = { bounds = [0, 1], resolution = true } }"),
        "resolution must be a finite number > 0",
    ),
    ("effect-a-boolean", action(effects="effects = { savings = true }"), "effects.savings: must be a quoted"),
    ("condition-not-a-string", action(pre="pre = [5]"), "a condition must be a quoted expression"),
    (
        "condition-scale-as-a-string",
        action(pre='pre = [{ condition = "age >= 18", scale = "1" }]'),
        "scale must be a finite number > 0",
    ),
    (
        "text-width-of-nine-billion",
        action(text='text = "{amount:>9000000000}"'),
        "widths and precisions are at most 100",
    ),
    ("text-precision-of-a-million", action(text='text = "{amount:.1000000f}"'), "at most 100"),
    ("text-attribute-lookup", action(text='text = "{amount.__class__.__mro__}"'), "an attribute or index"),
    ("text-index-lookup", action(text='text = "{amount[0]}"'), "an attribute or index lookup"),
    ("text-positional-field", action(text='text = "{0}"'), "a positional field"),
    ("text-feature-name", action(text='text = "{savings}"'), "the unknown name 'savings'"),
    ("text-nested-field", action(text='text = "{amount:{amount}}"'), "no nested fields"),
    ("text-conversion-a", action(text='text = "{amount!a}"'), "the conversion !a is not allowed"),
    ("text-unbalanced-brace", action(text='text = "Save {amount"'), "is not a valid template"),
    ("precondition-never-holds", action(pre='pre = ["age > 200"]'), "can never hold together"),
    (
        "preconditions-contradict-each-other",
        action(pre='pre = ["age > 50", "age < 30"]'),
        "can never hold together",
    ),
    (
        "precondition-contradicts-itself",
        action(pre='pre = ["savings > 10 and savings < 5"]'),
        "can never hold together",
    ),
    (
        "precondition-on-a-parameter-outside-its-box",
        action(pre='pre = ["amount > 30000"]'),
        "can never hold together",
    ),
    (
        "effect-always-above-the-bounds",
        action(effects='effects = { savings = "savings + 200000 + amount" }'),
        "always outside the feature's bounds",
    ),
    (
        "effect-always-nan",
        action(effects='effects = { savings = "sqrt(-1 - amount)" }'),
        "is NaN everywhere on the box",
    ),
    ("effect-always-infinite", action(effects='effects = { savings = "1e309" }'), "always outside"),
    ("postcondition-never-holds", action(post='post = ["savings < -1"]'), "can never hold after"),
    ("expression-nested-500-deep", action(cost='cost = "' + "(" * 500 + "1" + ")" * 500 + '"'), "nested"),
    (
        "too-many-actions",
        "".join(ACTION.replace('"save"', f'"save_{i}"') for i in range(1001)),
        "1001 actions (at most 1000)",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in HOSTILE_ACTIONS], ids=[c[0] for c in HOSTILE_ACTIONS]
)
def test_hostile_catalogue_is_refused_at_load(text: str, message: str) -> None:
    outcome = attempt(ActionSet.from_toml, text, SCHEMA)
    refused(outcome.error, message)


HOSTILE_SCHEMAS = [
    ("bounds-inf-inf", schema_with("bounds = [inf, inf]", "bounds = [0, 100000]"), "hold no finite value"),
    ("bounds-minus-inf", schema_with("bounds = [-inf, -inf]", "bounds = [0, 100000]"), "hold no finite"),
    ("bounds-nan", schema_with("bounds = [nan, 1]", "bounds = [0, 100000]"), "contain NaN"),
    ("bounds-reversed", schema_with("bounds = [5, 1]", "bounds = [0, 100000]"), "is above upper bound"),
    ("bounds-as-strings", schema_with('bounds = ["0", "1"]', "bounds = [0, 100000]"), "two numbers"),
    ("bounds-as-booleans", schema_with("bounds = [false, true]", "bounds = [0, 100000]"), "two numbers"),
    ("classes-repeat", schema_with('classes = ["bad", "good", "bad"]', 'classes = ["bad", "good"]'), "once"),
    ("classes-a-string", schema_with('classes = "bad"', 'classes = ["bad", "good"]'), "must be a list"),
    (
        "above-a-string",
        schema_with('above = "2.5"', 'favourable = "good"\nclasses = ["bad", "good"]'),
        "number",
    ),
    ("favourable-a-table", schema_with("favourable = { a = 1 }", 'favourable = "good"'), "a class label"),
    (
        "direction-on-a-category",
        schema_with(
            'levels = ["none", "guarantor"]\ndirection = "increase"', 'levels = ["none", "guarantor"]'
        ),
        "direction applies to real, integer and binary features",
    ),
    ("kind-not-a-string", schema_with("kind = 1", 'kind = "real"'), "'kind' must be a string"),
    (
        "mutability-a-list",
        schema_with('mutability = ["direct"]', 'mutability = "direct"'),
        "must be a string",
    ),
    (
        "levels-not-strings",
        schema_with("levels = [1, 2]", 'levels = ["none", "guarantor"]'),
        "must be a string",
    ),
    ("cost-up-a-boolean", schema_with("cost_up = true\nmutability", "mutability"), "finite number >= 0"),
    ("schema-name-a-number", "name = 5\n" + SCHEMA_TEXT, "key 'name': must be a string"),
    ("toml-nested-500-deep", "x = " + "[" * 500 + "]" * 500 + "\n", "nested too deeply"),
    ("toml-nested-20-deep", "x = " + "[" * 20 + "]" * 20 + "\n", "nested more than 16 deep"),
    ("dotted-key-of-40-kb", "a" + ".a" * 20000 + " = 1\n", "more than 32 dotted parts"),
    ("dotted-key-with-a-quoted-first-part", "'x'" + ".a" * 20000 + " = 1\n", "more than 32 dotted parts"),
    ("table-header-of-40-kb", "[a" + ".a" * 20000 + "]\n", "more than 32 dotted parts"),
    ("text-of-5-mib", "# " + "x" * (5 * 1024**2) + "\n" + SCHEMA_TEXT, "more than a schema file may have"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in HOSTILE_SCHEMAS], ids=[c[0] for c in HOSTILE_SCHEMAS]
)
def test_hostile_schema_is_refused_at_load(text: str, message: str) -> None:
    outcome = attempt(Schema.from_toml, text)
    refused(outcome.error, message)


def _write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


HOSTILE_FILES: list[tuple[str, Callable[[Path], object], str]] = [
    ("schema-from-an-int", lambda tmp: 5, "the argument 'source' must be a path"),
    ("schema-from-none", lambda tmp: None, "the argument 'source' must be a path"),
    ("a-folder", lambda tmp: tmp, "is a folder"),
    ("a-missing-file", lambda tmp: tmp / "nope.toml", "no such file"),
    ("an-empty-file", lambda tmp: _write(tmp, "schema.toml", b""), "the file is empty"),
    ("a-blank-file", lambda tmp: _write(tmp, "schema.toml", b"  \n\n"), "the file is empty"),
    ("not-utf8", lambda tmp: _write(tmp, "schema.toml", b'name = "caf\xe9"\n'), "not UTF-8"),
    (
        "a-file-of-5-mib",
        lambda tmp: _write(tmp, "schema.toml", b"# " + b"x" * (5 * 1024**2) + b"\n"),
        "more than a schema file may have",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [c[1:] for c in HOSTILE_FILES], ids=[c[0] for c in HOSTILE_FILES]
)
def test_hostile_schema_source_is_refused(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    outcome = attempt(Schema.from_toml, make(tmp_path))
    refused(outcome.error, message)


@pytest.mark.parametrize(
    ("source", "schema", "message"),
    [
        pytest.param(ACTION, None, "the argument 'schema' must be a Schema", id="schema-none"),
        pytest.param(ACTION, "schema.toml", "the argument 'schema' must be a Schema", id="schema-a-path"),
        pytest.param(5, SCHEMA, "the argument 'source' must be a path", id="source-an-int"),
    ],
)
def test_wrong_argument_types_of_action_set_from_toml(source: object, schema: object, message: str) -> None:
    outcome = attempt(ActionSet.from_toml, source, schema)
    refused(outcome.error, message)


def test_action_set_needs_a_schema() -> None:
    good = ActionSet.from_toml(ACTION, SCHEMA)
    with pytest.raises(SpecError, match="the argument 'schema' must be a Schema"):
        ActionSet(good.actions, None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ messages
def test_a_huge_cell_is_quoted_not_echoed() -> None:
    frame = pd.DataFrame(
        {"age": [30], "savings": ["9" * (5 * 1024**2) + "x"], "duration": [12], "debtors": ["none"]}
    )
    outcome = attempt(SCHEMA.validate, frame)
    assert isinstance(outcome.error, DataError)
    assert len(str(outcome.error)) < 1000 and "characters" in str(outcome.error)


def test_a_huge_level_is_quoted_not_echoed() -> None:
    frame = pd.DataFrame({"age": [30], "savings": [1.0], "duration": [12], "debtors": ["n" * 10**6]})
    outcome = attempt(SCHEMA.validate, frame)
    assert isinstance(outcome.error, DataError)
    assert len(str(outcome.error)) < 1000


def test_every_error_message_is_capped() -> None:
    message = str(SpecError("x" * 10_000))
    assert len(message) < MAX_MESSAGE + 40 and message.endswith("(8000 characters cut)")
    assert str(ActionableError("short")) == "short"
    assert shown("y" * 1000).endswith("(1000 characters)") and len(shown("y" * 1000)) < 120
    assert shown("ok") == "'ok'"


# ---------------------------------------------------------------------------------- careless, valid
CARELESS_ACTIONS = [
    ("the-plain-action", ACTION),
    ("an-integer-where-a-real-is-expected", action(params="params = { amount = { bounds = [0, 20000.0] } }")),
    ("crlf-line-endings", ACTION.replace("\n", "\r\n")),
    ("comments-tabs-and-blank-lines", "# a catalogue\n\n" + ACTION.replace(" = ", "\t=\t") + "   # done\n\n"),
    ("a-multi-line-cost", action(cost='cost = """\n  amount\n  / 1000\n"""')),
    ("a-bounded-format", action(text='text = "Save {amount:>10.2f} DM ({amount!r}) {{literally}}"')),
    ("no-text", action(text="")),
    ("repeatable-as-a-boolean", action(repeatable="repeatable = false")),
    ("an-over-approximated-cost", action(cost='cost = "amount - amount + 1"')),
    ("abs-minus-itself", action(cost='cost = "abs(amount - 10) - (amount - 10) + 0.5"')),
    ("a-conditional-cost", action(cost='cost = "0 if amount == 0 else 1 + amount / 100"')),
    ("a-division-by-a-feature-that-excludes-zero", action(cost='cost = "(amount / duration) ** 2"')),
    ("a-cost-of-zero", action(cost='cost = "0"')),
    ("a-cost-as-a-plain-number", action(cost="cost = 5")),
    ("a-cost-as-a-plain-real", action(cost="cost = 0.5")),
    ("an-effect-as-a-plain-number", action(effects="effects = { savings = 5 }")),
    ("a-rare-but-possible-precondition", action(pre='pre = ["age == 57", "savings > 99999.5"]')),
    ("a-precondition-on-a-category", action(pre="pre = [\"debtors != 'guarantor'\"]")),
    ("a-postcondition-that-can-hold", action(post='post = ["savings <= 100000"]')),
    ("a-condition-table-with-a-scale", action(pre='pre = [{ condition = "age >= 18", scale = 2 }]')),
]


@pytest.mark.parametrize("text", [c[1] for c in CARELESS_ACTIONS], ids=[c[0] for c in CARELESS_ACTIONS])
def test_careless_but_valid_catalogue_loads(text: str) -> None:
    actions = ActionSet.from_toml(text, SCHEMA)
    assert actions.names == ("save",)


CARELESS_SCHEMAS = [
    ("the-plain-schema", SCHEMA_TEXT),
    ("integer-bounds-for-a-real", schema_with("bounds = [0, 10]", "bounds = [0, 100000]")),
    ("one-sided-infinite-bounds", schema_with("bounds = [0, inf]", "bounds = [0, 100000]")),
    ("crlf-and-comments", ("# schema\r\n" + SCHEMA_TEXT.replace("\n", "   # note\r\n")).replace('"""', "")),
    (
        "a-dotted-key",
        SCHEMA_TEXT.replace(
            '[target]\nname = "y"\nfavourable = "good"',
            'target.name = "y"\ntarget . favourable = "good"\ntarget.classes',
        ).replace("target.classes\nclasses", "target.classes"),
    ),
    ("a-value-with-many-dots", 'name = "' + "." * 100 + '"\n' + SCHEMA_TEXT),
    (
        "a-description-with-dots",
        schema_with('description = "' + "a.b.c.d. " * 10 + '"\nmutability', "mutability"),
    ),
]


@pytest.mark.parametrize("text", [c[1] for c in CARELESS_SCHEMAS], ids=[c[0] for c in CARELESS_SCHEMAS])
def test_careless_but_valid_schema_loads(text: str) -> None:
    schema = Schema.from_toml(text)
    assert schema.names == ("age", "savings", "duration", "debtors")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    schema = _write(tmp_path, "schema.toml", "\ufeff".encode() + SCHEMA_TEXT.encode())
    actions = _write(tmp_path, "actions.toml", b"\xef\xbb\xbf" + ACTION.encode())
    assert Schema.from_toml(schema) == SCHEMA
    assert ActionSet.from_toml(actions, SCHEMA).names == ("save",)
    assert Schema.from_toml("\ufeff" + SCHEMA_TEXT) == SCHEMA


@pytest.mark.parametrize(
    "name", [n for n in datasets.NAMES if (datasets.load(n).path / "actions.toml").is_file()]
)
def test_bundled_catalogues_still_load(name: str) -> None:
    data = datasets.load(name)
    assert Schema.from_toml(data.path / "schema.toml") == data.schema
    assert len(ActionSet.from_toml(data.path / "actions.toml", data.schema)) >= 1


def test_bundled_schemas_still_load() -> None:
    for name in datasets.NAMES:
        data = datasets.load(name)
        assert Schema.from_toml(data.path / "schema.toml") == data.schema


README_SCHEMA = """
[target]
name = "credit_risk"
favourable = "good"
classes = ["bad", "good"]

[[feature]]
name = "savings"
kind = "real"              # real | integer | binary | category (with levels = [...])
bounds = [0, 100000]
mutability = "direct"      # fixed | direct | indirect
direction = "increase"     # increase | decrease | both
cost_up = 0.001            # cost per raw unit of change

[[feature]]
name = "duration"
kind = "integer"
bounds = [1, 120]
mutability = "direct"
"""
README_ACTIONS = """
[[action]]
name = "change_loan_period"
text = "Change the loan duration by {months:+d} months"      # the sentence a person reads
params = { months = { bounds = [-60, 60], kind = "integer" } } # raw units, a finite box
effects = { duration = "duration + months" }                  # expressions of the state before
cost = "0.1 + (months / duration) ** 2"
post = ["duration >= 4"]                                      # on the state after the action
"""


def test_the_readme_examples_load() -> None:
    schema = Schema.from_toml(README_SCHEMA)
    assert ActionSet.from_toml(README_ACTIONS, schema).names == ("change_loan_period",)


# ------------------------------------------------------------------------------------------ the CLI
def test_cli_refuses_a_hostile_schema_in_process(tmp_path: Path) -> None:
    schema = _write(
        tmp_path, "schema.toml", schema_with("bounds = [inf, inf]", "bounds = [0, 100000]").encode()
    )
    data = _write(tmp_path, "data.csv", b"age,savings,duration,debtors,y\n30,1,12,none,good\n")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--schema",
            str(schema),
            "--target",
            "y",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "hold no finite value" in " ".join(result.output.split()) and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("catalogue", "message"),
    [
        pytest.param(action(text='text = "{amount:>9000000000}"'), "at most 100", id="nine-gigabyte-format"),
        pytest.param(
            action(cost='cost = "-5"', pre='pre = ["age == 57"]'), "is negative", id="negative-cost"
        ),
    ],
)
def test_cli_refuses_a_hostile_catalogue_with_exit_code_2(
    tmp_path: Path, catalogue: str, message: str
) -> None:
    german = datasets.load("german")
    actions = tmp_path / "actions.toml"
    actions.write_text(
        catalogue.replace("savings", "credit_amount").replace("age == 57", "age == 57"), "utf-8"
    )
    german.X_test.head(1).to_csv(tmp_path / "people.csv", index=False)
    result = run_cli(
        [
            "synthesize",
            "--data",
            tmp_path / "people.csv",
            "--schema",
            german.path / "schema.toml",
            "--actions",
            actions,
            "--model",
            german.path / "models" / "mlp",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert message in " ".join((result.stderr + result.stdout).split()) and "Traceback" not in result.stderr
