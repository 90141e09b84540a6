"""Action-sequence synthesis (Ramakrishnan, Lee and Albarghouthi, AAAI 2020), batched and exactly verified.

For every person the model treats unfavourably, find the cheapest short sequence of actions, with concrete
parameters, that flips the decision. All candidate sequences of one length x all people are optimised at
once as one tensor program (Adam on the parameters, scaled to their boxes; Carlini-Wagner objective
cost + barriers + c * max(0, margin - goal margin) with an adaptive c). Every answer is then replayed
exactly on the rounded plan; only a plan that passes is ``found``, and its cost excludes penalties.
The exact check also refuses any step whose cost is negative or not finite (whatever the catalogue's
load-time checks let through): such a row is ``not_found`` when no other plan passes, and its error text
names the action and the cost. "Favourable" is the model's own decision (``Goal.satisfied``: argmax,
ties included).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from actionable import __version__
from actionable import expr as E
from actionable.actions import Action, ActionSet, relax
from actionable.errors import ConfigError, DataError
from actionable.goals import Goal, resolve_goal
from actionable.inner import compiled, fold, split_affine
from actionable.models import TorchModel, as_model
from actionable.results import Recourse, RecourseBatch, Step
from actionable.schema import DTYPE, Schema, as_rows
from actionable.validation import FLAG, Rule, check, choice, real, whole

Search = Literal["bfs", "objective", "gradient"]
NOOP = -1  # the padding action of sequences shorter than the longest: changes nothing, costs nothing
MAX_LENGTH = 32  # longest sequence asked for; the search size (plan_search) usually refuses far earlier
MAX_WORK = 10**9  # default bound on pair-steps (sequences x rows x optimisation steps), see plan_search


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of the search and of the inner optimisation, validated here by ``RULES`` (one rule per field,
    one message format, see ``validation``); numpy numbers and whole floats (``steps=10.0``) are stored as
    plain ints and floats. ``max_work`` bounds the search size (``Synthesizer.plan_search``)."""

    max_length: int = 4
    steps: int = 150
    lr: float = 0.05
    margin: float = 0.1
    c_init: float = 1.0
    check_every: int = 20
    chunk: int = 50_000
    seed: int = 0
    search: Search = "bfs"
    budget: int | None = None
    round_size: int = 16
    compile: bool = False  # torch.compile the inner step (inductor); pays off only for long runs
    max_work: int | None = MAX_WORK  # most pair-steps of optimisation (see plan_search); None: no limit

    def __post_init__(self) -> None:
        for name, value in check("synthesize", RULES, asdict(self)).items():
            object.__setattr__(self, name, value)  # numpy and whole-float values stored as plain ints
        if self.budget is not None and self.search == "bfs":
            raise ConfigError(
                f"synthesize: budget = {self.budget!r} applies to search='objective' or 'gradient' "
                "(sequences per person); drop budget, or choose one of those searches."
            )


RULES: dict[str, Rule] = {
    "max_length": whole(1, MAX_LENGTH),
    "steps": whole(1, 10**6),
    "lr": real(0, open_low=True),
    "margin": real(0),
    "c_init": real(0, open_low=True),
    "check_every": whole(1),
    "chunk": whole(1),
    "seed": whole(0, 2**63 - 1),
    "search": choice(("bfs", "objective", "gradient")),
    "budget": whole(1, optional=True),
    "round_size": whole(1),
    "compile": FLAG,
    "max_work": whole(1, optional=True),
}


def synthesize(
    model: Any,
    X: pd.DataFrame,
    actions: ActionSet,
    *,
    goal: Any = None,
    max_length: int = 4,
    search: Search = "bfs",
    margin: float = 0.1,
    steps: int = 150,
    seed: int = 0,
    **options: Any,
) -> RecourseBatch:
    """The cheapest verified action sequence per row of ``X`` (one ``Recourse`` per row, in order).

    ``model``: a ``TorchModel``, torch module or fitted scikit-learn model (converted with ``as_model``
    on ``actions.schema``). ``goal``: as in ``resolve_goal`` (default: the schema's target).
    ``margin``: how far past the decision boundary (in logits, or the goal's units) plans are pushed.
    Other settings (``lr``, ``c_init``, ``check_every``, ``chunk``, ``compile``, ``max_work``) are
    ``SynthesisConfig`` fields; a bad value raises ``ConfigError`` naming the value and the fix, and a search
    larger than ``max_work`` pair-steps (sequences x rows x steps) is refused before it starts; ``compile=True`` runs the inner step through ``torch.compile`` (worth its warm-up of several
    seconds per program shape only on long runs; falls back to eager with a warning where unavailable).
    """
    unknown = set(options) - {
        "lr",
        "c_init",
        "check_every",
        "chunk",
        "budget",
        "round_size",
        "compile",
        "max_work",
    }
    if unknown:
        raise ConfigError(f"synthesize: unknown option(s) {sorted(unknown)}; see SynthesisConfig.")
    config = SynthesisConfig(
        max_length=max_length, steps=steps, margin=margin, seed=seed, search=search, **options
    )
    if not isinstance(actions, ActionSet):
        raise ConfigError(f"synthesize: actions must be an ActionSet; got {type(actions).__name__}.")
    schema = actions.schema
    torch_model = as_model(model, schema)
    return Synthesizer(torch_model, actions, resolve_goal(torch_model, goal), config).run(as_rows(X))


# ------------------------------------------------------------------------------------ sequences
def commutes(a: Action, b: Action) -> bool:
    """Two actions commute when neither writes what the other writes or reads."""
    return not (a.footprint & b.footprint or a.footprint & b.reads or b.footprint & a.reads)


def canonical_sequences(actions: Sequence[Action], length: int) -> list[tuple[int, ...]]:
    """All sequences of ``length`` action indices, one per class of orders that commuting actions make equal.

    A sequence is kept iff it is in lexicographic normal form: no later action that is smaller could move
    in front of an earlier one by commuting with everything in between. Repeats only for repeatable actions.
    """
    levels = canonical_levels(actions, length)
    return levels[-1] if len(levels) == length else []


