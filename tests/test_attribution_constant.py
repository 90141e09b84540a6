"""An explained output that does not depend on the input is a ``ConfigError`` naming the fix (issue 12), not
all-zero attributions with exit 0; zero attributions of an output that does vary are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

from actionable import Feature, Schema, Target, as_model, attribute
from actionable.errors import ConfigError

METHODS = ["gradient", "gradient_x_input", "integrated_gradients", "deeplift", "coefficients"]


def _schema(target: Target | None = None) -> Schema:
    return Schema(
        (
            Feature("income", "real", (0, 100), mutability="direct"),
            Feature("debt", "real", (0, 100), mutability="direct"),
            Feature("region", "category", levels=("north", "south"), mutability="fixed"),
        ),
        target or Target("approved", favourable="yes", classes=("no", "yes")),
    )


def _rows(n: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "income": rng.uniform(0, 100, n),
            "debt": rng.uniform(0, 100, n),
            "region": ["north", "south"] * (n // 2),
        }
    )


def _linear(weights: list[list[float]], bias: list[float]) -> torch.nn.Module:
    net = torch.nn.Linear(4, len(weights)).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor(weights))
        net.bias.copy_(torch.tensor(bias))
    return net


@pytest.mark.parametrize("method", METHODS)
def test_a_favourable_logit_the_model_never_moves_is_refused(method: str) -> None:
    """Two logits; the favourable one ('yes') is the constant 0.3, the other depends on income."""
    model = as_model(_linear([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], [0.0, 0.3]), _schema())
    baseline = None if method.startswith("gradient") else "mean"
    with pytest.raises(ConfigError, match=r"yes \(logit\) is 0\.3 for every input.*target= another class"):
        attribute(model, _rows(), method, baseline=baseline)
    other = attribute(model, _rows(), method, baseline=baseline, target="no")  # the other logit varies
    assert np.abs(other.values).max() > 0


def test_zero_weights_of_a_fitted_model_are_refused_for_logits_and_probabilities() -> None:
    schema = _schema()
    X, y = _rows(20), np.array(["no", "yes"] * 10)
    encoded = schema.encode(X).numpy()
    fitted = LogisticRegression().fit(encoded, y)
    fitted.coef_[:] = 0.0  # one logit z = intercept: the favourable class's log-odds is constant
    model = as_model(fitted, schema)
    for output in ("logit", "probability"):
        with pytest.raises(ConfigError, match="for every input"):
            attribute(model, X, "integrated_gradients", output=output)  # type: ignore[arg-type]
    regression = LinearRegression().fit(encoded, np.arange(20.0))
    regression.coef_[:] = 0.0
    target = Target("score", above=1.0)
    with pytest.raises(ConfigError, match=r"score is .* for every input.*check the model"):
        attribute(as_model(regression, _schema(target)), X, "gradient")


def test_one_row_explained_against_itself_is_not_refused() -> None:
    """baseline='mean' of one row is the row: every attribution is 0, yet the output does vary."""
    model = as_model(_linear([[0.0] * 4, [1.0, -1.0, 0.5, 0.0]], [0.0, 0.0]), _schema())
    one = _rows().iloc[[0]]
    why = attribute(model, one, "integrated_gradients", baseline="mean")
    assert np.all(why.values == 0) and why.delta[0] == 0
    assert np.abs(attribute(model, one, "gradient").values).max() > 0


def test_a_row_where_a_relu_network_is_flat_is_not_refused() -> None:
    """relu(income - 50) is flat (zero gradient, value 0) at income 10, but not elsewhere: kept."""
    first = _linear([[1.0, 0.0, 0.0, 0.0]], [-50.0])
    net = torch.nn.Sequential(first, torch.nn.ReLU(), torch.nn.Linear(1, 2).double())
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[0.0], [1.0]]))
        net[2].bias.zero_()
    model = as_model(net, _schema())
    flat = pd.DataFrame({"income": [10.0], "debt": [5.0], "region": ["north"]})
    for method in ("gradient", "gradient_x_input"):
        assert np.all(attribute(model, flat, method).values == 0)
    two = pd.DataFrame({"income": [10.0, 20.0], "debt": [5.0, 9.0], "region": ["north", "south"]})
    assert np.all(attribute(model, two, "gradient").values == 0)  # same value 0, zero gradient: still varies
