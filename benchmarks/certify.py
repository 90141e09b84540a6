"""Benchmark of certificates by mixed-integer programming (``actionable.certify``); prints markdown tables.

    python benchmarks/certify.py [--rows 30] [--generated 25] [--threads 1]

Bundled German (2x40 ReLU) and Adult (2x50 ReLU): the first N applicants the default model denies (test
split first), ``synthesize(..., certify=True)`` at the defaults (margin 0.1) with max length 1, 2 and 4 (the
default; sequences of three or more actions are not modelled, only bounded below by their constant costs); the
share of people whose result is proved optimal, proved to have no plan, or not proved (and the most
common reasons), how many plans the program's own plan replaced (cheaper and verified exactly), and the
seconds per certificate. Generated problems (``tests/certify_problems.py``: random schemas, catalogues
and linear or ReLU models, every parameter a whole number in a small box): ``certify`` without an
incumbent at max length 2, checked against full enumeration (wrong claims must be 0).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' problem generator

from actionable import datasets
from actionable.actions import ActionSet
from actionable.certify import certify
from actionable.synthesis import synthesize
from tests.certify_problems import enumerate_optimum, problem

UNFAVOURABLE = {"german": "bad", "adult": "<=50K"}


def _seconds(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({max(values):.2f})" if values else "-"


def _reason(text: str) -> str:
    """A reason shortened to its kind, for counting."""
    first = text.split(";")[0]
    return first.split(" (")[0] if "not affine" in first else first[:70]


def bundled_table(rows: int) -> None:
    print(f"\n### Bundled datasets: {rows} denied applicants, synthesize(certify=True) at the defaults\n")
    print(
        "| dataset | max length | people | optimal | no plan | none | replaced by the program's plan | seconds per certificate, median (max) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    reasons: dict[tuple[str, int], collections.Counter[str]] = {}
    for name in ("german", "adult"):
        data = datasets.load(name)
        actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
        frame = pd.concat([data.X_test, data.X_train])
        people = frame[data.model.predict(frame) == UNFAVOURABLE[name]].head(rows)
        for length in (1, 2, 4):
            plain = synthesize(data.model, people, actions, max_length=length)
            proved = synthesize(data.model, people, actions, max_length=length, certify=True)
            kinds = collections.Counter(r.certificate["kind"] for r in proved)
            replaced = sum(
                a.status == "found" and b.status == "found" and b.cost < a.cost - 1e-9
                for a, b in zip(plain, proved, strict=True)
            ) + sum(a.status != "found" and b.status == "found" for a, b in zip(plain, proved, strict=True))
            seconds = [float(r.certificate["seconds"]) for r in proved]
            reasons[name, length] = collections.Counter(
                _reason(r.certificate["reason"]) for r in proved if r.certificate["kind"] == "none"
            )
            n = len(proved)
            print(
                f"| {name} | {length} | {n} | {kinds['optimal']}/{n} | {kinds['no_plan_exists']}/{n} | "
                f"{kinds['none']}/{n} | {replaced} | {_seconds(seconds)} |"
            )
    print("\nReasons for `none` (count):\n")
    for (name, length), counter in reasons.items():
        for reason, count in counter.most_common(3):
            print(f"* {name}, max length {length}: {count} x {reason}")


def generated_table(problems: int) -> None:
    print(
        f"\n### Generated problems: {problems} seeds x up to 4 people, max length 2, margin 0.1, no incumbent\n"
    )
    print(
        "| model | people | optimal | no plan | none | wrong (against enumeration) | seconds per certificate, median (max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in ("linear", "relu"):
        counts: collections.Counter[str] = collections.Counter()
        wrong, seconds = 0, []
        for seed in range(problems):
            p = problem(seed, kind)
            if not len(p.x):
                continue
            truth = enumerate_optimum(p, 2, 0.1)
            for t, c in zip(
                truth, certify(p.model, p.goal, p.program, p.x, max_length=2, margin=0.1), strict=True
            ):
                counts[c.kind] += 1
                seconds.append(c.seconds)
                cost = c.plan.cost if c.plan is not None and c.plan.verified else math.inf
                wrong += (
                    c.bound > t + 1e-7 * (1 + abs(t) if math.isfinite(t) else 1)
                    or (c.kind == "no_plan_exists" and math.isfinite(t))
                    or (c.kind == "optimal" and abs(cost - t) > 1e-4 * t + 1e-9)
                )
        n = sum(counts.values())
        print(
            f"| {kind} | {n} | {counts['optimal']}/{n} | {counts['no_plan_exists']}/{n} | {counts['none']}/{n} | "
            f"{wrong} | {_seconds(seconds)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--generated", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), scipy HiGHS via scipy.optimize.milp. "
        f"Date: {datetime.date.today()}. Load average at the start: {load:.1f}."
    )
    started = time.perf_counter()
    bundled_table(args.rows)
    generated_table(args.generated)
    print(f"\nTotal: {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
