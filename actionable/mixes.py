"""Alternatives that mix actions: the search again, with every parameterised step made to change something.

With ``k`` > 1 a person is told several plans that use different sets of actions. The search's scans pull
each parameter toward its no-change value, so the cheapest plan it meets for a sequence of two actions is
often one of them alone with the other idle: the mix never shows, though a plan in which both actions are
needed exists. ``busy_catalogue`` splits every action with parameters into *variants* whose box leaves out
one parameter's no-change value (its ``init``): per parameter, the part of its box below it and the part
above it, the other parameters keeping their whole boxes; together the variants cover every step that
moves a parameter. ``search_mixes`` runs the exact-scan search on the sequences of two steps over these
variants (``MIX_LENGTH``; two variants of one action only where it is repeatable) for the sets of actions
a person has no plan for yet, pruned by each person's k-th plan so far. The cheapest of them still has a
step that is not needed where one action alone would pass with the other's smallest change;
``make_needed`` then walks two parameters at a time to the cheapest point where every step is needed.
What comes back is verified under the original catalogue. Whether a step is needed is
decided later, as for every plan (``minimal.without_unneeded``): a mix whose step the plan passes without
loses it and competes under the smaller set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import torch

from actionable.actions import Action, ActionSet
from actionable.errors import SpecError
from actionable.parameters import Param
from actionable.program import NOOP, Plan, Program
from actionable.scan import Scanner, preference
from actionable.schema import DTYPE
from actionable.search import Optimise, Sequences, Trials, canonical_levels
from actionable.verify import Verifier

__all__ = [
    "MIX_LENGTH",
    "Busy",
    "busy_catalogue",
    "make_needed",
    "mix_sequences",
    "needed",
    "search_mixes",
    "sides",
]

MIX_LENGTH = 2  # the longest mixes searched here (longer ones come from the search itself): measured on
# German and Adult (k = 3), mixes of three and four steps took 2-3x the time and added no alternative
MAX_VARIANTS = 200  # variants in all: past it the mixes are not searched (a catalogue of many parameters)


class Busy:
    """A catalogue's busy variants compiled: the ``program`` and, per variant, the original action index."""

    def __init__(self, program: Program, origin: Sequence[int], repeatable: Sequence[bool]) -> None:
        self.program, self.origin, self.repeatable = program, tuple(origin), tuple(repeatable)

    def to_original(self, plan: Plan) -> Plan:
        """A plan of the variants as the same plan of the original actions (parameters are the same)."""
        return plan.but(ids=tuple(self.origin[a] for a in plan.ids))


def sides(param: Param) -> list[Param]:
    """``param`` without its no-change value ``init``: the part of its box below and the part above (each
    starting next to ``init``: the next whole number, the next resolution step, or 1e-6 of the box for a
    real parameter); an empty part is left out."""
    lo, hi = param.bounds
    init = float(param.init)  # type: ignore[arg-type]
    if param.kind == "integer":
        below, above = math.ceil(init) - 1.0, math.floor(init) + 1.0
    else:
        step = param.resolution or (hi - lo) * 1e-6
        below, above = init - step, init + step
    out = []
    if below >= lo:
        out.append(replace(param, bounds=(lo, below), init=below))
    if above <= hi:
        out.append(replace(param, bounds=(above, hi), init=above))
    return out


def busy_catalogue(actions: ActionSet) -> Busy | None:
    """The variants of ``actions`` (see the module's docstring); None when no action has a parameter or
    there would be more than ``MAX_VARIANTS``."""
    variants: list[Action] = []
    origin: list[int] = []
    for a, action in enumerate(actions.actions):
        if not action.params:
            variants.append(Action(**{f: getattr(action, f) for f in _FIELDS}))
            origin.append(a)
            continue
        for i, param in enumerate(action.params):
            for s, side in enumerate(sides(param)):
                fields = {f: getattr(action, f) for f in _FIELDS}  # a plain Action: bound again below
                fields |= {
                    "name": f"{action.name}__busy_{i}_{s}",
                    "params": (*action.params[:i], side, *action.params[i + 1 :]),
                }
                variants.append(Action(**fields))
                origin.append(a)
    if len(variants) > MAX_VARIANTS:
        return None
    kept = [j for j, v in enumerate(variants) if _loads(v, actions)]  # a part of a box may be refused:
    variants, origin = (
        [variants[j] for j in kept],
        [origin[j] for j in kept],
    )  # its effect always out of bounds
    if all(not actions.actions[a].params for a in origin):
        return None
    busy = ActionSet(variants, actions.schema, where=actions.where, allow_protected=actions.allow_protected)
    return Busy(Program(busy), origin, [actions.actions[a].repeatable for a in origin])


