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
from actionable.program import Program
from actionable.results import RecourseBatch
from actionable.schema import DTYPE

__all__ = ["survival"]


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
    program = Program(actions)
    torch_model = as_model(model, actions.schema)
    goal_ = resolve_goal(torch_model, goal)
    out = np.full(len(plans), np.nan)
    positions = [i for i, r in enumerate(plans) if r.status == "found" and r.steps]
    found = [plans[i] for i in positions]
    if not found:
        return out
    ids, params = program.encode_plans(found)
    length, slots = params.shape[1], params.shape[2]
    x0 = actions.schema.encode(_frame([r.x_before for r in found], actions))
    generator = torch.Generator().manual_seed(seed)
    noise = 1 + theta * (2 * torch.rand((samples, *params.shape), generator=generator, dtype=DTYPE) - 1)
    noisy = (params[None] * noise).reshape(-1, length, slots)
    rep_ids = ids.repeat(samples, 1)
    rounded = program.round(rep_ids, noisy)
    with torch.no_grad():
        path = program.rollout(rep_ids, x0.repeat(samples, 1), rounded, exact=True)
        ok = path.ok & goal_.satisfied(torch_model(path.x))
    rates = ok.reshape(samples, len(found)).to(DTYPE).mean(0).numpy()
    out[positions] = rates
    return out


def _frame(records: list[Any], actions: ActionSet) -> Any:
    import pandas as pd

    return pd.DataFrame(records, columns=list(actions.schema.names))
