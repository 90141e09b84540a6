"""Two parameters at a time: plans moved along the goal's boundary, where one parameter alone cannot go.

Less of one parameter needs more of another to stay past the margin, so a coordinate scan (``scan``) stops
at the optimiser's local optimum; ``trade`` walks, for each pair of a plan's parameters,
``ScanConfig.trade_points`` values of the first and scans the second exactly at each (the rest held), keeps
the cheapest that passes the exact check and bisects each toward no change. Its cost is the grid times a
scan, so it runs on the final contenders with several parameters only (``trade_plans``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch

from actionable.program import Plan
from actionable.scan import Scanner, preference

__all__ = ["Walk", "trade", "trade_plans"]


class Walk(Protocol):
    """Another way to walk the boundary (``tree_search.TreeSearch`` for a tree model): the values of one
    parameter worth trying, and the best value of one parameter with the others held."""

    def crossings(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, j: int, i: int
    ) -> torch.Tensor: ...

    def coordinate(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, j: int, i: int
    ) -> torch.Tensor: ...


def trade(
    scanner: Scanner, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, walk: Walk | None = None
) -> torch.Tensor:
    """Passing plans made cheaper two parameters at a time: for each pair of parameters, each of
    ``trade_points`` values of the first with the best value of the second for it (a coordinate scan:
    ``trade_points`` values, every change of passing, conditions or margin bisected), the rest held; the
    cheapest that passes, then a bisection of each toward no change. One parameter alone cannot move along the goal's boundary (less
    of one needs more of the other), which leaves the optimiser's local optima where they are; this walks
    along it, into narrow passing strips a grid of both would step over. For final plans (one or a few per
    person): its cost is the grid times a scan. ``walk``: the first parameter's values and the second's
    scan come from it instead (every change of a tree model's cell along each)."""
    params = scanner.program.round(ids, params)
    active = scanner.active(ids)
    _, _, init = scanner.program.boxes(ids)
    coords = [(j, i) for j in range(ids.shape[1]) for i in range(scanner.program.slots)]
    for a, b in ((a, b) for a in coords for b in coords if a < b):
        rows = torch.nonzero(active[:, a[0], a[1]] & active[:, b[0], b[1]]).flatten()
        if not len(rows):
            continue
        if walk is None:
            outer = scanner.grid(ids[rows, a[0]], a[1], scanner.config.trade_points)  # rows x values of a
        else:
            outer = walk.crossings(ids[rows], x0[rows], params[rows], *a)
            most = 4 * scanner.config.trade_points  # edges of cells, spread evenly where there are more
            pick = torch.linspace(0, outer.shape[1] - 1, min(outer.shape[1], most)).round().long()
            outer = outer[:, pick]
        per = outer.shape[1]
        spread = rows.repeat_interleave(per)
        trial = params[spread].clone()
        trial[:, a[0], a[1]] = outer.reshape(-1)
        trial = scanner.program.round(ids[spread], trial)
        if walk is None:
            trial = scanner.coordinate(ids[spread], x0[spread], trial, *b, scanner.config.trade_points)
        else:
            trial = walk.coordinate(ids[spread], x0[spread], trial, *b)
        candidates = torch.cat([params[rows][:, None], trial.reshape(len(rows), per, *trial.shape[1:])], 1)
        flat = candidates.flatten(0, 1)
        exact = scanner.verifier.exact(
            ids[rows].repeat_interleave(per + 1, 0), x0[rows].repeat_interleave(per + 1, 0), flat
        )
        choice = preference(exact).reshape(len(rows), per + 1).argmin(1)
        moved = exact.passes.reshape(len(rows), per + 1)[torch.arange(len(rows)), choice] & (choice > 0)
        sub = candidates[torch.arange(len(rows)), choice][moved]
        rows = rows[moved]  # a plan the scan left where it was was bisected by the refinement already
        if not len(rows):
            continue
        for j, i in (a, b):
            sub = scanner.bisect(ids[rows], x0[rows], sub, j, i, init[rows, j, i])
        params[rows] = sub
    return params


def trade_plans(
    scanner: Scanner,
    plans: Mapping[tuple[int, int], Plan],
    per_person: int = 2,
    walk: Walk | None = None,
) -> dict[tuple[int, int], Plan]:
    """Verified plans after ``trade``, each replaced where the exact check finds the traded one cheaper.

    Only plans with two parameters or more can gain (one parameter was scanned exactly already): the
    ``per_person`` cheapest of them per person (keys: (person, rank)) are traded."""
    out = dict(plans)
    taken: dict[int, int] = {}
    keys = []
    for key, plan in sorted(plans.items(), key=lambda item: item[1].cost):
        several = scanner.program.parameter_count(plan.ids) >= 2
        if several and taken.get(key[0], 0) < per_person:
            taken[key[0]] = taken.get(key[0], 0) + 1
            keys.append(key)
    if not keys:
        return out
    ids, params = scanner.program.stack([plans[key] for key in keys])
    x0 = torch.stack([plans[key].x0 for key in keys])
    checked = scanner.verifier.check(ids, x0, trade(scanner, ids, x0, params, walk))
    for j, key in enumerate(keys):
        plan = plans[key]
        if bool(checked.found[j]) and float(checked.cost[j]) < plan.cost - 1e-12:
            n = len(plan.ids)
            new = checked.params[j, :n], checked.step_costs[j, :n], checked.x[j]
            out[key] = plan.but(params=new[0], step_costs=new[1], x=new[2])
    return out