def _loads(variant: Action, actions: ActionSet) -> bool:
    """Whether a variant passes the catalogue's checks on its own (its narrower box may not)."""
    try:
        ActionSet([variant], actions.schema, where=actions.where, allow_protected=actions.allow_protected)
    except SpecError:
        return False
    return True


_FIELDS = ("name", "effects", "cost", "text", "params", "pre", "post", "repeatable", "rounding")


def mix_sequences(busy: Busy, max_length: int, limit: float) -> Sequences:
    """The canonical sequences over the variants worth a search for mixes: at least two steps, at least
    one with a parameter, and no action twice unless it is repeatable; shorter first, at most ``limit``."""
    acts = busy.program.acts
    out: Sequences = []
    for level in canonical_levels(acts, max_length)[1:]:
        for seq in level:
            origins = [busy.origin[a] for a in seq]
            twice = len(set(origins)) < len(origins)
            if any(acts[a].params for a in seq) and not (twice and not all(busy.repeatable[a] for a in seq)):
                out.append(seq)
                if len(out) >= limit:
                    return out
    return out


def search_mixes(
    busy: Busy,
    scanner: Scanner,
    make_optimiser: Callable[[Program], Optimise],
    x0: torch.Tensor,
    rows: Sequence[int],
    bar: torch.Tensor,
    have: Mapping[int, set[frozenset[int]]],
    *,
    max_length: int,
    keep: int,
    rank: int,
    chunk: int,
    limit: float,
) -> dict[int, list[Plan]]:
    """Per person (index into ``x0``), the plans of mixes found, verified under the original catalogue
    (``scanner``'s verifier), the ``rank`` cheapest per person with a step not needed moved where every
    step is (``make_needed``); ``bar``: each person's ``rank``-th plan cost so far, what a sequence's cost
    floor must be under to be tried; ``have``: per person, the sets of actions (original indices) that a
    plan with every step needed already uses: their sequences are not searched again."""
    verifier = scanner.verifier
    sequences = mix_sequences(busy, min(max_length, MIX_LENGTH), limit)
    if not sequences:
        return {}
    mine = Verifier(busy.program, verifier.model, verifier.goal, verifier.margin)
    trials = Trials(mine, make_optimiser(busy.program), x0, rows, None, Scanner(mine), keep, rank)
    trials.best.limit(bar)
    _run(busy, trials, sequences, have, chunk)
    found = [(row, busy.to_original(p)) for row in trials.best.by_actions for p in trials.best.ranked(row)]
    if not found:
        return {}
    plans = [plan for _, plan in found]
    stacked, params = verifier.program.stack(plans)
    start = torch.stack([p.x0 for p in plans])
    lacking = _lacking([row for row, _ in found], plans, ~needed(verifier, stacked, start, params), rank)
    if len(lacking):
        params[lacking] = make_needed(scanner, stacked[lacking], start[lacking], params[lacking])
    checked = verifier.check(stacked, start, params)
    out: dict[int, list[Plan]] = {}
    for j, (row, plan) in enumerate(found):
        if bool(checked.found[j]):
            n_steps = int((stacked[j] != NOOP).sum())
            steps = slice(0, n_steps)
            again = plan.but(
                params=checked.params[j, steps],
                step_costs=checked.step_costs[j, steps].to(DTYPE),
                x=checked.x[j],
            )
            out.setdefault(row, []).append(again)
    return out