def canonical_levels(
    actions: Sequence[Action], max_length: int, limit: float = math.inf
) -> list[list[tuple[int, ...]]]:
    """The canonical sequences of each length 1..``max_length``, built incrementally (never all orders).

    Every prefix of a sequence in normal form is in normal form (the condition on a position looks only
    backwards), so the sequences of length k are the normal ones of length k - 1 extended by one action
    whose own position passes the check: walking back over the actions it commutes with, none is larger.
    The cost is proportional to the output, not to the ``n ** k`` orders. Stops as soon as more than
    ``limit`` sequences are built in all (the last level is then partial; the caller refuses the search).
    """
    n = len(actions)
    swap = [[commutes(actions[i], actions[j]) for j in range(n)] for i in range(n)]
    repeatable = [a.repeatable for a in actions]
    levels: list[list[tuple[int, ...]]] = []
    previous: list[tuple[int, ...]] = [()]
    total = 0
    for _ in range(max_length):
        level: list[tuple[int, ...]] = []
        for seq in previous:
            level += [(*seq, a) for a in range(n) if _extends(seq, a, swap, repeatable)]
            if total + len(level) > limit:  # refused anyway: stop before building the rest
                return [*levels, level]
        if not level:
            break
        levels.append(level)
        total += len(level)
        previous = level
    return levels


def _extends(seq: tuple[int, ...], a: int, swap: list[list[bool]], repeatable: list[bool]) -> bool:
    """Whether ``seq + (a,)`` is in normal form, given that ``seq`` is."""
    if not repeatable[a] and a in seq:
        return False
    for b in reversed(seq):
        if not swap[a][b]:
            return True
        if a < b:
            return False
    return True


def normal_form(seq: tuple[int, ...], swap: list[list[bool]]) -> tuple[int, ...]:
    """The lexicographically smallest order reachable by swapping adjacent commuting actions.

    Greedy: repeatedly take the smallest action that commutes with every action still before it.
    """
    rest, out = list(seq), []
    while rest:
        movable = [j for j in range(len(rest)) if all(swap[rest[j]][rest[i]] for i in range(j))]
        j = min(movable, key=lambda k: rest[k])
        out.append(rest.pop(j))
    return tuple(out)


def constant_cost(action: Action) -> float:
    """A lower bound on the action's cost in any verified plan: its value if constant, else 0 (a verified
    plan never has a negative step cost, see ``proper_costs``)."""
    parsed = action._bound()["cost"]
    if parsed.names:
        return 0.0
    value = float(parsed.evaluate({}))
    # negative, infinite or NaN: never verified; 0 keeps the bound safe and lets verify name the action
    return value if 0 <= value < math.inf else 0.0


def proper_costs(step_costs: torch.Tensor) -> torch.Tensor:
    """Per plan (rows of ``step_costs``): every step's cost is finite and >= 0 (no-op steps cost 0)."""
    return (torch.isfinite(step_costs) & (step_costs >= 0)).all(-1)


