"""Portfolio runs (issue 14): synthesis rows/s with 1 and 2 workers, explain's peak memory at 10^5 and
10^6 rows, the cost of resuming, and (from ``benchmarks/load.py``) speed with a competing busy process.

Every run is the command line a user types (``actionable --threads 1 batch ...``) in its own process, so
its peak memory (ru_maxrss, read by the process itself at its end) and wall time are its own. Inputs are
Adult rows drawn with replacement from the bundled table (seed 0), written once to a temporary folder.
Targets: synthesis >= 50 rows/s on 2 cores; peak memory at 10^6 rows within 1.5x of 10^5.

    python benchmarks/batch.py > benchmarks/results/batch.md
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, sys, time
from actionable.cli import app
started = time.perf_counter()
try:
    app(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("MEASURED", time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def adult_rows(n: int, folder: Path) -> Path:
    """``n`` Adult rows drawn with replacement (seed 0) as a CSV in ``folder``."""
    from actionable import datasets

    bundle = datasets.load("adult")
    with gzip.open(bundle.path / "data.csv.gz", "rt") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    picks = np.random.default_rng(0).integers(0, len(frame), n)
    path = folder / f"adult_{n}.csv"
    frame.iloc[picks].to_csv(path, index=False)
    return path


def measured(args: list[str]) -> tuple[float, float]:
    """(seconds, peak MiB) of one ``actionable`` command in its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *args], env=env, capture_output=True, text=True, check=False
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("MEASURED")]
    if not line:
        raise RuntimeError(f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    _, seconds, kib = line[-1].split()
    return float(seconds), float(kib) / 1024


def synthesis_table(folder: Path, rows: int) -> list[str]:
    source = adult_rows(rows, folder)
    lines = ["| workers | rows | seconds | rows/s |", "|---|---|---|---|"]
    base = ["--threads", "1", "batch", "synthesize", "--data", str(source), "--max-length", "3", "--quiet"]
    base += _adult_files(folder)
    for workers in (1, 2):
        extra = [] if workers == 1 else ["--workers", "2"]
        seconds, _ = measured([*base, "--out", str(folder / f"synth_{workers}"), "--chunk", "500", *extra])
        lines.append(f"| {workers} | {rows:,} | {seconds:.1f} | {rows / seconds:.1f} |")
    return lines


def _adult_files(folder: Path) -> list[str]:
    from actionable import datasets

    bundle = datasets.load("adult")
    schema = folder / "adult_schema.toml"
    bundle.schema.save(schema)
    default = str(bundle.info["default_model"])
    model = bundle.path / "models" / default
    return ["--schema", str(schema), "--model", str(model), "--actions", str(bundle.path / "actions.toml")]


def memory_table(folder: Path, sizes: list[int]) -> list[str]:
    lines = ["| rows | seconds | rows/s | peak memory MiB |", "|---|---|---|---|"]
    files = _adult_files(folder)[:4]
    peaks = []
    for n in sizes:
        source = adult_rows(n, folder)
        args = [
            "--threads",
            "1",
            "batch",
            "explain",
            "--data",
            str(source),
            *files,
            "--steps",
            "64",
            "--quiet",
        ]
        seconds, peak = measured([*args, "--out", str(folder / f"explain_{n}"), "--chunk", "1000"])
        peaks.append(peak)
        lines.append(f"| {n:,} | {seconds:.1f} | {n / seconds:,.0f} | {peak:.0f} |")
        source.unlink()
    lines.append("")
    lines.append(f"Peak memory at {sizes[-1]:,} rows / at {sizes[0]:,} rows: {peaks[-1] / peaks[0]:.2f}x.")
    return lines


def resume_table(folder: Path, rows: int) -> list[str]:
    source = adult_rows(rows, folder)
    files = _adult_files(folder)[:4]
    args = ["--threads", "1", "batch", "explain", "--data", str(source), *files, "--steps", "64", "--quiet"]
    out = folder / "resume"
    whole, _ = measured([*args, "--out", str(out), "--chunk", "1000"])
    again, _ = measured([*args, "--out", str(out), "--chunk", "1000", "--resume"])
    parts = sorted((out / "parts").glob("*.jsonl"))
    for part in parts[len(parts) // 2 :]:
        part.unlink()  # as a crash halfway would leave it
    half, _ = measured([*args, "--out", str(out), "--chunk", "1000", "--resume"])
    return [
        "| run | seconds |",
        "|---|---|",
        f"| {rows:,} rows from scratch | {whole:.1f} |",
        f"| resume of the finished run (every part checked, none redone) | {again:.1f} |",
        f"| resume after losing the second half of the parts | {half:.1f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthesis-rows", type=int, default=10_000)
    parser.add_argument("--memory-rows", default="100000,1000000")
    parser.add_argument("--resume-rows", type=int, default=100_000)
    parser.add_argument("--load-repeats", type=int, default=15)
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print("# Portfolio runs: throughput, memory, resume, load\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), Python "
        f"{platform.python_version()}; {datetime.date.today()}; load average {load:.1f} at the start; every run is "
        "`actionable --threads 1 batch ...` in its own process (one intra-op thread per process).\n"
    )
    with tempfile.TemporaryDirectory(prefix="actionable-bench-") as temp:
        folder = Path(temp)
        started = time.perf_counter()
        print("## Synthesis on Adult rows, max length 3 (target >= 50 rows/s)\n")
        print("\n".join(synthesis_table(folder, args.synthesis_rows)))
        print("\n## Explain (Integrated Gradients, 64 steps): peak memory flat in the number of rows\n")
        print("\n".join(memory_table(folder, [int(x) for x in args.memory_rows.split(",")])))
        print("\n## Resume\n")
        print("\n".join(resume_table(folder, args.resume_rows)))
    if not args.skip_load:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from load import load_table

        print("\n## With and without a competing busy process (benchmarks/load.py)\n")
        print(load_table(args.load_repeats))
    print(f"\nPrinted by `python benchmarks/batch.py` in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
