"""Alternatives benchmark (issue 12): ``synthesize(..., k=3)`` against the alternatives' oracle.

    python benchmarks/alternatives.py [--problems 100] [--people 10] [--k 3] [--out benchmarks/results/alternatives.md]

For each generated problem (``actionable.problems.generate``, seeds 0 .. problems - 1) it runs
``synthesize(..., k=k, max_length=problem.max_length)`` and ``actionable.alternatives_oracle.needed_sets``
(every plan on the oracle's grid with every step needed, cheapest per set of actions) and counts per model
family: the people with a needed plan, the people whose k plans cost at most 1% more than the oracle's k
cheapest sets one by one (and are as many), and the returned plans with a step not needed (must be 0).
Then the seconds of ``k=1`` and ``k=3`` on bundled German and Adult (100 denied each). One thread.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from actionable.alternatives_oracle import needed_sets, score_alternatives
from actionable.problems import generate
from actionable.synthesis import synthesize

sys.path.insert(0, str(Path(__file__).parent))
from synthesis import denied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/alternatives.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for seed in range(args.problems):
        problem = generate(seed, people=args.people)
        sets = needed_sets(problem)
        batch = synthesize(problem.model, problem.X, problem.actions, max_length=problem.max_length, k=args.k)
        score = score_alternatives(problem, batch, args.k, sets)
        for key in (problem.family, "all"):
            row = tally[key]
            row[0] += 1
            row[1] += score.people
            row[2] += score.met
            row[3] += score.not_needed
            row[4] += score.plans
    lines = [
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} (1 thread). Date: {datetime.date.today()}. "
        f"Load average at the end: {os.getloadavg()[0]:.1f}.",
        "",
        f"### Alternatives (k = {args.k}) against the oracle of needed plans, {args.problems} generated "
        f"problems x {args.people} people",
        "",
        "| family | problems | people with a needed plan | k cheapest sets met (within 1%) | share "
        "| plans returned | with a step not needed |",
        "|---|---|---|---|---|---|---|",
    ]
    for family in sorted(tally, key=lambda f: (f == "all", f)):
        n, people, met, lacking, plans = tally[family]
        share = f"{met / people:.1%}" if people else "-"
        lines.append(f"| {family} | {n} | {people} | {met} | {share} | {plans} | {lacking} |")
    lines += ["", "### Seconds for 100 denied applicants, max length 4 (one thread)", ""]
    lines += ["| dataset | k = 1 | k = 3 | ratio | people with 3 plans (k = 3) |", "|---|---|---|---|---|"]
    for name in ("german", "adult"):
        data, actions, people = denied(name, 100)
        seconds = []
        for k in (1, 3):
            started = time.perf_counter()
            batch = synthesize(data.model, people, actions, k=k)
            seconds.append(time.perf_counter() - started)
        full = sum(1 for r in batch if r.status == "found" and len(r.alternatives) == 2)
        lines.append(
            f"| {name} | {seconds[0]:.2f} | {seconds[1]:.2f} | {seconds[1] / seconds[0]:.1f} | {full} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
