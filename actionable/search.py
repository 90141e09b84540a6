"""Which action sequences to try: canonical sequences, lower bounds, score functions and strategies.

Sequences that differ only in the order of commuting actions reach the same state at the same cost, so
only one order per class is tried (``canonical_levels``). A sequence's constant costs bound its cost from
below (``Space.bound``), which prunes pairs that cannot beat a person's best verified plan. A strategy is a
frozen dataclass with one ``run(space, trials)``: ``Exhaustive`` tries every canonical sequence (the
paper's breadth-first baseline, "vanilla"), ``BestFirst(score=...)`` is the paper's Algorithm 1 with one
of its score functions (``VANILLA``, ``OBJECTIVE``, ``GRADIENT``), batched across people in rounds. The
score functions are defined here once, for the live search and for ``scores.explore``'s replay.

A strategy drives ``Trials``: it hands over batches of (sequence, person) pairs, which are optimised and
verified there, and reads back each person's best verified cost (and, when it asks, each pair's outcome).
An optional ``observer`` sees every pair tried (``Tried``). A new strategy is one class here (a frozen
dataclass deriving from ``Strategy``, with a ``name`` and a ``run``) plus one line in ``registry``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch

from actionable.actions import Action
from actionable.diagnosis import Closest
from actionable.errors import ConfigError
from actionable.exhaustive import enumerate_small, small_boxes
from actionable.goals import Goal
from actionable.models import TorchModel
from actionable.program import NOOP, Program
from actionable.scan import Scanner
from actionable.schema import DTYPE
from actionable.verify import Best, Outcome, Verifier

__all__ = [
    "GRADIENT",
    "OBJECTIVE",
    "SCORES",
    "VANILLA",
    "BestFirst",
    "Exhaustive",
    "Frontier",
    "Key",
    "Observer",
    "Optimise",
    "Score",
    "Sequences",
    "Space",
    "Strategy",
    "Swap",
    "Trials",
    "Tried",
    "allowed",
    "canonical_levels",
    "canonical_sequences",
    "commutes",
    "gradient_scores",
    "normal_form",
    "swaps",
]

Sequences = list[tuple[int, ...]]
Swap = list[list[bool]]


# ------------------------------------------------------------------------------------ sequences
def commutes(a: Action, b: Action) -> bool:
    """Two actions commute when neither writes what the other writes or reads."""
    return not (a.footprint & b.footprint or a.footprint & b.reads or b.footprint & a.reads)


def swaps(actions: Sequence[Action]) -> Swap:
    """``swap[i][j]``: whether actions ``i`` and ``j`` commute."""
    n = len(actions)
    return [[commutes(actions[i], actions[j]) for j in range(n)] for i in range(n)]


def allowed(seq: Sequence[int], actions: Sequence[Action]) -> bool:
    """Whether a sequence repeats only repeatable actions."""
    return all(seq.count(a) == 1 or actions[a].repeatable for a in set(seq))


def canonical_sequences(actions: Sequence[Action], length: int) -> Sequences:
    """All sequences of ``length`` action indices, one per class of orders that commuting actions make equal.

    A sequence is kept iff it is in lexicographic normal form: no later action that is smaller could move
    in front of an earlier one by commuting with everything in between. Repeats only for repeatable actions.
    """
    levels = canonical_levels(actions, length)
    return levels[-1] if len(levels) == length else []


def canonical_levels(actions: Sequence[Action], max_length: int, limit: float = math.inf) -> list[Sequences]:
    """The canonical sequences of each length 1..``max_length``, built incrementally (never all orders).

    Every prefix of a sequence in normal form is in normal form (the condition on a position looks only
    backwards), so the sequences of length k are the normal ones of length k - 1 extended by one action
    whose own position passes the check: walking back over the actions it commutes with, none is larger.
    The cost is proportional to the output, not to the ``n ** k`` orders. Stops as soon as more than
    ``limit`` sequences are built in all (the last level is then partial; the caller refuses the search).
    """
    n = len(actions)
    swap = swaps(actions)
    repeatable = [a.repeatable for a in actions]
    levels: list[Sequences] = []
    previous: Sequences = [()]
    total = 0
    for _ in range(max_length):
        level: Sequences = []
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


def _extends(seq: tuple[int, ...], a: int, swap: Swap, repeatable: list[bool]) -> bool:
    """Whether ``seq + (a,)`` is in normal form, given that ``seq`` is."""
    if not repeatable[a] and a in seq:
        return False
    for b in reversed(seq):
        if not swap[a][b]:
            return True
        if a < b:
            return False
    return True


def normal_form(seq: tuple[int, ...], swap: Swap) -> tuple[int, ...]:
    """The lexicographically smallest order reachable by swapping adjacent commuting actions.

    Greedy: repeatedly take the smallest action that commutes with every action still before it.
    """
    rest, out = list(seq), []
    while rest:
        movable = [j for j in range(len(rest)) if all(swap[rest[j]][rest[i]] for i in range(j))]
        j = min(movable, key=lambda k: rest[k])
        out.append(rest.pop(j))
    return tuple(out)


# ------------------------------------------------------------------------------------ score functions
Key = Callable[[tuple[int, ...], float, "torch.Tensor | None"], float]


@dataclass(frozen=True)
class Score:
    """One of the paper's score functions: the priority of trying ``seq`` (smaller first), from the
    sequence, the objective its prefix reached and, if ``gradient``, per-action gradient scores at the
    state the prefix reached (see ``gradient_scores``)."""

    name: str
    key: Key
    gradient: bool = False


def _by_length(seq: tuple[int, ...], objective: float, grads: torch.Tensor | None) -> float:
    return float(len(seq))


def _by_objective(seq: tuple[int, ...], objective: float, grads: torch.Tensor | None) -> float:
    return objective


def _by_gradient(seq: tuple[int, ...], objective: float, grads: torch.Tensor | None) -> float:
    if grads is None:
        raise ConfigError("the gradient score needs the actions' gradients; build it with gradient=True.")
    return -float(grads[seq[-1]])


VANILLA = Score("vanilla", _by_length)  # breadth-first: shorter sequences first
OBJECTIVE = Score("objective", _by_objective)  # the optimised objective of the sequence extended
GRADIENT = Score("gradient", _by_gradient, gradient=True)  # the new action's mean |d loss / d x|
SCORES: dict[str, Score] = {s.name: s for s in (VANILLA, OBJECTIVE, GRADIENT)}


def gradient_scores(program: Program, model: TorchModel, goal: Goal, x: torch.Tensor) -> torch.Tensor:
    """Per action: mean |d loss / d x_j| over its footprint's columns, each scaled by the column's range."""
    point = x.detach().clone()[None, :].requires_grad_(True)
    loss = -goal.margin(model(point)).sum()
    (grad,) = torch.autograd.grad(loss, point)
    magnitude = (grad[0] * program.column_scale).abs()
    out = torch.zeros(len(program.acts), dtype=DTYPE)
    for a, cols in enumerate(program.footprint_columns):
        out[a] = magnitude[cols].mean()
    return out


# ------------------------------------------------------------------------------------ the search space
class Tried(NamedTuple):
    """One (sequence, person) pair tried, for an ``observer``: the input row, the action indices, the
    objective of its rounded plan (see ``verify.Outcome``), its verified cost (inf if it failed), its end."""

    row: int
    sequence: tuple[int, ...]
    objective: float
    cost: float
    state: torch.Tensor


Observer = Callable[[Tried], None]
Optimise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids, x0) -> parameters (raw units)


class Trials:
    """What a strategy drives: batches of (sequence, person) pairs, optimised by ``optimise`` (for instance
    ``inner.Optimiser.run``) and checked by ``verifier``; each person's best verified plan is kept in
    ``best``. ``x0``: the people's start states, ``rows``: their input rows (what an ``observer`` is told);
    ``scanner``: exact parameter scans after (or, for one parameter, instead of) the optimisation;
    ``keep``: plans kept per person (each using other actions), of which the ``rank`` cheapest are the
    answers: ``best_cost``, the ``rank``-th's cost (infinity until there are that many), is what a
    sequence's bound must be under to be tried (the others kept only compete, see ``trade``)."""

    def __init__(
        self,
        verifier: Verifier,
        optimise: Optimise,
        x0: torch.Tensor,
        rows: Sequence[int],
        observer: Observer | None = None,
        scanner: Scanner | None = None,
        keep: int = 1,
        rank: int = 1,
    ) -> None:
        self.verifier, self.optimise, self.observer, self.scanner = verifier, optimise, observer, scanner
        self.program = verifier.program
        self.x0, self.rows = x0, list(rows)
        self.people = len(x0)
        self.best = Best(self.people, keep, rank)
        self.best_cost = self.best.bar
        self.closest = Closest(self.people)

    def evaluate(self, ids: torch.Tensor, rows: torch.Tensor, outcomes: bool = False) -> Outcome | None:
        """Optimise and verify pairs (``rows``: each pair's person); with ``outcomes``, score them."""
        ids = self.program.trim(ids)
        x0 = self.x0[rows]
        params = self.parameters(ids, x0, rows)
        checked = self.verifier.check(ids, x0, params, rows)
        rounded = self.verifier.exact(ids, x0, self.program.round(ids, params))  # one replay for both
        self.closest.offer(rounded, ids, rows)
        outcome = None
        if outcomes or self.observer is not None:
            outcome = Outcome(rounded.objective, rounded.state)
        if self.observer is not None and outcome is not None:
            for j in range(len(ids)):
                seq = self.program.sequence(ids[j])
                objective, cost = float(outcome.objective[j]), float(checked.cost[j])
                self.observer(Tried(self.rows[int(rows[j])], seq, objective, cost, outcome.state[j]))
        self.best.offer(checked, ids, rows, self.x0)
        return outcome

    def parameters(
        self, ids: torch.Tensor, x0: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each pair's parameters: a pair with at most one parameter is scanned exactly (no gradient
        steps), the others optimised and then scanned one parameter at a time (see ``scan``). The scanned
        pairs' plans are offered first, so a pair with more parameters whose bound cannot beat its
        person's bar is not optimised (it keeps its initial values)."""
        if self.scanner is None:
            return self.optimise(ids, x0)
        _, _, params = self.program.boxes(ids)
        params = params.clone()
        multi = self.scanner.coordinates(ids) > 1
        length = (ids != NOOP).sum(1)
        for steps in torch.unique(length[~multi]).tolist():  # shorter first: their plans bound the longer
            single = ~multi & (length == steps)
            if rows is not None:
                single &= self.program.bound(ids) < self.best_cost[rows]
            self._scan_alone(ids, x0, params, torch.nonzero(single).flatten(), rows)
        if rows is not None:
            multi &= self.program.bound(ids) < self.best_cost[rows]
        small = multi & small_boxes(self.scanner, ids)  # every combination tried: exact, no optimiser
        if small.any():
            params[small] = enumerate_small(self.scanner, ids[small], x0[small], params[small])
        multi = torch.nonzero(multi & ~small).flatten()
        if len(multi):
            params[multi] = self.optimise(ids[multi], x0[multi])
            who = rows[multi] if rows is not None else None
            params[multi] = self.scanner.refine(ids[multi], x0[multi], params[multi], who, self.best_cost)
        return params

    def _scan_alone(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        pairs: torch.Tensor,
        rows: torch.Tensor | None,
    ) -> None:
        """Scan the single-parameter ``pairs`` exactly (into ``params``) and offer their plans at once."""
        if not len(pairs) or self.scanner is None:
            return
        who = rows[pairs] if rows is not None else None
        params[pairs] = self.scanner.refine(ids[pairs], x0[pairs], params[pairs], who, self.best_cost)
        if who is not None:
            self.best.offer(
                self.verifier.check(ids[pairs], x0[pairs], params[pairs], who), ids[pairs], who, self.x0
            )

    def gradients(self, x: torch.Tensor) -> torch.Tensor:
        """Per action, the gradient score at state ``x`` (see ``gradient_scores``)."""
        return gradient_scores(self.program, self.verifier.model, self.verifier.goal, x)


