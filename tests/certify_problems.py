"""Seeded random recourse problems with whole-number parameter boxes, and their brute-force optimum.

``problem(seed)`` draws a schema (integer, real, category and fixed features, a one-way direction), a
catalogue of 3-5 actions (integer parameters; affine effects, some reading the state, one rounded to a
whole number; costs affine, with
``abs`` or a square; pre- and postconditions; a category action) and a model (a linear one, or a tiny ReLU
network; one logit or two), plus unfavourable rows. ``enumerate_optimum`` replays every canonical sequence
of at most ``max_length`` actions with every parameter value of its box through the exact rollout and
returns each row's cheapest plan that passes (``inf`` where none does): the oracle of ``test_certify``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from actionable import Feature, Schema, Target, as_model
from actionable.actions import ActionSet
from actionable.goals import Goal, resolve_goal
from actionable.models import TorchModel
from actionable.program import Program
from actionable.search import canonical_sequences
from actionable.verify import proper_costs

__all__ = ["SCHEMA", "Problem", "enumerate_optimum", "problem"]

SCHEMA = Schema(
    (
        Feature("a", "integer", (0, 20), mutability="direct"),
        Feature("b", "integer", (0, 20), mutability="direct", direction="increase"),
        Feature("r", "real", (0, 10), mutability="direct"),
        Feature("g", "category", levels=("u", "v", "w"), mutability="direct"),
        Feature("f", "integer", (0, 5)),
    ),
    Target("y", favourable="good", classes=("bad", "good")),
)


@dataclass(frozen=True)
class Problem:
    program: Program
    model: TorchModel
    goal: Goal
    x: torch.Tensor  # unfavourable canonical rows


def _actions(rng: np.random.Generator) -> str:
    """A catalogue drawn from a pool of action shapes (constants random)."""
    c = [round(float(v), 2) for v in rng.uniform(0.1, 2.0, 12)]
    k = [int(v) for v in rng.integers(2, 6, 6)]
    pool = [
        f"""[[action]]
name = "move_a"
params = {{ p = {{ bounds = [-{k[0]}, {k[0]}], kind = "integer" }} }}
effects = {{ a = "a + p" }}
cost = "{c[0]} + {c[1]} * abs(p)"
post = ["a <= {int(rng.integers(8, 20))}"]
""",
        f"""[[action]]
name = "raise_b"
params = {{ p = {{ bounds = [0, {k[1]}], kind = "integer" }} }}
effects = {{ b = "b + p" }}
cost = "{c[2]} + (p / {c[3]}) ** 2"
pre = ["a >= {int(rng.integers(0, 6))}"]
""",
        f"""[[action]]
name = "push_both"
params = {{ p = {{ bounds = [0, {k[2]}], kind = "integer" }} }}
effects = {{ a = "a + p + f", b = "b + p" }}
cost = "{c[4]} + {c[5]} * p"
""",
        f"""[[action]]
name = "shift_r"
params = {{ p = {{ bounds = [-{k[3]}, {k[3]}], kind = "integer" }} }}
effects = {{ r = "r + 0.5 * p + 0.1 * b" }}
cost = "{c[6]} + {c[7]} * max(p, -p)"
post = ["r <= 9.5"]
""",
        f"""[[action]]
name = "set_w"
effects = {{ g = "'w'" }}
cost = "{c[8]}"
pre = ["g != 'w'", "b <= {int(rng.integers(4, 18))}"]
""",
        f"""[[action]]
name = "trade"
params = {{ p = {{ bounds = [0, {k[4]}], kind = "integer" }}, q = {{ bounds = [0, {k[5]}], kind = "integer" }} }}
effects = {{ a = "a - p + q", b = "b + q" }}
cost = "{c[9]} + {c[10]} * p + {c[11]} * q"
pre = ["a - p >= 0"]
""",
        f"""[[action]]
