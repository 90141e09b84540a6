"""A method's plans scored against the exhaustive oracle: completeness, optimality, margins, validity.

``score(problem, batch, answers)`` compares one batch of plans (for instance ``synthesize``'s) with the
oracle's answers on the same people: how many of the people the oracle can help got a plan, how many of
those plans cost at most 1% more than the oracle's (or less), how many clear the margin (the goal margin
of the plan replayed exactly by ``Program.rollout``, the engine's verifier), and how many fail the
independent replay of ``testing.check_plans``. ``measure(problem)`` runs both, timed. ``Tally`` adds
problems up for a table; issue 12's targets are ``TARGETS``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from actionable.actions import ActionSet
from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.oracle import OracleAnswer, solve_exhaustively
from actionable.problems import Problem
from actionable.program import Program
from actionable.results import Recourse, RecourseBatch
from actionable.synthesis import synthesize
from actionable.testing import check_plans

__all__ = [
    "TARGETS",
    "WITHIN",
    "Case",
    "ProblemScore",
    "Tally",
    "exact_margins",
    "measure",
    "score",
]

WITHIN = 0.01  # a found plan is optimal when it costs at most 1% more than the oracle's
TOLERANCE = 1e-9  # goal margins and costs compared with this much slack for float64 rounding
TARGETS = {"found": 0.99, "within": 0.99, "clearing": 1.0, "invalid": 0}  # issue 12, at default settings


@dataclass(frozen=True)
class Case:
    """One person of one problem: the oracle's least cost and the method's (nan: no plan)."""

    problem: str
    row: Any
    oracle: float
    found: float

    @property
    def badness(self) -> float:
        """How far the method is from the oracle: inf for a helpable person without a plan, else the
        ratio of the costs (1: optimal)."""
        if math.isnan(self.found):
            return math.inf
        return self.found / self.oracle if self.oracle > 0 else (1.0 if self.found <= 0 else math.inf)


@dataclass(frozen=True)
class ProblemScore:
    """The counts of one problem (see the module's docstring); ``cases``: every helpable person."""

    name: str
    family: str
    people: int
    helpable: int
    helpable_at_boundary: int
    found: int
    found_helpable: int
    within: int
    clearing: int
    invalid: int
    seconds: float
    oracle_seconds: float
    cases: tuple[Case, ...] = field(default=(), repr=False)


def exact_margins(batch: RecourseBatch, X: pd.DataFrame, actions: ActionSet, model: Any) -> list[float]:
    """The goal margin of each found plan replayed exactly (``Program.rollout(..., exact=True)``, as the
    engine's verifier replays it), in the order of the found records; the schema's target is the goal."""
    found = [(i, r) for i, r in enumerate(batch) if r.status == "found" and r.steps]
    out = {i: math.nan for i, r in enumerate(batch) if r.status == "found"}
    torch_model = as_model(model, actions.schema)
    goal = resolve_goal(torch_model)
    x0 = actions.schema.encode(X)
    if found:
        program = Program(actions)
        ids, params = program.encode_plans([r for _, r in found])
        rows = torch.as_tensor([i for i, _ in found])
        with torch.no_grad():
            path = program.rollout(ids, x0[rows], params, exact=True)
            margins = goal.margin(torch_model(path.x)).tolist()
        out |= {i: m for (i, _), m in zip(found, margins, strict=True)}
    for i in [i for i, r in enumerate(batch) if r.status == "found" and not r.steps]:
        with torch.no_grad():
            out[i] = float(goal.margin(torch_model(x0[i : i + 1]))[0])
    return [out[i] for i in sorted(out)]


def _invalid(batch: RecourseBatch, X: pd.DataFrame, actions: ActionSet, model: Any) -> int:
    """Found plans that the independent replay of ``testing.check_plans`` refuses, one row at a time
    (each as row 0 of a one-row frame indexed 0, so its row is right by position and by label)."""
    bad = 0
    for i, r in enumerate(batch):
        if r.status == "found":
            alone = RecourseBatch((dataclasses.replace(r, row=0),))
            bad += bool(check_plans(alone, X.iloc[[i]].reset_index(drop=True), actions, model))
    return bad


def score(
    problem: Problem,
    batch: RecourseBatch,
    answers: Sequence[OracleAnswer],
    *,
    seconds: float = math.nan,
    oracle_seconds: float = math.nan,
) -> ProblemScore:
    """One problem's counts: ``batch`` (the method's plans for ``problem.X``) against ``answers``."""
    records: list[Recourse] = list(batch)
    margins = iter(exact_margins(batch, problem.X, problem.actions, problem.model))
    found = clearing = found_helpable = within = 0
    cases = []
    for label, r, a in zip(problem.X.index, records, answers, strict=True):
        got = r.status == "found"
        if got:
            found += 1
            clearing += next(margins) >= problem.margin - TOLERANCE
        if a.helpable:
            found_helpable += got
            within += got and r.cost <= a.cost * (1 + WITHIN) + TOLERANCE
            cases.append(Case(problem.name, label, a.cost, r.cost if got else math.nan))
    return ProblemScore(
        name=problem.name,
        family=problem.family,
        people=len(records),
        helpable=sum(a.helpable for a in answers),
        helpable_at_boundary=sum(a.helpable_at_boundary for a in answers),
        found=found,
        found_helpable=found_helpable,
        within=within,
        clearing=clearing,
        invalid=_invalid(batch, problem.X, problem.actions, problem.model),
        seconds=seconds,
        oracle_seconds=oracle_seconds,
        cases=tuple(cases),
    )


Method = Callable[..., RecourseBatch]


def measure(problem: Problem, method: Method | None = None, **options: Any) -> ProblemScore:
    """Run ``method(model, X, actions, max_length=..., **options)`` (default: ``synthesize`` at its
    default settings) and the oracle on ``problem``, timed, and score the plans."""
    method = synthesize if method is None else method
    started = time.perf_counter()
    answers = solve_exhaustively(
        problem.model, problem.X, problem.actions, max_length=problem.max_length, margin=problem.margin
    )
    oracle_seconds = time.perf_counter() - started
    started = time.perf_counter()
    batch = method(problem.model, problem.X, problem.actions, max_length=problem.max_length, **options)
    seconds = time.perf_counter() - started
    return score(problem, batch, answers, seconds=seconds, oracle_seconds=oracle_seconds)


@dataclass
class Tally:
    """Sums over problems, for one row of a table."""

    problems: int = 0
    people: int = 0
    helpable: int = 0
    found: int = 0
    found_helpable: int = 0
    within: int = 0
    clearing: int = 0
    invalid: int = 0
    seconds: float = 0.0
    oracle_seconds: float = 0.0

    def add(self, scores: Iterable[ProblemScore]) -> Tally:
        for s in scores:
            self.problems += 1
            self.people += s.people
            self.helpable += s.helpable
            self.found += s.found
            self.found_helpable += s.found_helpable
            self.within += s.within
            self.clearing += s.clearing
            self.invalid += s.invalid
            self.seconds += s.seconds
            self.oracle_seconds += s.oracle_seconds
        return self

    def shares(self) -> dict[str, float]:
        """found / helpable, within / found helpable, clearing / found (nan where nothing to divide)."""

        def share(a: int, b: int) -> float:
            return a / b if b else math.nan

        return {
            "found": share(self.found_helpable, self.helpable),
            "within": share(self.within, self.found_helpable),
            "clearing": share(self.clearing, self.found),
        }

    def meets(self) -> dict[str, bool]:
        """Whether each of issue 12's targets is met (a share with nothing to count is met)."""
        shares = self.shares()
        met = {k: math.isnan(v) or v >= TARGETS[k] for k, v in shares.items()}
        return met | {"invalid": self.invalid <= TARGETS["invalid"]}
