"""What "favourable" means for a model's output: a class, a probability threshold, or a regression bound.

Every verb turns its ``goal=`` argument (default: the schema's ``[target]``) into a ``Goal``, which gives a
signed margin (>= 0 exactly when the goal is met, differentiable) and the favourable probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from actionable.errors import ConfigError, did_you_mean
from actionable.models import TorchModel
from actionable.results import PROBABILITY

__all__ = [
    "Goal",
    "GoalKind",
    "resolve_goal",
]


GoalKind = Literal["class", "probability", "above", "below"]


@dataclass(frozen=True)
class Goal:
    """A resolved goal on a model's output columns."""

    kind: GoalKind
    index: int = 0
    threshold: float | None = None
    label: Any = None

    def margin(self, out: torch.Tensor) -> torch.Tensor:
        """Signed distance to the goal per row: >= 0 exactly when it is met.

        class: target logit minus the best other logit; probability: log p_target - log threshold;
        above / below: the value's distance past the threshold.
        """
        if self.kind == "class":
            target = out[..., self.index]
            others = torch.cat([out[..., : self.index], out[..., self.index + 1 :]], dim=-1)
            return target - others.max(dim=-1).values
        if self.kind == "probability":
            threshold = float(self.threshold)  # type: ignore[arg-type]
            log_p: torch.Tensor = torch.log_softmax(out, dim=-1)[..., self.index]
            return log_p - math.log(threshold)
        value = out[..., self.index]
        return value - self.threshold if self.kind == "above" else self.threshold - value  # type: ignore[operator]

    def satisfied(self, out: torch.Tensor) -> torch.Tensor:
        """Whether the goal is met per row, exactly as the model decides.

        A class goal is met when the model's ``predict`` (an argmax, which picks the first of tied
        classes) names the favourable class: strictly above every other logit, or tied only with later
        classes. At a tie with an earlier class the margin is 0 but the decision is unfavourable.
        """
        if self.kind == "class":
            return out.argmax(dim=-1) == self.index
        return self.margin(out) >= 0

    def probability(self, out: torch.Tensor) -> torch.Tensor:
        """The model's probability of the favourable class; for regression, the predicted value."""
        if self.kind in ("class", "probability"):
            return torch.softmax(out, dim=-1)[..., self.index]
        return out[..., self.index]

    def outcome(self) -> str:
        """What ``probability`` measures, in words: recourse texts say "<outcome> 0.40 -> 0.52"."""
        if self.kind in ("class", "probability"):
            return PROBABILITY
        return f"predicted {self.label}" if self.label is not None else "prediction"

    def describe(self) -> str:
        if self.kind == "class":
            return f"predicted class {self.label!r}"
        if self.kind == "probability":
            return f"P({self.label!r}) >= {self.threshold:g}"
        return f"prediction {'>=' if self.kind == 'above' else '<='} {self.threshold:g}"


def resolve_goal(model: TorchModel, goal: Any = None) -> Goal:
    """A ``Goal`` from ``None`` (the schema's target), a class label, a ``Goal``, or a mapping such as
    ``{"class": "good", "probability": 0.7}``, ``{"above": 2.5}`` or ``{"below": 1.0}``."""
    if isinstance(goal, Goal):
        _check_index(model, goal.index)
        return goal
    if goal is None:
        goal = _target_goal(model)
    if not isinstance(goal, Mapping):
        if not _is_label(goal):
            raise ConfigError(
                f"goal: goal = {_shown(goal)} ({type(goal).__name__}); give a class label (str or number), "
                "a Goal, or a mapping such as {'class': 'good', 'probability': 0.7} or {'above': 2.5}."
            )
        goal = {"class": goal}
    unknown = set(goal) - {"class", "probability", "above", "below", "output"}
    if unknown:
        raise ConfigError(
            f"goal: unknown key(s) {sorted(unknown)}; use class, probability, above, below, output."
        )
    if model.task == "regression":
        return _regression_goal(model, goal)
    if "above" in goal or "below" in goal:
        raise ConfigError("goal: above/below are for regression models; this one is a classifier.")
    label = goal.get("class")
    if "class" not in goal and "probability" in goal:  # the favourable class the schema declares
        target = model.schema.target
        label = target.favourable if target is not None else None
        if label is None:
            raise ConfigError(
                "goal: {'probability': p} needs the class it is about and the schema's [target] names none; "
                "give {'class': LABEL, 'probability': p}."
            )
    if not _is_label(label):
        raise ConfigError(
            f"goal: class = {_shown(label)} ({type(label).__name__}); give one of the model's class labels "
            f"{list(model.classes)}."
        )
    matches = [i for i, c in enumerate(model.classes) if c == label or str(c) == str(label)]
    if not matches:
        raise ConfigError(
            f"goal: class {label!r} is not one of the model's classes {list(model.classes)}."
            + did_you_mean(label, model.classes)
        )
    if "probability" in goal:
        p = _number("goal", "probability", goal["probability"])
        if not 0 < p < 1:
            raise ConfigError(f"goal: probability must be in (0, 1); got {p}.")
        return Goal("probability", index=matches[0], threshold=p, label=model.classes[matches[0]])
    return Goal("class", index=matches[0], label=model.classes[matches[0]])


def _regression_goal(model: TorchModel, goal: Mapping[str, Any]) -> Goal:
    """An ``above`` / ``below`` goal on one output of a regression model."""
    bounds = [k for k in ("above", "below") if k in goal]
    if len(bounds) != 1 or "class" in goal:
        raise ConfigError("goal: a regression model needs exactly one of {'above': x} or {'below': x}.")
    output = goal.get("output", 0)
    index = model.outputs.index(output) if output in model.outputs else output
    _check_index(model, index)
    threshold = _number("goal", bounds[0], goal[bounds[0]])
    return Goal(bounds[0], index=int(index), threshold=threshold, label=model.outputs[int(index)])  # type: ignore[arg-type]


def _target_goal(model: TorchModel) -> dict[str, Any]:
    """The goal the schema's ``[target]`` declares, as a goal mapping."""
    target = model.schema.target
    if target is None:
        raise ConfigError("goal: the schema has no [target]; pass goal= (a class label or {'above': x}).")
    if target.above is not None:
        return {"above": target.above}
    if target.below is not None:
        return {"below": target.below}
    if target.favourable is not None:
        return {"class": target.favourable}
    raise ConfigError("goal: the schema's [target] names no favourable class or threshold; pass goal=.")


def _is_label(value: Any) -> bool:
    """A class label is a plain scalar: a string, a number, a flag or a numpy scalar (never a list or array)."""
    return isinstance(value, str | int | float | np.generic)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_index(model: TorchModel, index: Any) -> None:
    if not isinstance(index, int) or not 0 <= index < model.n_outputs:
        raise ConfigError(f"goal: output {index!r} does not exist; the model has {model.n_outputs} outputs.")


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a finite number; got {value!r}.")
    return float(value)
