"""One action prepared for batched evaluation: the kernel a ``Program`` runs per step and action group.

``Kernel(action, schema, touched).step(z, xs, p, exact)`` applies the action to a batch: the numeric
columns some action writes (``z``), the static columns (``xs``: categories and unwritten numbers), the
parameters ``p``. Relaxed (``exact=False``) it also returns the barrier penalty of its bounds, directions
and conditions; exact, integer features are made whole as declared and conditions are booleans. A kernel
is ``constant`` when its step reads neither ``z`` nor parameters (no parameters, no numeric effect, only
static reads): inside one optimisation its cost, penalty and validity never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from actionable import expr as E
from actionable.actions import Action, Condition, relax
from actionable.rounding import make_whole_columns
from actionable.schema import DTYPE, Schema

__all__ = ["Kernel", "Moved"]


class Moved(NamedTuple):
    """One action applied to a batch: numeric state, static state, cost, relaxed penalty, exact validity."""

    z: torch.Tensor
    xs: torch.Tensor
    cost: torch.Tensor
    penalty: torch.Tensor
    ok: torch.Tensor


@dataclass(frozen=True)
class _Read:
    """Where an expression's name lives: a category block, or a numeric column (in ``z`` when written)."""

    name: str
    cols: slice
    levels: tuple[str, ...] | None
    pos: int | None


