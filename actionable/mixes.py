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
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

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
    "MIN_CHANGE",
    "MIX_LENGTH",
    "ZOOMS",
    "Busy",
    "busy_catalogue",
    "make_needed",
    "mix_sequences",
    "needed",
    "search_mixes",
    "shrink",
    "sides",
    "walk_plans",
]

MIX_LENGTH = 2  # the longest mixes searched here (longer ones come from the search itself): measured on
# German and Adult (k = 3), mixes of three and four steps took 2-3x the time and added no alternative
K = TypeVar("K", bound=Hashable)
MIN_CHANGE = 0.001  # a real parameter without a resolution: the busy parts start this share of its box away
ZOOMS = 1  # make_needed: rounds of values between the best one's neighbours, after the first grid
MAX_VARIANTS = 200  # variants in all: past it the mixes are not searched (a catalogue of many parameters)


class Busy:
    """A catalogue's busy variants compiled: the ``program`` and, per variant, the original action index."""

    def __init__(self, program: Program, origin: Sequence[int]) -> None:
        self.program, self.origin = program, tuple(origin)

    def to_original(self, plan: Plan, slots: int) -> Plan:
        """A plan of the variants as the same plan of the original actions: the same parameters, in the
        original program's ``slots`` (the variants' may be fewer: an action may have no variant)."""
        params = torch.zeros(len(plan.ids), slots, dtype=plan.params.dtype)
        params[:, : plan.params.shape[1]] = plan.params
        return plan.but(ids=tuple(self.origin[a] for a in plan.ids), params=params)


def sides(param: Param) -> list[Param]:
    """``param`` without its no-change value ``init``: the part of its box below and the part above, each
    starting at the grid point next to ``init`` (whole numbers, the resolution grid, or ``MIN_CHANGE`` of
    the box for a real parameter, so that no mix advises a token change); an empty part, or a box of one
    value, is left out."""
    lo, hi = param.bounds
    init = float(param.init)  # type: ignore[arg-type]
    if hi <= lo:
        return []
    step = 1.0 if param.kind == "integer" else param.resolution
    if step:  # the grid points either side of init (init itself need not be on the grid)
        below, above = (math.ceil(init / step) - 1) * step, (math.floor(init / step) + 1) * step
    else:  # the least change worth advising in a mix: MIN_CHANGE of the box (or declare a resolution)
        below, above = init - (hi - lo) * MIN_CHANGE, init + (hi - lo) * MIN_CHANGE
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
            variants.append(_variant(action, len(variants), action.params))
            origin.append(a)
            continue
        for i, param in enumerate(action.params):
            for side in sides(param):
                params = (*action.params[:i], side, *action.params[i + 1 :])
                variants.append(_variant(action, len(variants), params))
                origin.append(a)
    if len(variants) > MAX_VARIANTS:
        return None
    kept = [j for j, v in enumerate(variants) if _loads(v, actions)]  # a part of a box may be refused
    variants, origin = [variants[j] for j in kept], [origin[j] for j in kept]  # (an effect out of bounds)
    if all(not actions.actions[a].params for a in origin):
        return None
    busy = ActionSet(variants, actions.schema, where=actions.where, allow_protected=actions.allow_protected)
    return Busy(Program(busy), origin)


