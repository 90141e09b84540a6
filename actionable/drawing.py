"""Quick, Draw! figures: a drawing's own strokes in blue and the strokes a plan added in red.

The AAAI 2020 paper's Figure 4. A drawing is stored as slot-major columns ``x1_k, y1_k, x2_k, y2_k``
(unit square, y downwards; an empty slot is (1, 1, 1, 1)). Self-contained: it reads only the raw
``x_before`` / ``x_after`` records of ``Recourse`` values, so it can move into a plotting module as is.
matplotlib is optional (``pip install 'actionable[plot]'``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from actionable.errors import ConfigError

__all__ = ["COORDS", "EMPTY", "added", "draw_recourse", "drawn", "stroke_plan_problems", "strokes"]

COORDS = ("x1", "y1", "x2", "y2")
EMPTY = 1.0  # every coordinate of an empty slot
_SLOT = re.compile(r"^x1_(\d+)$")


def strokes(record: Mapping[str, Any]) -> np.ndarray:
    """The (slots, 4) segments of one raw drawing record (a ``Recourse.x_before`` / ``x_after`` dict)."""
    slots = sorted(int(m.group(1)) for name in record if (m := _SLOT.match(str(name))))
    if not slots or slots != list(range(len(slots))):
        raise ConfigError(
            "drawing: the record has no stroke columns x1_0, y1_0, x2_0, y2_0, x1_1, ... (got columns "
            f"{list(record)[:4]}...); figures of strokes need a drawing dataset such as 'quickdraw'."
        )
    try:
        return np.array([[float(record[f"{c}_{k}"]) for c in COORDS] for k in slots], dtype=np.float64)
    except KeyError as exc:
        raise ConfigError(f"drawing: the record lacks stroke column {exc.args[0]!r}.") from None


def drawn(segments: np.ndarray) -> np.ndarray:
    """Which slots hold a segment (not the empty marker)."""
    slots: np.ndarray = ~(segments == EMPTY).all(axis=1)
    return slots


def added(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Which slots a plan wrote: they differ from the drawing before it."""
    written: np.ndarray = (before != after).any(axis=1)
    return written


def stroke_plan_problems(
    recourse: Any, *, max_strokes: int = 5, last_slot: int = 95, length: tuple[float, float] = (0.1, 1.0)
) -> list[str]:
    """Check a found add_stroke plan in numpy, independently of the engine; an empty list when it is right.

    The drawing before fills slots from the front; the plan's k strokes sit exactly in the k first empty
    slots, in step order, with the step's coordinates; nothing else changed; every length is inside
    ``length``; each step costs length + 1 and the plan's cost is their sum; k <= ``max_strokes`` and no
    stroke lies past ``last_slot``.
    """
    before, after = strokes(recourse.x_before), strokes(recourse.x_after)
    problems = []
    n0 = int(drawn(before).sum())
    if drawn(before)[n0:].any() or not drawn(before)[:n0].all():
        problems.append("the drawing before has an empty slot before a drawn one")
    steps = list(recourse.steps)
    k = len(steps)
    expected = np.zeros(len(before), dtype=bool)
    expected[n0 : n0 + k] = True
    if not np.array_equal(added(before, after), expected):
        problems.append(
            f"changed slots {np.flatnonzero(added(before, after)).tolist()}, not the first empty ones "
            f"{np.flatnonzero(expected).tolist()}"
        )
    if k > max_strokes or n0 + k - 1 > last_slot:
        problems.append(f"{k} strokes from slot {n0}: more than {max_strokes} or past slot {last_slot}")
    total = 0.0
    for j, step in enumerate(steps):
        segment = np.array([float(step.params[c]) for c in COORDS])
        if n0 + j < len(after) and not np.array_equal(after[n0 + j], segment):
            problems.append(f"step {j}: slot {n0 + j} holds {after[n0 + j].tolist()}, not {segment.tolist()}")
        size = float(np.hypot(segment[2] - segment[0], segment[3] - segment[1]))
        if not length[0] < size < length[1]:
            problems.append(f"step {j}: length {size:.4f} outside ({length[0]}, {length[1]})")
        if not math.isclose(step.cost, size + 1, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"step {j}: cost {step.cost} is not length + 1 = {size + 1}")
        total += size + 1
    if not math.isclose(recourse.cost, total, rel_tol=1e-9, abs_tol=1e-9):
        problems.append(f"plan cost {recourse.cost} is not the sum of its strokes' {total}")
    return problems


def draw_recourse(results: Iterable[Any], path: str | Path, *, panels: int = 6, columns: int = 3) -> Path:
    """Write a PNG (or any format matplotlib knows from the suffix) of up to ``panels`` found plans.

    Blue: the drawing's strokes before the plan; red: the strokes the plan added. Each panel's title gives
    the row, the number of strokes added, the plan's cost and the model's probability before -> after.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(
            "drawing: matplotlib is not installed; run pip install 'actionable[plot]' to draw figures."
        ) from None
    if panels < 1 or columns < 1:
        raise ConfigError(f"drawing: panels and columns must be >= 1; got {panels} and {columns}.")
    found = [r for r in results if getattr(r, "status", None) == "found"][:panels]
    n = max(len(found), 1)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    figure = Figure(figsize=(3.2 * cols, 3.4 * rows))
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_xlim(0, 1)
        ax.set_ylim(1, 0)  # Quick, Draw! coordinates grow downwards
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if not found:
        axes[0].text(0.5, 0.5, "no verified plan to draw", ha="center", va="center")
    for ax, r in zip(axes, found, strict=False):
        before, after = strokes(r.x_before), strokes(r.x_after)
        new = added(before, after)
        for segment in before[drawn(before) & ~new]:
            ax.plot(segment[[0, 2]], segment[[1, 3]], color="tab:blue", linewidth=1.5)
        for segment in after[new]:
            ax.plot(segment[[0, 2]], segment[[1, 3]], color="tab:red", linewidth=2.0)
        ax.set_title(
            f"row {r.row}: +{int(new.sum())} strokes, cost {r.cost:.2f}\np {r.p_before:.2f} -> {r.p_after:.2f}",
            fontsize=9,
        )
    figure.suptitle("Blue: the drawing; red: strokes added by the plan", fontsize=10)
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    return out
