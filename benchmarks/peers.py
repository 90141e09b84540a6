"""Side-by-side benchmark against peer libraries on the German default model; prints markdown tables.

    python benchmarks/peers.py [--rows 100] [--dice-rows 20] [--repeats 3] [--skip-install]

Peers are never project dependencies: this script installs them from ``benchmarks/requirements-peers.txt``
into their own virtualenvs (``benchmarks/.peers-venv``; ``benchmarks/.peers-venv-ar`` for
actionable-recourse, which needs NumPy < 2), exports the model weights, the people and the schema as plain
files (JSON / CSV / npy / npz, never pickle) and runs each peer in a subprocess (``peers_worker.py``).
Every returned row is then judged here, by the same code for every method: does our model flip on it
(valid), does it respect the schema (fixed features unchanged, bounds, directions, whole numbers, real
category levels), what does it cost under the German action catalogue, how many features change.
A peer that fails to install or crashes is reported with its error, never dropped.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from synthesis import denied  # benchmarks/synthesis.py: the same 100 denied applicants

import actionable
from actionable.actions import ActionSet
from actionable.goals import Goal, resolve_goal
from actionable.inner import InnerConfig, Optimiser
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.program import Program
from actionable.schema import Schema
from actionable.synthesis import synthesize

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-peers.txt"
VENVS = {"main": HERE / ".peers-venv", "ar": HERE / ".peers-venv-ar"}
TOL = 1e-6


# ------------------------------------------------------------------------------------------- venvs
def requirements(section: str) -> list[str]:
    """The pinned lines of one ``# [section]`` block of requirements-peers.txt."""
    lines, current = [], None
    for raw in REQUIREMENTS.read_text().splitlines():
        line = raw.strip()
        if line.startswith("# [") and line.endswith("]"):
            current = line[3:-1]
        elif line and not line.startswith("#") and current == section:
            lines.append(line)
    return lines


