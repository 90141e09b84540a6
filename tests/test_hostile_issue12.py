"""Hostile and careless input against the issue-12 additions (row labels, protected features, rounding,
costs, certificates): each is refused with a typed error naming the field and the fix, or answered per
row; never an untyped exception from pandas, torch or numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from actionable import Feature, Schema, Target, as_model, datasets
from actionable import expr as E
from actionable.actions import Action, ActionSet, Param
from actionable.batch import synthesize_in_chunks
from actionable.errors import ConfigError, SpecError
from actionable.inverse import invert
from actionable.program import cost_floor
from actionable.registry import run
from actionable.synthesis import synthesize

SETTINGS = {"max_length": 1, "steps": 40}
SCHEMA = Schema(
    (
        Feature("income", "real", (0, 100), mutability="direct", direction="increase", cost_up=0.1),
        Feature("debt", "real", (0, 100), mutability="direct", direction="decrease", cost_down=0.1),
        Feature("kids", "integer", (0, 5), mutability="direct", cost_up=1.0, cost_down=1.0),
    ),
    Target("approved", favourable=1, classes=(0, 1)),
)
RAISE = Action(
    "raise_income", {"income": "income + amount"}, "amount / 10", params=(Param("amount", (0, 50)),)
)


def _model() -> object:
    """approved when income - debt > 10."""
    net = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]]))
        net.bias.copy_(torch.tensor([0.0, -10.0]))
    return as_model(net, SCHEMA)


def _people(index: pd.Index) -> pd.DataFrame:
    rows = {"income": [20.0, 40.0, 25.0], "debt": [20.0, 5.0, 30.0], "kids": [1, 2, 3]}
    return pd.DataFrame(rows).iloc[: len(index)].set_axis(index, axis=0)


# ------------------------------------------------------------------------------------ row labels
@pytest.mark.parametrize(
    "index",
    [
        pd.MultiIndex.from_tuples([("north", 1), ("north", 2), ("south", 1)], names=["branch", "id"]),
        pd.Index([10, 20, 30], name="applicant"),
    ],
)
def test_to_frame_keeps_the_input_index_names_so_a_join_works(index: pd.Index) -> None:
    """A named MultiIndex lost its names, so ``X.join(plans.to_frame())`` (the README's join) raised
    pandas' "cannot join with no overlapping index names"."""
    model, actions, X = _model(), ActionSet([RAISE], SCHEMA), _people(index)
    for plans in (
        synthesize(model, X, actions, **SETTINGS),
        synthesize_in_chunks(model, X, actions, chunk=1, **SETTINGS),
        run("ramakrishnan2020", model, X, actions, **SETTINGS),
    ):
        table = plans.to_frame()
        assert list(table.index.names) == list(X.index.names)
        joined = X.join(table)
        assert list(joined.index) == list(X.index)
        assert list(joined.status) == ["found", "already_favourable", "found"]
        np.testing.assert_array_equal(joined["income"], joined["income_before"])
    inverted = invert(model, X, SCHEMA, budget=3).to_frame()
    assert list(inverted.index.names) == list(X.index.names) and len(X.join(inverted)) == 3


def test_an_unnamed_index_is_still_called_row() -> None:
    plans = synthesize(_model(), _people(pd.Index([4, 5, 6])), ActionSet([RAISE], SCHEMA), **SETTINGS)
    assert plans.to_frame().index.name == "row"


def test_an_empty_frame_gives_a_table_with_the_usual_columns() -> None:
    """An empty input (every row filtered away) gave a frame without columns: ``table["status"]`` raised
    KeyError."""
    X = _people(pd.Index([1, 2, 3])).iloc[:0]
    table = synthesize(_model(), X, ActionSet([RAISE], SCHEMA), **SETTINGS).to_frame()
    assert len(table) == 0
    assert {"status", "cost", "p_before", "p_after", "plan", "steps", "seconds", "error"} <= set(table)
    assert len(X.join(table)) == 0


# ------------------------------------------------------------------------------------ protected
PROTECTED_SCHEMA = Schema(
    (*SCHEMA.features[:2], Feature("kids", "integer", (0, 5), mutability="direct", protected=True)),
    SCHEMA.target,
)


def test_allow_protected_written_after_an_action_table_says_to_move_it_to_the_top() -> None:
    """In TOML a key after ``[[action]]`` belongs to that action: a user who appends allow_protected at
    the end of the file got "unknown key", with no word that it goes at the top."""
    text = (
        '[[action]]\nname = "more_kids"\neffects = { kids = "kids + 1" }\ncost = "1"\n'
        "allow_protected = true\n"
    )
    with pytest.raises(SpecError) as caught:
        ActionSet.from_toml(text, PROTECTED_SCHEMA)
    message = str(caught.value)
    assert "action 'more_kids'" in message and "allow_protected" in message
    assert "top of the file" in message and "before the first [[action]]" in message
    moved = "allow_protected = true\n" + text.replace("allow_protected = true\n", "")
    assert ActionSet.from_toml(moved, PROTECTED_SCHEMA).allow_protected


def test_numpy_booleans_are_booleans_for_protected_and_allow_protected() -> None:
    """``protected=np.True_`` (a value read from a frame or an array) was refused as "must be true or
    false ... got np.True_ (a bool)"; it is now taken as the Python bool it is."""
    feature = Feature("kids", "integer", (0, 5), mutability="direct", protected=np.True_)
    assert feature.protected is True
    more = Action("more_kids", {"kids": "kids + 1"}, "1")
    allowed = ActionSet([more], PROTECTED_SCHEMA, allow_protected=np.True_)
    assert allowed.allow_protected is True
    with pytest.raises(SpecError, match="writes the protected feature"):
        ActionSet([more], PROTECTED_SCHEMA, allow_protected=np.False_)


# ------------------------------------------------------------------------------------ costs
COST_SCHEMA = Schema(
    (
        Feature("income", "real", (0, 100), mutability="direct"),
        Feature("kids", "integer", (0, 5), mutability="direct"),
        Feature("debt", "real", (-10, 10), mutability="direct"),
        Feature("job", "category", levels=("a", "b", "c"), mutability="direct"),
    ),
    Target("approved", favourable=1, classes=(0, 1)),
)
COST_NAMES = {  # name -> (low, high, whole number)
    "income": (0, 100, False),
    "kids": (0, 5, True),
    "debt": (-10, 10, False),
    "p": (0, 2, False),
    "q": (1, 3, True),
}


def _cost_action(cost: str, pre: Sequence[str] = ()) -> Action:
    params = (Param("p", (0, 2)), Param("q", (1, 3), kind="integer"))
    return Action("a", {"income": "min(income + p + q, 100)"}, cost, params=params, pre=tuple(pre))


@pytest.mark.parametrize(
    "cost",
    [
        "q - ((kids if income > 1 else income) - income)",  # below 0 only for 1 < income < kids - q + 1
        "abs(p - 1) + q - 1 - 0.001 * (kids == 3) * (income > 99.99)",  # a corner region of 1e-4
        "abs(p - 1) + q - 1 - 0.01 * (job == 'c') * (debt > 9.9)",  # one level, a sliver of the box
    ],
)
def test_a_cost_negative_on_a_small_region_is_refused_at_load(cost: str) -> None:
    """Corners and 512 random states missed these; the verifier refused such steps at run time, so a
    person got ``not_found`` for a catalogue error. Interval bisection now finds the region."""
    with pytest.raises(SpecError) as caught:
        ActionSet([_cost_action(cost)], COST_SCHEMA)
    message = str(caught.value)
    assert "action 'a', cost:" in message and "can be negative" in message and "use abs(...)" in message


def _points(n: int, rng: np.random.Generator) -> dict[str, E.Value]:
    """Random values of every name (a quarter at the corners), and random levels of ``job``."""
    env: dict[str, E.Value] = {}
    for name, (lo, hi, whole) in COST_NAMES.items():
        values = rng.integers(lo, hi + 1, n).astype(float) if whole else rng.uniform(lo, hi, n)
        values[: n // 4] = rng.choice([lo, hi], n // 4)
        env[name] = torch.tensor(values, dtype=torch.float64)
    codes = torch.as_tensor(rng.integers(0, 3, n))
    env["job"] = E.Categorical(torch.nn.functional.one_hot(codes, 3).double(), ("a", "b", "c"))
    return env


_LEAF = st.sampled_from([*COST_NAMES, "0.5", "1", "2", "3", "0.1", "10"])
_EXPR = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(inner, st.sampled_from(["2", "3", "0.5", "-1"])).map(lambda t: f"({t[0]}) ** {t[1]}"),
        st.tuples(st.sampled_from(["abs", "exp", "log", "sqrt"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} > 1 else {t[2]})"),
    ),
    max_leaves=6,
)
_CONDITION = st.one_of(
    st.tuples(
        st.sampled_from(list(COST_NAMES)),
        st.sampled_from(["<", "<=", ">", ">=", "=="]),
        st.sampled_from(["0", "1", "2", "3", "50", "-5"]),
    ).map(" ".join),
    st.sampled_from(["job == 'b'", "job != 'a'", "income > 2 * kids", "(p > 1) or (kids < 2)"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(cost=_EXPR, pre=st.lists(_CONDITION, max_size=2), seed=st.integers(0, 2**32 - 1))
def test_cost_floor_is_a_lower_bound_and_loaded_costs_are_not_negative(
    cost: str, pre: list[str], seed: int
) -> None:
    """``program.cost_floor`` (what the search adds up to skip sequences) never exceeds the cost at a
    point of the box where the preconditions hold, and a cost the catalogue accepts is >= 0 there."""
    try:
        action = ActionSet([_cost_action(cost, pre)], COST_SCHEMA)["a"]
    except SpecError:
        assume(False)
        return
    n = 2000
    env = _points(n, np.random.default_rng(seed))
    names, levels = [*COST_NAMES, "job"], {"job": ("a", "b", "c")}
    value = torch.as_tensor(E.parse(cost, names=names, levels=levels).evaluate(env), dtype=torch.float64)
    holds = torch.ones(n, dtype=torch.bool)
    for text in pre:
        holds &= torch.as_tensor(E.parse(text, names=names, levels=levels).evaluate(env)).expand(n)
    value = value.expand(n)[holds]
    assert bool((value >= 0).all()), (cost, pre, float(value.min()))
    assume(len(value) > 0)
    assert cost_floor(action, COST_SCHEMA) <= float(value.min()) * (1 + 1e-12)


def test_certify_seconds_bounds_the_solver_and_is_checked() -> None:
    """``synthesize(certify_seconds=...)`` is the solver's time per row: a tiny one proves nothing and says
    so; a bad value is a ConfigError naming it."""
    german = datasets.load("german")
    actions = ActionSet.from_toml(german.path / "actions.toml", german.schema)
    row = german.X_test[german.model.predict(german.X_test) == "bad"].head(1)
    quick = synthesize(german.model, row, actions, max_length=1, certify=True, certify_seconds=1e-9)[0]
    assert quick.certificate is not None and quick.certificate["kind"] == "none"
    assert "time limit" in quick.certificate["reason"]
    full = synthesize(german.model, row, actions, max_length=1, certify=True)[0]
    assert full.certificate is not None and full.certificate["kind"] == "optimal"
    with pytest.raises(ConfigError, match="certify_seconds"):
        synthesize(german.model, row, actions, max_length=1, certify=True, certify_seconds=-1)
