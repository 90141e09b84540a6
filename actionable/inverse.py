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

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from actionable._version import __version__
from actionable.errors import ConfigError, DataError, ModelError
from actionable.goals import Goal, resolve_goal
from actionable.models import TorchModel, as_model
from actionable.projections import project_weighted_l1_ball
from actionable.results import Recourse, RecourseBatch, Status, Step
from actionable.schema import DTYPE, Schema, as_rows
from actionable.validation import FLAG, Rule, check, choice, real, whole

Projection = Literal["exact", "shrink"]
Ambiguous = Literal["gradient", "free"]
TOLERANCE = 1e-9  # relative slack on "cost <= budget" (the projection is exact to rounding)


@dataclass(frozen=True)
class InverseConfig:
    """Settings of the solver (stored as given, validated here).

    ``steps``: most gradient steps per budget; ``method``: "exact" projection or Lash's "shrink";
    ``rounding``: make integer / binary direct features whole (False keeps Lash's continuous relaxation);
    ``ambiguous``: a feature that may move either way is fixed to the direction its initial gradient
    favours ("gradient", as in Lash et al.) or left free ("free"); ``warm_start``: a sweep starts each
    budget from the previous budget's solution; ``tol``: a row stops when its step moves less than this
    (scaled units); ``max_round``: most fractional features whose floor / ceil choices are enumerated.
    """

    steps: int = 300
    method: Projection = "exact"
    rounding: bool = True
    ambiguous: Ambiguous = "gradient"
    warm_start: bool = True
    tol: float = 1e-9
    max_round: int = 10

    def __post_init__(self) -> None:
        for name, value in check("invert", RULES, asdict(self)).items():
            object.__setattr__(self, name, value)  # numpy and whole-float values stored as plain ints


RULES: dict[str, Rule] = {
    "steps": whole(1, 10**6),
    "method": choice(("exact", "shrink")),
    "rounding": FLAG,
    "ambiguous": choice(("gradient", "free")),
    "warm_start": FLAG,
    "tol": real(0, open_low=True),
    "max_round": whole(0, 16),
}
CHUNK = 2048  # rows solved together: memory stays flat per row (the lattice search holds rows x moves x k)


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
) -> dict[float, RecourseBatch]:
    """``invert`` at several budgets (ascending), each warm-started from the previous: budget -> batch."""
    config = InverseConfig(
        steps=steps, method=method, rounding=rounding, ambiguous=ambiguous, warm_start=warm_start
    )
    problem = InverseProblem(model, schema, indirect=indirect, goal=goal, config=config)
    return problem.sweep(as_rows(X), budgets)


def on_schema(obj: Any, schema: Schema, **options: Any) -> TorchModel:
    """``as_model``, also accepting a model built on a schema with the same encoding (its hash): bounds,
    mutability and costs may be edited for inverse classification without rebuilding the model."""
    if isinstance(obj, TorchModel) and obj.schema != schema and obj.schema.hash == schema.hash:
        return obj
    return as_model(obj, schema, **options)


def _budget_key(budget: float) -> float:
    return float(budget)


