"""Figures from results (compute first, plot separately). matplotlib is optional: ``pip install actionable[plot]``.

Every function draws on a given ``ax`` or a new figure and returns the figure; nothing is shown or saved
unless asked (``save``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from actionable.errors import ConfigError
from actionable.results import Advice, Attribution

__all__ = ["plot_advice", "plot_attribution", "plot_gradient_table", "plot_table", "save"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "actionable.plotting needs matplotlib, which is not installed. "
            "Install it with: pip install 'actionable[plot]' (or pip install matplotlib)."
        ) from None
    return plt


def _axes(ax: Axes | None, height: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig, new = _pyplot().subplots(figsize=(7, height), layout="constrained")
    return fig, new


def plot_attribution(
    attribution: Attribution, row: int | None = None, *, k: int | None = None, ax: Axes | None = None
) -> Figure:
    """Horizontal bars of one row's attributions (``row``: a position), or their mean over all rows.

    ``k``: only the ``k`` largest by absolute value. Bars pushing the output up are blue, down red.
    """
    if row is not None and not 0 <= row < len(attribution):
        raise ConfigError(f"plot_attribution: row {row} is not a position below {len(attribution)}.")
    explained = len(attribution) - len(attribution.errors)
    values = attribution.values[row] if row is not None else np.nanmean(attribution.values, 0)
    series = pd.Series(values, index=list(attribution.features))
    order = series.abs().sort_values(ascending=True).index
    series = series[order][-k:] if k else series[order]
    fig, ax = _axes(ax, 0.6 + 0.32 * len(series))
    ax.barh(series.index, series.to_numpy(), color=np.where(series.to_numpy() >= 0, "#3b75af", "#c44e52"))
    ax.axvline(0, color="black", linewidth=0.8)
    where = f"row {attribution.rows[row]}" if row is not None else f"mean over {explained} rows"
    ax.set_title(f"{attribution.method}: {attribution.target}, {where}")
    unit = {"per sd": "change per standard deviation", "per unit": "change per unit"}.get(
        attribution.unit, f"contribution (baseline: {attribution.baseline})"
    )
    ax.set_xlabel(unit)
    return fig


def plot_table(table: pd.DataFrame, *, title: str = "", xlabel: str = "", ax: Axes | None = None) -> Figure:
    """Grouped horizontal bars: one group per row of ``table`` (a feature), one bar per column."""
    if table.empty:
        raise ConfigError("plot_table: the table is empty.")
    fig, ax = _axes(ax, 0.8 + 0.3 * len(table) * max(1, len(table.columns)) ** 0.5)
    height = 0.8 / len(table.columns)
    positions = np.arange(len(table))[::-1]
    for j, column in enumerate(table.columns):
        ax.barh(positions + (len(table.columns) / 2 - j - 0.5) * height, table[column], height, label=column)
    ax.set_yticks(positions, [str(i) for i in table.index])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize="small")
    return fig


def plot_gradient_table(table: pd.DataFrame) -> Figure:
    """The blog's figures: one panel per model of a ``gradient_table`` ("model @ point" columns)."""
    if table.empty:
        raise ConfigError("plot_gradient_table: the table is empty.")
    models = list(dict.fromkeys(str(c).split(" @ ")[0] for c in table.columns))
    fig: Figure
    fig, axes = _pyplot().subplots(
        1, len(models), figsize=(5 * len(models), 1 + 0.45 * len(table)), layout="constrained", squeeze=False
    )
    for ax, model in zip(axes[0], models, strict=True):
        part = table[[c for c in table.columns if str(c).split(" @ ")[0] == model]]
        part = part.rename(columns=lambda c: str(c).split(" @ ")[1])
        plot_table(part, title=f"{model}: input gradient", xlabel="change per standard deviation", ax=ax)
    return fig


def plot_advice(advice: Advice, *, ax: Axes | None = None) -> Figure:
    """Before / after: the prediction now, and after each advised step (one arrow per feature, best on top)."""
    if not advice.items:
        raise ConfigError("plot_advice: the advice is empty (no changeable feature helps); nothing to plot.")
    fig, ax = _axes(ax, 0.8 + 0.4 * len(advice.items))
    before = advice.prediction
    for i, item in enumerate(reversed(advice.items)):
        after = before + item.effect
        ax.annotate(
            "", xy=(after, i), xytext=(before, i), arrowprops={"arrowstyle": "->", "color": "#3b75af"}
        )
        ax.plot([before], [i], "o", color="grey")
        ax.plot([after], [i], "o", color="#3b75af")
    labels = [
        f"{a.feature} -> {a.to!r}" if np.isnan(a.per_sd) else f"{a.feature} {a.step:+.3g}"
        for a in reversed(advice.items)
    ]
    ax.set_yticks(range(len(labels)), labels)
    ax.axvline(before, color="grey", linewidth=0.8, linestyle="--")
    ax.set_title(f"{advice.quantity}: before {before:.3g} and after one small step")
    ax.set_xlabel(advice.quantity)
    ax.margins(x=0.15, y=0.1)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. .png) and close it."""
    path = Path(path)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