# ------------------------------------------------------------------------------------ kernels
class _Kernel:
    """One action prepared for batched evaluation: only the columns it reads and writes are touched."""

    def __init__(self, action: Action, schema: Schema) -> None:
        self.action, self.schema = action, schema
        self.n_params = action.n_params
        bound = action._bound()
        self.effects = [(schema[f], schema.slice(f), e) for f, e in bound["effects"].items()]
        self.cost = bound["cost"]
        self.pre, self.post = action.conditions("pre"), action.conditions("post")
        params = {p.name for p in action.params}
        before = set(self.cost.names) | {n for _, _, e in self.effects for n in e.names}
        before |= {n for c in self.pre for n in c.expr.names}
        self.read_before = sorted(before - params)
        self.read_after = sorted({n for c in self.post for n in c.expr.names} - params)
        ranges = {f.name: f.bounds[1] - f.bounds[0] for f in schema.features if f.kind != "category"}
        ranges |= {p.name: p.bounds[1] - p.bounds[0] for p in action.params}
        self.scales = {id(c): self._scale(c, ranges) for c in (*self.pre, *self.post)}
        numeric = [(f, cols) for f, cols, _ in self.effects if f.kind != "category"]
        self.cols = torch.as_tensor([cols.start for _, cols in numeric], dtype=torch.int64)
        self.integer = torch.as_tensor(
            [f.kind in ("integer", "binary") for f, _ in numeric], dtype=torch.bool
        )
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

    @staticmethod
    def _scale(condition: Any, ranges: dict[str, float]) -> float:
        """Default barrier scale: 1% of the smallest finite range among the names the condition reads."""
        spans = [ranges[n] for n in condition.expr.names if n in ranges and 0 < ranges[n] < math.inf]
        return float(condition.scale or (min(spans) / 100 if spans else 1.0))

    def bind(self, touched: dict[int, int]) -> None:
        """Where each numeric column it writes lives in the small, differentiable state ``z``."""
        self.touched = touched
        self.zcols = torch.as_tensor([touched[int(c)] for c in self.cols], dtype=torch.int64)

    def env(self, z: torch.Tensor, xs: torch.Tensor, p: torch.Tensor, names: list[str]) -> dict[str, Any]:
        env: dict[str, Any] = {}
        for name in names:
            f, cols = self.schema[name], self.schema.slice(name)
            if f.kind == "category":
                env[name] = E.Categorical(xs[:, cols], f.levels)
            else:
                pos = self.touched.get(cols.start)
                env[name] = z[:, pos] if pos is not None else xs[:, cols.start]
        for i, param in enumerate(self.action.params):
            env[param.name] = p[:, i]
        return env

    def set_levels(self, xs: torch.Tensor) -> torch.Tensor:
        """The static columns after this action: its category effects applied (they are constants)."""
        out = xs
        for f, cols, effect in self.effects:
            if effect.is_level:
                out = out.clone() if out is xs else out
                out[:, cols] = 0.0
                out[:, cols.start + f.level_index(effect.evaluate({}))] = 1.0
        return out

    def step(
        self, z: torch.Tensor, xs: torch.Tensor, p: torch.Tensor, exact: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
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
            if exact:  # an integer feature stays a whole number after every action
                new = torch.where(self.integer, torch.round(new), new)
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
            ok = (slack >= -1e-9).all(1)
            if not exact and slack.shape[1]:
                d = slack / self.slack_scale
                pen = (0.1 * torch.where(d >= 0, torch.exp(-d.clamp_min(0)), 1 - d)).sum(1)
        env_after = self.env(z_after, xs_after, p, self.read_after) if self.post else {}
        for conditions, environment in ((self.pre, env), (self.post, env_after)):
            for condition in conditions:
                c_pen, truth = relax(condition, environment, self.scales[id(condition)])
                ok = ok & torch.broadcast_to(truth, (n,))
                if not exact:
                    pen = pen + torch.broadcast_to(c_pen, (n,))
        return z_after, xs_after, cost, pen, ok


# ------------------------------------------------------------------------------------ the engine
UNROLL = 10  # iterations per compiled call (compile=True): amortises the call overhead
SERIAL_UP_TO = 50_000  # pairs (the default chunk): batches up to this size run on one intra-op thread


@contextlib.contextmanager
def _threads(batch: int) -> Iterator[None]:
    """One intra-op thread for batches of at most ``SERIAL_UP_TO`` pairs: their matrix products (pairs x 40) gain
    little from splitting, and where the cores are shared OpenMP's waiting threads cost far more than the
    work (measured on 2 shared cores: the 13,500-pair German program took 104 ms per step on one thread,
    611-973 ms on two)."""
    before = torch.get_num_threads()
    if batch > SERIAL_UP_TO or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class _Path:
    """A rollout of many (sequence, person) pairs: final states, costs per step, penalties, exact validity."""

    x: torch.Tensor
    step_costs: torch.Tensor
    penalty: torch.Tensor
    ok: torch.Tensor


class Synthesizer:
    """One synthesis run: a model, a checked catalogue, a goal and a configuration."""

    def __init__(self, model: TorchModel, actions: ActionSet, goal: Goal, config: SynthesisConfig) -> None:
        self.model, self.actions, self.goal, self.config = model, actions, goal, config
        self.schema: Schema = actions.schema
        self.acts = actions.actions
        self.n_params = max((a.n_params for a in self.acts), default=0)
        self.kernels = [_Kernel(a, self.schema) for a in self.acts]
        # when a dict, search() records per person: sequence -> (objective, verified cost, end state)
        self.trace: dict[int, dict[tuple[int, ...], tuple[float, float, torch.Tensor]]] | None = None
        # per person searched: action name -> the negative / non-finite cost that made a plan invalid
        self.refused: dict[int, dict[str, float]] = {}
        columns = sorted({int(c) for k in self.kernels for c in k.cols})
        self.touched = torch.as_tensor(columns, dtype=torch.int64)
        for kernel in self.kernels:
            kernel.bind({c: i for i, c in enumerate(columns)})
        self.lower_bounds = [constant_cost(a) for a in self.acts]
        self._split = split_affine(model)
        self._compiled: Any = None
        lo, hi = self.schema.bounds_tensor()
        self.lo, self.hi = lo, hi
        self.span = torch.where(torch.isfinite(hi - lo) & (hi > lo), hi - lo, torch.ones_like(hi))
        self.integer_cols = torch.zeros(self.schema.width, dtype=torch.bool)
        for f in self.schema.features:
            if f.kind in ("integer", "binary"):
                self.integer_cols[self.schema.slice(f.name)] = True

    # ------------------------------------------------------------------------------- public
    def run(self, X: pd.DataFrame) -> RecourseBatch:
        started = time.perf_counter()
        if not isinstance(X, pd.DataFrame):
            raise DataError(f"synthesize: X must be a pandas DataFrame of raw rows; got {type(X).__name__}.")
        errors = self.schema.row_errors(X)
        good = [i for i in range(len(X)) if i not in errors]
        x0 = self.schema.encode(X.iloc[good]) if good else torch.zeros(0, self.schema.width, dtype=DTYPE)
        with torch.no_grad():
            out0 = self.model(x0)
        need = ~self.goal.satisfied(out0)
        best = self.search(x0[need]) if bool(need.any()) else {}
        rows_needing = need.nonzero().flatten().tolist()
        k_need = {k: j for j, k in enumerate(rows_needing)}  # position in x0 -> position among rows searched
        elapsed = (time.perf_counter() - started) / max(len(X), 1)
        before = self._records(x0)
        plans = {k: best[j] for j, k in enumerate(rows_needing) if j in best}
        final = torch.stack([p["x"] for p in plans.values()]) if plans else None
        after: dict[int, Any] = {}
        p_after: dict[int, float] = {}
        if final is not None:
            after = dict(zip(plans, self._records(final), strict=True))
            with torch.no_grad():
                p_after = dict(zip(plans, self.goal.probability(self.model(final)).tolist(), strict=True))
        p0 = self.goal.probability(out0)
        good_pos = {row: k for k, row in enumerate(good)}
        common: dict[str, Any] = {"seconds": elapsed, "provenance": self.provenance()}
        items: list[Recourse] = []
        for row in range(len(X)):
            if row in errors:
                items.append(Recourse(row=row, status="error", error=errors[row], **common))
                continue
            k = good_pos[row]
            if not bool(need[k]):
                items.append(
                    Recourse(
                        row=row,
                        status="already_favourable",
                        x_before=before[k],
                        x_after=before[k],
                        p_before=float(p0[k]),
                        p_after=float(p0[k]),
                        cost=0.0,
                        **common,
                    )
                )
            elif k not in plans:
                items.append(
                    Recourse(
                        row=row,
                        status="not_found",
                        x_before=before[k],
                        p_before=float(p0[k]),
                        error=self._not_found_text(k_need[k]),
                        **common,
                    )
                )
            else:
                items.append(
                    Recourse(
                        row=row,
                        status="found",
                        steps=self._steps(plans[k]),
                        cost=float(plans[k]["step_costs"].sum()),
                        x_before=before[k],
                        x_after=after[k],
                        p_before=float(p0[k]),
                        p_after=float(p_after[k]),
                        **common,
                    )
                )
        return RecourseBatch(tuple(items))

    def provenance(self) -> dict[str, Any]:
        return {
            "method": "ramakrishnan2020",
            "config": asdict(self.config),
            "goal": self.goal.describe(),
            "outcome": self.goal.outcome(),
            "actions": list(self.actions.names),
            "version": __version__,
        }

    # ------------------------------------------------------------------------------- search
    def search(self, x0: torch.Tensor) -> dict[int, dict[str, Any]]:
        """Best verified plan per person (index into ``x0``), by the configured search."""
        torch.manual_seed(self.config.seed)
        self.refused = {}
        best_cost = torch.full((len(x0),), math.inf, dtype=DTYPE)
        best: dict[int, dict[str, Any]] = {}
        with _threads(self.config.chunk):  # batches are at most a chunk of pairs
            if self.config.search == "bfs":
                self._exhaustive(x0, best, best_cost)
            else:
                self._best_first(x0, best, best_cost)
            polished = self.polish(x0, best)
            return {row: self._without_idle_steps(plan) for row, plan in polished.items()}

    def plan_search(self, rows: int) -> list[list[tuple[int, ...]]]:
        """The canonical sequences per length, after checking the search's size against ``max_work``.

        Size = sequences optimised x rows x optimisation steps (pair-steps): every canonical sequence of
        length 1..max_length for ``bfs``; at most ``budget`` per person for the best-first searches. A
        search past ``max_work`` is refused before any work with a ``ConfigError`` giving the size and the
        ways to shrink it; the enumeration itself stops as soon as the bound is passed (never all orders).
        """
        cfg = self.config
        limit = math.inf if cfg.max_work is None else cfg.max_work / (max(rows, 1) * cfg.steps)
        if cfg.search != "bfs" and cfg.budget is not None:
            if cfg.budget > limit:
                self._too_large(f"{cfg.budget:,} sequences per person (budget)", rows, [], limit)
            return []
        levels = canonical_levels(self.acts, cfg.max_length, limit)
        count = sum(len(level) for level in levels)
        if count > limit:
            self._too_large(f"at least {count:,} action sequences", rows, levels, limit)
        return levels

    def _too_large(self, size: str, rows: int, levels: list[list[tuple[int, ...]]], limit: float) -> None:
        cfg = self.config
        totals = list(itertools.accumulate(len(level) for level in levels))
        fits = [k for k, total in enumerate(totals, start=1) if total <= limit]
        hint = f"max_length={fits[-1]} ({totals[fits[-1] - 1]:,} sequences), " if fits else ""
        raise ConfigError(
            f"synthesize: the search is too large: {size} (max_length={cfg.max_length}, "
            f"{len(self.acts)} actions) x {rows:,} rows x {cfg.steps} steps is more than max_work = "
            f"{cfg.max_work:,} pair-steps. Shrink it: {hint}fewer actions, fewer rows per call, fewer "
            "steps, search='objective' with budget=<sequences per person>, or raise max_work "
            "(None: no limit)."
        )

    def _pad(self, sequences: Sequence[tuple[int, ...]]) -> torch.Tensor:
        width = max(len(s) for s in sequences)
        return torch.as_tensor([list(s) + [NOOP] * (width - len(s)) for s in sequences], dtype=torch.int64)

    def _bound(self, seq: tuple[int, ...]) -> float:
        """A real lower bound on a sequence's cost: the sum of its actions' constant costs."""
        return sum(self.lower_bounds[a] for a in seq)

    def _exhaustive(self, x0: torch.Tensor, best: dict[int, dict[str, Any]], best_cost: torch.Tensor) -> None:
        """Every canonical sequence of length 1..max_length, padded with no-ops, with every person in one
        tensor program; pairs whose bound already reaches the person's best plan are skipped (the bound
        tightens from chunk to chunk, shorter sequences first)."""
        n = len(x0)
        levels = self.plan_search(n)
        sequences = [s for level in levels for s in level]
        if not sequences:
            return
        seqs = self._pad(sequences)
        bound = torch.as_tensor([self._bound(s) for s in sequences], dtype=DTYPE)
        pair_seq = torch.arange(len(sequences)).repeat_interleave(n)
        pair_row = torch.arange(n).repeat(len(sequences))
        for start in range(0, len(pair_seq), self.config.chunk):
            s_idx = pair_seq[start : start + self.config.chunk]
            r_idx = pair_row[start : start + self.config.chunk]
            keep = bound[s_idx] < best_cost[r_idx]
            if keep.any():
                self._evaluate(seqs[s_idx[keep]], r_idx[keep], x0, best, best_cost)

    def _best_first(self, x0: torch.Tensor, best: dict[int, dict[str, Any]], best_cost: torch.Tensor) -> None:
        """The paper's Algorithm 1 with the objective or gradient score, batched across people in rounds.

        Each round takes, for every person, the next ``round_size`` sequences by score from that person's
        frontier (one order per class of commuting orders; at most ``budget`` in all), skips those whose
        bound reaches the person's best verified plan, optimises the rest together, and pushes their
        one-action extensions with scores from the results.
        """
        cfg = self.config
        n, k = len(x0), len(self.acts)
        self.plan_search(n)
        swap = [[commutes(self.acts[i], self.acts[j]) for j in range(k)] for i in range(k)]
        counter = itertools.count()
        frontier: list[list[tuple[float, int, tuple[int, ...]]]] = [[] for _ in range(n)]
        seen: list[set[tuple[int, ...]]] = [set() for _ in range(n)]
        tried = [0] * n
        budget = cfg.budget if cfg.budget is not None else math.inf
        for person in range(n):
            self._push(person, (), x0[person], 0.0, frontier, seen, swap, counter)
        while True:
            batch_seq: list[tuple[int, ...]] = []
            batch_row: list[int] = []
            for person in range(n):
                taken = 0
                while frontier[person] and taken < cfg.round_size and tried[person] < budget:
                    _, _, seq = heapq.heappop(frontier[person])
                    if self._bound(seq) >= float(best_cost[person]):
                        continue  # cannot beat the best plan, and extensions only add to the bound
                    tried[person] += 1
                    batch_seq.append(seq)
                    batch_row.append(person)
                    taken += 1
            if not batch_seq:
                return
            rows = torch.as_tensor(batch_row)
            objective, state = self._evaluate(self._pad(batch_seq), rows, x0, best, best_cost, outcomes=True)
            for j, (seq, person) in enumerate(zip(batch_seq, batch_row, strict=True)):
                if len(seq) < cfg.max_length:
                    self._push(person, seq, state[j], float(objective[j]), frontier, seen, swap, counter)

    def _push(
        self,
        person: int,
        prefix: tuple[int, ...],
        state: torch.Tensor,
        objective: float,
        frontier: list[list[tuple[float, int, tuple[int, ...]]]],
        seen: list[set[tuple[int, ...]]],
        swap: list[list[bool]],
        counter: Iterator[int],
    ) -> None:
        grads = self.gradient_scores(state) if self.config.search == "gradient" else None
        for a in range(len(self.acts)):
            seq = (*prefix, a)
            if any(seq.count(b) > 1 and not self.acts[b].repeatable for b in set(seq)):
                continue
            canonical = normal_form(seq, swap)
            if canonical in seen[person]:
                continue
            seen[person].add(canonical)
            key = objective if grads is None else -float(grads[a])
            heapq.heappush(frontier[person], (key, next(counter), canonical))

    def gradient_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per action: mean |d loss / d x_j| over its footprint's columns, each scaled by the column's range."""
        lo, hi = self.lo, self.hi
        scale = torch.where(torch.isfinite(hi - lo) & (hi > lo), hi - lo, torch.ones_like(hi))
        point = x.detach().clone()[None, :].requires_grad_(True)
        loss = -self.goal.margin(self.model(point)).sum()
        (grad,) = torch.autograd.grad(loss, point)
        magnitude = (grad[0] * scale).abs()
        out = torch.zeros(len(self.acts), dtype=DTYPE)
        for a, action in enumerate(self.acts):
            cols = [
                c
                for f in action.footprint
                for c in range(self.schema.slice(f).start, self.schema.slice(f).stop)
            ]
            out[a] = magnitude[cols].mean()
        return out

    def _evaluate(
        self,
        ids: torch.Tensor,
        r_idx: torch.Tensor,
        x0: torch.Tensor,
        best: dict[int, dict[str, Any]],
        best_cost: torch.Tensor,
        outcomes: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Optimise and verify (sequence, person) pairs, keep each person's cheapest verified plan.

        With ``outcomes``: each pair's objective (exact cost of the rounded plan + 10 x the goal margin it
        still misses + 10 if a condition fails) and the state it reaches, for scoring its extensions.
        """
        ids = ids[:, : int((ids != NOOP).sum(1).max())]
        params = self.optimise(ids, x0[r_idx])
        found, cost, final_params, step_costs, x_final = self.verify(ids, x0[r_idx], params, r_idx)
        objective = state = torch.zeros(0)
        if outcomes or self.trace is not None:
            with torch.no_grad():
                path = self.rollout(ids, x0[r_idx], self.round_params(ids, params, "round"), exact=True)
                missing = torch.relu(self.config.margin - self.goal.margin(self.model(path.x)))
            objective = path.step_costs.sum(1) + 10 * missing + torch.where(path.ok, 0.0, 10.0)
            state = path.x
            if self.trace is not None:
                for j in range(len(ids)):
                    seq = tuple(int(a) for a in ids[j].tolist() if a != NOOP)
                    self.trace.setdefault(int(r_idx[j]), {})[seq] = (
                        float(objective[j]),
                        float(cost[j]),
                        state[j],
                    )
        for j in torch.nonzero(found).flatten().tolist():
            row = int(r_idx[j])
            if cost[j] < best_cost[row]:
                best_cost[row] = cost[j]
                length = int((ids[j] != NOOP).sum())
                best[row] = {
                    "ids": ids[j, :length].tolist(),
                    "params": final_params[j, :length],
                    "step_costs": step_costs[j, :length],
                    "x": x_final[j],
                    "x0": x0[row],
                }
        return objective, state

    def polish(
        self, x0: torch.Tensor, best: dict[int, dict[str, Any]], points: int = 48
    ) -> dict[int, dict[str, Any]]:
        """Shrink each winning plan's parameters toward their no-change values, checked exactly.

        Rounding (whole months, whole units) is a step function the continuous optimisation cannot see, so
        a smaller change often reaches the same rounded state. Candidates: all parameters shrunk together,
        and each step's alone, by factors in (0, 1]; each is replayed exactly and must keep the plan's goal
        margin (at least ``margin``, or what the plan had). The cheapest valid candidate wins.
        """
        if not best:
            return best
        rows = list(best)
        width = max(len(best[r]["ids"]) for r in rows)
        slots = max(self.n_params, 1)
        ids = torch.full((len(rows), width), NOOP, dtype=torch.int64)
        params = torch.zeros(len(rows), width, slots, dtype=DTYPE)
        for i, r in enumerate(rows):
            n = len(best[r]["ids"])
            ids[i, :n] = torch.as_tensor(best[r]["ids"])
            params[i, :n] = best[r]["params"]
        _, _, init = self._boxes(ids)
        factors = torch.linspace(0, 1, points + 1, dtype=DTYPE)[1:]
        masks = [torch.ones(width, dtype=DTYPE)] + [torch.eye(width, dtype=DTYPE)[j] for j in range(width)]
        candidates = []
        for mask in masks:  # shrink = init + f (p - init) on the masked steps, unchanged elsewhere
            f = 1 - mask[None, :, None] * (1 - factors[:, None, None])
            candidates.append(init[:, None] + f[None] * (params - init)[:, None])
        cand = torch.cat(candidates, dim=1)  # (plans, candidates, steps, slots)
        per = cand.shape[1]
        flat_ids = ids.repeat_interleave(per, 0)
        flat = self.round_params(flat_ids, cand.reshape(-1, width, slots), "round")
        with torch.no_grad():
            path = self.rollout(
                flat_ids, x0[torch.as_tensor(rows)].repeat_interleave(per, 0), flat, exact=True
            )
            out = self.model(path.x)
            margin = self.goal.margin(out).reshape(len(rows), per)
            own = self.goal.margin(self.model(torch.stack([best[r]["x"] for r in rows])))
        need = torch.minimum(own, torch.full_like(own, self.config.margin)).clamp_min(0)
        total = path.step_costs.sum(1).reshape(len(rows), per)
        valid = (
            path.ok.reshape(len(rows), per)
            & (margin >= need[:, None])
            & self.goal.satisfied(out).reshape(len(rows), per)
            & proper_costs(path.step_costs).reshape(len(rows), per)
        )
        total = torch.where(valid, total, torch.inf)
        choice = total.argmin(1)
        out = dict(best)
        for i, r in enumerate(rows):
            k = int(choice[i])
            if bool(valid[i, k]) and float(total[i, k]) < float(best[r]["step_costs"].sum()) - 1e-12:
                n = len(best[r]["ids"])
                j = i * per + k
                out[r] = best[r] | {
                    "params": flat[j, :n],
                    "step_costs": path.step_costs[j, :n],
                    "x": path.x[j],
                }
        return out

    def _without_idle_steps(self, plan: dict[str, Any]) -> dict[str, Any]:
        """Drop steps that change nothing and cost nothing (e.g. 'study 0 more years'): same plan, shorter."""
        ids = torch.as_tensor(plan["ids"])[None, :]
        keep = []
        x = plan["x0"][None, :]
        with torch.no_grad():
            for j in range(len(plan["ids"])):
                step = self.rollout(ids[:, j : j + 1], x, plan["params"][None, j : j + 1], exact=True)
                if not (torch.equal(step.x, x) and float(plan["step_costs"][j]) == 0.0):
                    keep.append(j)
                x = step.x
        index = torch.as_tensor(keep, dtype=torch.int64)
        return plan | {
            "ids": [plan["ids"][j] for j in keep],
            "params": plan["params"][index],
            "step_costs": plan["step_costs"][index],
        }

    # ------------------------------------------------------------------------------- rollout
    def dispatch(self, ids: torch.Tensor) -> list[tuple[list[tuple[int, torch.Tensor]], torch.Tensor]]:
        """Per step: which pairs each action acts on, and the permutation that restores the pairs' order."""
        plan = []
        for j in range(ids.shape[1]):
            groups = [
                (int(a), torch.nonzero(ids[:, j] == a).flatten()) for a in torch.unique(ids[:, j]).tolist()
            ]
            order = torch.argsort(torch.cat([rows for _, rows in groups]))
            plan.append((groups, order))
        return plan

    def static_states(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        plan: list[tuple[list[tuple[int, torch.Tensor]], torch.Tensor]],
    ) -> tuple[list[list[torch.Tensor]], torch.Tensor]:
        """The columns no parameter can move (categories, unwritten numbers) per step and action group.

        Category effects set constant levels, so this trajectory is the same at every optimisation step.
        """
        xs = x0
        per_step = []
        for groups, order in plan:
            before, after = [], []
            for a, rows in groups:
                xa = xs[rows]
                before.append(xa)
                after.append(xa if a == NOOP else self.kernels[a].set_levels(xa))
            per_step.append(before)
            xs = torch.cat(after)[order]
        return per_step, xs

    def rollout(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        *,
        exact: bool,
        plan: list[tuple[list[tuple[int, torch.Tensor]], torch.Tensor]] | None = None,
        static: tuple[list[list[torch.Tensor]], torch.Tensor] | None = None,
    ) -> _Path:
        """Apply each pair's sequence step by step, dispatching every action to the pairs that use it.

        Gradients flow only through ``z``, the numeric columns some action writes; categories and the
        other columns come from ``static_states`` and meet ``z`` once, before the model.
        """
        plan = plan if plan is not None else self.dispatch(ids)
        per_step, xs_final = static if static is not None else self.static_states(ids, x0, plan)
        z, step_costs, penalty, ok = self._roll(x0[:, self.touched], params, plan, per_step, exact)
        x = xs_final.index_copy(1, self.touched, z) if len(self.touched) else xs_final
        return _Path(x, step_costs, penalty, ok)

    def _roll(
        self,
        z: torch.Tensor,
        params: torch.Tensor,
        plan: list[tuple[list[tuple[int, torch.Tensor]], torch.Tensor]],
        per_step: list[list[torch.Tensor]],
        exact: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The numeric state ``z`` through every step: final ``z``, costs per step, penalty, exact validity.

        A step where every pair takes the same action skips the gather and the reordering.
        """
        batch = len(z)
        step_costs: list[torch.Tensor] = []
        penalty = torch.zeros(batch, dtype=DTYPE)
        ok = torch.ones(batch, dtype=torch.bool)
        for (groups, order), xs_groups in zip(plan, per_step, strict=True):
            j = len(step_costs)
            if len(groups) == 1:  # one action for all pairs, in order
                a = groups[0][0]
                if a == NOOP:
                    step_costs.append(torch.zeros(batch, dtype=DTYPE))
                    continue
                kernel = self.kernels[a]
                z, _, cost, pen, good = kernel.step(z, xs_groups[0], params[:, j, : kernel.n_params], exact)
                step_costs.append(cost)
                penalty = penalty + pen
                ok = ok & good
                continue
            zs, costs, pens, oks = [], [], [], []
            for (a, rows), xa in zip(groups, xs_groups, strict=True):
                za = z[rows]
                if a == NOOP:
                    zs.append(za)
                    costs.append(torch.zeros(len(rows), dtype=DTYPE))
                    pens.append(torch.zeros(len(rows), dtype=DTYPE))
                    oks.append(torch.ones(len(rows), dtype=torch.bool))
                    continue
                kernel = self.kernels[a]
                za, _, cost, pen, good = kernel.step(za, xa, params[rows, j, : kernel.n_params], exact)
                zs.append(za)
                costs.append(cost)
                pens.append(pen)
                oks.append(good)
            z = torch.cat(zs)[order]
            step_costs.append(torch.cat(costs)[order])
            penalty = penalty + torch.cat(pens)[order]
            ok = ok & torch.cat(oks)[order]
        return z, torch.stack(step_costs, dim=1), penalty, ok

    # --------------------------------------------------------------------------- optimisation
    def _boxes(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per pair, step and parameter slot: lower bound, span and initial value (raw units)."""
        slots = max(self.n_params, 1)
        table_lo = torch.zeros(len(self.acts) + 1, slots, dtype=DTYPE)  # the last row is the no-op's
        table_hi = torch.zeros_like(table_lo)
        table_init = torch.zeros_like(table_lo)
        for a, action in enumerate(self.acts):
            for i, param in enumerate(action.params):
                table_lo[a, i], table_hi[a, i] = param.bounds
                table_init[a, i] = float(param.init)  # type: ignore[arg-type]
        index = torch.where(ids == NOOP, len(self.acts), ids)
        lo, hi, init = table_lo[index], table_hi[index], table_init[index]
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return lo, span, init

    def optimise(self, ids: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Adam on parameters scaled to [0, 1] in their boxes; returns the best parameters seen (raw units).

        Best = the cheapest iterate whose exact conditions hold and whose goal margin reaches ``margin``
        (else the cheapest that merely meets the goal). The Adam update is written out on one tensor: a
        cosine-decayed step, clipped to the box after each update. The iterations are pure functions of one
        state tuple: ``_step`` (eager, autograd), or with ``compile=True`` blocks of ``UNROLL`` iterations
        compiled as one program (``torch.func.grad``), the remainder eager.
        """
        cfg = self.config
        lo, span, init = self._boxes(ids)
        if not any(self.acts[a].n_params for a in torch.unique(ids).tolist() if a != NOOP):
            return init
        plan = self.dispatch(ids)
        per_step, xs_final = self.static_states(ids, x0, plan)
        base, weight = (
            fold(self.model, self._split[0], xs_final, self.touched)
            if self._split is not None and len(self.touched)
            else (None, None)
        )
        batch = len(ids)
        u = ((init - lo) / span).clamp(0, 1)
        state: tuple[torch.Tensor, ...] = (
            u,
            torch.zeros_like(u),
            torch.zeros_like(u),
            torch.full((batch,), math.inf, dtype=DTYPE),
            torch.full((batch,), math.inf, dtype=DTYPE),
            u.clone(),
            u.clone(),
            torch.zeros(batch, dtype=torch.bool),
            torch.full((batch,), cfg.c_init, dtype=DTYPE),
        )
        t = torch.arange(cfg.steps, dtype=DTYPE)
        schedule = torch.stack(  # per iteration: step size, Adam's two bias corrections, update c after it
            [
                cfg.lr * (0.05 + 0.95 * 0.5 * (1 + torch.cos(math.pi * t / cfg.steps))),
                1 - 0.9 ** (t + 1),
                1 - 0.999 ** (t + 1),
                ((t + 1) % cfg.check_every == 0).to(DTYPE),
            ],
            dim=1,
        )
        constants = (lo, span, x0[:, self.touched], xs_final, plan, per_step, base, weight)
        done = 0
        with _threads(batch):
            if cfg.compile and cfg.steps >= UNROLL:
                program = self._compiled_steps()
                while done + UNROLL <= cfg.steps:
                    state = program(state, schedule[done : done + UNROLL], *constants)
                    done += UNROLL
            for k in range(done, cfg.steps):
                state = self._step(state, schedule[k], *constants)
        best_cost, best_u, any_u = state[3], state[5], state[6]
        chosen = torch.where(torch.isfinite(best_cost)[:, None, None], best_u, any_u)
        return (lo + chosen * span).detach()

    def _compiled_steps(self) -> Any:
        """``UNROLL`` iterations as one program compiled by ``torch.compile`` (made once per engine; it
        recompiles per program shape, and falls back to eager where compiling fails)."""
        if self._compiled is None:
            self._compiled = compiled(self._steps_functional, "the synthesis step")
        return self._compiled

    def _loss(
        self,
        u: torch.Tensor,
        c: torch.Tensor,
        lo: torch.Tensor,
        span: torch.Tensor,
        z0: torch.Tensor,
        xs_final: torch.Tensor,
        plan: list[tuple[list[tuple[int, torch.Tensor]], torch.Tensor]],
        per_step: list[list[torch.Tensor]],
        base: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The summed relaxed objective at ``u`` and, per pair, (cost, goal margin, exact validity)."""
        z, step_costs, penalty, ok = self._roll(z0, lo + u * span, plan, per_step, exact=False)
        if base is not None and weight is not None:  # the folded network (see inner.fold)
            out = self._split[1](torch.addmm(base, z.to(base.dtype), weight.T))  # type: ignore[index]
        else:
            out = self.model(xs_final.index_copy(1, self.touched, z) if len(self.touched) else xs_final)
        margin = self.goal.margin(out).to(DTYPE)
        cost = step_costs.sum(1)
        loss = cost + penalty + c * torch.relu(self.config.margin - margin)
        return loss.sum(), (cost, margin, ok)

    def _step(
        self, state: tuple[torch.Tensor, ...], schedule: torch.Tensor, *args: Any
    ) -> tuple[torch.Tensor, ...]:
        """One iteration with the gradient from autograd (eager)."""
        u = state[0].detach().requires_grad_(True)
        loss, aux = self._loss(u, state[-1], *args)
        (grad,) = torch.autograd.grad(loss, u)
        with torch.no_grad():
            return self._update(state, grad, aux, schedule)

    def _steps_functional(
        self, state: tuple[torch.Tensor, ...], schedule: torch.Tensor, *args: Any
    ) -> tuple[torch.Tensor, ...]:
        """``len(schedule)`` iterations with gradients from ``torch.func.grad``: pure, for ``torch.compile``."""
        for row in schedule:
            grad, aux = torch.func.grad(self._loss, has_aux=True)(state[0], state[-1], *args)
            state = self._update(state, grad, aux, row)
        return state

    def _update(
        self,
        state: tuple[torch.Tensor, ...],
        grad: torch.Tensor,
        aux: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        schedule: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Record the best iterates, one Adam update, and the adaptive c (``schedule``: step size, bias
        corrections, whether to update c after this iteration)."""
        u, m1, m2, best_cost, best_any, best_u, any_u, met, c = state
        cost, margin, ok = aux
        valid = ok & (margin >= 0)
        strong = valid & (margin >= self.config.margin)
        better = strong & (cost < best_cost)
        best_cost = torch.where(better, cost, best_cost)
        best_u = torch.where(better[:, None, None], u, best_u)
        better_any = valid & (cost < best_any)
        best_any = torch.where(better_any, cost, best_any)
        any_u = torch.where(better_any[:, None, None], u, any_u)
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad * grad
        step = schedule[0] * (m1 / schedule[1]) / ((m2 / schedule[2]).sqrt() + 1e-8)
        u = (u - step).clamp(0, 1)
        met = met | strong
        # every check_every iterations: c shrinks where the goal was met since the last check, else grows
        check = schedule[3] > 0
        c = torch.where(check, torch.where(met, c * 0.7, c * 2.0).clamp(1e-3, 1e6), c)
        met = met & ~check
        return u, m1, m2, best_cost, best_any, best_u, any_u, met, c

    # -------------------------------------------------------------------------- verification
    def round_params(self, ids: torch.Tensor, params: torch.Tensor, mode: str) -> torch.Tensor:
        """Parameters as a person can carry them out: whole numbers or the resolution grid, in their box."""
        out = params.clone()
        for a, action in enumerate(self.acts):
            mask = ids == a
            if not mask.any():
                continue
            for i, param in enumerate(action.params):
                values = out[..., i][mask]
                if mode != "round" and (param.kind == "integer" or param.resolution):
                    step = 1.0 if param.kind == "integer" else float(param.resolution)  # type: ignore[arg-type]
                    values = (torch.floor if mode == "floor" else torch.ceil)(values / step) * step
                out[..., i][mask] = param.round(values)
        return out

    def verify(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Replay each plan exactly on rounded parameters; the cheapest rounding that passes is kept.

        A plan passes only if every step's cost is finite and >= 0: a negative cost would make a longer
        plan look cheaper (a step padded on to lower the total). Plans refused for that alone are noted
        per person (``rows``: each pair's person) in ``refused``, for the record's error text.
        """
        batch = len(ids)
        found = torch.zeros(batch, dtype=torch.bool)
        cost = torch.full((batch,), math.inf, dtype=DTYPE)
        final = params.clone()
        step_costs = torch.zeros(ids.shape, dtype=DTYPE)
        x_final = x0.clone()
        with torch.no_grad():
            for mode in ("round", "floor", "ceil"):
                rounded = self.round_params(ids, params, mode)
                path = self.rollout(ids, x0, rounded, exact=True)
                total = path.step_costs.sum(1)
                passes = path.ok & self.goal.satisfied(self.model(path.x))
                priced = proper_costs(path.step_costs)
                if rows is not None:
                    self._note_refused(ids, rows, path.step_costs, passes & ~priced)
                valid = passes & priced & (total < cost)
                found |= valid
                cost = torch.where(valid, total, cost)
                final[valid] = rounded[valid]
                step_costs[valid] = path.step_costs[valid]
                x_final[valid] = path.x[valid]
        return found, cost, final, step_costs, x_final

    def _note_refused(
        self, ids: torch.Tensor, rows: torch.Tensor, step_costs: torch.Tensor, refused: torch.Tensor
    ) -> None:
        """Remember, per person, the actions whose negative or non-finite cost made a passing plan invalid."""
        for j in torch.nonzero(refused).flatten().tolist():
            notes = self.refused.setdefault(int(rows[j]), {})
            for a, c in zip(ids[j].tolist(), step_costs[j].tolist(), strict=True):
                if a != NOOP and not (math.isfinite(c) and c >= 0):
                    notes.setdefault(self.acts[a].name, c)

    def _not_found_text(self, k: int) -> str:
        text = f"no verified plan of at most {self.config.max_length} actions"
        notes = self.refused.get(k)
        if notes:
            named = ", ".join(f"{name!r} (cost {cost:g})" for name, cost in sorted(notes.items()))
            text += (
                f"; plans that reach the goal were refused because a step's cost is negative or not "
                f"finite: {named}; fix the cost expression of that action so it is >= 0 on every state"
            )
        return text

    # ---------------------------------------------------------------------------------- output
    def _records(self, x: torch.Tensor) -> list[dict[str, Any]]:
        """Raw feature dicts for canonical rows, decoded in one batch."""
        if not len(x):
            return []
        frame = self.schema.decode(x)
        return [
            {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")
        ]

    def _steps(self, plan: dict[str, Any]) -> tuple[Step, ...]:
        steps = []
        for j, a in enumerate(plan["ids"]):
            action = self.acts[a]
            values = {
                p.name: round(float(plan["params"][j, i]))
                if p.kind == "integer"
                else float(plan["params"][j, i])
                for i, p in enumerate(action.params)
            }
            steps.append(Step(action.name, values, float(plan["step_costs"][j]), action.describe(values)))
        return tuple(steps)
