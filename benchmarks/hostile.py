"""How long each hostile-input case takes to be refused (issue 10's target: within 2 s); prints markdown.

    python benchmarks/hostile.py [--slowest 15]

Runs ``tests/test_hostile_*.py`` once on one process (pytest, JUnit XML for per-case times) and prints, per
file, the number of cases, how many took over 2 s and the slowest; then the slowest cases overall. The
suites themselves only guard against hangs (30 s) and runaway memory (2 GB of address space); this
script is where the 2 s target is measured, on a machine whose load is printed beside the table. Cases
that start the CLI in a subprocess (``run_cli``) include about 2-3 s of interpreter and torch start-up.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def run_suites() -> list[tuple[str, str, float]]:
    """(file, case, seconds) for every hostile case, from one pytest run on one process."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_hostile_*.py"))
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "junit.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *files],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
        tree = ET.parse(report)  # our own pytest's report, written just now
    cases = []
    for case in tree.iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        cases.append((module, case.get("name", ""), float(case.get("time", "0"))))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slowest", type=int, default=15, help="slowest cases to list")
    args = parser.parse_args()
    cases = run_suites()
    load = os.getloadavg()
    print(
        f"Hostile-input cases, {datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, one process, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    by_file: dict[str, list[float]] = defaultdict(list)
    for module, _, seconds in cases:
        by_file[module].append(seconds)
    print(f"| suite | cases | over {TARGET_S:g} s | slowest (s) | total (s) |")
    print("|---|---|---|---|---|")
    for module, times in sorted(by_file.items()):
        over = sum(t > TARGET_S for t in times)
        print(f"| {module} | {len(times)} | {over} | {max(times):.2f} | {sum(times):.1f} |")
    print(f"\nSlowest {args.slowest} cases (CLI subprocess cases include interpreter and torch start-up):\n")
    print("| suite | case | seconds |")
    print("|---|---|---|")
    for module, name, seconds in sorted(cases, key=lambda c: -c[2])[: args.slowest]:
        print(f"| {module} | `{name}` | {seconds:.2f} |")


if __name__ == "__main__":
    main()
