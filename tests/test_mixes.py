"""Alternatives that mix actions (``actionable.mixes``), checked against the oracle of needed plans."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import Feature, Schema, Target, datasets
from actionable.actions import Action, ActionSet
from actionable.alternatives_oracle import needed_sets, score_alternatives
from actionable.goals import resolve_goal
from actionable.mixes import MIX_LENGTH, busy_catalogue, mix_sequences, needed, sides
from actionable.models import as_model
from actionable.parameters import Param
from actionable.problems import generate
from actionable.program import NOOP, Program
from actionable.synthesis import synthesize
from actionable.verify import Verifier


def test_sides_leave_out_the_no_change_value_and_cover_the_rest() -> None:
    whole = sides(Param("p", (-5, 5), "integer", init=0))
    assert [(s.bounds, s.init) for s in whole] == [((-5.0, -1.0), -1.0), ((1.0, 5.0), 1.0)]
    assert [s.bounds for s in sides(Param("p", (0, 14), "integer", init=0))] == [(1.0, 14.0)]
    real = sides(Param("p", (0.0, 2.0), init=0.0))
    assert len(real) == 1 and real[0].bounds == pytest.approx((0.002, 2.0))  # MIN_CHANGE of the box
    grid = sides(Param("p", (0.0, 2.0), resolution=0.5, init=1.0))
    assert [s.bounds for s in grid] == [(0.0, 0.5), (1.5, 2.0)]
    off = sides(Param("p", (0.0, 2.0), resolution=0.5, init=0.3))  # init off the grid: 0 and 0.5 stay
    assert [s.bounds for s in off] == [(0.0, 0.0), (0.5, 2.0)]
    assert sides(Param("p", (1.0, 1.0), init=1.0)) == []  # a real box of one value
    assert sides(Param("p", (2, 2), "integer", init=2)) == []


def test_busy_catalogue_maps_each_variant_to_its_action() -> None:
    german = datasets.load("german")
    actions = ActionSet.from_toml(german.path / "actions.toml", german.schema)
    busy = busy_catalogue(actions)
    assert busy is not None
    names = actions.names
    # wait_years (0 to 40 years) has only a part above 0; the three changes of the loan a part below and
    # one above; the two actions without parameters are copied
    assert len(busy.program.acts) == 9
    for j, (variant, origin) in enumerate(zip(busy.program.acts, busy.origin, strict=True)):
        assert variant.name == f"busy_{j}" and names[origin] in names
        assert (
            variant.effects == actions.actions[origin].effects
            and variant.cost == actions.actions[origin].cost
        )
        for p in variant.params:
            assert p.init != 0  # every parameter of German's actions changes nothing at 0
    # two steps, one with a parameter, no action twice (none of German's is repeatable)
    for seq in mix_sequences(busy, MIX_LENGTH, float("inf")):
        origins = [busy.origin[a] for a in seq]
        assert len(seq) == 2 and len(set(origins)) == 2
        assert any(busy.program.acts[a].params for a in seq)


def test_needed_is_false_for_a_plan_that_passes_without_a_step() -> None:
    problem = generate(12, people=10)
    program = Program(problem.actions)
    torch_model = as_model(problem.model, problem.schema)
    verifier = Verifier(program, torch_model, resolve_goal(torch_model), problem.margin)
    x0 = problem.schema.encode(problem.X.iloc[[8]])
    shift4 = problem.actions.names.index("shift4")
    params = torch.zeros(2, 2, program.slots, dtype=torch.float64)
    params[:, 0, 0] = 2.0  # shift4 at 2 passes alone (the oracle's cheapest plan); again at 0 it is idle
    ids = torch.tensor([[shift4, shift4], [shift4, NOOP]])
    ok = verifier.exact(ids, x0.expand(2, -1), params).passes
    assert ok.all()
    assert needed(verifier, ids, x0.expand(2, -1), params).tolist() == [False, True]


@pytest.mark.parametrize(("seed", "person"), [(12, 8), (37, 0)])
def test_k_cheapest_needed_sets_include_the_mix_where_one_action_would_do(seed: int, person: int) -> None:
    """Seed 12, person 8: the third cheapest set is a mix of two actions whose cheapest plan of the two has
    the second unneeded; seed 37, person 0: the second is a mix with a constant-cost action. Before the
    mixes' search both were missing."""
    problem = generate(seed, people=10)
    one = replace(problem, X=problem.X.iloc[[person]])
    sets = needed_sets(one)
    batch = synthesize(one.model, one.X, one.actions, max_length=one.max_length, k=3)
    score = score_alternatives(one, batch, 3, sets)
    assert (score.people, score.met, score.not_needed) == (1, 1, 0)
    want = sorted(sets[0].items(), key=lambda item: item[1])[:3]
    got = {frozenset(s.action for s in plan.steps) for plan in (batch[0], *batch[0].alternatives)}
    assert {key for key, _ in want} <= got


