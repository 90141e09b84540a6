"""Default networks: seeded and reproducible, they learn, and they save as closed-set layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ConfigError, DataError, Feature, Schema, Target, load_model, save_model
from actionable.models.training import Recipe, fit_classifier, fit_indirect, fit_regressor

SCHEMA = Schema(
    (
        Feature("x", "real", (-3, 3), mutability="direct"),
        Feature("n", "integer", (0, 10), mutability="direct"),
        Feature("c", "category", levels=("p", "q")),
        Feature("h", "integer", (0, 20), mutability="indirect"),
    ),
    Target("y", favourable="yes", classes=("no", "yes")),
)


def data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x": rng.uniform(-3, 3, n), "n": rng.integers(0, 11, n), "c": rng.choice(["p", "q"], n)}
    )
    frame["h"] = (2 * frame.n).clip(0, 20)
    y = np.where(frame.x + (frame.c == "q") * 1.5 - frame.n / 5 > 0, "yes", "no")
    return frame, pd.Series(y)


FAST = Recipe(hidden=(8,), epochs=40, batch_size=32, lr=1e-2)


def test_classifier_learns_and_is_reproducible(tmp_path: Path) -> None:
    X, y = data()
    first, second = fit_classifier(SCHEMA, X, y, FAST), fit_classifier(SCHEMA, X, y, FAST)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    Xt, yt = data(300, seed=1)
    assert (first.predict(Xt) == yt.to_numpy(dtype=object)).mean() > 0.9
    save_model(first, tmp_path / "m")
    assert np.array_equal(load_model(tmp_path / "m").predict_proba(Xt), first.predict_proba(Xt))


def test_other_seed_gives_other_weights() -> None:
    X, y = data()
    a = fit_classifier(SCHEMA, X, y, FAST)
    b = fit_classifier(SCHEMA, X, y, Recipe(hidden=(8,), epochs=40, batch_size=32, lr=1e-2, seed=1))
    assert not torch.equal(a.network[1].weight, b.network[1].weight)


def test_dropout_is_not_kept_in_the_saved_network(tmp_path: Path) -> None:
    X, y = data()
    model = fit_classifier(SCHEMA, X, y, Recipe(hidden=(8, 8), epochs=2, dropout=0.5))
    assert [type(m).__name__ for m in model.network] == [
        "Standardize",
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
    save_model(model, tmp_path / "m")


def test_regressor_predicts_in_raw_units() -> None:
    X, _ = data()
    target = 100 + 10 * X.x
    model = fit_regressor(SCHEMA, X, target, Recipe(hidden=(16,), epochs=60, lr=1e-2, batch_size=32))
    error = np.abs(model.predict(X) - target.to_numpy())
    assert model.outputs == ("y",) and np.median(error) < 2.0


def test_indirect_model_maps_fixed_and_direct_to_indirect() -> None:
    X, _ = data()
    model = fit_indirect(SCHEMA, X, Recipe(hidden=(10,), epochs=200, lr=1e-2, batch_size=32))
    assert model.outputs == ("h",)
    x = SCHEMA.encode(X)
    x_changed = x.clone()
    x_changed[:, SCHEMA.slice("h")] = 0  # the indirect model must not read its own outputs
    assert torch.equal(model(x), model(x_changed))
    assert np.median(np.abs(model.predict(X) - X.h.to_numpy())) < 1.0
    assert (model.predict(X) >= 0).all()


def test_bad_training_input() -> None:
    X, _ = data(20)
    with pytest.raises(DataError, match="single class"):
        fit_classifier(SCHEMA, X, pd.Series(["yes"] * 20), FAST, classes=("yes",))
    with pytest.raises(DataError, match=r"target values \['maybe'\] are not among the classes"):
        fit_classifier(SCHEMA, X, pd.Series(["maybe"] * 20), FAST)
    with pytest.raises(ConfigError, match="must be >= 1"):
        Recipe(hidden=(0,))
    with pytest.raises(ConfigError, match="no indirect features"):
        fit_indirect(Schema(SCHEMA.features[:3]), X[["x", "n", "c"]])


def test_a_level_absent_from_training_keeps_outputs_bounded() -> None:
    """A column constant in training is scaled by 1 (as StandardScaler does), not by a tiny divisor."""
    X, y = data()
    X["c"] = "p"  # level 'q' never seen
    model = fit_classifier(SCHEMA, X, y, FAST)
    std = model.network[0].std
    assert std[SCHEMA.slice("c")].tolist() == [1.0, 1.0]
    unseen = X.iloc[:5].assign(c="q")
    logits = model(model.encode(unseen))
    assert torch.isfinite(logits).all() and logits.abs().max() < 1e3
