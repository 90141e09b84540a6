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

import time
from typing import Any

import pandas as pd
import torch

from actionable._version import __version__
from actionable.actions import ActionSet
from actionable.certify import certify_plans, with_certificates
from actionable.goals import Goal, resolve_goal
from actionable.inner import Optimiser, one_thread
from actionable.models import TorchModel, as_model
from actionable.program import Plan, Program
from actionable.results import RecourseBatch
from actionable.rows import Outcome, Rows, assemble, raw_records, read_rows
from actionable.schema import as_rows
from actionable.search import Observer, Strategy, Trials
from actionable.synthesis_config import MAX_WORK, SynthesisConfig
from actionable.validation import known_keywords
from actionable.verify import Verifier

__all__ = ["synthesize"]


@known_keywords("synthesize")
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
    certify: bool = False,
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
    unavailable). ``observer``: called with a ``Tried`` for every pair optimised. ``certify=True``: after
    the search, each searched row gets a ``certificate`` from mixed-integer programs (``certify.certify``:
    optimal within a gap, or no plan exists, which makes the row ``infeasible``), and the program's own
    plan where it is cheaper and passes the exact check.

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
        certify=certify,
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
        rows = read_rows(self.program.schema, X, "synthesize")
        with torch.no_grad():
            out0 = self.model(rows.x)
        need = ~self.goal.satisfied(out0)
        searched = need.nonzero().flatten().tolist()  # positions in rows.x of the rows searched
        best = self.search(rows.x[need], [rows.good[k] for k in searched]) if searched else {}
        certificates: dict[int, Any] = {}
        if self.config.certify and searched:
            certificates, best = certify_plans(
                self.verifier, rows.x[need], best, max_length=self.config.max_length
            )
        person = {k: j for j, k in enumerate(searched)}
        plans = {k: best[j] for k, j in person.items() if j in best}
        outcomes = self._outcomes(rows, self.goal.probability(out0).tolist(), person, plans)
        outcomes = with_certificates(outcomes, person, certificates, self.config.max_length)
        seconds = (time.perf_counter() - started) / max(len(X), 1)
        return assemble(rows, outcomes, seconds=seconds, provenance=self.provenance())

    def _outcomes(
        self, rows: Rows, p0: list[float], person: dict[int, int], plans: dict[int, Plan]
    ) -> list[Outcome]:
        """Per valid row: favourable already, its verified plan, or why none was found."""
        after: dict[int, tuple[dict[str, Any], float]] = {}
        if plans:
            final = torch.stack([p.x for p in plans.values()])
            with torch.no_grad():
                p_after = self.goal.probability(self.model(final)).tolist()
            records = zip(raw_records(self.program.schema, final), p_after, strict=True)
            after = dict(zip(plans, records, strict=True))
        out = []
        for k, p in enumerate(p0):
            if k not in person:
                out.append(Outcome("already_favourable", p, cost=0.0, x_after=rows.before[k], p_after=p))
            elif k in plans:
                plan = plans[k]
                out.append(Outcome("found", p, self.program.steps(plan), plan.cost, *after[k]))
            else:
                text = self.verifier.not_found_text(person[k], self.config.max_length)
                out.append(Outcome("not_found", p, error=text))
        return out

    def provenance(self) -> dict[str, Any]:
        return {
            "method": "ramakrishnan2020",
            "config": self.config.record(),
            "goal": self.goal.describe(),
            "outcome": self.goal.outcome(),
            "actions": list(self.program.actions.names),
            "version": __version__,
        }