name = "half_b"
params = {{ p = {{ bounds = [0, {k[1] + 3}], kind = "integer" }} }}
effects = {{ b = "b + 0.5 * p" }}
cost = "{c[3]} + {c[2]} * p"
""",
    ]
    chosen = sorted(rng.choice(len(pool), size=int(rng.integers(3, 6)), replace=False).tolist())
    return "\n".join(pool[i] for i in chosen)


def _model(rng: np.random.Generator, kind: str, x: torch.Tensor) -> TorchModel:
    """A linear model (one logit) or a 6-4 ReLU network (two logits), shifted so that the typical row of
    ``x`` is a little short of favourable."""
    width = SCHEMA.width
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    if kind == "linear":
        net: torch.nn.Module = torch.nn.Linear(width, 1).double()
        last = net
    else:
        net = torch.nn.Sequential(
            torch.nn.Linear(width, 6),
            torch.nn.ReLU(),
            torch.nn.Linear(6, 4),
            torch.nn.ReLU(),
            torch.nn.Linear(4, 2),
        ).double()
        last = net[-1]
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
        out = net(x)
        gap = out[:, -1] - (out[:, 0] if out.shape[1] == 2 else 0.0)
        last.bias[-1] -= float(gap.median()) + float(rng.uniform(0.3, 2.0))
    return as_model(net, SCHEMA)


def problem(seed: int, kind: str | None = None, rows: int = 4) -> Problem:
    """A random problem (``kind``: "linear" or "relu", else drawn) with up to ``rows`` unfavourable rows."""
    rng = np.random.default_rng(seed)
    actions = ActionSet.from_toml(_actions(rng), SCHEMA)
    parts = {
        "a": torch.as_tensor(rng.integers(0, 12, 64), dtype=torch.float64),
        "b": torch.as_tensor(rng.integers(0, 12, 64), dtype=torch.float64),
        "r": torch.as_tensor(rng.uniform(0, 8, 64)),
        "g": torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, 3, 64)), 3).to(torch.float64),
        "f": torch.as_tensor(rng.integers(0, 6, 64), dtype=torch.float64),
    }
    x = SCHEMA.assemble(parts)
    model = _model(rng, kind or ("linear" if rng.random() < 0.5 else "relu"), x)
    goal = resolve_goal(model)
    with torch.no_grad():
        bad = ~goal.satisfied(model(x))
    return Problem(Program(actions), model, goal, x[bad][:rows])


def _grid(program: Program, seq: tuple[int, ...]) -> torch.Tensor:
    """Every parameter combination of a sequence: (combinations, steps, slots)."""
    axes = []
    for a in seq:
        for p in program.acts[a].params:
            axes.append(range(math.ceil(p.bounds[0]), math.floor(p.bounds[1]) + 1))
    combos = list(itertools.product(*axes)) or [()]
    out = torch.zeros(len(combos), len(seq), program.slots, dtype=torch.float64)
    for i, combo in enumerate(combos):
        values = iter(combo)
        for j, a in enumerate(seq):
            for s in range(program.acts[a].n_params):
                out[i, j, s] = float(next(values))
    return out


def enumerate_optimum(p: Problem, max_length: int, margin: float) -> list[float]:
    """Each row's cheapest plan of at most ``max_length`` actions that passes exactly with ``margin``."""
    best = [math.inf] * len(p.x)
    with torch.no_grad():
        for length in range(1, max_length + 1):
            for seq in canonical_sequences(p.program.acts, length):
                grid = _grid(p.program, seq)
                m, n = len(grid), len(p.x)
                ids = torch.as_tensor([list(seq)] * (m * n), dtype=torch.int64)
                path = p.program.rollout(ids, p.x.repeat(m, 1), grid.repeat_interleave(n, 0), exact=True)
                out = p.model(path.x)
                ok = path.ok & p.goal.satisfied(out) & (p.goal.margin(out) >= margin)
                ok &= proper_costs(path.step_costs)
                cost = torch.where(ok, path.step_costs.sum(1), math.inf).reshape(m, n).min(0).values
                best = [min(b, float(c)) for b, c in zip(best, cost, strict=True)]
    return best
