"""Action-sequence synthesis (Ramakrishnan, Lee and Albarghouthi, AAAI 2020), batched and exactly verified.

For every person the model treats unfavourably, find the cheapest short sequence of actions, with concrete
parameters, that flips the decision. The verb is a composition of parts: the catalogue compiled once
(``program.Program``), a strategy choosing which sequences to try (``search``: ``Exhaustive`` or
``BestFirst`` on a score), all candidate sequences x people optimised at once (``inner.Optimiser``: Adam
on the parameters, scaled to their boxes; Carlini-Wagner objective cost + barriers + c * max(0, margin -
goal margin) with an adaptive c) and the exact re-check (``verify.Verifier``): every answer is replayed
exactly on the rounded plan; only a plan that passes is ``found``, and its cost excludes penalties. The
exact check also refuses any step whose cost is negative or not finite (whatever the catalogue's load-time
checks let through): such a row is ``not_found`` when no other plan passes, and its error text names the
action and the cost. "Favourable" is the model's own decision (``Goal.satisfied``: argmax, ties included).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import torch

from actionable._version import __version__
from actionable.actions import ActionSet
from actionable.errors import ConfigError, did_you_mean
from actionable.goals import Goal, resolve_goal
from actionable.inner import InnerConfig, Optimiser, one_thread
from actionable.models import TorchModel, as_model
from actionable.program import Plan, Program
from actionable.results import Recourse, RecourseBatch
from actionable.rows import read_rows
from actionable.schema import as_rows
from actionable.search import GRADIENT, OBJECTIVE, BestFirst, Exhaustive, Observer, Space, Strategy, Trials
from actionable.validation import FLAG, Rule, check, choice, real, whole
from actionable.verify import Verifier

__all__ = [
    "ALIASES",
    "MAX_LENGTH",
    "MAX_WORK",
    "RULES",
    "SEARCHES",
    "P",
    "R",
    "SynthesisConfig",
    "synthesize",
]

MAX_LENGTH = 32  # longest sequence asked for; the search size (Space.levels) usually refuses far earlier
MAX_WORK = 10**9  # default bound on pair-steps (sequences x rows x optimisation steps), see Space.levels
SEARCHES: dict[str, Strategy] = {  # search= by name; "bfs" is the former name of "vanilla"
    "vanilla": Exhaustive(),
    "objective": BestFirst(OBJECTIVE),
    "gradient": BestFirst(GRADIENT),
}
ALIASES = {"bfs": "vanilla"}
RULES: dict[str, Rule] = {
    "max_length": whole(1, MAX_LENGTH),
    "steps": whole(1, 10**6),
    "lr": real(0, open_low=True),
    "margin": real(0),
    "c_init": real(0, open_low=True),
    "check_every": whole(1),
    "chunk": whole(1),
    "seed": whole(0, 2**63 - 1),
    "search": choice((*ALIASES, *SEARCHES)),
    "budget": whole(1, optional=True),
    "round_size": whole(1),
    "compile": FLAG,
    "max_work": whole(1, optional=True),
}


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of the search and of the inner optimisation, validated by ``RULES`` (one rule per field, one
    message format, see ``validation``); numpy numbers and whole floats (``steps=10.0``) are stored as plain
    ints and floats, ``search="bfs"`` as ``"vanilla"``. ``search`` is a name in ``SEARCHES`` or a
    ``search.Strategy``; ``budget`` and ``round_size`` tune the named best-first searches."""

    max_length: int = 4
    steps: int = 150
    lr: float = 0.05
    margin: float = 0.1
    c_init: float = 1.0
    check_every: int = 20
    chunk: int = 50_000
    seed: int = 0
    search: str | Strategy = "vanilla"
    budget: int | None = None
    round_size: int = 16
    compile: bool = False  # torch.compile the inner step (inductor); pays off only for long runs
    max_work: int | None = MAX_WORK  # most pair-steps of optimisation (see Space.levels); None: no limit

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.search, Strategy):
            del values["search"]
        for name, value in check("synthesize", RULES, values).items():
            object.__setattr__(self, name, value)  # numpy and whole-float values stored as plain ints
        if isinstance(self.search, str):
            object.__setattr__(self, "search", ALIASES.get(self.search, self.search))
        if self.budget is not None and not isinstance(self.strategy(), BestFirst):
            raise ConfigError(
                f"synthesize: budget = {self.budget!r} applies to search='objective' or 'gradient' "
                "(sequences per person); drop budget, or choose one of those searches."
            )

    def strategy(self) -> Strategy:
        """The search strategy: the one given, or the named one with ``budget`` and ``round_size``."""
        if isinstance(self.search, Strategy):
            return self.search
        named = SEARCHES[self.search]
        if isinstance(named, BestFirst):
            return BestFirst(named.score, budget=self.budget, round_size=self.round_size)
        return named

    def inner(self) -> InnerConfig:
        return InnerConfig(self.steps, self.lr, self.margin, self.c_init, self.check_every, self.compile)

    def space(self, program: Program) -> Space:
        return Space(program, self.max_length, self.steps, self.max_work, self.chunk)

    def record(self) -> dict[str, Any]:
        """The settings as plain values (a strategy by its label), for provenance."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {"search": self.strategy().label}


P = ParamSpec("P")
R = TypeVar("R")


def _typed_options(verb: Callable[P, R]) -> Callable[P, R]:
    """``verb`` refusing unknown keywords with a ``ConfigError`` naming the ones it takes."""
    known = [p.name for p in inspect.signature(verb).parameters.values() if p.kind is p.KEYWORD_ONLY]

    @functools.wraps(verb)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            hint = did_you_mean(unknown[0], known)
            raise ConfigError(f"synthesize: unknown option(s) {unknown}; it takes {known}.{hint}")
        return verb(*args, **kwargs)

    return checked


@_typed_options
def synthesize(
    model: Any,
    X: pd.DataFrame,
    actions: ActionSet,
    *,
    goal: Any = None,
    max_length: int = 4,
    search: str | Strategy = "vanilla",
    margin: float = 0.1,
    steps: int = 150,
    seed: int = 0,
    lr: float = 0.05,
    c_init: float = 1.0,
    check_every: int = 20,
    chunk: int = 50_000,
    budget: int | None = None,
    round_size: int = 16,
    compile: bool = False,
    max_work: int | None = MAX_WORK,
    observer: Observer | None = None,
) -> RecourseBatch:
    """The cheapest verified action sequence per row of ``X`` (one ``Recourse`` per row, in order).

    ``model``: a ``TorchModel``, torch module or fitted scikit-learn model (converted with ``as_model``
    on ``actions.schema``). ``goal``: as in ``resolve_goal`` (default: the schema's target).
    ``margin``: how far past the decision boundary (in logits, or the goal's units) plans are pushed.
    ``search``: "vanilla" (every canonical sequence; "bfs" is accepted for it), "objective" or "gradient"
    (best-first, at most ``budget`` sequences per person, ``round_size`` per round), or a ``Strategy``.
    The other settings are ``SynthesisConfig`` fields; a bad value raises ``ConfigError`` naming the value
    and the fix, and a search larger than ``max_work`` pair-steps (sequences x rows x steps) is refused
    before it starts; ``compile=True`` runs the inner step through ``torch.compile`` (worth its warm-up of
    several seconds per program shape only on long runs; falls back to eager with a warning where
    unavailable). ``observer``: called with a ``Tried`` for every pair optimised.

    Two denied applicants of bundled German credit:

    >>> from actionable import datasets
    >>> from actionable.actions import ActionSet
    >>> german = datasets.load("german")
    >>> actions = ActionSet.from_toml(german.path / "actions.toml", german.schema)
    >>> denied = german.X_test[german.model.predict(german.X_test) == "bad"].head(2)
    >>> plans = synthesize(german.model, denied, actions, max_length=2)
    >>> [r.status for r in plans], all(r.p_after > 0.5 > r.p_before for r in plans)
    (['found', 'found'], True)
    """
    config = SynthesisConfig(
        max_length=max_length,
        steps=steps,
        lr=lr,
        margin=margin,
        c_init=c_init,
        check_every=check_every,
        chunk=chunk,
        seed=seed,
        search=search,
        budget=budget,
        round_size=round_size,
        compile=compile,
        max_work=max_work,
    )
    program = Program(actions)
    torch_model = as_model(model, program.schema)
    return _Run(program, torch_model, resolve_goal(torch_model, goal), config, observer).rows(as_rows(X))


class _Run:
    """One call of ``synthesize``: the parts, the rows' search, and the records."""

    def __init__(
        self,
        program: Program,
        model: TorchModel,
        goal: Goal,
        config: SynthesisConfig,
        observer: Observer | None,
    ) -> None:
        self.program, self.model, self.goal = program, model, goal
        self.config, self.observer = config, observer
        self.optimiser = Optimiser(program, model, goal, config.inner())
        self.verifier = Verifier(program, model, goal, config.margin)
        self.strategy = config.strategy()

    def search(self, x0: torch.Tensor, rows: list[int]) -> dict[int, Plan]:
        """Best verified plan per person (index into ``x0``; ``rows``: their input rows)."""
        torch.manual_seed(self.config.seed)
        trials = Trials(self.verifier, self.optimiser.run, x0, rows, self.observer)
        with one_thread(self.config.chunk):  # batches are at most a chunk of pairs
            self.strategy.run(self.config.space(self.program), trials)
            polished = self.verifier.polish(trials.best.plans)
            return {row: self.verifier.without_idle_steps(plan) for row, plan in polished.items()}

    def rows(self, X: pd.DataFrame) -> RecourseBatch:
        """One record per row of ``X``: ``error``, ``already_favourable``, ``found`` or ``not_found``."""
        started = time.perf_counter()
        batch = read_rows(self.program.schema, X, "synthesize")
        errors, good, x0 = batch.errors, batch.good, batch.x
        with torch.no_grad():
            out0 = self.model(x0)
        need = ~self.goal.satisfied(out0)
        searched = need.nonzero().flatten().tolist()  # positions in x0 of the rows searched
        best = self.search(x0[need], [good[k] for k in searched]) if searched else {}
        elapsed = (time.perf_counter() - started) / max(len(X), 1)
        plans = {k: best[j] for j, k in enumerate(searched) if j in best}
        person = {k: j for j, k in enumerate(searched)}
        after = self._after(plans)
        before = self._records(x0)
        p0 = self.goal.probability(out0)
        common: dict[str, Any] = {"seconds": elapsed, "provenance": self.provenance()}
        position = {row: k for k, row in enumerate(good)}
        items: list[Recourse] = []
        for row in range(len(X)):
            k = position.get(row)
            if k is None:
                items.append(Recourse(row=row, status="error", error=errors[row], **common))
                continue
            common_k = common | {"x_before": before[k], "p_before": float(p0[k])}
            if not bool(need[k]):
                same: dict[str, Any] = {"x_after": before[k], "p_after": float(p0[k]), "cost": 0.0}
                items.append(Recourse(row=row, status="already_favourable", **same, **common_k))
            elif k not in plans:
                text = self.verifier.not_found_text(person[k], self.config.max_length)
                items.append(Recourse(row=row, status="not_found", error=text, **common_k))
            else:
                plan: dict[str, Any] = {"steps": self.program.steps(plans[k]), "cost": plans[k].cost}
                plan["x_after"], plan["p_after"] = after[k]
                items.append(Recourse(row=row, status="found", **plan, **common_k))
        return RecourseBatch(tuple(items))

    def _after(self, plans: dict[int, Plan]) -> dict[int, tuple[dict[str, Any], float]]:
        """Per planned row: the raw final state and the model's probability of the favourable outcome."""
        if not plans:
            return {}
        final = torch.stack([p.x for p in plans.values()])
        with torch.no_grad():
            p_after = self.goal.probability(self.model(final)).tolist()
        return dict(zip(plans, zip(self._records(final), p_after, strict=True), strict=True))

    def _records(self, x: torch.Tensor) -> list[dict[str, Any]]:
        """Raw feature dicts for canonical rows, decoded in one batch."""
        if not len(x):
            return []
        frame = self.program.schema.decode(x)
        return [
            {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")
        ]

    def provenance(self) -> dict[str, Any]:
        return {
            "method": "ramakrishnan2020",
            "config": self.config.record(),
            "goal": self.goal.describe(),
            "outcome": self.goal.outcome(),
            "actions": list(self.program.actions.names),
            "version": __version__,
        }