@dataclass(frozen=True)
class Space:
    """What a search may try: a compiled catalogue, sequences of at most ``max_length`` actions, and the
    size bound ``max_work`` on pair-steps (sequences x rows x ``steps`` optimisation steps; None: none);
    ``chunk``: pairs per batch of the exhaustive search."""

    program: Program
    max_length: int
    steps: int
    max_work: int | None
    chunk: int

    def bound(self, seq: Sequence[int]) -> float:
        """A real lower bound on a sequence's cost: the sum of its actions' cost floors."""
        return sum(self.program.lower_bounds[a] for a in seq)

    def limit(self, rows: int) -> float:
        """The most sequences per row that ``max_work`` allows."""
        return math.inf if self.max_work is None else self.max_work / (max(rows, 1) * self.steps)

    def levels(self, rows: int) -> list[Sequences]:
        """The canonical sequences per length, after checking the search's size against ``max_work``.

        A search past ``max_work`` is refused before any work with a ``ConfigError`` giving the size and
        the ways to shrink it; the enumeration itself stops as soon as the bound is passed.
        """
        limit = self.limit(rows)
        levels = canonical_levels(self.program.acts, self.max_length, limit)
        count = sum(len(level) for level in levels)
        if count > limit:
            self.too_large(f"at least {count:,} action sequences", rows, levels)
        return levels

    def too_large(self, size: str, rows: int, levels: list[Sequences]) -> None:
        limit = self.limit(rows)
        totals = list(itertools.accumulate(len(level) for level in levels))
        fits = [k for k, total in enumerate(totals, start=1) if total <= limit]
        hint = f"max_length={fits[-1]} ({totals[fits[-1] - 1]:,} sequences), " if fits else ""
        raise ConfigError(
            f"synthesize: the search is too large: {size} (max_length={self.max_length}, "
            f"{len(self.program.acts)} actions) x {rows:,} rows x {self.steps} steps is more than max_work = "
            f"{self.max_work:,} pair-steps. Shrink it: {hint}fewer actions, fewer rows per call, fewer "
            "steps, search='objective' with budget=<sequences per person>, or raise max_work "
            "(None: no limit)."
        )