def _run(
    busy: Busy, trials: Trials, sequences: Sequences, have: Mapping[int, set[frozenset[int]]], chunk: int
) -> None:
    """Every (sequence, person) pair whose set of actions the person has no needed plan for yet and whose
    cost floor is under the person's bar, in chunks of ``chunk`` pairs."""
    n = trials.people
    ids = busy.program.pad(sequences)
    bound = busy.program.bound(ids)
    pair_seq = torch.arange(len(sequences)).repeat_interleave(n)
    pair_row = torch.arange(n).repeat(len(sequences))
    sets = [frozenset(busy.origin[a] for a in seq) for seq in sequences]
    fresh = torch.as_tensor(
        [sets[s] not in have.get(r, ()) for s, r in zip(pair_seq.tolist(), pair_row.tolist(), strict=True)],
        dtype=torch.bool,
    )
    pair_seq, pair_row = pair_seq[fresh], pair_row[fresh]
    for first in range(0, len(pair_seq), chunk):
        s_idx, r_idx = pair_seq[first : first + chunk], pair_row[first : first + chunk]
        take = bound[s_idx] < trials.best_cost[r_idx]
        if take.any():
            trials.evaluate(ids[s_idx[take]], r_idx[take])


def _lacking(people: list[int], plans: list[Plan], lacking: torch.Tensor, most: int) -> torch.Tensor:
    """The plans (indices) with a step not needed, at most ``most`` per person, the cheapest first."""
    order = sorted(torch.nonzero(lacking).flatten().tolist(), key=lambda j: plans[j].cost)
    taken: dict[int, int] = {}
    out = []
    for j in order:
        if taken.get(people[j], 0) < most:
            taken[people[j]] = taken.get(people[j], 0) + 1
            out.append(j)
    return torch.as_tensor(out, dtype=torch.int64)


def needed(verifier: Verifier, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Per plan: whether it fails without any one of its steps (the step replaced by a no-op), checked
    exactly; a plan of one step or none counts as needed."""
    out = torch.ones(len(ids), dtype=torch.bool)
    for j in range(ids.shape[1]):
        live = torch.nonzero((ids[:, j] != NOOP) & ((ids != NOOP).sum(1) > 1)).flatten()
        if len(live):
            without = ids[live].clone()
            without[:, j] = NOOP
            out[live] &= ~verifier.exact(without, x0[live], params[live]).passes
    return out


def make_needed(scanner: Scanner, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Passing plans one of whose steps is not needed, moved where every step is: for each ordered pair of
    parameters, ``trade_points`` values of the first, each with the cheapest passing value of the second
    (an exact scan, the rest held); the cheapest candidate that passes with every step needed. A plan with
    none such is returned as it was.

    The search's plans pull every parameter toward no change, so a mix of two actions where one alone
    would do ends with the other's smallest change: cheaper than any mix in which both are needed, which
    holds the first below what it needs alone and makes up the rest with the second."""
    verifier, program = scanner.verifier, scanner.program
    params = program.round(ids, params)
    active = scanner.active(ids)
    best, best_cost = params.clone(), torch.full((len(ids),), math.inf, dtype=DTYPE)
    coords = [(j, i) for j in range(ids.shape[1]) for i in range(program.slots)]
    for a, b in ((a, b) for a in coords for b in coords if a != b):
        rows = torch.nonzero(active[:, a[0], a[1]] & active[:, b[0], b[1]]).flatten()
        if not len(rows):
            continue
        outer = scanner.grid(ids[rows, a[0]], a[1], scanner.config.trade_points)
        per = outer.shape[1]
        spread = rows.repeat_interleave(per)
        trial = params[spread].clone()
        trial[:, a[0], a[1]] = outer.reshape(-1)
        trial = program.round(ids[spread], trial)
        trial = scanner.coordinate(ids[spread], x0[spread], trial, *b, scanner.config.trade_points)
        exact = verifier.exact(ids[spread], x0[spread], trial)
        good = exact.passes & needed(verifier, ids[spread], x0[spread], trial)
        key = torch.where(good, preference(exact), math.inf).reshape(len(rows), per)
        choice = key.argmin(1)
        cost = key[torch.arange(len(rows)), choice]
        better = cost < best_cost[rows]
        chosen = trial.reshape(len(rows), per, *trial.shape[1:])[torch.arange(len(rows)), choice]
        best[rows[better]] = chosen[better]
        best_cost[rows[better]] = cost[better]
    return torch.where(torch.isfinite(best_cost)[:, None, None], best, params)