class Kernel:
    """One action prepared for batched evaluation: only the columns it reads and writes are touched."""

    def __init__(self, action: Action, schema: Schema, touched: dict[int, int]) -> None:
        self.action = action
        self.n_params = action.n_params
        bound = action.expressions
        self.effects = [(schema[f], schema.slice(f), e) for f, e in bound.effects.items()]
        self.levels: list[tuple[slice, int]] = []  # constant category effects: block, level index
        self.blocks: dict[str, torch.Tensor] = {}  # the same as one-hot rows, for the rollout
        for f, cols, e in self.effects:
            if e.is_level:
                level = f.level_index(e.evaluate({}))
                self.levels.append((cols, level))
                self.blocks[f.name] = torch.zeros(len(f.levels), dtype=DTYPE).index_fill(
                    0, torch.tensor(level), 1.0
                )
        self.cost = bound.cost
        self.pre: tuple[Condition, ...] = action.conditions("pre")
        self.post: tuple[Condition, ...] = action.conditions("post")
        params = {p.name for p in action.params}
        before = set(self.cost.names) | {n for _, _, e in self.effects for n in e.names}
        before |= {n for c in self.pre for n in c.expr.names}
        self.read_before = self._reads(schema, sorted(before - params), touched)
        self.read_after = self._reads(
            schema, sorted({n for c in self.post for n in c.expr.names} - params), touched
        )
        ranges = {f.name: f.bounds[1] - f.bounds[0] for f in schema.features if f.kind != "category"}
        ranges |= {p.name: p.bounds[1] - p.bounds[0] for p in action.params}
        self.scales = [self._scale(c, ranges) for c in (*self.pre, *self.post)]
        numeric = [(f, cols) for f, cols, _ in self.effects if f.kind != "category"]
        self.cols = torch.as_tensor([cols.start for _, cols in numeric], dtype=torch.int64)
        self.zcols = torch.as_tensor([touched[int(c)] for c in self.cols], dtype=torch.int64)
        self.integer = torch.as_tensor([f.is_whole for f, _ in numeric], dtype=torch.bool)
        self.modes = [action.whole_mode(f) for f, _ in numeric]  # the action's rounding, else the feature's
        self.lo = torch.as_tensor([f.bounds[0] for f, _ in numeric], dtype=DTYPE)
        self.hi = torch.as_tensor([f.bounds[1] for f, _ in numeric], dtype=DTYPE)
        up = torch.as_tensor([f.direction == "increase" for f, _ in numeric], dtype=torch.bool)
        down = torch.as_tensor([f.direction == "decrease" for f, _ in numeric], dtype=torch.bool)
        span = self.hi - self.lo
        scale = torch.where(torch.isfinite(span) & (span > 0), span / 100, torch.ones_like(span))
        # the slacks that can bind: finite lower and upper bounds, and the allowed direction of change
        # as index tensors (not masks), so the shapes never depend on data (torch.compile traces them)
        self.slack_lo, self.slack_hi, self.i_up, self.i_down = (
            torch.nonzero(mask).flatten()
            for mask in (torch.isfinite(self.lo), torch.isfinite(self.hi), up, down)
        )
        self.slack_scale = torch.cat(
            [scale[self.slack_lo], scale[self.slack_hi], scale[self.i_up], scale[self.i_down]]
        )
        reads = (*self.read_before, *self.read_after)
        self.constant = not self.n_params and not numeric and all(r.pos is None for r in reads)

    @staticmethod
    def _reads(schema: Schema, names: list[str], touched: dict[int, int]) -> list[_Read]:
        out = []
        for name in names:
            f, cols = schema[name], schema.slice(name)
            category = f.kind == "category"
            out.append(_Read(name, cols, f.levels if category else None, touched.get(cols.start)))
        return out

    @staticmethod
    def _scale(condition: Condition, ranges: dict[str, float]) -> float:
        """Default barrier scale: 1% of the smallest finite range among the names the condition reads."""
        spans = [ranges[n] for n in condition.expr.names if n in ranges and 0 < ranges[n] < math.inf]
        return float(condition.scale or (min(spans) / 100 if spans else 1.0))

    def env(self, z: torch.Tensor, xs: torch.Tensor, p: torch.Tensor, reads: list[_Read]) -> dict[str, Any]:
        env: dict[str, Any] = {}
        for r in reads:
            if r.levels is not None:
                env[r.name] = E.Categorical(xs[:, r.cols], r.levels)
            else:
                env[r.name] = z[:, r.pos] if r.pos is not None else xs[:, r.cols.start]
        for i, param in enumerate(self.action.params):
            env[param.name] = p[:, i]
        return env

    def set_levels(self, xs: torch.Tensor) -> torch.Tensor:
        """The static columns after this action: its category effects applied (they are constants)."""
        out = xs
        for cols, level in self.levels:
            out = out.clone() if out is xs else out
            out[:, cols] = 0.0
            out[:, cols.start + level] = 1.0
        return out

    def step(self, z: torch.Tensor, xs: torch.Tensor, p: torch.Tensor, exact: bool) -> Moved:
        """The action on a batch: new numeric state ``z``, new static state ``xs`` (categories), its cost,
        the relaxed penalty (0 when exact) and the exact validity of conditions, bounds and directions."""
        n = len(z)
        env = self.env(z, xs, p, self.read_before)
        cost = torch.broadcast_to(torch.as_tensor(self.cost.evaluate(env), dtype=DTYPE), (n,))
        numeric = []
        xs_after = xs
        for f, cols, effect in self.effects:
            value = effect.evaluate(env)
            if isinstance(value, str):
                if xs_after is xs:
                    xs_after = xs.clone()
                block = self.blocks.get(f.name)
                if block is None:  # a level chosen by the state: found in the schema's levels now
                    block = torch.zeros(len(f.levels), dtype=xs.dtype)
                    block[f.level_index(value)] = 1.0
                xs_after[:, cols] = block
            else:
                numeric.append(torch.broadcast_to(torch.as_tensor(value, dtype=z.dtype), (n,)))
        z_after = z
        ok = torch.ones(n, dtype=torch.bool)
        pen = torch.zeros(n, dtype=DTYPE)
        if numeric:
            new = torch.stack(numeric, 1)
            if exact:  # an integer feature stays a whole number after every action, rounded as declared
                new = torch.where(self.integer, make_whole_columns(new, self.modes), new)
            old = z[:, self.zcols]
            z_after = z.index_copy(1, self.zcols, new)
            slack = torch.cat(
                [
                    (new - self.lo)[:, self.slack_lo],
                    (self.hi - new)[:, self.slack_hi],
                    (new - old)[:, self.i_up],
                    (old - new)[:, self.i_down],
                ],
                1,
            )
            # exact: the bounds and directions as the schema checks them (a plan's state must be a valid row)
            ok = (slack >= (0.0 if exact else -1e-9)).all(1)
            if not exact and slack.shape[1]:
                d = slack / self.slack_scale
                pen = (0.1 * torch.where(d >= 0, torch.exp(-d.clamp_min(0)), 1 - d)).sum(1)
        env_after = self.env(z_after, xs_after, p, self.read_after) if self.post else {}
        conditions = [(c, env) for c in self.pre] + [(c, env_after) for c in self.post]
        for (condition, environment), scale in zip(conditions, self.scales, strict=True):
            if exact:  # the truth alone: no barrier to build
                truth = torch.as_tensor(condition.expr.evaluate(environment), dtype=torch.bool)
                ok = ok & torch.broadcast_to(truth, (n,))
                continue
            c_pen, truth = relax(condition, environment, scale)
            ok = ok & torch.broadcast_to(truth, (n,))
            pen = pen + torch.broadcast_to(c_pen, (n,))
        return Moved(z_after, xs_after, cost, pen, ok)