# ------------------------------------------------------------------------------------ strategies
class Strategy:
    """A search strategy: a frozen dataclass with a ``name`` (as provenance records it) and one ``run``."""

    name: ClassVar[str] = "strategy"

    @property
    def label(self) -> str:
        """The name the record's provenance gives this strategy."""
        return self.name

    def check(self, space: Space, rows: int) -> None:
        """Refuse, before any work, a search larger than ``space.max_work`` (a ``ConfigError``)."""
        space.levels(rows)

    def run(self, space: Space, trials: Trials) -> None:
        """Hand ``trials`` the (sequence, person) pairs to optimise, until the search is over."""
        raise NotImplementedError


@dataclass(frozen=True)
class Exhaustive(Strategy):
    """Every canonical sequence of length 1..max_length, padded with no-ops, with every person in one
    tensor program; pairs whose bound already reaches the person's best plan are skipped (the bound
    tightens from chunk to chunk, shorter sequences first)."""

    name: ClassVar[str] = "vanilla"

    def run(self, space: Space, trials: Trials) -> None:
        n = trials.people
        sequences = [s for level in space.levels(n) for s in level]
        if not sequences:
            return
        ids = space.program.pad(sequences)
        bound = torch.as_tensor([space.bound(s) for s in sequences], dtype=DTYPE)
        pair_seq = torch.arange(len(sequences)).repeat_interleave(n)
        pair_row = torch.arange(n).repeat(len(sequences))
        for start in range(0, len(pair_seq), space.chunk):
            s_idx = pair_seq[start : start + space.chunk]
            r_idx = pair_row[start : start + space.chunk]
            keep = bound[s_idx] < trials.best_cost[r_idx]
            if keep.any():
                trials.evaluate(ids[s_idx[keep]], r_idx[keep])


