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

import math
import time
from dataclasses import replace
from typing import Any

import pandas as pd
import torch

from actionable._version import __version__
from actionable.actions import ActionSet
from actionable.certify import certify_plans, with_certificates
from actionable.diagnosis import ESCALATION, Closest, why_not_found
from actionable.errors import ConfigError
from actionable.goals import Goal, resolve_goal
from actionable.inner import InnerConfig, Optimiser, one_thread
from actionable.minimal import without_unneeded
from actionable.mixes import busy_catalogue, search_mixes, walk_plans
from actionable.models import TorchModel, as_model
from actionable.program import Plan, Program
from actionable.results import RecourseBatch
from actionable.rows import Outcome, Rows, assemble, raw_records, read_rows
from actionable.scan import ScanConfig, Scanner
from actionable.schema import as_rows
from actionable.search import Observer, Optimise, Space, Strategy, Trials
from actionable.synthesis_config import MAX_WORK, SynthesisConfig
from actionable.trade import trade_plans
from actionable.tree_search import Cells, TreeSearch, is_tree_model
from actionable.validation import known_keywords
from actionable.verify import Verifier

__all__ = ["CONTENDERS", "synthesize"]

CONTENDERS = 8  # plans per person (other actions each) carried to the final polish; the cheapest two of
# them with two parameters or more are traded (see trade_plans): one far dearer may trade below the best


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
    scan: bool = True,
    k: int = 1,
    max_work: int | None = MAX_WORK,
    observer: Observer | None = None,
    certify: bool = False,
    certify_seconds: float = 10.0,
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
    unavailable). ``scan`` (default True): each parameter is also scanned exactly (``scan.Scanner``): a
    sequence with one parameter is solved on its whole grid without gradient steps, and the optimiser's
    answers are bisected toward no change; False gives the optimiser's answers alone (the paper's method).
    ``margin``: a plan is ``found`` only when the exact check finds the goal met by at least ``margin``.
    ``k``: up to k plans per person, cheapest first, each using a different set of actions: the first is
    the record's plan, the others its ``alternatives``. ``observer``: called with a ``Tried`` for every
    pair the search optimises (not the pairs of the mixes' search for ``k`` > 1, ``mixes``). ``certify=True``: after the search, each searched row gets a ``certificate`` from mixed-integer programs (``certify.certify``:
    optimal within a gap, or no plan exists, which makes the row ``infeasible``), and the program's own
    plan where it is cheaper and passes the exact check; at most ``certify_seconds`` of solving per row.

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
        scan=scan,
        k=k,
        max_work=max_work,
        certify=certify,
        certify_seconds=certify_seconds,
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
        self.verifier = Verifier(program, model, goal, config.margin)
        self.trees = is_tree_model(model)  # piecewise constant: searched without gradients, always scanned
        self.scanner = Scanner(self.verifier) if config.scan or self.trees else None
        self.walk = TreeSearch(self.scanner, Cells(model, program)) if self.trees and self.scanner else None
        self.optimise = self._optimiser(program, config.inner())
        self.strategy = config.strategy()
        score = getattr(self.strategy, "score", None)
        if self.trees and score is not None and score.gradient:
            raise ConfigError(
                "synthesize: search='gradient' scores actions by the model's gradient, and a tree ensemble "
                "is piecewise constant (its gradient is zero); use search='vanilla' or 'objective'."
            )
        self.closest = Closest(0)  # the last search's diagnosis, for not_found texts

    def search(self, x0: torch.Tensor, rows: list[int]) -> dict[int, list[Plan]]:
        """Per person (index into ``x0``; ``rows``: their input rows), up to ``k`` verified plans that use
        different sets of actions, cheapest first."""
        torch.manual_seed(self.config.seed)
        keep = max(self.config.k, CONTENDERS) if self.scanner is not None else self.config.k
        scanner = None if self.trees else self.scanner  # a tree search scans every pair itself
        trials = Trials(self.verifier, self.optimise, x0, rows, self.observer, scanner, keep, self.config.k)
        with one_thread(self.config.chunk):  # batches are at most a chunk of pairs
            space = self.config.space(self.program)
            self.strategy.run(space, trials)
            ranked = {row: trials.best.ranked(row) for row in trials.best.plans}
            self.closest = trials.closest
            missing = [k for k in range(len(x0)) if k not in ranked]
            if missing and self.scanner is not None and not self.trees:  # (trees: nothing to escalate)
                ranked |= {k: [plan] for k, plan in self._escalate(x0, rows, missing, space).items()}
            flat = {(row, i): plan for row, plans in ranked.items() for i, plan in enumerate(plans)}
            raw: dict[tuple[int, Any], Plan] = {}  # the plans as found, for the alternatives
            if self.config.k > 1:
                raw = without_unneeded(self.verifier, self.verifier.lean(flat))
            if self.config.k > 1 and self.scanner is not None:
                mixes = self._mixes(x0, rows, raw, space)
                flat |= mixes
                raw |= without_unneeded(self.verifier, self.verifier.lean(mixes))
            several = {k: p for k, p in flat.items() if self.program.parameter_count(p.ids) > 1}
            # a plan with one parameter or none was solved by the exact scans already
            polished = flat | self.verifier.polish(several if self.scanner is not None else flat)
            if self.scanner is not None:
                polished = trade_plans(self.scanner, polished, max(2, self.config.k), self.walk)
            out: dict[int, list[Plan]] = {}
            lean = without_unneeded(self.verifier, self.verifier.lean(polished))
            # a plan as found competes too: polishing a mix may leave a step idle, and its set then drops out
            pool = [*lean.items(), *(((row, ("raw", i)), p) for (row, i), p in raw.items())]
            for (row, _), plan in sorted(pool, key=lambda item: item[1].cost):
                mine = out.setdefault(row, [])
                if len(mine) < self.config.k and all(set(plan.ids) != set(q.ids) for q in mine):
                    mine.append(plan)  # (two plans may use the same actions once idle steps are dropped)
            if self.config.k > 1 and self.scanner is not None:  # the mixes among them at their cheapest
                walked = walk_plans(
                    self.scanner, {(r, i): p for r, ps in out.items() for i, p in enumerate(ps)}
                )
                out = {
                    r: sorted((walked[r, i] for i in range(len(ps))), key=lambda p: p.cost)
                    for r, ps in out.items()
                }
            return out

    def _mixes(
        self, x0: torch.Tensor, rows: list[int], plans: dict[tuple[int, Any], Plan], space: Space
    ) -> dict[tuple[int, Any], Plan]:
        """Plans that mix actions (``mixes``), for the alternatives; ``plans``: the search's, with no idle
        or unneeded step, whose k-th distinct set of actions per person is what a mix must beat."""
        busy = busy_catalogue(self.program.actions)
        if busy is None or self.scanner is None:
            return {}
        bar = torch.full((len(x0),), math.inf, dtype=torch.float64)
        sets: dict[int, dict[frozenset[int], float]] = {}
        for (row, _), plan in plans.items():
            mine = sets.setdefault(row, {})
            mine[frozenset(plan.ids)] = min(plan.cost, mine.get(frozenset(plan.ids), math.inf))
        have = {row: set(mine) for row, mine in sets.items()}
        for row, mine in sets.items():
            costs = sorted(mine.values())
            if len(costs) >= self.config.k:
                bar[row] = costs[self.config.k - 1]
        inner = self.config.inner()
        found = search_mixes(
            busy,
            self.scanner,
            lambda program: self._optimiser(program, inner),
            x0,
            rows,
            bar,
            have,
            max_length=self.config.max_length,
            keep=max(self.config.k, CONTENDERS),
            rank=self.config.k,
            chunk=self.config.chunk,
            limit=space.limit(1),  # per person, so a row's mixes never depend on the batch it is in
        )
        return {(row, ("mix", i)): plan for row, mine in found.items() for i, plan in enumerate(mine)}

    def _optimiser(self, program: Program, inner: InnerConfig) -> Optimise:
        """How a batch of pairs gets its parameters: the gradient optimiser, or for a tree model the
        search over the values where its outcome can change (``tree_search``)."""
        if not self.trees:
            return Optimiser(program, self.model, self.goal, inner).run
        if program is self.program and self.walk is not None:  # the search's own program: built already
            return self.walk.run
        verifier = Verifier(program, self.model, self.goal, self.config.margin)
        return TreeSearch(Scanner(verifier), Cells(self.model, program)).run

    def _escalate(
        self, x0: torch.Tensor, rows: list[int], missing: list[int], space: Space
    ) -> dict[int, Plan]:
        """The people still without a plan, once more by the same strategy: ``ESCALATION`` times the steps
        and the goal's initial weight, and grid repairs of the plans the optimiser leaves failing."""
        inner = self.config.inner()
        stronger = replace(inner, steps=inner.steps * ESCALATION, c_init=inner.c_init * ESCALATION)
        optimiser = Optimiser(self.program, self.model, self.goal, stronger)
        verifier = Verifier(self.program, self.model, self.goal, self.config.margin)
        scanner = Scanner(verifier, ScanConfig(repair=Scanner.FULL))
        who = [rows[k] for k in missing]
        trials = Trials(verifier, optimiser.run, x0[missing], who, self.observer, scanner)
        self.strategy.run(space, trials)
        for k, notes in verifier.refused.items():  # its people are numbered within ``missing``
            self.verifier.refused.setdefault(missing[k], {}).update(notes)
        self.closest.merge(trials.closest, missing)
        return {missing[k]: plan for k, plan in trials.best.plans.items()}

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
            firsts = {j: ranked[0] for j, ranked in best.items()}
            certificates, chosen = certify_plans(
                self.verifier,
                rows.x[need],
                firsts,
                max_length=self.config.max_length,
                time_limit=self.config.certify_seconds,
            )
            best = {j: _leading(plan, best.get(j, []), self.config.k) for j, plan in chosen.items()}
        person = {k: j for j, k in enumerate(searched)}
        plans = {k: best[j] for k, j in person.items() if j in best}
        outcomes = self._outcomes(rows, self.goal.probability(out0).tolist(), person, plans)
        outcomes = with_certificates(outcomes, person, certificates, self.config.max_length)
        seconds = (time.perf_counter() - started) / max(len(X), 1)
        return assemble(rows, outcomes, seconds=seconds, provenance=self.provenance())

    def _outcomes(
        self, rows: Rows, p0: list[float], person: dict[int, int], plans: dict[int, list[Plan]]
    ) -> list[Outcome]:
        """Per valid row: favourable already, its verified plans, or why none was found."""
        cfg = self.config
        flat = [plan for ranked in plans.values() for plan in ranked]
        outcomes = iter(self._found(flat))
        found = {k: [next(outcomes) for _ in ranked] for k, ranked in plans.items()}
        out = []
        for k, p in enumerate(p0):
            if k not in person:
                out.append(Outcome("already_favourable", p, cost=0.0, x_after=rows.before[k], p_after=p))
            elif k in found:
                best, *others = found[k]
                out.append(
                    replace(best, p_before=p, alternatives=tuple(replace(o, p_before=p) for o in others))
                )
            else:
                why = why_not_found(
                    self.closest, person[k], self.program, self.goal, cfg.margin, cfg.max_length
                )
                text = self.verifier.not_found_text(person[k], why)
                out.append(Outcome("not_found", p, error=text))
        return out

    def _found(self, plans: list[Plan]) -> list[Outcome]:
        """Verified plans as outcomes: steps, cost, final state and the model's probability there."""
        if not plans:
            return []
        final = torch.stack([p.x for p in plans])
        with torch.no_grad():
            p_after = self.goal.probability(self.model(final)).tolist()
        records = raw_records(self.program.schema, final)
        return [
            Outcome("found", math.nan, self.program.steps(plan), plan.cost, x_after, p)
            for plan, x_after, p in zip(plans, records, p_after, strict=True)
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


def _leading(plan: Plan, ranked: list[Plan], k: int) -> list[Plan]:
    """``plan`` first (a certificate's cheaper plan, or the search's own), then the search's others that
    use other actions, at most ``k`` in all."""
    others = [p for p in ranked if set(p.ids) != set(plan.ids)]
    return [plan, *others][:k]
