"""README and exit codes agree about rows without a plan (issue 12): ``not_found`` (and ``infeasible``) is an
answer, exit 0; only rows that could not be processed (status ``error``) make it 1; bad input is 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import torch
from typer.testing import CliRunner

from actionable import Feature, Schema, Target, as_model, save_model
from actionable.cli import app

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"

USELESS = """
[[action]]
name = "earn"
text = "Earn {amount:.0f} more"
params = { amount = { bounds = [0, 50] } }
effects = { income = "income + amount" }
cost = "amount / 10"
"""


def _files(tmp_path: Path, debts: list[object]) -> list[str]:
    """Approved when debt < 10, and only ``income`` can change: nobody denied can be helped."""
    schema = Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct", direction="increase", cost_up=0.1),
            Feature("debt", "real", (0, 100), mutability="direct", direction="decrease", cost_down=10.0),
        ),
        Target("approved", favourable=1, classes=(0, 1)),
    )
    net = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [0.0, -1.0]]))
        net.bias.copy_(torch.tensor([0.0, 10.0]))
    save_model(as_model(net, schema), tmp_path / "model")
    schema.save(tmp_path / "schema.toml")
    (tmp_path / "actions.toml").write_text(USELESS)
    pd.DataFrame({"income": 20.0, "debt": debts}).to_csv(tmp_path / "people.csv", index=False)
    return ["--data", str(tmp_path / "people.csv"), "--schema", str(tmp_path / "schema.toml")]


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rows_without_a_plan_exit_0_and_rows_not_processed_exit_1(tmp_path: Path) -> None:
    common = _files(tmp_path, [50.0, 80.0, 5.0])
    out = tmp_path / "plans.jsonl"
    args = [
        "synthesize",
        *common,
        "--actions",
        str(tmp_path / "actions.toml"),
        "--model",
        str(tmp_path / "model"),
    ]
    args += ["--max-length", "1", "--steps", "20", "--json", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in _records(out)] == ["not_found", "not_found", "already_favourable"]
    assert all(r["error"] for r in _records(out)[:2])  # each says why
    _files(tmp_path, [50.0, 500.0, 5.0])  # the second row leaves the schema's bounds
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 1, result.output
    assert [r["status"] for r in _records(out)] == ["not_found", "error", "already_favourable"]
    assert "Row 1 not processed" in result.output


def test_invert_rows_not_reaching_the_goal_within_the_budget_exit_0(tmp_path: Path) -> None:
    common = _files(tmp_path, [50.0, 80.0])
    out = tmp_path / "inverse.jsonl"
    args = [
        "invert",
        *common,
        "--model",
        str(tmp_path / "model"),
        "--budget",
        "1",
        "--all-rows",
        "--json",
        str(out),
    ]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in _records(out)] == ["not_found", "not_found"]


def test_the_readme_states_the_rule_the_commands_follow() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    rule = re.search(r"Exit codes: (.*?)\(the message names the fix\)", text)
    assert rule is not None
    assert re.search(r"0 every row was answered, `not_found` and `infeasible` included", rule.group(1))
    assert re.search(r"1 some rows could not be processed \(status `error`", rule.group(1))
    assert "rows without a plan (`not_found`, `infeasible`) exit 0" in text
