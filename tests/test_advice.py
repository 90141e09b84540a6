"""Adversarial advising: changeable features only, helpful directions, ranking, the model's own effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import ConfigError, DataError, advise_gradient, datasets
from actionable.advice import gradient_table
from actionable.attribution import attribute, standard_deviations, training_mean


@pytest.fixture(scope="module")
def california() -> datasets.Dataset:
    return datasets.load("california")


def test_linear_advice_is_the_standardized_coefficients(california: datasets.Dataset) -> None:
    model, schema = california.models["linear"], california.schema
    sd = standard_deviations(schema, california.X_train)
    x = california.X_test.iloc[3]
    advice = advise_gradient(model, x, scale=sd)
    coef = attribute(model, california.X_test.iloc[3:4], "gradient").to_frame().iloc[0]
    mutable = {f.name for f in schema.features if f.mutable}
    assert {a.feature for a in advice} <= mutable
    for a in advice:
        assert a.per_sd == pytest.approx(abs(coef[a.feature]) * sd[a.feature], rel=1e-12)
        assert a.direction == ("increase" if coef[a.feature] > 0 else "decrease")
        assert a.effect == pytest.approx(a.linear_effect, abs=1e-9)  # exact for a linear model
        assert a.effect > 0  # toward the goal (above 2.0: raise the value)
        assert a.feature in a.text and "1 sd" in a.text
    per_sd = [a.per_sd for a in advice]
    assert per_sd == sorted(per_sd, reverse=True)
    assert advice.items[0].feature == "MedInc"
    assert advice.prediction == pytest.approx(float(model.predict(california.X_test.iloc[3:4])[0]))


def test_goal_below_flips_every_direction(california: datasets.Dataset) -> None:
    model = california.models["mlp"]
    sd = standard_deviations(california.schema, california.X_train)
    x = california.X_test.iloc[0]
    up = {a.feature: a.direction for a in advise_gradient(model, x, scale=sd)}
    down = {a.feature: a.direction for a in advise_gradient(model, x, {"below": 1.0}, scale=sd)}
    assert up and up.keys() == down.keys()
    for feature, direction in up.items():
        assert down[feature] != direction
    for a in advise_gradient(model, x, {"below": 1.0}, scale=sd):
        assert a.effect < 0 and "lowers" in a.text
        # a small step: the gradient forecasts the model's own change to within 20%
        assert a.linear_effect == pytest.approx(a.effect, rel=0.2)


def test_forbidden_directions_and_bounds_are_left_out(california: datasets.Dataset) -> None:
    model = california.models["linear"]
    # MedInc helps when raised; forbid raising it, and put AveBedrms at its upper bound.
    schema = california.schema.with_features(MedInc={"direction": "decrease"})
    x = california.X_test.iloc[[0]].assign(AveBedrms=50.0)
    advice = advise_gradient(model.network, x, schema=schema)
    names = {a.feature for a in advice}
    assert "MedInc" not in names and "AveBedrms" not in names and "AveRooms" in names
    assert advice.unit == "per unit" and "1 unit" in advice.items[0].text


def test_category_switches_on_german_are_exact_and_helpful() -> None:
    data = datasets.load("german")
    sd = standard_deviations(data.schema, data.X_train)
    x = data.X_test.iloc[0]
    advice = advise_gradient(data.model, x, scale=sd)
    switches = [a for a in advice if np.isnan(a.per_sd)]
    assert switches, "German has changeable category features"
    before = float(data.model.predict_proba(data.X_test.iloc[[0]])[0, 1])
    for a in switches:
        assert a.effect > 0
        changed = data.X_test.iloc[[0]].copy()
        changed[a.feature] = a.to
        after = float(data.model.predict_proba(changed)[0, 1])
        assert after - before == pytest.approx(a.effect, abs=1e-12)
    fixed = {f.name for f in data.schema.features if not f.mutable}
    assert not fixed & {a.feature for a in advice}
    assert "probability of 'good'" in advice.describe()


def test_bad_input(california: datasets.Dataset) -> None:
    model = california.model
    with pytest.raises(DataError, match="one person"):
        advise_gradient(model, california.X_test.iloc[:2])
    with pytest.raises(ConfigError, match="step"):
        advise_gradient(model, california.X_test.iloc[0], step=0)
    with pytest.raises(DataError, match="scale lacks"):
        advise_gradient(model, california.X_test.iloc[0], scale=pd.Series({"MedInc": 1.0}))


def test_gradient_table_columns_and_linear_invariance(california: datasets.Dataset) -> None:
    row = california.X_test.iloc[[5]]
    label = row.index[0]
    table = gradient_table(california.models, california.X_train, row)
    assert sorted(table.columns) == sorted(
        ["linear @ mean", f"linear @ row {label}", "mlp @ mean", f"mlp @ row {label}"]
    )
    np.testing.assert_allclose(table["linear @ mean"], table[f"linear @ row {label}"])
    sd = standard_deviations(california.schema, california.X_train)
    mean = torch.as_tensor(training_mean(california.schema, california.X_train))[None]
    direct = attribute(california.models["mlp"], mean, "gradient").values[0] * sd.to_numpy()
    np.testing.assert_allclose(table["mlp @ mean"], direct, rtol=1e-12)
