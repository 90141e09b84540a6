"""Quick, Draw! (the AAAI 2020 paper's Q4): which unrecognised drawings become recognised by adding strokes.

    python benchmarks/quickdraw.py [--rows 100] [--steps 150] [--figure benchmarks/results/quickdraw.png]

Rows: the test drawings the bundled recogniser does not recognise (first ``--rows``). The search adds at
most 5 strokes (add_stroke, cost = length + 1, 0.1 < length < 1, first empty slot, never past slot 95).
Every plan counted as found was verified exactly by the engine; "re-checked" recounts plans that pass an
independent numpy check (``actionable.drawing.stroke_plan_problems``) and that the model's own
``predict`` on the raw ``x_after`` calls recognised. Prints markdown.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from actionable import datasets
from actionable.actions import ActionSet
from actionable.drawing import draw_recourse, drawn, stroke_plan_problems, strokes
from actionable.synthesis import synthesize

PAPER = (11, 16)  # Ramakrishnan, Lee and Albarghouthi (AAAI 2020): 11 of 16 unrecognised cats, length <= 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads). Date: {datetime.date.today()}."
    )
    data = datasets.load("quickdraw")
    model = data.model
    actions = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    max_length = int(data.info["synthesis"]["max_length"])
    test = data.X_test
    predicted = model.predict(test)
    accuracy = float(np.mean(predicted == data.y_test.to_numpy(dtype=object)))
    people = test[predicted == "no"].head(args.rows)
    started = time.perf_counter()
    batch = synthesize(model, people, actions, max_length=max_length, steps=args.steps)
    seconds = time.perf_counter() - started
    found = [r for r in batch if r.status == "found"]
    after = pd.DataFrame([r.x_after for r in found], columns=list(data.schema.names))
    recognised = model.predict(after) == "yes" if found else np.zeros(0, dtype=bool)
    rechecked = sum(1 for r, ok in zip(found, recognised, strict=True) if ok and not stroke_plan_problems(r))
    costs = [r.cost for r in found]
    lengths = [len(r.steps) for r in found]
    print(
        f"\nModel: bundled `conv` (1-D convolutions), test accuracy {accuracy:.3f} on {len(test)} drawings; "
        f"it does not recognise {int((predicted == 'no').sum())} of them.\n"
    )
    print(
        f"### Unrecognised test drawings that become recognised (max {max_length} strokes, {args.steps} steps)\n"
    )
    print(
        "| unrecognised | recognised after the plan | re-checked | share | median cost | median strokes | seconds | paper |"
    )
    print("|---|---|---|---|---|---|---|---|")
    share = len(found) / max(len(people), 1)
    print(
        f"| {len(people)} | {len(found)} | {rechecked}/{len(found)} | {share:.0%} | "
        f"{statistics.median(costs) if costs else float('nan'):.3f} | "
        f"{statistics.median(lengths) if lengths else float('nan'):g} | {seconds:.0f} | "
        f"{PAPER[0]}/{PAPER[1]} ({PAPER[0] / PAPER[1]:.0%}, max length 6) |"
    )
    print("\n### By strokes missing from the complete cat (94 segments)\n")
    print("| strokes missing | drawings | recognised after the plan | median strokes added |")
    print("|---|---|---|---|")
    missing = {r.row: 94 - int(drawn(strokes(r.x_before)).sum()) for r in batch}
    for k in sorted(set(missing.values())):
        rows = [r for r in batch if missing[r.row] == k]
        hits = [r for r in rows if r.status == "found"]
        added = statistics.median(len(r.steps) for r in hits) if hits else float("nan")
        print(f"| {k} | {len(rows)} | {len(hits)} | {added:g} |")
    if args.figure is not None:
        print(f"\nFigure: {draw_recourse(batch, args.figure)}")


if __name__ == "__main__":
    main()