def ensure_venv(section: str, log: Path) -> str | None:
    """Create and fill one peers' virtualenv unless it already holds these requirements; the error or None."""
    venv, wanted = VENVS[section], requirements(section)
    marker = venv / f".installed-{hashlib.sha256(chr(10).join(wanted).encode()).hexdigest()[:12]}"
    if marker.exists():
        return None
    python = shutil.which("python3.11") or sys.executable
    find_links = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(wanted) + "\n")
    commands = [
        [python, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", "-r", handle.name, *find_links],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-3:]
            return f"install failed ({' '.join(command[:3])}...): " + " / ".join(tail)
    marker.touch()
    return None


# ------------------------------------------------------------------------------------------ export
def network_weights(model: TorchModel) -> dict[str, np.ndarray]:
    """Standardize + three Linear layers of the German MLP as plain arrays (mean, std, W0..W2, b0..b2)."""
    out: dict[str, np.ndarray] = {}
    linear = 0
    for layer in model.network:
        if isinstance(layer, L.Standardize):
            out["mean"], out["std"] = layer.mean.numpy(), layer.std.numpy()
        elif isinstance(layer, torch.nn.Linear):
            out[f"W{linear}"], out[f"b{linear}"] = layer.weight.detach().numpy(), layer.bias.detach().numpy()
            linear += 1
    return out


def logistic_model(schema: Schema, train: pd.DataFrame, labels: pd.Series) -> TorchModel:
    """A logistic regression on the canonical tensor (fitted on standardised columns, folded back to raw)."""
    from sklearn.linear_model import LogisticRegression

    x = schema.encode(train).numpy()
    mean, std = x.mean(0), np.where(x.std(0) > 0, x.std(0), 1.0)
    fit = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / std, (labels == "good").to_numpy())
    w = fit.coef_[0] / std
    b = float(fit.intercept_[0] - (fit.coef_[0] * mean / std).sum())
    layer = L.Linear(schema.width, 2).double()
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[1] = torch.as_tensor(w)
        layer.bias[1] = b
    return TorchModel(torch.nn.Sequential(layer), schema, task="classification", classes=("bad", "good"))


def export(
    workdir: Path,
    schema: Schema,
    people: pd.DataFrame,
    train: pd.DataFrame,
    y: pd.Series,
    mlp: TorchModel,
    logistic: TorchModel,
) -> None:
    features = []
    for f in schema.features:
        s = schema.slice(f.name)
        features.append(
            {
                "name": f.name,
                "kind": f.kind,
                "levels": list(f.levels),
                "bounds": list(f.bounds),
                "mutability": f.mutability,
                "direction": f.direction,
                "slice": [s.start, s.stop],
            }
        )
    dtypes = {f.name: "str" for f in schema.features if f.kind == "category"}
    spec = {"features": features, "width": schema.width, "dtypes": dtypes}
    (workdir / "schema.json").write_text(json.dumps(spec))
    people.to_csv(workdir / "people.csv", index=False)
    np.save(workdir / "people.npy", schema.encode(people).numpy())
    train.assign(outcome=(y == "good").astype(int).to_numpy()).to_csv(workdir / "train.csv", index=False)
    np.savez(workdir / "mlp.npz", **network_weights(mlp))
    layer = logistic.network[0]
    np.savez(workdir / "logistic.npz", w=layer.weight[1].detach().numpy(), b=np.float64(layer.bias[1].item()))


def run_peer(method: str, section: str, workdir: Path, timeout: float) -> dict[str, Any]:
    """One peer in its own venv; its JSON answer, or the error that stopped it."""
    out = workdir / f"{method}.json"
    python = VENVS[section] / "bin" / "python"
    threads = str(torch.get_num_threads())
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    if threads == "1":  # XLA's CPU backend: one thread too, so every method gets the same cores
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    try:
        done = subprocess.run(
            [str(python), str(HERE / "peers_worker.py"), method, str(workdir), str(out)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"records": [], "version": "", "error": f"timed out after {timeout:.0f} s"}
    if not out.exists():
        tail = [line for line in done.stderr.splitlines() if line.strip()][-2:]
        return {"records": [], "version": "", "error": f"exit {done.returncode}: " + " / ".join(tail)}
    return dict(json.loads(out.read_text()))


# ------------------------------------------------------------------------------------ our own Wachter
def wachter(
    model: TorchModel, goal: Goal, x0: torch.Tensor, mad: torch.Tensor, steps: int = 1000, lr: float = 0.05
) -> torch.Tensor:
    """A plain Wachter et al. counterfactual, batched: Adam on the mutable canonical columns of
    lam * (1 - p_favourable)^2 + sum |x' - x| / MAD, with lam doubled every 100 steps for rows not yet
    flipped. No rounding, no projection onto real category levels: what the method itself returns."""
    mutable = model.schema.mask("direct") | model.schema.mask("indirect")
    delta = torch.zeros_like(x0, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=lr)
    lam = torch.ones(len(x0), dtype=x0.dtype)
    for t in range(steps):
        x = x0 + delta * mad * mutable
        p = goal.probability(model(x))
        loss = (lam * (1 - p) ** 2 + ((x - x0).abs() / mad).sum(1)).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (t + 1) % 100 == 0:
            with torch.no_grad():
                lam = torch.where(goal.satisfied(model(x0 + delta * mad * mutable)), lam, lam * 2)
    with torch.no_grad():
        return x0 + delta * mad * mutable


# --------------------------------------------------------------------------------------- judging
def to_canonical(schema: Schema, row: dict[str, Any]) -> torch.Tensor | None:
    """A raw row -> canonical vector, tolerating out-of-bound numbers (judged later); None for an unknown
    level or a value that is not a number."""
    x = torch.zeros(schema.width, dtype=torch.float64)
    for f in schema.features:
        s, value = schema.slice(f.name), row.get(f.name)
        if f.kind == "category":
            if str(value) not in f.levels:
                return None
            x[s.start + f.levels.index(str(value))] = 1.0
        else:
            try:
                x[s.start] = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return None
    return x


def schema_problems(schema: Schema, x0: torch.Tensor, x: torch.Tensor) -> list[str]:
    """Which of the schema's rules a returned canonical row breaks (empty: it respects the schema)."""
    problems = []
    for f in schema.features:
        s = schema.slice(f.name)
        before, after = x0[s], x[s]
        if f.mutability == "fixed" and bool(((after - before).abs() > TOL).any()):
            problems.append("fixed")
        if f.kind == "category":
            block_ok = (
                bool(((after.abs() < TOL) | ((after - 1).abs() < TOL)).all())
                and abs(float(after.sum()) - 1) < TOL
            )
            if not block_ok:
                problems.append("levels")
            continue
        value, lo, hi = float(after[0]), *f.bounds
        if not (lo - TOL <= value <= hi + TOL):
            problems.append("bounds")
        if f.kind in ("integer", "binary") and abs(value - round(value)) > TOL:
            problems.append("whole")
        if f.direction == "increase" and value < float(before[0]) - TOL:
            problems.append("direction")
        if f.direction == "decrease" and value > float(before[0]) + TOL:
            problems.append("direction")
    return sorted(set(problems))


# change_credit_amount and change_loan_period: (largest change, smallest value after) in the catalogue
RELATIVE = {"credit_amount": (20000, 250), "duration": (60, 4)}


def catalogue_cost(before: pd.Series, after: pd.Series) -> float | None:
    """The German reproduction catalogue's (``paper_actions.toml``) cost of reaching ``after`` from
    ``before`` with one action per changed feature (wait_years, change_credit_amount, change_loan_period,
    naturalize, get_unskilled_job, get_guarantor), or None when a change has no action in the catalogue
    or breaks an action's box."""
    cost = 0.0
    for name in before.index:
        old, new = before[name], after[name]
        if old == new:
            continue
        if name == "age" and 0 < new - old <= 40:
            cost += 0.1 + (new - old)
        elif name in RELATIVE and abs(new - old) <= RELATIVE[name][0] and new >= RELATIVE[name][1]:
            cost += 0.1 + ((new - old) / old) ** 2
        elif (name, old, new) in (
            ("foreign_worker", "yes", "no"),
            ("job", "unemployed / unskilled - non-resident", "unskilled - resident"),
        ) or (name == "other_debtors" and new == "guarantor"):
            cost += 5.0
        else:
            return None
    return cost


@dataclass
class Row:
    """One method's line of the table."""

    method: str
    note: str
    asked: int
    seconds: list[float] = field(default_factory=list)  # per person (or per repeat / person for batches)
    total: float = math.nan  # seconds spent on all asked people (median run)
    returned: int = 0
    valid: int = 0
    respecting: int = 0
    usable: int = 0
    costs: list[float] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)
    error: str = ""


def judge(
    row: Row,
    schema: Schema,
    model: TorchModel,
    goal: Goal,
    x0: torch.Tensor,
    before: pd.DataFrame,
    results: list[torch.Tensor | None],
    costs: list[float | None] | None = None,
) -> Row:
    """Fill a row's counts from the returned canonical rows (None: nothing returned or not decodable)."""
    for k, x in enumerate(results):
        if x is None:
            continue
        row.returned += 1
        with torch.no_grad():
            valid = bool(goal.satisfied(model(x[None, :].to(torch.float64)))[0])
        problems = schema_problems(schema, x0[k], x)
        for p in problems:
            row.problems[p] = row.problems.get(p, 0) + 1
        row.valid += valid
        row.respecting += not problems
        row.usable += valid and not problems
        changed = [
            f.name
            for f in schema.features
            if bool(((x[schema.slice(f.name)] - x0[k][schema.slice(f.name)]).abs() > TOL).any())
        ]
        row.changed.append(len(changed))
        if valid and not problems:
            cost = costs[k] if costs is not None else catalogue_cost(before.iloc[k], schema.decode(x).iloc[0])
            if cost is not None:
                row.costs.append(cost)
    return row


def peer_results(schema: Schema, payload: dict[str, Any]) -> tuple[list[torch.Tensor | None], list[float]]:
    xs: list[torch.Tensor | None] = []
    seconds = []
    for record in payload["records"]:
        seconds.append(float(record["seconds"]))
        if record["status"] != "found":
            xs.append(None)
        elif record["space"] == "raw":
            xs.append(to_canonical(schema, record["x"]))
        else:
            xs.append(torch.as_tensor(record["x"], dtype=torch.float64))
    return xs, seconds


def errors_of(payload: dict[str, Any]) -> str:
    """The whole-peer error, or a count of per-person errors with the first message."""
    if payload.get("error"):
        return str(payload["error"])
    failed = [r for r in payload["records"] if r["status"] == "error"]
    if failed:
        return f"{len(failed)} people raised; first: {failed[0]['error']}"
    return ""


# ----------------------------------------------------------------------------------------- tables
def cell_seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.4g} ({min(values):.3g}, {max(values):.3g})"


