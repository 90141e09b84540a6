"""``actionable synthesize --k`` and ``--certify`` (issue 12): what ``synthesize(k=..., certify=True)`` gives in
Python, a command-line user gets too (alternatives and certificates in ``--json``), through
``synthesize_in_chunks``; rows proved ``infeasible`` are counted in the printed summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from typer.testing import CliRunner

from actionable import Feature, Schema, Target, as_model, save_model
from actionable.actions import ActionSet
from actionable.batch import synthesize_in_chunks
from actionable.cli import app

runner = CliRunner()

# approved when income - debt > 20; earning costs 1 per 10, paying debt 1 per 5 (whole numbers)
ACTIONS = """
[[action]]
name = "earn"
text = "Earn {amount} more"
params = { amount = { bounds = [0, 30], kind = "integer" } }
effects = { income = "income + amount" }
cost = "amount / 10"

[[action]]
name = "repay"
text = "Repay {amount} of debt"
params = { amount = { bounds = [0, 30], kind = "integer" } }
effects = { debt = "debt - amount" }
cost = "amount / 5"
"""


def _files(tmp_path: Path, incomes: list[float]) -> list[str]:
    schema = Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct", direction="increase"),
            Feature("debt", "real", (0, 100), mutability="direct", direction="decrease"),
        ),
        Target("approved", favourable=1, classes=(0, 1)),
    )
    net = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0]]))
        net.bias.copy_(torch.tensor([0.0, -20.0]))
    save_model(as_model(net, schema), tmp_path / "model")
    schema.save(tmp_path / "schema.toml")
    (tmp_path / "actions.toml").write_text(ACTIONS)
    pd.DataFrame({"income": incomes, "debt": 10.0}).to_csv(tmp_path / "people.csv", index=False)
    files = [
        "--data",
        "people.csv",
        "--schema",
        "schema.toml",
        "--actions",
        "actions.toml",
        "--model",
        "model",
    ]
    return [str(tmp_path / f) if not f.startswith("--") else f for f in files]


def _run(tmp_path: Path, *extra: str) -> tuple[list[dict[str, object]], str]:
    out = tmp_path / "plans.jsonl"
    args = ["synthesize", *_files(tmp_path, [25.0, 0.0]), "--max-length", "1", "--json", str(out), *extra]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()], result.output


def test_cli_k_writes_alternatives_with_other_actions(tmp_path: Path) -> None:
    records, output = _run(tmp_path, "--k", "2")
    first = records[0]  # income 25, debt 10: needs a margin of 5 (+0.1): earn 6 (0.6) or repay 6 (1.2)
    assert first["status"] == "found"
    assert [s["action"] for s in first["steps"]] == ["earn"]  # type: ignore[index]
    alternatives = first["alternatives"]
    assert [[s["action"] for s in a["steps"]] for a in alternatives] == [["repay"]]  # type: ignore[union-attr, index]
    assert "or:" in output


def test_cli_certify_proves_rows_without_a_plan_infeasible_and_counts_them(tmp_path: Path) -> None:
    records, output = _run(tmp_path, "--certify")
    assert records[0]["certificate"]["kind"] == "optimal"  # type: ignore[index]
    assert (
        records[1]["status"] == "infeasible"
    )  # income 0: 30 + 30 reach a margin of 20 + 0.1? no: 60 - 10 < 20.1
    assert "infeasible" in output


def test_synthesize_in_chunks_passes_k_and_certify_on(tmp_path: Path) -> None:
    _files(tmp_path, [25.0])
    schema = Schema.from_toml(tmp_path / "schema.toml")
    actions = ActionSet.from_toml(tmp_path / "actions.toml", schema)
    from actionable.models import load_model

    frame = pd.read_csv(tmp_path / "people.csv")
    batch = synthesize_in_chunks(
        load_model(tmp_path / "model"), frame, actions, max_length=1, k=2, certify=True
    )
    assert len(batch[0].alternatives) == 1
    assert batch[0].certificate["kind"] == "optimal"
