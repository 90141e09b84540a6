"""Benchmark of action-sequence synthesis on the bundled German and Adult models; prints markdown tables.

    python benchmarks/synthesis.py [--rows 100] [--repeats 3]

Rows: the first N applicants the default model denies (test split first, then train). Every plan counted
as found was verified exactly by the engine; "re-checked" recounts plans whose raw ``x_after`` the model
itself (``predict`` on a DataFrame) classifies as favourable, independently of the engine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np
import pandas as pd
import torch

from actionable import datasets
from actionable.actions import ActionSet
from actionable.robustness import survival
from actionable.synthesis import synthesize

UNFAVOURABLE = {"german": "bad", "adult": "<=50K"}


def denied(name: str, rows: int) -> tuple[datasets.Dataset, ActionSet, pd.DataFrame]:
    data = datasets.load(name)
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    frame = pd.concat([data.X_test, data.X_train])
    return data, actions, frame[data.model.predict(frame) == UNFAVOURABLE[name]].head(rows)


def success_table(rows: int, repeats: int) -> None:
    print(f"\n### Success and time, {rows} denied applicants, max length 4, 150 steps (the default)\n")
    print("| dataset | found | re-checked | median cost | seconds median (min, max) | paper |")
    print("|---|---|---|---|---|---|")
    paper = {"german": "100/100", "adult": "90/100"}
    for name in ("german", "adult"):
        data, actions, people = denied(name, rows)
        times, batch = [], None
        for _ in range(repeats):
            started = time.perf_counter()
            batch = synthesize(data.model, people, actions)
            times.append(time.perf_counter() - started)
        assert batch is not None
        found = [r for r in batch if r.status == "found"]
        after = pd.DataFrame([r.x_after for r in found], columns=list(data.schema.names))
        rechecked = int((data.model.predict(after) != UNFAVOURABLE[name]).sum()) if found else 0
        summary = batch.summary()
        print(
            f"| {name} | {len(found)}/{len(people)} | {rechecked}/{len(found)} | {summary['cost_median']:.3f} | "
            f"{statistics.median(times):.2f} ({min(times):.2f}, {max(times):.2f}) | {paper[name]} |"
        )


def quality_table(rows: int) -> None:
    print(f"\n### Plan quality against optimisation steps, German, {rows} applicants\n")
    print("| steps | found | median cost | mean cost | seconds |")
    print("|---|---|---|---|---|")
    data, actions, people = denied("german", rows)
    for steps in (75, 150, 300, 1200):
        started = time.perf_counter()
        batch = synthesize(data.model, people, actions, steps=steps)
        seconds = time.perf_counter() - started
        costs = [r.cost for r in batch if r.status == "found"]
        print(f"| {steps} | {len(costs)} | {np.median(costs):.4f} | {np.mean(costs):.4f} | {seconds:.2f} |")


def robustness_table(rows: int) -> None:
    thetas = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1)
    print(
        f"\n### Share of plans that survive noise theta with probability >= 0.8 (paper's Figure 3), {rows} rows\n"
    )
    print("| dataset | margin | " + " | ".join(f"theta {t:g}" for t in thetas) + " |")
    print("|---|---|" + "---|" * len(thetas))
    for name in ("german", "adult"):
        data, actions, people = denied(name, rows)
        for margin in (0.0, 0.1, 0.5):
            batch = synthesize(data.model, people, actions, margin=margin)
            shares = [
                np.nanmean(survival(data.model, batch, actions, theta=t, samples=200) >= 0.8) for t in thetas
            ]
            print(f"| {name} | {margin:g} | " + " | ".join(f"{s:.2f}" for s in shares) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads). Date: {datetime.date.today()}."
    )
    success_table(args.rows, args.repeats)
    quality_table(args.rows)
    robustness_table(args.rows)


if __name__ == "__main__":
    main()