Frontier = list[tuple[float, int, tuple[int, ...]]]


@dataclass(frozen=True)
class BestFirst(Strategy):
    """The paper's Algorithm 1 with one score function, batched across people in rounds.

    Each round takes, for every person, the next ``round_size`` sequences by score from that person's
    frontier (one order per class of commuting orders; at most ``budget`` in all), skips those whose
    bound reaches the person's best verified plan, optimises the rest together, and pushes their
    one-action extensions with scores from the results.
    """

    score: Score = OBJECTIVE
    budget: int | None = None
    round_size: int = 16

    @property
    def label(self) -> str:
        return self.score.name

    def check(self, space: Space, rows: int) -> None:
        if self.budget is None:
            space.levels(rows)
        elif self.budget > space.limit(rows):
            space.too_large(f"{self.budget:,} sequences per person (budget)", rows, [])

    def run(self, space: Space, trials: Trials) -> None:
        self.check(space, trials.people)
        search = _Frontiers(self, space, trials)
        while True:
            batch_seq, batch_row = search.next_round()
            if not batch_seq:
                return
            outcome = trials.evaluate(space.program.pad(batch_seq), torch.as_tensor(batch_row), outcomes=True)
            if outcome is None:  # evaluate returns outcomes whenever outcomes=True
                raise RuntimeError("best-first search: the trials returned no outcomes for a round.")
            objective, state = outcome
            for j, (seq, person) in enumerate(zip(batch_seq, batch_row, strict=True)):
                if len(seq) < space.max_length:
                    search.push(person, seq, state[j], float(objective[j]))