def print_table(rows: list[Row]) -> None:
    print(
        "| method | people | with a counterfactual | truly valid | respects the schema | valid and respecting | "
        "median cost (costed) | median features changed | seconds per person median (min, max) | "
        "seconds per valid plan | schema problems | error |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:

        def share(k: int, asked: int = r.asked) -> str:
            return f"{k}/{asked}" if asked else "-"

        cost = f"{statistics.median(r.costs):.3f} ({len(r.costs)})" if r.costs else "n/a (0)"
        changed = f"{statistics.median(r.changed):g}" if r.changed else "-"
        per_valid = f"{r.total / r.valid:.4g}" if r.valid and math.isfinite(r.total) else "-"
        problems = ", ".join(f"{k} {v}" for k, v in sorted(r.problems.items())) or "none"
        print(
            f"| {r.method} | {r.asked} | {share(r.returned)} | {share(r.valid)} | {share(r.respecting)} | "
            f"{share(r.usable)} | {cost} | {changed} | {cell_seconds(r.seconds)} | {per_valid} | {problems} | "
            f"{r.error or '-'} |"
        )


def plot(rows: list[Row], path: str) -> None:
    """Seconds per valid plan (log scale) per method, each bar labelled with its valid-and-respecting share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.valid and math.isfinite(r.total)]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * len(shown)))
    values = [r.total / r.valid for r in shown]
    ax.barh(
        range(len(shown)), values, color=["tab:green" if r.usable == r.asked else "tab:grey" for r in shown]
    )
    for i, (r, v) in enumerate(zip(shown, values, strict=True)):
        ax.text(v * 1.1, i, f"valid and respecting {r.usable}/{r.asked}", va="center", fontsize=8)
    ax.set_yticks(range(len(shown)), [r.method for r in shown], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 300)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per valid plan (log scale)")
    ax.set_title("German default model: peers in the same run", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\n![Seconds per valid plan]({Path(path).name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--dice-rows", type=int, default=20, help="people given to DiCE (about 3 s each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-install", action="store_true", help="use the peers' venvs as they are")
    parser.add_argument(
        "--figure", default=str(HERE / "results" / "peers.png"), help="PNG of the first table"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to each peer process")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch (and the peers' torch / XLA); 0: torch's default. On a shared, loaded "
        "machine 1 avoids oversubscription stalls",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads). Date: {datetime.date.today()}. "
        f"Load average at start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}."
    )
    install = {
        section: None if args.skip_install else ensure_venv(section, HERE / f".peers-{section}.log")
        for section in VENVS
    }
    data, actions, people = denied("german", args.rows)
    schema, model = data.schema, data.model
    goal = resolve_goal(model)
    x0 = schema.encode(people)
    train = data.X_train
    logistic = logistic_model(schema, train, data.y_train)
    rows: list[Row] = []

    # ours: the whole synthesize call, repeated
    times, batch = [], None
    for _ in range(args.repeats):
        started = time.perf_counter()
        batch = synthesize(model, people, actions)
        times.append(time.perf_counter() - started)
    assert batch is not None
    ours = Row("actionable.synthesize (max length 4)", f"actionable {actionable.__version__}", len(people))
    ours.seconds = [t / len(people) for t in times]
    ours.total = statistics.median(times)
    found = [r.status == "found" for r in batch]
    xs: list[torch.Tensor | None] = [
        schema.encode(pd.DataFrame([r.x_after], columns=list(schema.names)))[0] if ok else None
        for r, ok in zip(batch, found, strict=True)
    ]
    rows.append(
        judge(
            ours,
            schema,
            model,
            goal,
            x0,
            people,
            xs,
            [r.cost if ok else None for r, ok in zip(batch, found, strict=True)],
        )
    )

    # plain Wachter in torch, batched
    train_x = schema.encode(train)
    mad = (train_x - train_x.median(0).values).abs().median(0).values
    mad = torch.where(mad > 0, mad, train_x.std(0).clamp_min(1e-3))
    times, out = [], x0
    for _ in range(args.repeats):
        started = time.perf_counter()
        out = wachter(model, goal, x0, mad)
        times.append(time.perf_counter() - started)
    w = Row("Wachter (plain, torch: mutable columns, 1000 Adam steps)", "", len(people))
    w.seconds = [t / len(people) for t in times]
    w.total = statistics.median(times)
    rows.append(judge(w, schema, model, goal, x0, people, list(out)))

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        export(workdir, schema, people, train, data.y_train, model, logistic)
        peers = [
            ("dice-gradient", "DiCE gradient (PYT backend)", "main"),
            ("dice-genetic", "DiCE genetic", "main"),
            ("relax", "ReLax VanillaCF (JAX; fixed, box, directions kept; one-hot at the end)", "main"),
        ]
        for method, label, section in peers:
            subset = args.dice_rows if method.startswith("dice") else len(people)
            row = Row(label, "", subset)
            if install[section]:
                row.error = install[section] or ""
                rows.append(row)
                continue
            sub = workdir / method
            sub.mkdir()
            export(sub, schema, people.head(subset), train, data.y_train, model, logistic)
            payload = run_peer(method, section, sub, args.timeout)
            row.error = errors_of(payload)
            row.note = payload.get("version", "")
            results, seconds = peer_results(schema, payload)
            row.seconds = seconds
            row.total = sum(seconds) if seconds else math.nan
            rows.append(judge(row, schema, model, goal, x0[:subset], people.head(subset), results))
        print(f"\n### German default model (MLP), {len(people)} denied applicants\n")
        print(
            f"DiCE runs on the first {args.dice_rows} of them (the slowest method); "
            "the other methods on all. Batched methods: seconds per person = one whole call / people, median "
            f"(min, max) over {args.repeats} runs; per-person methods: over people.\n"
        )
        print_table(rows)
        print()
        for r in rows:
            if r.note:
                print(f"* {r.method}: {r.note}")
        if args.figure:
            plot(rows, args.figure)
        dice = next(r for r in rows if r.method.startswith("DiCE gradient"))
        if dice.valid and ours.valid:
            ratio = (dice.total / dice.valid) / (ours.total / ours.valid)
            print(
                f"\nPer valid plan, ours is {ratio:.0f}x faster than DiCE gradient (target >= 100x); "
                f"ours respects the schema for {ours.respecting}/{ours.returned} returned plans."
            )

        # the logistic model: actionable-recourse against ours on the same linear model
        with torch.no_grad():
            denied_lr = ~goal.satisfied(logistic(x0))
        asked = people[denied_lr.numpy()]
        lr_rows = []
        started = time.perf_counter()
        lr_batch = synthesize(logistic, asked, actions)
        seconds = time.perf_counter() - started
        ours_lr = Row("actionable.synthesize (max length 4)", "", len(asked), [seconds / len(asked)], seconds)
        lr_found = [r.status == "found" for r in lr_batch]
        xs = [
            schema.encode(pd.DataFrame([r.x_after], columns=list(schema.names)))[0] if ok else None
            for r, ok in zip(lr_batch, lr_found, strict=True)
        ]
        x0_lr = schema.encode(asked)
        lr_rows.append(
            judge(
                ours_lr,
                schema,
                logistic,
                goal,
                x0_lr,
                asked,
                xs,
                [r.cost if ok else None for r, ok in zip(lr_batch, lr_found, strict=True)],
            )
        )
        row = Row("actionable-recourse (Flipset, one item)", "", len(asked))
        if install["ar"]:
            row.error = install["ar"] or ""
            lr_rows.append(row)
        else:
            sub = workdir / "ar"
            sub.mkdir()
            export(sub, schema, asked, train, data.y_train, model, logistic)
            payload = run_peer("actionable-recourse", "ar", sub, args.timeout)
            row.error, row.note = errors_of(payload), payload.get("version", "")
            results, secs = peer_results(schema, payload)
            row.seconds, row.total = secs, (sum(secs) if secs else math.nan)
            lr_rows.append(judge(row, schema, logistic, goal, x0_lr, asked, results))
        print(
            f"\n### Logistic model on the canonical columns, the {len(asked)} of those {len(people)} applicants it "
            "denies\n"
        )
        print_table(lr_rows)
        print()
        for r in lr_rows:
            if r.note:
                print(f"* {r.method}: {r.note}")

        inner_loop(model, actions, goal, x0, mad, workdir, install["main"], args.repeats)


def inner_loop(
    model: TorchModel,
    actions: ActionSet,
    goal: Goal,
    x0: torch.Tensor,
    mad: torch.Tensor,
    workdir: Path,
    install_error: str | None,
    repeats: int,
    steps: int = 1000,
) -> None:
    """100 people x 1000 gradient steps: our engine's inner loop (one action), eager torch Wachter, ReLax."""
    print(f"\n### Inner loop: {len(x0)} people x {steps} gradient steps on the German MLP\n")
    print("| loop | seconds median (min, max) | ms per 1000 steps |")
    print("|---|---|---|")
    engine = Optimiser(Program(actions), model, goal, InnerConfig(steps=steps))
    ids = torch.full((len(x0), 1), actions.names.index("change_credit_amount"), dtype=torch.int64)
    cases = {
        "actionable inner loop (one action, Adam, exact conditions)": lambda: engine.run(ids, x0),
        "Wachter, eager batched torch": lambda: wachter(model, goal, x0, mad, steps=steps),
    }
    for label, call in cases.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        print(f"| {label} | {cell_seconds(times)} | {statistics.median(times) * 1000 * 1000 / steps:.0f} |")
    if install_error:
        print(f"| ReLax VanillaCF core (jit + vmap) | not run: {install_error} | - |")
        return
    payload = run_peer("relax-core", "main", workdir, 600)
    times = [r["seconds"] for r in payload["records"] if r["status"] == "found"]
    if times:
        print(
            f"| ReLax VanillaCF core (jit + vmap, float32, compiled once) | {cell_seconds(times)} | "
            f"{statistics.median(times) * 1000 * 1000 / steps:.0f} |"
        )
    else:
        print(f"| ReLax VanillaCF core | failed: {errors_of(payload)} | - |")


if __name__ == "__main__":
    main()