def _variant(action: Action, j: int, params: Sequence[Param]) -> Action:
    """A plain copy of ``action`` with other parameters, named ``busy_<j>`` (unique among the variants,
    whatever the catalogue's names), to be bound again."""
    return Action(**{f: getattr(action, f) for f in _FIELDS} | {"name": f"busy_{j}", "params": tuple(params)})


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
            once = len(set(origins)) == len(origins)  # (a variant copies its action's ``repeatable``)
            if any(acts[a].params for a in seq) and (once or all(acts[a].repeatable for a in seq)):
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
    slots = verifier.program.slots
    best = trials.best
    found = [(row, busy.to_original(p, slots)) for row in best.by_actions for p in best.ranked(row)]
    if not found:
        return {}
    plans = [plan for _, plan in found]
    stacked, params = verifier.program.stack(plans)
    start = torch.stack([p.x0 for p in plans])
    lacking = _lacking([row for row, _ in found], plans, ~needed(verifier, stacked, start, params), rank)
    if len(lacking):
        params[lacking] = make_needed(scanner, stacked[lacking], start[lacking], params[lacking])
    # neither a walk's grid nor a busy part's end need be the least passing change
    params = shrink(scanner, stacked, start, params)
    checked = verifier.check(stacked, start, params)
    out: dict[int, list[Plan]] = {}
    for j, (row, plan) in enumerate(found):
        if bool(checked.found[j]):
            n_steps = int((stacked[j] != NOOP).sum())
            steps = slice(0, n_steps)
            again = plan.but(
                params=checked.params[j, steps],
                step_costs=checked.step_costs[j, steps],
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
    several = (ids != NOOP).sum(1) > 1
    for j in range(ids.shape[1]):
        live = torch.nonzero((ids[:, j] != NOOP) & several).flatten()
        if len(live):
            without = ids[live].clone()
            without[:, j] = NOOP
            out[live] &= ~verifier.exact(without, x0[live], params[live]).passes
    return out


def make_needed(scanner: Scanner, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Passing plans moved to the cheapest point found where every step is needed: for each ordered pair
    of parameters, ``trade_points`` values of the first, each with the cheapest passing value of the
    second (an exact scan, the rest held), then ``ZOOMS`` times as many values between the best one's
    neighbours; the cheapest candidate that passes with every step needed (the plan as it is, if it
    does). A plan with none such is returned as it was.

    The search's plans pull every parameter toward no change, so a mix of two actions where one alone
    would do ends with the other's smallest change: cheaper than any mix in which both are needed, which
    holds the first below what it needs alone and makes up the rest with the second; and a mix in which
    both are needed lies on the goal's boundary, where one parameter alone cannot move."""
    verifier, program = scanner.verifier, scanner.program
    params = program.round(ids, params)
    active = scanner.active(ids)
    start = verifier.exact(ids, x0, params)
    best = params.clone()
    best_cost = torch.where(start.passes & needed(verifier, ids, x0, params), start.cost, math.inf)
    coords = [(j, i) for j in range(ids.shape[1]) for i in range(program.slots)]
    for a, b in ((a, b) for a in coords for b in coords if a != b):
        rows = torch.nonzero(active[:, a[0], a[1]] & active[:, b[0], b[1]]).flatten()
        if not len(rows):
            continue
        outer = scanner.grid(ids[rows, a[0]], a[1], scanner.config.trade_points)
        for _ in range(ZOOMS + 1):
            chosen, cost, choice = _walk(scanner, ids[rows], x0[rows], params[rows], a, b, outer)
            better = cost < best_cost[rows]
            best[rows[better]] = chosen[better]
            best_cost[rows[better]] = cost[better]
            pick = torch.arange(len(rows))
            left = outer[pick, (choice - 1).clamp(min=0)]
            right = outer[pick, (choice + 1).clamp(max=outer.shape[1] - 1)]
            steps = torch.linspace(0, 1, scanner.config.trade_points, dtype=DTYPE)[None, :]
            outer = left[:, None] + steps * (right - left)[:, None]
    return torch.where(torch.isfinite(best_cost)[:, None, None], best, params)


def _walk(
    scanner: Scanner,
    ids: torch.Tensor,
    x0: torch.Tensor,
    params: torch.Tensor,
    a: tuple[int, int],
    b: tuple[int, int],
    outer: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per plan: each ``outer`` value of parameter ``a`` with the cheapest passing value of ``b``; the
    cheapest candidate with every step needed, its cost (infinity where none) and its index in ``outer``."""
    verifier, program = scanner.verifier, scanner.program
    per = outer.shape[1]
    spread = torch.arange(len(ids)).repeat_interleave(per)
    trial = params[spread].clone()
    trial[:, a[0], a[1]] = outer.reshape(-1)
    trial = program.round(ids[spread], trial)
    trial = scanner.coordinate(ids[spread], x0[spread], trial, *b, scanner.config.trade_points)
    exact = verifier.exact(ids[spread], x0[spread], trial)
    good = exact.passes & needed(verifier, ids[spread], x0[spread], trial)
    key = torch.where(good, preference(exact), math.inf).reshape(len(ids), per)
    choice = key.argmin(1)
    pick = torch.arange(len(ids))
    chosen = trial.reshape(len(ids), per, *trial.shape[1:])[pick, choice]
    return chosen, key[pick, choice], choice


def shrink(scanner: Scanner, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Each parameter of passing plans bisected toward the least change next to its no-change value (the
    cheapest passing point met), one after another; a plan that loses a needed step on the way keeps the parameters it had."""
    verifier, program = scanner.verifier, scanner.program
    active = scanner.active(ids)
    _, span, init = program.boxes(ids)
    out = params.clone()
    for j in range(ids.shape[1]):
        for i in range(program.slots):
            rows = torch.nonzero(active[:, j, i]).flatten()
            if not len(rows):
                continue
            # toward the busy part's end next to no change, not past it (see ``sides``)
            least = scanner.resolution[program.rows(ids[rows, j]), i]
            least = torch.where(least > 0, least, span[rows, j, i] * MIN_CHANGE)
            side = torch.where(out[rows, j, i] >= init[rows, j, i], 1.0, -1.0)
            toward = init[rows, j, i] + side * least
            out[rows] = scanner.bisect(ids[rows], x0[rows], out[rows], j, i, toward)
    keep = verifier.exact(ids, x0, out).passes & needed(verifier, ids, x0, out)
    return torch.where(keep[:, None, None], out, params)


def walk_plans(scanner: Scanner, plans: Mapping[K, Plan]) -> dict[K, Plan]:
    """Plans of several steps and parameters moved to the cheapest point found where every step is
    still needed (``make_needed``, then ``shrink``), each kept where the exact check finds it cheaper."""
    program, verifier = scanner.program, scanner.verifier
    keys = [k for k, p in plans.items() if len(p.ids) >= 2 and program.parameter_count(p.ids) >= 2]
    out = dict(plans)
    if not keys:
        return out
    ids, params = program.stack([plans[k] for k in keys])
    x0 = torch.stack([plans[k].x0 for k in keys])
    params = shrink(scanner, ids, x0, make_needed(scanner, ids, x0, params))
    checked = verifier.check(ids, x0, params)
    keep = checked.found & needed(verifier, ids, x0, checked.params)
    for j, key in enumerate(keys):
        plan = plans[key]
        if bool(keep[j]) and float(checked.cost[j]) < plan.cost - 1e-12:
            n = len(plan.ids)
            out[key] = plan.but(
                params=checked.params[j, :n], step_costs=checked.step_costs[j, :n], x=checked.x[j]
            )
    return out
