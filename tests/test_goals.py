"""Goals: margins are >= 0 exactly when the goal holds; resolution from the schema and from arguments."""

from __future__ import annotations

import pytest
import torch

from actionable import ConfigError, Feature, Goal, Schema, Target, as_model, resolve_goal

FEATURES = (Feature("a", "real", (-5, 5)), Feature("b", "real", (-5, 5)))


def classifier(classes: tuple[object, ...] = ("bad", "good", "great"), favourable: object = "good"):
    schema = Schema(FEATURES, Target("y", favourable=favourable, classes=classes))
    return as_model(torch.nn.Linear(2, len(classes)).double(), schema)


def regressor(**target: float):
    schema = Schema(FEATURES, Target("price", **target))
    return as_model(torch.nn.Linear(2, 1).double(), schema)


def test_default_goal_is_the_schema_target() -> None:
    goal = resolve_goal(classifier())
    assert goal == Goal("class", index=1, label="good")
    assert resolve_goal(regressor(above=2.5)) == Goal("above", threshold=2.5, label="price")
    assert resolve_goal(regressor(below=1.0)) == Goal("below", threshold=1.0, label="price")


def test_class_margin_sign_matches_argmax() -> None:
    goal = resolve_goal(classifier())
    logits = torch.randn(500, 3, dtype=torch.float64)
    assert torch.equal(goal.satisfied(logits), logits.argmax(1) == 1)
    assert torch.allclose(goal.margin(logits), logits[:, 1] - torch.maximum(logits[:, 0], logits[:, 2]))


def test_probability_goal_threshold() -> None:
    goal = resolve_goal(classifier(), {"class": "great", "probability": 0.7})
    logits = torch.randn(500, 3, dtype=torch.float64) * 3
    p = torch.softmax(logits, 1)[:, 2]
    assert torch.equal(goal.satisfied(logits), p >= 0.7)
    assert torch.allclose(goal.probability(logits), p)


def test_a_probability_without_a_class_is_about_the_schemas_favourable_class() -> None:
    assert resolve_goal(classifier(), {"probability": 0.8}) == Goal(
        "probability", index=1, threshold=0.8, label="good"
    )


def test_regression_margins() -> None:
    values = torch.tensor([[1.0], [2.5], [4.0]], dtype=torch.float64)
    assert resolve_goal(regressor(above=2.5)).satisfied(values).tolist() == [False, True, True]
    assert resolve_goal(regressor(above=2.5), {"below": 2.0}).margin(values).tolist() == [1.0, -0.5, -2.0]


def test_labels_match_across_types() -> None:
    model = classifier(classes=(0, 1), favourable=0)
    assert resolve_goal(model, "1").index == 1


@pytest.mark.parametrize(
    ("goal", "message"),
    [
        ("excellent", "class 'excellent' is not one of the model's classes"),
        ({"class": "good", "probability": 1.5}, r"probability must be in \(0, 1\)"),
        ({"above": 3}, "above/below are for regression models"),
        ({"colour": 1}, "unknown key"),
    ],
)
def test_bad_goals_raise_config_error(goal: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_goal(classifier(), goal)


def test_regression_needs_a_bound() -> None:
    with pytest.raises(ConfigError, match="exactly one of"):
        resolve_goal(regressor(above=1.0), {"class": 1})
