"""Hostile review of the alternatives that mix actions (``mixes``, ``synthesize(k > 1)``) and of the
rollout that skips constant kernels (``Program.roll``, ``Kernel.constant``, issue 12).

Each test is a small valid catalogue (or a reference computation) on which the library must either give
verified plans or refuse with a typed error naming the field; a failure here is a finding of the review.
"""

from __future__ import annotations

import pandas as pd
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actionable import Feature, Schema, Target, as_model
from actionable.actions import Action, ActionSet
from actionable.models import TorchModel
from actionable.parameters import Param
from actionable.program import NOOP, Program
from actionable.synthesis import synthesize
from actionable.testing import check_plans

TWO = Schema(
    (
        Feature("x", "real", (0, 100), mutability="direct"),
        Feature("y", "real", (0, 100), mutability="direct"),
    ),
    Target("t", favourable=1, classes=(0, 1)),
)


def _sum_model() -> TorchModel:
    """Favourable when x + y >= 20 (logits 0 and x + y - 20)."""
    net = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        net.bias.copy_(torch.tensor([0.0, -20.0]))
    return as_model(net, TWO)


PERSON = pd.DataFrame({"x": [5.0], "y": [5.0]})


def _whole(name: str, hi: int = 30) -> tuple[Param, ...]:
    return (Param(name, (0, hi), "integer"),)


def _alternatives_ok(actions: ActionSet) -> None:
    """k = 3 runs, its first plan is never dearer than k = 1's, and every plan it returns replays."""
    model = _sum_model()
    one = synthesize(model, PERSON, actions, max_length=2, k=1)
    three = synthesize(model, PERSON, actions, max_length=2, k=3)
    assert three[0].status == one[0].status == "found"
    assert three[0].cost <= one[0].cost + 1e-9
    assert check_plans(three, PERSON, actions, model) == []
    sets = [frozenset(s.action for s in p.steps) for p in (three[0], *three[0].alternatives)]
    assert len(sets) == len(set(sets)) >= 2


def test_k3_with_a_widest_action_whose_parameters_are_all_pinned() -> None:
    """FAILS (RuntimeError in Program.stack): 'fixed3' has three parameters, each pinned to one value (a
    box of one whole number), so it has no busy variant; the variants' program then has two parameter
    slots where the catalogue has three, and the mixes' plans cannot be stacked under the original."""
    pinned = (
        Param("a", (2, 2), "integer", init=2),
        Param("b", (3, 3), "integer", init=3),
        Param("c", (1, 1), "integer", init=1),
    )
    actions = ActionSet(
        [
            Action("fixed3", {"x": "x + a * b * c"}, "a * b * c + 1", params=pinned),
            Action("two", {"x": "x + p", "y": "y + q"}, "p / 2 + q / 2", params=(*_whole("p"), *_whole("q"))),
            Action("upy", {"y": "y + p"}, "p / 3", params=_whole("p")),
        ],
        TWO,
    )
    _alternatives_ok(actions)


def test_k3_with_an_action_named_like_a_busy_variant() -> None:
    """FAILS (SpecError 'action names ['up__busy_0_0'] are declared more than once'): a valid catalogue
    whose second action is named as the first one's busy variant is refused with k = 3 (k = 1 runs), with
    an error about names the user never declared twice."""
    actions = ActionSet(
        [
            Action("up", {"x": "x + p"}, "p / 2", params=_whole("p")),
            Action("up__busy_0_0", {"y": "y + 11"}, "4"),
            Action("upy", {"y": "y + p"}, "p / 3", params=_whole("p")),
        ],
        TWO,
    )
    _alternatives_ok(actions)


# ------------------------------------------------------------------------------------------ the rollout
ROLL_SCHEMA = Schema(
    (
        Feature("x", "real", (0, 10), mutability="direct", direction="increase"),
        Feature("y", "real", (0, 10), mutability="direct"),
        Feature("n", "integer", (0, 20), mutability="direct"),
        Feature("c", "category", levels=("a", "b", "d"), mutability="direct"),
    ),
    Target("t", favourable=1, classes=(0, 1)),
)
ROLL = Program(
    ActionSet(
        [
            Action("add", {"x": "x + p"}, "p + 0.1", params=(Param("p", (0, 3)),), pre=["c == 'a' or x < 5"]),
            Action("tob", {"c": "'b'"}, "1 + y", pre=["c == 'a'"]),  # constant: reads y (unwritten), c
            Action("tod", {"c": "'d'"}, "2 + x / 10", post=["x < 8"]),  # reads x, which 'add' writes
            Action("toa", {"c": "'a'"}, "0.5", post=["c == 'a'"]),  # constant
            Action("more", {"n": "n + 3"}, "1", pre=["y > 2"]),  # no parameter, but moves n
            Action(
                "mv",
                {"n": "n + r"},
                "abs(q) + r",
                params=(Param("q", (-1, 2)), Param("r", (0, 4), "integer")),
            ),
        ],
        ROLL_SCHEMA,
    )
)


def _reference_rollout(
    ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, exact: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pair at a time, one kernel after another, the category levels carried along: no dispatch, no
    fixed steps."""
    n, length = ids.shape
    finals = []
    costs = torch.zeros(n, length, dtype=torch.float64)
    pens = torch.zeros(n, dtype=torch.float64)
    oks = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        z, xs = x0[i : i + 1, ROLL.touched], x0[i : i + 1]
        for j in range(length):
            a = int(ids[i, j])
            if a == NOOP:
                continue
            kernel = ROLL.kernels[a]
            moved = kernel.step(z, xs, params[i : i + 1, j, : kernel.n_params], exact)
            z, costs[i, j] = moved.z, moved.cost[0]
            xs = kernel.set_levels(xs)
            pens[i] += moved.penalty[0]
            oks[i] &= bool(moved.ok[0])
        finals.append(ROLL.assemble(xs, z))
    return torch.cat(finals), costs, pens, oks


def test_the_catalogue_has_constant_kernels_exactly_where_expected() -> None:
    assert [k.constant for k in ROLL.kernels] == [False, True, False, True, False, False]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), n=st.integers(1, 8), length=st.integers(1, 4), exact=st.booleans())
def test_rollout_matches_a_pair_by_pair_reference(
    data: st.DataObject, n: int, length: int, exact: bool
) -> None:
    """Regression guard (passes): random plans with no-ops anywhere (also mid-sequence), constant and
    moving kernels mixed in one step, relaxed and exact."""
    row = st.lists(st.integers(NOOP, len(ROLL.acts) - 1), min_size=length, max_size=length)
    ids = torch.tensor(data.draw(st.lists(row, min_size=n, max_size=n)))
    people = st.tuples(st.floats(0, 10), st.floats(0, 10), st.integers(0, 20), st.sampled_from("abd"))
    x0 = ROLL_SCHEMA.encode(
        pd.DataFrame(data.draw(st.lists(people, min_size=n, max_size=n)), columns=list("xync"))
    )
    values = data.draw(st.lists(st.floats(-1, 4), min_size=n * length * 2, max_size=n * length * 2))
    params = torch.tensor(values, dtype=torch.float64).reshape(n, length, 2)
    params = ROLL.round(ids, params) if exact else params
    with torch.no_grad():
        path = ROLL.rollout(ids, x0, params, exact=exact)
    x, costs, pens, oks = _reference_rollout(ids, x0, params, exact)
    assert torch.allclose(path.x, x, atol=1e-12)
    assert torch.allclose(path.step_costs, costs, atol=1e-12)
    assert torch.allclose(path.penalty, pens, atol=1e-9)
    assert torch.equal(path.ok, oks)
