"""Optimality benchmark (issue 12): ``synthesize`` at default settings against the exhaustive oracle.

    python benchmarks/optimality.py [--problems 300] [--people 20] [--seed 0]
                                    [--german-rows 100] [--out benchmarks/results/optimality.md]
                                    [--cases CASES.jsonl]

For each generated problem (``actionable.problems.generate``, seeds ``seed .. seed + problems - 1``) it
runs ``synthesize`` with only ``max_length=problem.max_length`` (everything else, the margin included, at
its defaults) and ``actionable.oracle.solve_exhaustively`` on the same people, and counts per model family
and in total (``actionable.optimality``): the people the oracle can help past the margin, the plans found
for them, the share of those costing at most 1% more than the oracle's, the found plans whose exact goal
margin clears the margin, the found plans the independent replay of ``testing.check_plans`` refuses, and
seconds. The same on bundled German (the first ``--german-rows`` denied applicants, test split first),
against the grid + root oracle over sequences of at most 1 and 2 actions. Torch runs on one thread.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from actionable import datasets
from actionable.actions import ActionSet
from actionable.optimality import TARGETS, WITHIN, Case, ProblemScore, Tally, measure
from actionable.problems import FAMILIES, Problem, generate

COLUMNS = (
    "| set | problems | people | helpable (oracle) | found | found / helpable | within 1% | clearing margin "
    "| invalid | s / person (synthesize) | oracle s |"
)


def percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def row(label: str, tally: Tally) -> str:
    shares = tally.shares()
    per_person = tally.seconds / max(tally.people, 1)
    return (
        f"| {label} | {tally.problems} | {tally.people} | {tally.helpable} | {tally.found_helpable} "
        f"| {percent(shares['found'])} | {percent(shares['within'])} | {percent(shares['clearing'])} "
        f"| {tally.invalid} | {per_person:.3f} | {tally.oracle_seconds:.1f} |"
    )


def german(rows: int) -> list[tuple[str, ProblemScore]]:
    """Bundled German at the defaults, against the oracle over at most 1 and 2 actions."""
    data = datasets.load("german")
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    frame = pd.concat([data.X_test, data.X_train])
    denied = frame[data.model.predict(frame) == "bad"].head(rows)
    out = []
    for length in (1, 2):
        problem = Problem(
            f"german-L{length}", "german", False, data.schema, actions, data.model, denied, length
        )
        out.append((f"german, max_length {length}", measure(problem)))
    return out


def worst(scores: Sequence[ProblemScore], k: int = 10) -> list[str]:
    """The helpable people left without a plan (cheapest missed plans first), then the found plans
    furthest above the oracle's cost (more than 1% above): ``k`` of each."""
    cases: list[Case] = [c for s in scores for c in s.cases]
    missed = sorted(
        (c for c in cases if math.isnan(c.found)), key=lambda c: (c.oracle, c.problem, str(c.row))
    )
    dear = sorted(
        (c for c in cases if not math.isnan(c.found) and c.badness > 1 + WITHIN),
        key=lambda c: (-c.badness, c.problem, str(c.row)),
    )
    lines = ["| problem | row | oracle cost | found cost | found / oracle |", "|---|---|---|---|---|"]
    for c in [*missed[:k], *dear[:k]]:
        found = "not_found" if math.isnan(c.found) else f"{c.found:.4g}"
        ratio = "-" if math.isnan(c.found) else f"{c.badness:.3f}"
        lines.append(f"| {c.problem} | {c.row} | {c.oracle:.4g} | {found} | {ratio} |")
    return lines


def write_cases(path: Path, scores: Sequence[ProblemScore]) -> None:
    """Every helpable person as one JSON line: problem, row, oracle cost, found cost (null: no plan)."""
    with path.open("w", encoding="utf-8") as out:
        for s in scores:
            for c in s.cases:
                found = None if math.isnan(c.found) else c.found
                out.write(
                    json.dumps({"problem": c.problem, "row": int(c.row), "oracle": c.oracle, "found": found})
                    + "\n"
                )


def header(args: argparse.Namespace, started: float) -> list[str]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return [
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} thread). "
        f"Date: {datetime.date.today().isoformat()}. Load average at the start: {load:.1f}. "
        f"Run: `python benchmarks/optimality.py --problems {args.problems} --people {args.people} "
        f"--seed {args.seed} --german-rows {args.german_rows}` ({time.perf_counter() - started:.0f} s).",
        "",
        "`synthesize` at its default settings (only `max_length` = the problem's, 2 or 3; margin 0.1) against "
        "`actionable.oracle.solve_exhaustively` (every canonical sequence x every parameter combination, "
        "grid 64 + root refinement, the engine's exact semantics). Targets (issue 12): found / helpable "
        f">= {100 * TARGETS['found']:.0f}%, within 1% >= {100 * TARGETS['within']:.0f}%, clearing margin "
        "100%, invalid 0.",
        "",
        "* **helpable (oracle)**: people with a plan past the margin (goal margin >= 0.1) within max_length.",
        "* **found**: of those, people `synthesize` found a plan for; **within 1%**: of those plans, the "
        "share costing at most 1.01 x the oracle's least cost (or less).",
        "* **clearing margin**: of all found plans, the share whose goal margin, replayed exactly, is >= "
        "the margin; **invalid**: found plans `actionable.testing.check_plans` refuses.",
        "* **s / person**: `synthesize` wall-clock seconds per person; **oracle s**: the oracle's total.",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--german-rows", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/optimality.md"))
    parser.add_argument("--cases", type=Path, default=None, help="write every helpable person as JSON lines")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    scores: list[ProblemScore] = []
    for seed in range(args.seed, args.seed + args.problems):
        s = measure(generate(seed, people=args.people))
        scores.append(s)
        print(
            f"{s.name}: helpable {s.helpable}, found {s.found_helpable}, within {s.within}, "
            f"clearing {s.clearing}/{s.found}, invalid {s.invalid}, {s.seconds:.2f} s",
            file=sys.stderr,
        )
    bundled = german(args.german_rows) if args.german_rows else []
    lines = ["", "### Generated problems, per model family", "", COLUMNS, "|" + "---|" * 11]
    for family in FAMILIES:
        lines.append(row(family, Tally().add(s for s in scores if s.family == family)))
    lines.append(row("pipelines", Tally().add(s for s in scores if s.name.endswith("-pipe"))))
    total = Tally().add(scores)
    lines.append(row("**all**", total))
    met = ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in total.meets().items())
    lines += ["", f"Targets on all generated problems: {met}."]
    if bundled:
        lines += ["", "### Bundled German, default model and catalogue", "", COLUMNS, "|" + "---|" * 11]
        lines += [row(label, Tally().add([s])) for label, s in bundled]
    lines += [
        "",
        "### The worst cases (generated problems): the 10 cheapest plans missed, then the 10 dearest found",
        "",
        *worst(scores),
    ]
    if args.cases is not None:
        write_cases(args.cases, scores)
    text = "\n".join([*header(args, started), *lines]) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
