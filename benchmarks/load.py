"""Speed under load: Integrated Gradients (ours and Captum's) and the exact projection, quiet and then
next to one competing busy process, at one and at two torch threads, in one run.

    python benchmarks/load.py [--repeats 15]

Prints a markdown table: per (measure, threads), the median wall-clock time of ``--repeats`` calls after
one warm-up, quiet and with one pure-Python process spinning on a core (started here, always killed);
their ratio; and for Integrated Gradients Captum's time over ours. Threads are set with
``actionable.threads.set_threads`` (the library's policy: one intra-op thread per process by default). Inputs: the bundled German default
network on its first 1,000 rows, 64 Gauss-Legendre steps, baseline the training mean (as
benchmarks/attribution.py); the projection of benchmarks/inverse.py (10^5 x 50, float64, seed 0).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from actionable import attribute, datasets, project_weighted_l1_ball
from actionable.attribution import training_mean
from actionable.threads import DEFAULT_THREADS, set_threads

ROWS, STEPS = 1000, 64
N, D = 100_000, 50
THREADS = (1, 2)


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    """Median wall-clock milliseconds of ``repeats`` calls after one warm-up."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@contextmanager
def busy_neighbour() -> Iterator[None]:
    """One competing process spinning in pure Python on one core for the duration; always killed."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        yield
    finally:
        spinner.kill()
        spinner.wait()


def calls() -> dict[str, Callable[[], Any]]:
    """The three measured calls, on fixed inputs."""
    from captum.attr import IntegratedGradients

    data = datasets.load("german")
    model, schema = data.model, data.schema
    x = schema.encode(data.frame.iloc[:ROWS])
    mean = training_mean(schema, data.X_train)
    b = torch.as_tensor(mean)[None].expand_as(x).contiguous()
    captum = IntegratedGradients(model)
    generator = torch.Generator().manual_seed(0)
    v = torch.randn(N, D, generator=generator, dtype=torch.float64) * 2
    budget = torch.rand(N, generator=generator, dtype=torch.float64) * 5
    up, down = (torch.rand(D, generator=generator, dtype=torch.float64) + 0.1 for _ in range(2))
    lo = -torch.rand(D, generator=generator, dtype=torch.float64)
    hi = torch.rand(D, generator=generator, dtype=torch.float64)
    return {
        "integrated_gradients (ours)": lambda: attribute(
            model, x, "integrated_gradients", baseline=mean, steps=STEPS
        ),
        "integrated_gradients (Captum)": lambda: captum.attribute(x, b, target=1, n_steps=STEPS),
        "exact projection": lambda: project_weighted_l1_ball(v, budget, up, down, lo, hi, method="exact"),
    }


def load_table(repeats: int) -> str:
    """The markdown table (with its header line) for ``repeats`` timed calls per cell."""
    warnings.filterwarnings("ignore", category=UserWarning)
    load = os.getloadavg()[0]
    measured = calls()
    medians: dict[tuple[str, int, str], float] = {}
    try:
        for threads in THREADS:
            set_threads(threads)  # torch's intra-op threads and numpy's BLAS pool
            for name, call in measured.items():
                medians[name, threads, "quiet"] = median_ms(call, repeats)
            with busy_neighbour():
                for name, call in measured.items():
                    medians[name, threads, "loaded"] = median_ms(call, repeats)
    finally:
        set_threads(DEFAULT_THREADS)
    lines = [
        f"Machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} cores; "
        f"date {datetime.date.today().isoformat()}; torch {torch.__version__}; load average "
        f"{load:.2f} at the start. Median of {repeats} calls after one warm-up, in ms; loaded = next to "
        "one pure-Python process spinning on a core.",
        "",
        "| measure | torch threads | quiet ms | loaded ms | loaded / quiet | Captum / ours quiet "
        "| Captum / ours loaded |",
        "|---|---|---|---|---|---|---|",
    ]
    for threads in THREADS:
        for name in measured:
            quiet, loaded = medians[name, threads, "quiet"], medians[name, threads, "loaded"]
            ratios = ["", ""]
            if name == "integrated_gradients (ours)":
                ratios = [
                    f"{medians['integrated_gradients (Captum)', threads, when] / medians[name, threads, when]:.1f}x"
                    for when in ("quiet", "loaded")
                ]
            lines.append(
                f"| {name} | {threads} | {quiet:.1f} | {loaded:.1f} | {loaded / quiet:.2f} | "
                f"{ratios[0]} | {ratios[1]} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per cell (after a warm-up)")
    args = parser.parse_args()
    print("# Speed under load: one vs two torch threads, quiet vs one busy neighbour\n")
    print(load_table(args.repeats))


if __name__ == "__main__":
    main()
