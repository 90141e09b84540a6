"""Budget-constrained inverse classification (Lash, Lin, Street, Robinson; ICDMW 2017), batched.

For each person, lower the model's probability of the unfavourable outcome as far as possible by changing
the *direct* features, at a total cost of at most ``budget``: projected gradient descent in the schema's
scaled space (each direct feature min-max scaled by its bounds), where the projection is the exact
Euclidean projection onto {bounds, allowed directions, per-direction weighted L1 cost <= budget}
(``projections.project_weighted_l1_ball``). *Indirect* features are re-predicted by an indirect model
at every step and the gradient flows through it; *fixed* features never move. Integer and binary direct
features are solved continuously, then rounded exactly: the best of every feasible floor / ceil choice.
All rows (and all budgets of a sweep, which warm-start from the previous budget) run as one tensor program.

Differences from the original code (see the reference notes): the exact projection instead of a
proportional shrink (kept as ``method="shrink"``), an enforced step limit, a sufficient-decrease line
search on the log-odds of the unfavourable outcome (same minimiser as the probability, better scaled),
zero costs rejected up front rather than dividing by zero, and budgets warm-started.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch

from actionable.errors import ConfigError, ModelError
from actionable.goals import Goal, resolve_goal
from actionable.inverse_checks import check_direct, check_protected, on_schema
from actionable.inverse_config import (
    CHUNK,
    DEFAULT_CONFIG,
    RULES,
    TOLERANCE,
    Ambiguous,
    InverseConfig,
    Projection,
)
from actionable.inverse_lattice import WholeLattice
from actionable.inverse_polish import Finisher
from actionable.inverse_records import (
    InverseRecords,
    check_budgets,
    plot_curves,
    readable,
    sweep_curve,
)
from actionable.inverse_trees import LeafInversion
from actionable.models import TorchModel
from actionable.models.trees import tree_layer
from actionable.projections import project_weighted_l1_ball
from actionable.results import RecourseBatch
from actionable.rows import read_rows
from actionable.schema import DTYPE, Schema, as_rows
from actionable.validation import FLAG

Chunk = tuple[torch.Tensor, int, list[dict[str, Any]] | None]  # a chunk's changes, iterations, certificates

__all__ = [
    "CHUNK",
    "RULES",
    "TOLERANCE",
    "Ambiguous",
    "InverseConfig",
    "InverseProblem",
    "Projection",
    "invert",
    "invert_sweep",
    "on_schema",
    "plot_curves",
    "readable",
    "sweep_curve",
]


def invert(
    model: Any,
    X: pd.DataFrame,
    schema: Schema,
    *,
    budget: float,
    indirect: Any = None,
    goal: Any = None,
    steps: int = 300,
    method: Projection = "exact",
    rounding: bool = True,
    ambiguous: Ambiguous = "gradient",
    allow_protected: bool = False,
    time_limit: float = 30.0,
) -> RecourseBatch:
    """Lower each row's probability of the unfavourable outcome within ``budget`` (Lash et al.).

    ``model``: a classifier (anything ``as_model`` accepts) on ``schema``; ``X``: raw rows; ``budget``:
    the most each person may spend, in the schema's cost units (cost_up / cost_down per raw unit);
    ``indirect``: a regression model whose outputs are the schema's indirect features. With an indirect
    model, ``p_before`` and ``p_after`` both use its predictions for the indirect features (as in the
    paper), and ``x_after`` holds them rounded and clipped to each feature's kind and bounds (a row the
    schema accepts; ``p_before`` / ``p_after`` and the status are the model's on those rows), while
    ``Recourse.indirect_raw`` keeps the indirect model's raw predictions after the change. Rows are solved
    in chunks of ``CHUNK`` (memory flat per row). Status: ``already_favourable`` when the goal holds before,
    ``found`` when it holds after, ``not_found`` otherwise; every row gets its best within-budget change.
    A protected feature (``protected = true``) that is direct (or indirect, with an indirect model) would be
    changed, so it is a ``SpecError`` (make it fixed) unless ``allow_protected=True`` (only to reproduce a
    study that did). On a tree model (piecewise constant: no gradient) each row is solved exactly by a
    mixed-integer program over the trees' leaves (``inverse_trees``): the least risk, then the least cost
    of it, both directions of every feature, ``time_limit`` seconds per row and budget; its record's
    ``certificate`` says whether the result is proved optimal. ``steps``, ``method`` and ``ambiguous``
    are the gradient solver's.

    Three students with a bad grade, a budget of 5:

    >>> from actionable import datasets
    >>> student = datasets.load("student")
    >>> people = student.X_test[student.y_test == 1].head(3)
    >>> result = invert(student.models["regular"], people, student.schema, budget=5)
    >>> len(result), all(r.cost <= 5 + 1e-9 and r.p_after >= r.p_before for r in result)
    (3, True)
    """
    return invert_sweep(
        model,
        X,
        schema,
        budgets=[budget],
        indirect=indirect,
        goal=goal,
        steps=steps,
        method=method,
        rounding=rounding,
        ambiguous=ambiguous,
        allow_protected=allow_protected,
        time_limit=time_limit,
    )[_budget_key(budget)]


def invert_sweep(
    model: Any,
    X: pd.DataFrame,
    schema: Schema,
    *,
    budgets: Sequence[float],
    indirect: Any = None,
    goal: Any = None,
    steps: int = 300,
    method: Projection = "exact",
    rounding: bool = True,
    ambiguous: Ambiguous = "gradient",
    warm_start: bool = True,
    allow_protected: bool = False,
    time_limit: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[float, RecourseBatch]:
    """``invert`` at several budgets (ascending), each warm-started from the previous: budget -> batch.
    ``progress`` hears ``(rows done, rows)`` after each chunk of rows (all budgets solved)."""
    config = InverseConfig(
        steps=steps,
        method=method,
        rounding=rounding,
        ambiguous=ambiguous,
        warm_start=warm_start,
        time_limit=time_limit,
    )
    problem = InverseProblem(
        model, schema, indirect=indirect, goal=goal, config=config, allow_protected=allow_protected
    )
    return problem.sweep(as_rows(X), budgets, progress)


def _budget_key(budget: float) -> float:
    return float(budget)


class InverseProblem(InverseRecords, WholeLattice):
    """A model, schema and indirect model checked once; ``sweep`` solves a batch of rows at many budgets."""

    def __init__(
        self,
        model: Any,
        schema: Schema,
        *,
        indirect: Any = None,
        goal: Any = None,
        config: InverseConfig = DEFAULT_CONFIG,
        allow_protected: bool = False,
    ) -> None:
        if not isinstance(schema, Schema):
            raise ConfigError(f"invert: schema must be an actionable Schema; got {type(schema).__name__}.")
        allowed = FLAG.check("invert", "allow_protected", allow_protected)
        check_protected(schema, allowed, predicted=indirect is not None)
        self.schema, self.config = schema, config
        self.model: TorchModel = on_schema(model, schema)
        if self.model.task != "classification":
            raise ConfigError("invert: the model must be a classifier (it lowers a class probability).")
        self.goal: Goal = resolve_goal(self.model, goal)
        self.direct = [f for f in schema.features if f.is_direct]
        if not self.direct:
            raise ConfigError("invert: the schema has no direct features; mark some mutability = 'direct'.")
        for f in self.direct:
            check_direct(f)
        self.cols = torch.as_tensor([schema.slice(f.name).start for f in self.direct])
        lo = torch.tensor([f.bounds[0] for f in self.direct], dtype=DTYPE)
        hi = torch.tensor([f.bounds[1] for f in self.direct], dtype=DTYPE)
        self.lo, self.hi = lo, hi
        self.span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        up = torch.tensor([f.cost_up or 0.0 for f in self.direct], dtype=DTYPE)
        down = torch.tensor([f.cost_down or 0.0 for f in self.direct], dtype=DTYPE)
        self.cost_up, self.cost_down = up, down  # per raw unit
        self.unit_up, self.unit_down = up * self.span, down * self.span  # per scaled unit
        self.may_up = torch.tensor([f.may_increase for f in self.direct])
        self.may_down = torch.tensor([f.may_decrease for f in self.direct])
        self.whole = torch.tensor([f.is_whole for f in self.direct])
        self.indirect = self._indirect_model(indirect)
        self.leaves: LeafInversion | None = None
        if tree_layer(self.model.network) is not None:
            self.leaves = LeafInversion(
                self.model,
                self.goal,
                self.direct,
                self.cols,
                self.indirect,
                rounding=config.rounding,
                time_limit=config.time_limit,
            )

    # ------------------------------------------------------------------------------ checks
    def _indirect_model(self, indirect: Any) -> tuple[TorchModel, torch.Tensor] | None:
        names = [f.name for f in self.schema.features if f.is_indirect]
        if indirect is None:
            return None
        if not names:
            raise ModelError("invert: an indirect model was given but the schema has no indirect features.")
        g = on_schema(indirect, self.schema, task="regression", outputs=names)
        if g.task != "regression" or sorted(g.outputs) != sorted(names) or len(g.outputs) != len(names):
            raise ModelError(
                f"invert: the indirect model predicts {list(g.outputs or g.classes)}, but the schema's "
                f"indirect features are {names}; it must output exactly those (a regression model)."
            )
        bad = [n for n in names if self.schema[n].is_category]
        if bad:
            raise ConfigError(f"invert: indirect category features {bad} are not supported; use binary.")
        return g, torch.as_tensor([self.schema.slice(n).start for n in g.outputs])

    # ---------------------------------------------------------------------------- the model
    def state(self, x0: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Canonical rows with the direct features moved by ``delta`` (scaled units), indirect re-predicted."""
        x = x0.index_copy(-1, self.cols, x0[..., self.cols] + delta * self.span)
        if self.indirect is not None:
            g, cols = self.indirect
            x = x.index_copy(-1, cols, g(x))
        return x

    def objective(self, x: torch.Tensor) -> torch.Tensor:
        """Log-odds of the unfavourable outcome (monotone in its probability, so the same minimiser)."""
        out: torch.Tensor = self.model(x)
        i = self.goal.index
        others = torch.cat([out[..., :i], out[..., i + 1 :]], dim=-1)
        return torch.logsumexp(others, dim=-1) - out[..., i]

    def value_and_grad(self, x0: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The objective per row at the change ``delta`` of the direct features, and its gradient in them."""
        with torch.enable_grad():
            d = delta.detach().requires_grad_(True)
            f = self.objective(self.state(x0, d))
            (grad,) = torch.autograd.grad(f.sum(), d)
        return f.detach(), grad

    def _project(
        self, v: torch.Tensor, budget: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
    ) -> Any:
        return project_weighted_l1_ball(
            v, budget, self.unit_up, self.unit_down, lower, upper, method=self.config.method
        )

    # ------------------------------------------------------------------------------ solving
    def bounds(self, x0: torch.Tensor, grad0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the box on the scaled change: room to the bounds in each allowed direction (with
        ``ambiguous="gradient"``, a two-way feature only the way ``grad0`` descends; ``None``: both)."""
        x = x0[:, self.cols]
        upper = torch.where(self.may_up, (self.hi - x) / self.span, torch.zeros_like(x)).clamp_min(0)
        lower = torch.where(self.may_down, (self.lo - x) / self.span, torch.zeros_like(x)).clamp_max(0)
        if self.config.ambiguous == "gradient" and grad0 is not None:
            both = self.may_up & self.may_down
            upper = torch.where(both & (grad0 >= 0), torch.zeros_like(upper), upper)
            lower = torch.where(both & (grad0 <= 0), torch.zeros_like(lower), lower)
        return lower, upper

    def descend(
        self,
        x0: torch.Tensor,
        delta: torch.Tensor,
        budget: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Projected gradient descent with a per-row sufficient-decrease step size; rows stop on their own."""
        f, grad = self.value_and_grad(x0, delta)
        step = 0.25 / grad.abs().amax(-1).clamp_min(1e-12)
        active = torch.ones(len(x0), dtype=torch.bool)
        iterations = 0
        for iterations in range(1, self.config.steps + 1):  # noqa: B007
            rows = torch.nonzero(active).flatten()
            cand = self._project(
                delta[rows] - step[rows, None] * grad[rows], budget[rows], lower[rows], upper[rows]
            )
            f_c, g_c = self.value_and_grad(x0[rows], cand)
            move = cand - delta[rows]
            ok = f_c <= f[rows] + 1e-4 * (grad[rows] * move).sum(-1)
            small = move.abs().amax(-1) <= self.config.tol
            take = rows[ok]
            delta[take], f[take], grad[take] = cand[ok], f_c[ok], g_c[ok]
            step[rows] = torch.where(ok, step[rows] * 1.5, step[rows] / 2)
            active[rows[small | (step[rows] < 1e-14)]] = False
            if not bool(active.any()):
                break
        return delta, f, iterations

    def cost(self, raw: torch.Tensor) -> torch.Tensor:
        """Cost of raw changes of the direct features: sum of cost_up * rise + cost_down * fall."""
        return (self.cost_up * raw.clamp_min(0) + self.cost_down * (-raw).clamp_min(0)).sum(-1)

    def sweep(
        self, X: pd.DataFrame, budgets: Sequence[float], progress: Callable[[int, int], None] | None = None
    ) -> dict[float, RecourseBatch]:
        """Solve every row of ``X`` at every budget (ascending, warm-started): budget -> ``RecourseBatch``;
        ``progress(rows done, rows)`` after each chunk."""
        started = time.perf_counter()
        levels = check_budgets(budgets)
        rows = read_rows(self.schema, X, "invert")
        x0 = rows.x
        solutions: dict[float, Chunk] = {}
        parts: list[dict[float, Chunk]] = []
        skipped = rows.n - len(x0)  # rows that do not fit the schema: errors, nothing to solve
        for i in range(0, len(x0), CHUNK):
            parts.append(self._solve(x0[i : i + CHUNK], levels))
            if progress is not None:
                progress(skipped + min(i + CHUNK, len(x0)), rows.n)
        if progress is not None and not parts:
            progress(rows.n, rows.n)
        for level in levels if parts else []:
            proofs = [part[level][2] for part in parts]
            solutions[level] = (
                torch.cat([part[level][0] for part in parts]),
                max(part[level][1] for part in parts),
                None if None in proofs else [c for p in proofs for c in p or []],
            )
        elapsed = (time.perf_counter() - started) / max(rows.n, 1) / len(levels)
        return {level: self._batch(rows, solutions.get(level), level, elapsed) for level in levels}

    def _solve(self, x0: torch.Tensor, levels: list[float]) -> dict[float, Chunk]:
        """One chunk of rows at every budget: budget -> (change in scaled units, iterations used, the rows'
        certificates or None).

        Rows are independent, so chunks give the answers of one batch while the memory of the lattice
        search (rows x starts x moves x features) stays bounded by the chunk, not by the table.
        """
        if self.leaves is not None:
            return self._solve_leaves(self.leaves, x0, levels)
        n, k = len(x0), len(self.direct)
        zero = torch.zeros(n, k, dtype=DTYPE)
        _, grad0 = self.value_and_grad(x0, zero)
        lower, upper = self.bounds(x0, grad0)
        continuous = self._continuous(x0, lower, upper, levels)
        kept = previous = zero
        out: dict[float, Chunk] = {}
        for level, (delta, used) in zip(levels, continuous, strict=True):
            final = delta
            if self.config.rounding and bool(self.whole.any()):
                budget = torch.full((n,), level, dtype=DTYPE)
                final, value = self.round_whole(x0, delta, budget, [zero, kept])
                final = self.polish_whole(x0, final, value, budget, lower, upper)
                kept = final
            if self.indirect is not None:  # judged on the rows reported: indirect features settled
                final = self._better_settled(x0, final, previous)
            previous = final
            out[level] = (final, used, None)
        return out

    def _solve_leaves(
        self, leaves: LeafInversion, x0: torch.Tensor, levels: list[float]
    ) -> dict[float, Chunk]:
        """A tree model's chunk, row by row by mixed-integer programs, finished exactly (``inverse_polish``)."""
        lower, upper = self.bounds(x0, None)
        solved = Finisher(self, leaves).solve(x0, lower, upper, levels)
        return {level: (solved[level].delta, 0, solved[level].certificates) for level in levels}

    def _better_settled(self, x0: torch.Tensor, delta: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
        """Per row, ``delta`` or ``fallback`` (no change, or the previous budget's answer: both within this
        budget), whichever is better once the indirect predictions are rounded and clipped (``settle``):
        the optimisation sees the raw predictions, the record the settled row, so a larger budget must
        never report a worse row."""
        with torch.no_grad():
            f = self.objective(self.settle(self.state(x0, delta)))
            g = self.objective(self.settle(self.state(x0, fallback)))
        return torch.where((g < f)[:, None], fallback, delta)

    def _continuous(
        self, x0: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: list[float]
    ) -> list[tuple[torch.Tensor, int]]:
        """The continuous solution at each budget: warm-started in turn, or all budgets as one batch."""
        n, k = len(x0), len(self.direct)
        if self.config.warm_start:
            delta, out = torch.zeros(n, k, dtype=DTYPE), []
            for level in levels:
                budget = torch.full((n,), level, dtype=DTYPE)
                delta, _, used = self.descend(x0, delta.clone(), budget, lower, upper)
                out.append((delta, used))
            return out
        m = len(levels)
        budget = torch.tensor(levels, dtype=DTYPE).repeat_interleave(n)
        stacked, _, used = self.descend(
            x0.repeat(m, 1),
            torch.zeros(n * m, k, dtype=DTYPE),
            budget,
            lower.repeat(m, 1),
            upper.repeat(m, 1),
        )
        return [(part, used) for part in torch.split(stacked, n)]
