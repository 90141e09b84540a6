"""Plots: bars carry the attribution values, panels and arrows match the results, files are PNG, and a
missing matplotlib gives a clear ImportError."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actionable import advise_gradient, attribute, datasets
from actionable.advice import gradient_table
from actionable.attribution import standard_deviations, training_mean

plt = pytest.importorskip("matplotlib.pyplot")
from actionable import plotting  # noqa: E402


@pytest.fixture(scope="module")
def california() -> datasets.Dataset:
    return datasets.load("california")


def test_bars_are_the_values_of_one_row_or_the_mean(california: datasets.Dataset) -> None:
    X = california.X_test.iloc[:4]
    result = attribute(california.model, X, baseline=training_mean(california.schema, california.X_train))
    fig = plotting.plot_attribution(result, 2)
    bars = {
        t.get_text(): p.get_width()
        for t, p in zip(fig.axes[0].get_yticklabels(), fig.axes[0].patches, strict=True)
    }
    assert bars == pytest.approx(dict(zip(result.features, result.values[2], strict=True)))
    fig = plotting.plot_attribution(result, k=3)
    widths = sorted(abs(p.get_width()) for p in fig.axes[0].patches)
    assert widths == pytest.approx(sorted(np.sort(np.abs(result.values.mean(0)))[-3:]))
    plt.close("all")
    with pytest.raises(plotting.ConfigError):
        plotting.plot_attribution(result, 9)


def test_gradient_table_figure_has_one_panel_per_model(california: datasets.Dataset, tmp_path: Path) -> None:
    table = gradient_table(california.models, california.X_train, california.X_test.iloc[[0]])
    fig = plotting.plot_gradient_table(table)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].patches) == 2 * len(table)  # mean and one row per feature
    path = plotting.save(fig, tmp_path / "blog.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_advice_before_after(california: datasets.Dataset) -> None:
    sd = standard_deviations(california.schema, california.X_train)
    advice = advise_gradient(california.model, california.X_test.iloc[0], scale=sd)
    fig = plotting.plot_advice(advice)
    arrows = [a for a in fig.axes[0].texts if hasattr(a, "arrow_patch") and a.arrow_patch is not None]
    assert len(arrows) == len(advice)
    ends = sorted(a.xy[0] for a in arrows)
    assert ends == pytest.approx(sorted(advice.prediction + i.effect for i in advice))
    plt.close("all")


def test_missing_matplotlib_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install 'actionable\\[plot\\]'"):
        plotting.plot_table(pd.DataFrame({"a": [1.0]}, index=["x"]))
