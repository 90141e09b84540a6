"""The compiled catalogue: plans as tensors and back, exact rollout of reported plans, frozen records."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from actionable import ConfigError
from actionable.program import NOOP, Plan, Program
from actionable.synthesis import synthesize
from tests.test_synthesis import PERSON, catalogue, linear_model


def test_encode_plans_is_the_inverse_of_steps() -> None:
    """A reported plan, turned back into ids and parameters and rolled out exactly, reaches its x_after at
    its reported step costs; shorter plans are padded with NOOP."""
    actions = catalogue("(d / 30) ** 2", "(d / 30) ** 2")
    people = pd.concat([PERSON, PERSON.assign(a=44.0), PERSON.assign(b=60.0)], ignore_index=True)
    batch = synthesize(linear_model(), people, actions, margin=0.1, steps=300)
    found = [r for r in batch if r.status == "found"]
    assert len(found) == 3 and len(found[0].steps) == 2
    program = Program(actions)
    ids, params = program.encode_plans(found)
    index = {name: i for i, name in enumerate(actions.names)}
    for j, r in enumerate(found):
        assert ids[j].tolist() == [index[s.action] for s in r.steps] + [NOOP] * (ids.shape[1] - len(r.steps))
    x0 = actions.schema.encode(pd.DataFrame([r.x_before for r in found]))
    with torch.no_grad():
        path = program.rollout(ids, x0, params, exact=True)
    assert bool(path.ok.all())
    assert torch.equal(path.x, actions.schema.encode(pd.DataFrame([r.x_after for r in found])))
    for j, r in enumerate(found):
        assert path.step_costs[j, : len(r.steps)].tolist() == pytest.approx(
            [s.cost for s in r.steps], rel=1e-12
        )
        plan = Plan(
            tuple(ids[j, : len(r.steps)].tolist()),
            params[j, : len(r.steps)],
            path.step_costs[j],
            path.x[j],
            x0[j],
        )
        assert program.steps(plan) == r.steps


def test_plans_are_frozen_and_the_program_takes_only_an_action_set() -> None:
    program = Program(catalogue("d", "d"))
    plan = Plan((0,), torch.zeros(1, 1), torch.zeros(1), torch.zeros(4), torch.zeros(4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.ids = ()  # type: ignore[misc]
    assert plan.but(ids=(1,)).ids == (1,) and plan.ids == (0,)
    ids, params = program.stack([plan, plan.but(ids=(1, 0), params=torch.ones(2, 1))])
    assert ids.tolist() == [[0, NOOP], [1, 0]] and params.shape == (2, 2, 1)
    with pytest.raises(ConfigError, match="ActionSet"):
        Program([])  # type: ignore[arg-type]