class _Frontiers:
    """Per person: the frontier of sequences by score, the canonical sequences seen, how many were tried."""

    def __init__(self, strategy: BestFirst, space: Space, trials: Trials) -> None:
        self.strategy, self.space, self.trials = strategy, space, trials
        n = trials.people
        self.swap = swaps(space.program.acts)
        self.counter: Iterator[int] = itertools.count()
        self.frontier: list[Frontier] = [[] for _ in range(n)]
        self.seen: list[set[tuple[int, ...]]] = [set() for _ in range(n)]
        self.tried = [0] * n
        self.budget = strategy.budget if strategy.budget is not None else math.inf
        for person in range(n):
            self.push(person, (), trials.x0[person], 0.0)

    def next_round(self) -> tuple[Sequences, list[int]]:
        """Each person's next ``round_size`` sequences that could still beat their best plan."""
        batch_seq: Sequences = []
        batch_row: list[int] = []
        for person in range(self.trials.people):
            taken = 0
            heap = self.frontier[person]
            while heap and taken < self.strategy.round_size and self.tried[person] < self.budget:
                _, _, seq = heapq.heappop(heap)
                if self.space.bound(seq) >= float(self.trials.best_cost[person]):
                    continue  # cannot beat the best plan, and extensions only add to the bound
                self.tried[person] += 1
                batch_seq.append(seq)
                batch_row.append(person)
                taken += 1
        return batch_seq, batch_row

    def push(self, person: int, prefix: tuple[int, ...], state: torch.Tensor, objective: float) -> None:
        """The one-action extensions of ``prefix`` not seen yet (in normal form), keyed by the score."""
        score, acts = self.strategy.score, self.space.program.acts
        grads = self.trials.gradients(state) if score.gradient else None
        for a in range(len(acts)):
            seq = (*prefix, a)
            if not allowed(seq, acts):
                continue
            canonical = normal_form(seq, self.swap)
            if canonical in self.seen[person]:
                continue
            self.seen[person].add(canonical)
            heapq.heappush(
                self.frontier[person], (score.key(seq, objective, grads), next(self.counter), canonical)
            )