@pytest.mark.parametrize("seed", [0, 6, 17, 40])
def test_no_alternative_has_a_step_it_does_not_need(seed: int) -> None:
    problem = generate(seed, people=6)
    batch = synthesize(problem.model, problem.X, problem.actions, max_length=problem.max_length, k=3)
    score = score_alternatives(problem, batch, 3, needed_sets(problem))
    assert score.not_needed == 0 and score.plans >= score.people


def test_a_variant_whose_part_of_the_box_always_leaves_the_bounds_is_left_out() -> None:
    """Only p = 0 keeps ``x + p`` inside x's bounds [0, 0.5]: the variant p in [1, 3] fails the
    catalogue's box check on its own, so it is dropped (not an error), and with it every mix."""
    schema = Schema(
        (
            Feature("x", "real", (0, 0.5), mutability="direct"),
            Feature("y", "real", (0, 1), mutability="direct"),
        ),
        Target("t", favourable=1, classes=(0, 1)),
    )
    actions = ActionSet(
        [
            Action("nudge", {"x": "x + p"}, "p", params=(Param("p", (0, 3), "integer"),)),
            Action("lift", {"y": "y + 0.5"}, "1"),
        ],
        schema,
    )
    assert busy_catalogue(actions) is None


def test_walk_moves_a_needed_mix_to_its_cheapest_point_on_the_boundary() -> None:
    """logit = x + y - 5 (favourable past x + y >= 5.1 at the default margin); a: x += p at 0.2 + p,
    b: y += q at 0.1 + q / 15. A plan with both steps needed has p, q < 5.1 and p + q >= 5.1: its cost
    0.3 + p + q / 15 is least where p is least, 0.3 + 5.1 / 15 + (14 / 15) p -> 0.64 (p the least
    change of a mix, 0.1% of its box). The walk starts from p = 2, q = 3.2 (cost 2.5133)."""
    from sklearn.linear_model import LogisticRegression

    from actionable.mixes import MIN_CHANGE, walk_plans
    from actionable.program import Plan
    from actionable.scan import Scanner

    schema = Schema(
        (
            Feature("x", "real", (0, 10), mutability="direct"),
            Feature("y", "real", (0, 10), mutability="direct"),
        ),
        Target("t", favourable=1, classes=(0, 1)),
    )
    actions = ActionSet(
        [
            Action("a", {"x": "x + p"}, "0.2 + p", params=(Param("p", (0, 10)),)),
            Action("b", {"y": "y + q"}, "0.1 + q / 15", params=(Param("q", (0, 10)),)),
        ],
        schema,
    )
    frame = pd.DataFrame({"x": [0.0, 10.0], "y": [0.0, 10.0]})
    model = LogisticRegression().fit(frame, [0, 1])
    model.coef_, model.intercept_ = np.array([[1.0, 1.0]]), np.array([-5.0])
    torch_model = as_model(model, schema)
    program = Program(actions)
    verifier = Verifier(program, torch_model, resolve_goal(torch_model), 0.1)
    x0 = schema.encode(pd.DataFrame({"x": [0.0], "y": [0.0]}))
    ids = torch.tensor([[0, 1]])
    params = torch.tensor([[[2.0], [3.2]]], dtype=torch.float64)
    checked = verifier.check(ids, x0, params)
    assert bool(checked.found[0])
    start = Plan((0, 1), checked.params[0], checked.step_costs[0], checked.x[0], x0[0])
    walked = walk_plans(Scanner(verifier), {"plan": start})["plan"]
    assert walked.ids == (0, 1)
    assert 0.3 + 5.1 / 15 <= walked.cost <= 0.3 + 5.1 / 15 + 10 * MIN_CHANGE + 1e-3
    assert bool(needed(verifier, ids, x0, walked.params[None]).all())
