"""Issue 12: the wachter preset on integer, decrease-only features with costs, checked by enumeration; and
logits scaled by 1e40 (the same decisions) lose no plan."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from actionable import Feature, Schema, Target, registry, synthesize
from actionable.oracle import solve_exhaustively
from actionable.registry import direct_moves
from tests.generated import problem

SCHEMA = Schema(
    (
        Feature("debts", "integer", (0, 12), mutability="direct", direction="decrease", cost_down=0.3),
        Feature("late", "integer", (0, 10), mutability="direct", direction="decrease", cost_down=0.5),
        Feature("income", "real", (0, 10), mutability="fixed"),
    ),
    Target("ok", favourable=1, classes=(0, 1)),
)


def test_wachter_finds_what_enumeration_of_its_action_finds() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "debts": rng.integers(0, 13, 400),
            "late": rng.integers(0, 11, 400),
            "income": rng.uniform(0, 10, 400),
        }
    )
    y = (X["income"] - 0.6 * X["debts"] - 0.5 * X["late"] + rng.normal(0, 1, 400) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    denied = X[model.predict(X) == 0].head(40)
    batch = registry.run("wachter", model, denied, SCHEMA)
    answers = solve_exhaustively(model, denied, direct_moves(SCHEMA), max_length=1, margin=0.1)
    helpable = [a.helpable for a in answers]
    found = [r.status == "found" for r in batch]
    assert sum(helpable) >= 20
    assert sum(f and h for f, h in zip(found, helpable, strict=True)) >= 0.9 * sum(helpable)
    assert not any(f and not h for f, h in zip(found, helpable, strict=True))  # never past the oracle


def test_logits_scaled_by_1e40_lose_no_plan() -> None:
    p = problem(0)  # a logistic regression in a Pipeline
    scaled = copy.deepcopy(p.model)
    estimator = scaled[-1] if hasattr(scaled, "steps") else scaled
    estimator.coef_ = estimator.coef_ * 1e40
    estimator.intercept_ = estimator.intercept_ * 1e40
    assert (scaled.predict(p.X) == p.model.predict(p.X)).all()
    plain = synthesize(p.model, p.X, p.actions, max_length=p.max_length)
    big = synthesize(scaled, p.X, p.actions, max_length=p.max_length)
    for a, b in zip(plain, big, strict=True):  # a margin of 0.1 logits is easier to clear at 1e40 x
        assert b.status == "found" or a.status != "found"
