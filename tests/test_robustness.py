"""Robustness to imprecise execution: exact on a linear model, 1 at theta = 0, bounded in [0, 1]."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from actionable import ConfigError
from actionable.robustness import survival
from actionable.synthesis import synthesize
from tests.test_synthesis import PERSON, catalogue, linear_model


def test_linear_plan_survival_has_a_closed_form() -> None:
    model, actions = linear_model(), catalogue("d / 10", "d / 5")
    plans = synthesize(model, PERSON, actions, margin=0.0, steps=300)
    d = plans[0].steps[0].params["d"]  # the plan needs a + d >= 35 (margin 0 at a = 45)
    theta = 0.1
    expected = ((1 + theta) * d - 35) / (2 * theta * d)  # share of uniform draws in [(1-t)d, (1+t)d] above 35
    measured = survival(model, plans, actions, theta=theta, samples=4000)[0]
    assert measured == pytest.approx(expected, abs=0.03)
    assert 0.45 < measured < 0.65  # a margin-0 plan sits near the boundary


def test_margin_makes_plans_robust_and_theta_zero_always_survives() -> None:
    model, actions = linear_model(), catalogue("d / 10", "d / 5")
    robust = synthesize(model, PERSON, actions, margin=1.0, steps=300)
    assert survival(model, robust, actions, theta=0.05)[0] == 1.0
    people = pd.concat([PERSON, PERSON.assign(a=100.0, b=100.0), PERSON.assign(g="q")], ignore_index=True)
    plans = synthesize(model, people, actions, steps=150)
    rates = survival(model, plans, actions, theta=0.0)
    assert rates[0] == 1.0 and np.isnan(rates[1]) and np.isnan(rates[2])  # favourable already; bad row
    with pytest.raises(ConfigError, match="theta"):
        survival(model, plans, actions, theta=1.5)
