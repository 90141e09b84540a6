"""How robust a found plan is to a person carrying it out imprecisely (the AAAI 2020 paper's Q3).

Each parameter r of a plan is replaced by a uniform draw from [(1 - theta) r, (1 + theta) r], rounded as
the parameter allows, and the whole plan is replayed exactly (conditions, bounds, the model's decision).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from actionable.actions import ActionSet
from actionable.errors import ConfigError
from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.results import RecourseBatch
from actionable.schema import DTYPE
from actionable.synthesis import NOOP, SynthesisConfig, Synthesizer


def survival(
    model: Any,
    plans: RecourseBatch,
    actions: ActionSet,
    *,
    theta: float,
    samples: int = 200,
    seed: int = 0,
    goal: Any = None,
) -> np.ndarray:
    """Per row: the share of noisy replays of its plan that still succeed (NaN where no plan was found)."""
    if not 0 <= theta < 1:
        raise ConfigError(f"survival: theta must be in [0, 1); got {theta}.")
    if samples < 1:
        raise ConfigError(f"survival: samples must be >= 1; got {samples}.")
    torch_model = as_model(model, actions.schema)
    engine = Synthesizer(torch_model, actions, resolve_goal(torch_model, goal), SynthesisConfig())
    out = np.full(len(plans), np.nan)
    found = [r for r in plans if r.status == "found" and r.steps]
    if not found:
        return out
    length = max(len(r.steps) for r in found)
    index = {name: i for i, name in enumerate(actions.names)}
    slots = max(engine.n_params, 1)
    ids = torch.full((len(found), length), NOOP, dtype=torch.int64)
    params = torch.zeros(len(found), length, slots, dtype=DTYPE)
    for i, r in enumerate(found):
        for j, step in enumerate(r.steps):
            action = actions[step.action]
            ids[i, j] = index[step.action]
            for k, p in enumerate(action.params):
                params[i, j, k] = float(step.params[p.name])
    x0 = actions.schema.encode(_frame([r.x_before for r in found], actions))
    generator = torch.Generator().manual_seed(seed)
    noise = 1 + theta * (2 * torch.rand((samples, *params.shape), generator=generator, dtype=DTYPE) - 1)
    noisy = (params[None] * noise).reshape(-1, length, slots)
    rep_ids = ids.repeat(samples, 1)
    rounded = engine.round_params(rep_ids, noisy, "round")
    with torch.no_grad():
        path = engine.rollout(rep_ids, x0.repeat(samples, 1), rounded, exact=True)
        ok = path.ok & engine.goal.satisfied(torch_model(path.x))
    rates = ok.reshape(samples, len(found)).to(DTYPE).mean(0).numpy()
    positions = [r.row for r in plans]
    for r, rate in zip(found, rates, strict=True):
        out[positions.index(r.row)] = rate
    return out


def _frame(records: list[Any], actions: ActionSet) -> Any:
    import pandas as pd

    return pd.DataFrame(records, columns=list(actions.schema.names))