class InverseProblem:
    """A model, schema and indirect model checked once; ``sweep`` solves a batch of rows at many budgets."""

    def __init__(
        self,
        model: Any,
        schema: Schema,
        *,
        indirect: Any = None,
        goal: Any = None,
        config: InverseConfig = InverseConfig(),
    ) -> None:
        if not isinstance(schema, Schema):
            raise ConfigError(f"invert: schema must be an actionable Schema; got {type(schema).__name__}.")
        self.schema, self.config = schema, config
        self.model: TorchModel = on_schema(model, schema)
        if self.model.task != "classification":
            raise ConfigError("invert: the model must be a classifier (it lowers a class probability).")
        self.goal: Goal = resolve_goal(self.model, goal)
        self.direct = [f for f in schema.features if f.mutability == "direct"]
        if not self.direct:
            raise ConfigError("invert: the schema has no direct features; mark some mutability = 'direct'.")
        for f in self.direct:
            self._check_direct(f)
        self.cols = torch.as_tensor([schema.slice(f.name).start for f in self.direct])
        lo = torch.tensor([f.bounds[0] for f in self.direct], dtype=DTYPE)
        hi = torch.tensor([f.bounds[1] for f in self.direct], dtype=DTYPE)
        self.lo, self.hi = lo, hi
        self.span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        up = torch.tensor([f.cost_up or 0.0 for f in self.direct], dtype=DTYPE)
        down = torch.tensor([f.cost_down or 0.0 for f in self.direct], dtype=DTYPE)
        self.cost_up, self.cost_down = up, down  # per raw unit
        self.unit_up, self.unit_down = up * self.span, down * self.span  # per scaled unit
        self.may_up = torch.tensor([f.direction in ("increase", "both") for f in self.direct])
        self.may_down = torch.tensor([f.direction in ("decrease", "both") for f in self.direct])
        self.whole = torch.tensor([f.kind in ("integer", "binary") for f in self.direct])
        self.indirect = self._indirect_model(indirect)

    # ------------------------------------------------------------------------------ checks
    def _check_direct(self, f: Any) -> None:
        where = f"invert: direct feature {f.name!r}"
        if f.kind == "category":
            raise ConfigError(
                f"{where} is a category; inverse classification moves numbers. Declare its levels as "
                "binary features or make it fixed."
            )
        if not all(map(math.isfinite, f.bounds)):
            raise ConfigError(f"{where} has infinite bounds {list(f.bounds)}; give finite 'bounds'.")
        for allowed, key in (("increase", "cost_up"), ("decrease", "cost_down")):
            cost = getattr(f, key)
            if f.direction in (allowed, "both") and (cost is None or cost <= 0):
                raise ConfigError(
                    f"{where} may {allowed} but {key} = {cost!r}; give {key} > 0 (cost per raw unit), "
                    f"or set direction to forbid it."
                )

    def _indirect_model(self, indirect: Any) -> tuple[TorchModel, torch.Tensor] | None:
        names = [f.name for f in self.schema.features if f.mutability == "indirect"]
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
        bad = [n for n in names if self.schema[n].kind == "category"]
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
        out = self.model(x)
        i = self.goal.index
        others = torch.cat([out[..., :i], out[..., i + 1 :]], dim=-1)
        return torch.logsumexp(others, dim=-1) - out[..., i]

    def _value_and_grad(self, x0: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
    def bounds(self, x0: torch.Tensor, grad0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the box on the scaled change: room to the bounds in each allowed direction."""
        x = x0[:, self.cols]
        upper = torch.where(self.may_up, (self.hi - x) / self.span, torch.zeros_like(x)).clamp_min(0)
        lower = torch.where(self.may_down, (self.lo - x) / self.span, torch.zeros_like(x)).clamp_max(0)
        if self.config.ambiguous == "gradient":
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
        f, grad = self._value_and_grad(x0, delta)
        step = 0.25 / grad.abs().amax(-1).clamp_min(1e-12)
        active = torch.ones(len(x0), dtype=torch.bool)
        iterations = 0
        for iterations in range(1, self.config.steps + 1):  # noqa: B007
            rows = torch.nonzero(active).flatten()
            cand = self._project(
                delta[rows] - step[rows, None] * grad[rows], budget[rows], lower[rows], upper[rows]
            )
            f_c, g_c = self._value_and_grad(x0[rows], cand)
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

    def round_whole(
        self, x0: torch.Tensor, delta: torch.Tensor, budget: torch.Tensor, fallback: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The best feasible rounding of the integer / binary changes, or a fallback (all feasible).

        Every fractional change may go toward the start (never costlier) or one unit further (if within
        bounds and budget); all such choices of up to ``max_round`` features (those farthest from whole)
        are enumerated at once, the rest go toward the start.
        """
        n, k = delta.shape
        raw = delta * self.span
        whole = self.whole.expand(n, k)
        toward = torch.where(whole, torch.trunc(raw + torch.sign(raw) * 1e-9), raw)
        frac = torch.where(whole, (raw - toward).abs(), torch.zeros_like(raw))
        frac = torch.where(frac > 1e-9, frac, torch.zeros_like(frac))
        picks = min(int((frac > 0).sum(-1).max()) if n else 0, self.config.max_round)
        order = torch.argsort(torch.minimum(frac, 1 - frac), dim=-1, descending=True)[:, :picks]
        choices = torch.tensor(list(itertools.product((0.0, 1.0), repeat=picks)), dtype=DTYPE)
        choices = choices.reshape(2**picks, picks)
        away = torch.zeros(n, len(choices), k, dtype=DTYPE)
        if picks:
            chosen = (choices[None, :, :] * (frac.gather(-1, order) > 0)[:, None, :].to(DTYPE)).to(DTYPE)
            away.scatter_(-1, order[:, None, :].expand(-1, len(choices), -1), chosen)
        cand_raw = toward[:, None, :] + away * torch.sign(raw)[:, None, :]
        x_start = x0[:, self.cols][:, None, :]
        inside = ((x_start + cand_raw >= self.lo - 1e-9) & (x_start + cand_raw <= self.hi + 1e-9)).all(-1)
        cand = torch.cat([cand_raw / self.span, *(f[:, None, :] for f in fallback)], dim=1)
        inside = torch.cat([inside, torch.ones(n, len(fallback), dtype=torch.bool)], dim=1)
        spent = self.cost(cand * self.span)
        ok = inside & (spent <= budget[:, None] * (1 + TOLERANCE) + 1e-12)
        with torch.no_grad():
            m = cand.shape[1]
            f = self.objective(self.settle(self.state(x0.repeat_interleave(m, 0), cand.reshape(n * m, k))))
            f = f.reshape(n, m)
        f = torch.where(ok, f, torch.inf)
        best = f.argmin(-1)
        return cand[torch.arange(n), best], f[torch.arange(n), best]

    def polish_whole(
        self,
        x0: torch.Tensor,
        delta: torch.Tensor,
        value: torch.Tensor,
        budget: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
    ) -> torch.Tensor:
        """Greedy local search on the whole-number lattice, from the rounded solution and from each
        "whole budget on one feature" corner: move one or two integer / binary features (a trade moves
        one by a unit and another by what that unit's price buys) while the objective falls and bounds,
        directions and budget hold; on small problems the best end point then also tries three-feature
        moves. Rows stay independent, so a batch gives the same answers as one row at a time."""
        n, k = delta.shape
        unit = torch.where(self.whole, 1 / self.span, torch.zeros_like(self.span))
        singles = torch.cat([torch.diag(unit), -torch.diag(unit)])[torch.cat([self.whole, self.whole])]
        if not len(singles) or not n:
            return delta
        trades = self._trades()
        moves = torch.cat([singles, trades])
        starts = torch.cat([delta[:, None, :], self._corners(budget, lower, upper)], dim=1)
        s = starts.shape[1]
        flat = starts.reshape(n * s, k)
        with torch.no_grad():
            values = self.objective(self.settle(self.state(x0.repeat_interleave(s, 0), flat)))
        values = torch.where(
            self._feasible(
                flat,
                budget.repeat_interleave(s),
                lower.repeat_interleave(s, 0),
                upper.repeat_interleave(s, 0),
            ),
            values,
            torch.inf,
        )
        values[::s] = torch.minimum(values[::s], value)  # the rounded solution's own value
        ends, values = self._descend_lattice(
            x0.repeat_interleave(s, 0),
            flat,
            values,
            budget.repeat_interleave(s),
            lower.repeat_interleave(s, 0),
            upper.repeat_interleave(s, 0),
            moves,
        )
        pick = values.reshape(n, s).argmin(-1)
        best = ends.reshape(n, s, k)[torch.arange(n), pick]
        if int(self.whole.sum()) <= 8:  # small problems: also a trade plus a unit move (three features)
            triples = (trades[:, None, :] + singles[None, :, :]).reshape(-1, k)
            triples = torch.unique(triples[(triples != 0).sum(-1) == 3], dim=0)
            value = values.reshape(n, s)[torch.arange(n), pick]
            best, _ = self._descend_lattice(
                x0, best, value, budget, lower, upper, torch.cat([moves, triples])
            )
        return best

    def _corners(self, budget: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """Per row, one start per whole feature and direction: as far as the budget and bounds allow,
        rounded toward no change (scaled units, shape n x starts x k)."""
        n, k = lower.shape
        starts = []
        for j in range(k):
            if not bool(self.whole[j]):
                continue
            for side, price, room in (
                (1, self.unit_up[j], upper[:, j]),
                (-1, self.unit_down[j], lower[:, j]),
            ):
                reach = budget / price if float(price) > 0 else torch.full_like(budget, torch.inf)
                amount = torch.minimum(room.abs(), reach) * self.span[j]
                start = torch.zeros(n, k, dtype=DTYPE)
                start[:, j] = side * torch.floor(amount + 1e-9) / self.span[j]
                if bool(start.any()):  # a forbidden direction gives no start
                    starts.append(start)
        return torch.stack(starts, dim=1) if starts else torch.zeros(n, 0, k, dtype=DTYPE)

    def _feasible(
        self, delta: torch.Tensor, budget: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
    ) -> torch.Tensor:
        slack = 1e-9 / self.span
        inside = ((delta >= lower - slack) & (delta <= upper + slack)).all(-1)
        return inside & (self.cost(delta * self.span) <= budget * (1 + TOLERANCE) + 1e-12)

    def _descend_lattice(
        self,
        x0: torch.Tensor,
        delta: torch.Tensor,
        value: torch.Tensor,
        budget: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
        moves: torch.Tensor,
        rounds: int = 50,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Best-improvement moves until no move helps; only rows that moved last round are re-examined."""
        delta, value = delta.clone(), value.clone()
        active = torch.arange(len(delta))
        m = len(moves)
        for _ in range(rounds):
            if not len(active):
                break
            cand = delta[active, None, :] + moves[None, :, :]
            ok = self._feasible(cand, budget[active, None], lower[active, None, :], upper[active, None, :])
            f = torch.full((len(active), m), torch.inf, dtype=DTYPE)
            row, move = torch.nonzero(ok, as_tuple=True)  # evaluate the feasible moves only
            with torch.no_grad():
                f[row, move] = self.objective(self.settle(self.state(x0[active[row]], cand[row, move])))
            best, pick = f.min(-1)
            better = best < value[active] - 1e-12
            rows = active[better]
            delta[rows] = cand[better, pick[better]]
            value[rows] = best[better]
            active = rows
        return delta, value

    def _trades(self) -> torch.Tensor:
        """Pair moves on the whole-number lattice (scaled units): one feature by one unit, another by one
        unit or by the units its price buys (so a costly step can be traded for many cheap ones)."""
        whole = [j for j in range(len(self.direct)) if bool(self.whole[j])]
        if len(whole) > 12:  # keep the neighbourhood small: plain unit pairs only
            whole = whole[:12]
        price = {1: self.cost_up.tolist(), -1: self.cost_down.tolist()}
        span = self.span.tolist()
        rows: set[tuple[float, ...]] = set()
        for i, j in itertools.permutations(whole, 2):
            for si, sj in itertools.product((1, -1), repeat=2):
                ci, cj = price[si][i], price[sj][j]  # per raw unit: one unit of i buys ci / cj of j
                ratio = ci / cj if cj > 0 else 1.0
                for units in {1, max(1, math.floor(ratio)), max(1, math.ceil(ratio))}:
                    move = [0.0] * len(self.direct)
                    move[i], move[j] = si / span[i], sj * units / span[j]
                    rows.add(tuple(move))
        if not rows:
            return torch.zeros(0, len(self.direct), dtype=DTYPE)
        return torch.tensor(sorted(rows), dtype=DTYPE)

    def cost(self, raw: torch.Tensor) -> torch.Tensor:
        """Cost of raw changes of the direct features: sum of cost_up * rise + cost_down * fall."""
        return (self.cost_up * raw.clamp_min(0) + self.cost_down * (-raw).clamp_min(0)).sum(-1)

    def sweep(self, X: pd.DataFrame, budgets: Sequence[float]) -> dict[float, RecourseBatch]:
        """Solve every row of ``X`` at every budget (ascending, warm-started): budget -> ``RecourseBatch``."""
        started = time.perf_counter()
        levels = _check_budgets(budgets)
        if not isinstance(X, pd.DataFrame):
            raise DataError(f"invert: X must be a pandas DataFrame of raw rows; got {type(X).__name__}.")
        errors = self.schema.row_errors(X)
        good = [i for i in range(len(X)) if i not in errors]
        x0 = self.schema.encode(X.iloc[good]) if good else torch.zeros(0, self.schema.width, dtype=DTYPE)
        solutions: dict[float, tuple[torch.Tensor, int]] = {}
        parts = [self._solve(x0[i : i + CHUNK], levels) for i in range(0, len(x0), CHUNK)]
        for level in levels if parts else []:
            solutions[level] = (
                torch.cat([part[level][0] for part in parts]),
                max(part[level][1] for part in parts),
            )
        elapsed = (time.perf_counter() - started) / max(len(X), 1) / len(levels)
        return {
            level: self._batch(X, errors, good, x0, solutions.get(level), level, elapsed) for level in levels
        }

    def _solve(self, x0: torch.Tensor, levels: list[float]) -> dict[float, tuple[torch.Tensor, int]]:
        """One chunk of rows at every budget: budget -> (change in scaled units, iterations used).

        Rows are independent, so chunks give the answers of one batch while the memory of the lattice
        search (rows x starts x moves x features) stays bounded by the chunk, not by the table.
        """
        n, k = len(x0), len(self.direct)
        zero = torch.zeros(n, k, dtype=DTYPE)
        _, grad0 = self._value_and_grad(x0, zero)
        lower, upper = self.bounds(x0, grad0)
        continuous = self._continuous(x0, lower, upper, levels)
        kept = previous = zero
        out = {}
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
            out[level] = (final, used)
        return out

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
        return [(part, used) for part in stacked.split(n)]

    # ------------------------------------------------------------------------------- output
    def _batch(
        self,
        X: pd.DataFrame,
        errors: dict[int, str],
        good: list[int],
        x0: torch.Tensor,
        solution: tuple[torch.Tensor, int] | None,
        budget: float,
        seconds: float,
    ) -> RecourseBatch:
        provenance = {
            "method": "lash2017",
            "budget": budget,
            "config": asdict(self.config),
            "goal": self.goal.describe(),
            "indirect": self.indirect is not None,
            "iterations": solution[1] if solution is not None else 0,
            "version": __version__,
        }
        common: dict[str, Any] = {"seconds": seconds, "provenance": provenance}
        items: list[Recourse] = []
        if solution is not None:
            delta = solution[0]
            zero = torch.zeros_like(delta)
            with torch.no_grad():
                raw_end = self.state(x0, delta)
                start, end = self.settle(self.state(x0, zero)), self.settle(raw_end)
                out0, out1 = self.model(start), self.model(end)  # on the rows reported
                p0, p1 = self.goal.probability(out0), self.goal.probability(out1)
                ok0, ok1 = self.goal.satisfied(out0), self.goal.satisfied(out1)
            raw = (end[:, self.cols] - x0[:, self.cols]).numpy()
            before = _records(self.schema, X.iloc[good])
            after = self._after(end, before)
            predicted = self._indirect_raw(raw_end)
        position = {row: i for i, row in enumerate(good)}
        for row in range(len(X)):
            if row in errors:
                items.append(Recourse(row=row, status="error", error=errors[row], **common))
                continue
            i = position[row]
            steps = self._steps(raw[i], before[i])
            status: Status = (
                "already_favourable" if bool(ok0[i]) else ("found" if bool(ok1[i]) else "not_found")
            )
            items.append(
                Recourse(
                    row=row,
                    status=status,
                    steps=steps,
                    cost=float(sum(s.cost for s in steps)),
                    x_before=before[i],
                    x_after=after[i],
                    p_before=float(p0[i]),
                    p_after=float(p1[i]),
                    indirect_raw=predicted[i] if predicted else {},
                    **common,
                )
            )
        return RecourseBatch(tuple(items))

    def settle(self, x: torch.Tensor) -> torch.Tensor:
        """Rows with the indirect model's predictions made valid: rounded to whole numbers for integer and
        binary features and clipped to each feature's bounds, as the schema accepts them (the model's
        raw outputs go to ``Recourse.indirect_raw``)."""
        if self.indirect is None:
            return x
        g, cols = self.indirect
        out = x.clone()
        for name, col in zip(g.outputs, cols.tolist(), strict=True):
            f = self.schema[name]
            value = torch.round(out[:, col]) if f.kind in ("integer", "binary") else out[:, col]
            out[:, col] = value.clamp(f.bounds[0], f.bounds[1])
        return out

    def _indirect_raw(self, x: torch.Tensor) -> list[dict[str, float]]:
        """Per row, the indirect model's raw prediction of each indirect feature (empty without one)."""
        if self.indirect is None:
            return []
        g, cols = self.indirect
        values = x[:, cols].tolist()
        return [dict(zip(map(str, g.outputs), row, strict=True)) for row in values]

    def _after(self, end: torch.Tensor, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
        moved = [f.name for f in self.schema.features if f.mutability != "fixed"]
        cols = [self.schema.slice(name).start for name in moved]
        values = end[:, cols].numpy()
        out = []
        for i, record in enumerate(before):
            new = dict(record)
            for name, value in zip(moved, values[i], strict=True):
                new[name] = _number(self.schema[name].kind, float(value))
            out.append(new)
        return out

    def _steps(self, raw: np.ndarray, before: dict[str, Any]) -> tuple[Step, ...]:
        steps = []
        for j, f in enumerate(self.direct):
            change = float(raw[j])
            if abs(change) <= 1e-12 * max(1.0, float(self.span[j])):
                continue
            start = float(before[f.name])
            end = _number(f.kind, start + change)
            change = float(end) - start
            price = (f.cost_up if change > 0 else f.cost_down) or 0.0
            verb = "Increase" if change > 0 else "Decrease"
            text = f"{verb} {f.name} from {readable(start)} to {readable(end)}"
            steps.append(
                Step(f.name, {"from": start, "to": float(end), "change": change}, abs(change) * price, text)
            )
        return tuple(steps)


def readable(value: float) -> str:
    """A raw value as a person writes it: 4 significant digits, never scientific notation (29150, not
    2.915e+04; 0.125; 3)."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _number(kind: str, value: float) -> float | int:
    """Whole numbers of integer / binary features as int, everything else as float."""
    if kind in ("integer", "binary") and abs(value - round(value)) <= 1e-9:
        return round(value)
    return value


def _records(schema: Schema, frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = schema.validate(frame)
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.astype(object).to_dict("records")
    ]


def _check_budgets(budgets: Sequence[float]) -> list[float]:
    if isinstance(budgets, int | float) or not len(budgets):
        raise ConfigError(f"invert: budgets must be a non-empty list of numbers; got {budgets!r}.")
    levels = []
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, int | float | np.integer | np.floating) or math.isnan(b):
            raise ConfigError(
                f"invert: budget = {b!r} ({type(b).__name__}) is not a number; give a number >= 0."
            )
        if b < 0:
            raise ConfigError(f"invert: budget = {b!r} is negative; give a budget >= 0 (0 = change nothing).")
        levels.append(float(b))
    return sorted(set(levels))


def sweep_curve(sweep: dict[float, RecourseBatch]) -> pd.DataFrame:
    """One row per budget: mean probability of the unfavourable outcome after the change, the share of
    rows whose favourable probability exceeds 0.5, mean cost spent and rows per status (errors skipped)."""
    rows = []
    for budget, batch in sweep.items():
        done = [r for r in batch if r.status != "error"]
        p = np.array([1 - r.p_after for r in done], dtype=float)
        rows.append(
            {
                "budget": budget,
                "mean_p_unfavourable": float(p.mean()) if len(p) else math.nan,
                "share_below_half": float((p < 0.5).mean()) if len(p) else math.nan,
                "mean_cost": float(np.mean([r.cost for r in done])) if done else math.nan,
                "rows": len(done),
                "errors": len(batch) - len(done),
            }
        )
    return pd.DataFrame(rows)


def plot_curves(curves: dict[str, pd.DataFrame], path: str | Any, *, title: str = "") -> Any:
    """Mean probability of the unfavourable outcome against budget, one line per curve; saves a PNG.

    Each frame needs ``budget`` and ``mean_p_unfavourable`` columns (``sweep_curve`` output).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plot: matplotlib is not installed; pip install 'actionable[plot]'.") from None
    figure, axes = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for label, frame in curves.items():
        axes.plot(frame["budget"], frame["mean_p_unfavourable"], marker="o", markersize=3, label=label)
    axes.set_xlabel("budget")
    axes.set_ylabel("mean P(unfavourable)")
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
