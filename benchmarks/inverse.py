"""Benchmark of budget-constrained inverse classification (Lash et al.) on bundled Student; prints markdown.

    python benchmarks/inverse.py [--threads 1] [--repeats 3] [--loop-rows 46] [--figure PNG]

The 46 test students with a bad grade (Lash's ``--pos_only``), budgets 0..10, the bundled ``regular``
and ``indirect`` models (retrained by ``actionable train --dataset student`` with Lash's architecture and
recipe: Lash's own weights are HDF5 files we do not load). The published curve comes from the result
file shipped with the original code, on *their* models, so compare shapes and drops, and compare the
exact projection with the shrink on the *same* models for the projection's effect.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable import datasets, project_weighted_l1_ball
from actionable.inverse import InverseProblem, invert_sweep, plot_curves, sweep_curve
from actionable.lash import reference_curve

BUDGETS = list(range(11))


def students() -> tuple[datasets.Dataset, pd.DataFrame]:
    data = datasets.load("student")
    return data, data.X_test[data.y_test == 1]


def timed(run: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return times, out


def curve_table(figure: str | None) -> None:
    data, people = students()
    model, indirect = data.models["regular"], data.models["indirect"]
    reference = reference_curve(data.path / "invresult_pos_only.csv")
    runs = {
        "exact": {"method": "exact", "rounding": False},
        "shrink": {"method": "shrink", "rounding": False},
        "exact, whole numbers": {"method": "exact", "rounding": True},
    }
    sweeps = {
        name: invert_sweep(model, people, data.schema, budgets=BUDGETS, indirect=indirect, **options)
        for name, options in runs.items()
    }
    curves = {name: sweep_curve(sweep) for name, sweep in sweeps.items()}
    print(
        f"\n### Student, {len(people)} test students with a bad grade: mean P(bad grade) and share below 0.5\n"
    )
    print(
        "Reference: the result file shipped with the original code (their models). Ours: the bundled models, "
        "continuous features (Lash's relaxation) unless marked whole numbers.\n"
    )
    header = "| budget | reference P | ref < .5 | exact P | exact < .5 | shrink P | shrink < .5 | whole P | whole < .5 | exact cost |"
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    exact, shrink, whole = curves["exact"], curves["shrink"], curves["exact, whole numbers"]
    for i, budget in enumerate(BUDGETS):
        ref = reference.iloc[i]
        print(
            f"| {budget} | {ref.mean_p_unfavourable:.3f} | {ref.share_below_half:.2f} "
            f"| {exact.mean_p_unfavourable[i]:.3f} | {exact.share_below_half[i]:.2f} "
            f"| {shrink.mean_p_unfavourable[i]:.3f} | {shrink.share_below_half[i]:.2f} "
            f"| {whole.mean_p_unfavourable[i]:.3f} | {whole.share_below_half[i]:.2f} "
            f"| {exact.mean_cost[i]:.2f} |"
        )
    drops = {
        "reference": reference.mean_p_unfavourable.iloc[0] - reference.mean_p_unfavourable.iloc[-1],
        **{
            name: c.mean_p_unfavourable.iloc[0] - c.mean_p_unfavourable.iloc[-1] for name, c in curves.items()
        },
    }
    print(
        "\nDrop in mean P from budget 0 to 10: " + ", ".join(f"{k} {v:.3f}" for k, v in drops.items()) + "."
    )
    pe = np.array([[1 - r.p_after for r in b] for b in sweeps["exact"].values()])
    ps = np.array([[1 - r.p_after for r in b] for b in sweeps["shrink"].values()])
    better = (pe <= ps + 1e-9).mean()
    print(
        f"Same models, per student and budget: exact <= shrink in {better:.1%} of {pe.size} problems; "
        f"exact mean P <= shrink mean P at every budget: {bool((pe.mean(1) <= ps.mean(1) + 1e-12).all())}; "
        f"exact mean P <= reference at every budget: "
        f"{bool((exact.mean_p_unfavourable.to_numpy() <= reference.mean_p_unfavourable.to_numpy() + 1e-12).all())}."
    )
    if figure:
        plot_curves(
            {"reference (their models)": reference, **curves},
            figure,
            title=f"Student, {len(people)} students",
        )
        print(f"\n![Mean P(bad grade) against budget]({os.path.basename(figure)})")


def oracle_table(samples: int) -> None:
    """How close the local solver gets to the global optimum, checked by brute force on the same models.

    Continuous: the best of ``samples`` random feasible points per student (uniform in the box, scaled,
    projected). Whole numbers: every integer point of the lattice within budget, enumerated.
    """
    data, people = students()
    model, indirect = data.models["regular"], data.models["indirect"]
    schema = data.schema
    problem = InverseProblem(model, schema, indirect=indirect)
    x0 = schema.encode(people)
    n, k = len(x0), len(problem.direct)
    _, grad0 = problem.value_and_grad(x0, torch.zeros(n, k, dtype=torch.float64))
    lower, upper = problem.bounds(x0, grad0)
    budgets = [1, 3, 5, 10]
    continuous = invert_sweep(model, people, schema, budgets=budgets, indirect=indirect, rounding=False)
    whole = invert_sweep(model, people, schema, budgets=budgets, indirect=indirect, rounding=True)
    generator = torch.Generator().manual_seed(0)
    print(f"\n### Optimality on the same models, {n} students (P = mean probability of a bad grade)\n")
    print(
        f"| budget | continuous: ours | best of {samples:,} random feasible points | rows where random is better by > 0.001 "
        "| whole numbers: ours | lattice optimum (enumerated) | rows at the lattice optimum |"
    )
    print("|---|---|---|---|---|---|---|")
    raw_lo, raw_hi = (x0[:, problem.cols] + bound * problem.span for bound in (lower, upper))
    grids = []
    for i in range(n):
        axes = [
            torch.arange(
                torch.round(raw_lo[i, j]).item(), torch.round(raw_hi[i, j]).item() + 1, dtype=torch.float64
            )
            - x0[i, problem.cols[j]]
            for j in range(k)
        ]
        grids.append(torch.cartesian_prod(*axes).reshape(-1, k))
    for budget in budgets:
        ours = np.array([1 - r.p_after for r in continuous[float(budget)]])
        ours_whole = np.array([1 - r.p_after for r in whole[float(budget)]])
        best_random, best_lattice = [], []
        with torch.no_grad():
            for i in range(n):
                u = torch.rand(samples, k, generator=generator, dtype=torch.float64)
                scale = torch.rand(samples, 1, generator=generator, dtype=torch.float64) * 2
                points = project_weighted_l1_ball(
                    (lower[i] + u * (upper[i] - lower[i])) * scale,
                    float(budget),
                    problem.unit_up,
                    problem.unit_down,
                    lower[i],
                    upper[i],
                )
                f = problem.objective(problem.state(x0[i : i + 1].expand(samples, -1), points))
                best_random.append(torch.sigmoid(f).min().item())
                grid = grids[i]
                grid = grid[problem.cost(grid) <= budget + 1e-9]
                f = problem.objective(problem.state(x0[i : i + 1].expand(len(grid), -1), grid / problem.span))
                best_lattice.append(torch.sigmoid(f).min().item())
        random_p, lattice_p = np.array(best_random), np.array(best_lattice)
        print(
            f"| {budget} | {ours.mean():.4f} | {random_p.mean():.4f} | {int((random_p < ours - 1e-3).sum())} "
            f"| {ours_whole.mean():.4f} | {lattice_p.mean():.4f} | {int((ours_whole <= lattice_p + 1e-9).sum())}/{n} |"
        )


def speed_table(repeats: int, loop_rows: int) -> None:
    data, people = students()
    model, indirect = data.models["regular"], data.models["indirect"]
    problems = len(people) * len(BUDGETS)
    print(f"\n### Speed: {len(people)} students x {len(BUDGETS)} budgets = {problems} problems\n")
    print("| run | seconds median (min, max) | per problem (ms) |")
    print("|---|---|---|")
    for name, options in (
        (
            "batched, budgets stacked in one batch (warm_start=False)",
            {"warm_start": False, "rounding": False},
        ),
        ("batched, budgets warm-started in turn", {"warm_start": True, "rounding": False}),
        ("batched, stacked, then whole-number rounding", {"warm_start": False, "rounding": True}),
    ):
        times, _ = timed(
            lambda options=options: invert_sweep(
                model, people, data.schema, budgets=BUDGETS, indirect=indirect, **options
            ),
            repeats,
        )
        median = statistics.median(times)
        print(
            f"| {name} | {median:.2f} ({min(times):.2f}, {max(times):.2f}) | {1000 * median / problems:.1f} |"
        )
    rows = people.head(loop_rows)
    started = time.perf_counter()
    for i in range(len(rows)):
        invert_sweep(model, rows.iloc[[i]], data.schema, budgets=BUDGETS, indirect=indirect, rounding=False)
    loop = time.perf_counter() - started
    per = loop / (len(rows) * len(BUDGETS))
    print(
        f"| one row at a time, same algorithm (warm-started), {len(rows)} rows | {loop:.2f} "
        f"| {1000 * per:.1f} |"
    )
    n, d = 100_000, 50
    generator = torch.Generator().manual_seed(0)
    v = torch.randn(n, d, generator=generator, dtype=torch.float64) * 2
    budget = torch.rand(n, generator=generator, dtype=torch.float64) * 5
    cost_up, cost_down = (torch.rand(d, generator=generator, dtype=torch.float64) + 0.1 for _ in range(2))
    lower, upper = (
        -torch.rand(d, generator=generator, dtype=torch.float64),
        torch.rand(d, generator=generator, dtype=torch.float64),
    )
    print(f"\n### Projection throughput: {n:,} projections of dimension {d} (float64)\n")
    print("| method | seconds median (min, max) | projections per second |")
    print("|---|---|---|")
    for method in ("exact", "shrink"):
        times, _ = timed(
            lambda method=method: project_weighted_l1_ball(
                v, budget, cost_up, cost_down, lower, upper, method=method
            ),
            repeats,
        )
        median = statistics.median(times)
        print(f"| {method} | {median:.3f} ({min(times):.3f}, {max(times):.3f}) | {n / median:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-rows", type=int, default=46)
    parser.add_argument("--figure", default=None, help="write the curve figure to this PNG")
    parser.add_argument("--samples", type=int, default=20_000, help="random points per student (oracle)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads). "
        f"Date: {datetime.date.today().isoformat()}. Load average at start: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}."
    )
    curve_table(args.figure)
    oracle_table(args.samples)
    speed_table(args.repeats, args.loop_rows)


if __name__ == "__main__":
    main()
