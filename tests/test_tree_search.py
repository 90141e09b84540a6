"""Recourse on tree ensembles without gradients (``tree_search``) and their certificates (``tree_mip``).

Oracles: hand-built trees whose only passing cell is far narrower than any scan grid's spacing, and
generated problems (tree, forest, gradient boosting, histogram boosting; Pipelines or not) solved by
exhaustive enumeration (``oracle.solve_exhaustively``: every whole-number value, real parameters on a
grid refined by root finding). The search must help everyone the enumeration helps, never at a higher
cost; a certificate's bound never exceeds the enumeration's cost, and "no plan" only where it finds none.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from actionable import Feature, Schema, Target
from actionable.actions import Action, ActionSet, Param
from actionable.certify import certify
from actionable.errors import ConfigError
from actionable.goals import resolve_goal
from actionable.models import TorchModel, as_model
from actionable.models.layers import BinaryLogits
from actionable.models.trees import Tree, pack
from actionable.oracle import solve_exhaustively
from actionable.problems import generate
from actionable.program import Program
from actionable.synthesis import synthesize
from actionable.tree_search import Cells

SCHEMA = Schema(
    (
        Feature("x", "real", (0, 100), mutability="direct"),
        Feature("y", "integer", (0, 10), mutability="direct"),
    ),
    Target("approved", favourable=1, classes=(0, 1)),
)


def _stump(low: float, high: float, float32: bool = False) -> TorchModel:
    """One tree: favourable (logit +5) exactly where low < x <= high, else -5."""
    tree = Tree(
        feature=np.array([0, -1, 0, -1, -1]),
        threshold=np.array([low, 0, high, 0, 0]),
        left=np.array([1, -1, 3, -1, -1]),
        right=np.array([2, -1, 4, -1, -1]),
        missing_left=np.ones(5, bool),
        value=np.array([[0.0], [-5.0], [0.0], [5.0], [-5.0]]),
    )
    network = nn.Sequential(pack([tree], [0.0], inputs=2, float32=float32), BinaryLogits())
    return TorchModel(network, SCHEMA, task="classification", classes=(0, 1))


def _raise_x(kind: str = "real") -> ActionSet:
    bounds = (0, 100)
    action = Action("raise_x", {"x": "x + a"}, "a", params=(Param("a", bounds, kind=kind),))
    return ActionSet([action], SCHEMA)


@pytest.mark.parametrize("float32", [False, True])
def test_a_cell_narrower_than_any_grid_step_is_found_at_its_edge(float32: bool) -> None:
    model = _stump(40.3, 40.31, float32)
    person = pd.DataFrame({"x": [10.0], "y": [3]})
    plan = synthesize(model, person, _raise_x(), max_length=1)[0]
    assert plan.status == "found"
    # just past the left threshold (the first float32 above it, where the ensemble rounds to float32)
    assert plan.cost == pytest.approx(30.3, abs=4e-6 if float32 else 1e-6)
    assert 40.3 < plan.x_after["x"] <= 40.31


def test_whole_number_parameters_land_on_the_first_whole_value_past_a_threshold() -> None:
    model = _stump(57.5, 58.5)  # only x = 58 passes
    person = pd.DataFrame({"x": [10.0], "y": [3]})
    plan = synthesize(model, person, _raise_x("integer"), max_length=1)[0]
    assert plan.status == "found" and plan.x_after["x"] == 58.0 and plan.cost == 48.0


def test_no_passing_cell_in_reach_is_not_found_and_certified_so() -> None:
    model = _stump(140.0, 150.0)  # beyond the bounds of x
    person = pd.DataFrame({"x": [10.0], "y": [3]})
    plan = synthesize(model, person, _raise_x(), max_length=1, certify=True)[0]
    assert plan.status == "infeasible"
    assert plan.certificate is not None and plan.certificate["kind"] == "no_plan_exists"


def test_the_gradient_score_is_refused_for_trees() -> None:
    person = pd.DataFrame({"x": [10.0], "y": [3]})
    with pytest.raises(ConfigError, match="piecewise constant"):
        synthesize(_stump(40.3, 40.31), person, _raise_x(), max_length=1, search="gradient")


def test_cells_name_the_routing_along_the_written_columns() -> None:
    model = _stump(40.3, 40.31)
    cells = Cells(model, Program(_raise_x()))
    x = torch.tensor([[40.3, 1.0], [40.305, 1.0], [40.31, 1.0], [40.32, 1.0]], dtype=torch.float64)
    assert cells.of(x)[:, 0].tolist() == [0, 1, 1, 2]
    same = cells.of(x)[1:2] == cells.of(x)[2:3]
    assert bool(same.all()) and torch.equal(model(x[1:2]), model(x[2:3]))


# ------------------------------------------------------------------ generated problems, enumerated
CASES = [(family, seed) for family in ("tree", "forest", "boosting", "histgb") for seed in (1, 2, 3)]


@pytest.mark.parametrize(("family", "seed"), CASES)
def test_generated_tree_problems_match_exhaustive_enumeration(family: str, seed: int) -> None:
    problem = generate(seed, people=8, family=family)
    length = min(problem.max_length, 2)
    plans = synthesize(problem.model, problem.X, problem.actions, max_length=length)
    answers = solve_exhaustively(problem.model, problem.X, problem.actions, max_length=length, grid=64)
    for plan, answer in zip(plans, answers, strict=True):
        if answer.helpable:
            assert plan.status == "found", (problem.name, plan.row, plan.error)
            assert plan.cost <= answer.cost * (1 + 1e-6) + 1e-9, (problem.name, plan.row)
        if plan.status == "found":
            assert plan.p_after > 0.5


@pytest.mark.parametrize(("family", "seed"), CASES[::2])
def test_certificates_on_trees_never_contradict_enumeration(family: str, seed: int) -> None:
    problem = generate(seed, people=6, family=family)
    model = as_model(problem.model, problem.schema)
    program = Program(problem.actions)
    answers = solve_exhaustively(model, problem.X, problem.actions, max_length=1, grid=64)
    found = certify(
        model, resolve_goal(model), program, problem.schema.encode(problem.X), max_length=1, margin=0.1
    )
    for cert, answer in zip(found, answers, strict=True):
        if cert.kind == "no_plan_exists":
            assert not answer.helpable, problem.name
        if answer.helpable and cert.bound is not None and math.isfinite(cert.bound):
            assert cert.bound <= answer.cost * (1 + 1e-6) + 1e-9, problem.name
        if cert.kind == "optimal" and answer.helpable:
            assert cert.plan is not None and cert.plan.cost <= answer.cost * (1 + 1e-4) + 1e-9


def test_classes_name_a_model_fitted_on_zero_and_one() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from actionable.errors import ModelError

    frame = pd.DataFrame({"x": np.linspace(0, 100, 60), "y": np.arange(60) % 11})
    forest = RandomForestClassifier(5, max_depth=3, random_state=0).fit(frame, (frame["x"] > 50).astype(int))
    named = Schema(SCHEMA.features, Target("approved", favourable="yes", classes=("no", "yes")))
    model = as_model(forest, named, classes=["no", "yes"])
    assert model.classes == ("no", "yes") and list(model.predict(frame.head(2))) == ["no", "no"]
    with pytest.raises(ModelError, match="one name per class"):
        as_model(forest, named, classes=["no", "maybe", "yes"])


def test_a_node_with_two_parents_is_refused_at_load(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from actionable.errors import ModelError
    from actionable.models import load_model, save_model

    folder = save_model(_stump(40.3, 40.31), tmp_path / "m")
    state = {k: v.clone() for k, v in load_file(folder / "model.safetensors").items()}
    state["0.right"][2] = 3  # node 2's children are both node 3: a graph, not a tree
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelError, match="parents"):
        load_model(folder)
