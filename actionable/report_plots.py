"""The report's figures as inline PNGs (base64 text for ``<img src="data:image/png;base64,...">``).

matplotlib is optional (``pip install 'actionable[plot]'``): without it every function returns None and
the report shows its tables alone. Figures are drawn on the Agg canvas directly, never through pyplot, so
making a report changes no global backend or figure state of the caller's process.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["PLOT_HINT", "available", "bars", "histogram"]

PLOT_HINT = "Plots need matplotlib: pip install 'actionable[plot]'."
LABEL = 40  # the most characters of a label drawn (a feature name can be any length)


def _figure(height: float) -> Any:
    """A new figure on an Agg canvas; ImportError when matplotlib is not installed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def available() -> bool:
    """Whether the report can draw (matplotlib importable)."""
    try:
        _figure(1.0)
    except ImportError:
        return False
    return True


def _png(figure: Any) -> str:
    """The figure as base64 PNG text (no metadata: the page names no software or address)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(text: str) -> str:
    """Text drawn literally: ``$`` never starts mathtext (a hostile name cannot break the drawing)."""
    short = text if len(text) <= LABEL else text[: LABEL - 3] + "..."
    return short.replace("\\", "\\\\").replace("$", r"\$")


def histogram(values: Sequence[float] | npt.NDArray[np.float64], title: str, xlabel: str) -> str | None:
    """A histogram of ``values`` as base64 PNG; None without matplotlib or values.

    A numpy array is drawn as it is (a run's costs: never copied into a list of Python floats). Values whose
    range is not a finite number (costs near the float limit) give no plot: no bins can span them."""
    if not len(values):
        return None
    data = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.max(data) - np.min(data))
    if not math.isfinite(spread):
        return None
    scale = max(1.0, float(np.max(np.abs(data))))
    narrow = spread <= 1e-9 * scale  # every value the same to rounding (invert at its budget): one bar
    try:
        figure = _figure(2.8)
    except ImportError:
        return None
    ax = figure.add_subplot()
    bins = 1 if narrow else min(30, max(5, len(values) // 3))
    span = (float(np.min(data)) - 0.5 * scale, float(np.max(data)) + 0.5 * scale) if narrow else None
    ax.hist(data, bins=bins, range=span, color="#4c72b0")
    ax.set_title(_label(title))
    ax.set_xlabel(_label(xlabel))
    ax.set_ylabel("rows")
    return _png(figure)


def bars(labels: Sequence[str], counts: Sequence[int], title: str) -> str | None:
    """Horizontal bars (largest on top) as base64 PNG; None without matplotlib or labels."""
    if not len(labels):
        return None
    try:
        figure = _figure(1.0 + 0.3 * len(labels))
    except ImportError:
        return None
    ax = figure.add_subplot()
    positions = list(range(len(labels)))[::-1]
    ax.barh(positions, list(counts), color="#c44e52")
    ax.set_yticks(positions, [_label(str(t)) for t in labels])
    ax.set_title(_label(title))
    ax.set_xlabel("rows")
    return _png(figure)
