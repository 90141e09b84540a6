"""Two parameters at a time: plans moved along the goal's boundary, where one parameter alone cannot go.

Less of one parameter needs more of another to stay past the margin, so a coordinate scan (``scan``) stops
at the optimiser's local optimum; ``trade`` tries, for each pair of a plan's parameters, every
combination of ``ScanConfig.trade_points`` values of each (the rest held), keeps the cheapest that passes
the exact check and bisects each toward no change. Its cost is quadratic in the grid, so it runs on the
final contenders only (``trade_plans``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from actionable.program import Plan
from actionable.scan import Scanner, preference
from actionable.verify import K

__all__ = ["trade", "trade_plans"]


def trade(scanner: Scanner, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Passing plans made cheaper two parameters at a time: for each pair of parameters, every
    combination of ``trade_points`` values of each (the rest held), the cheapest that passes, then a
    bisection of each toward no change. One parameter alone cannot move along the goal's boundary
    (less of one needs more of the other), which leaves the optimiser's local optima where they are;
    this walks along it. For final plans (one or a few per person): its cost is quadratic in the grid."""
    params = scanner.program.round(ids, params)
    active = scanner.active(ids)
    _, _, init = scanner.program.boxes(ids)
    coords = [(j, i) for j in range(ids.shape[1]) for i in range(scanner.program.slots)]
    for a, b in ((a, b) for a in coords for b in coords if a < b):
        rows = torch.nonzero(active[:, a[0], a[1]] & active[:, b[0], b[1]]).flatten()
        if not len(rows):
            continue
        ga = scanner.grid(ids[rows, a[0]], a[1], scanner.config.trade_points)
        gb = scanner.grid(ids[rows, b[0]], b[1], scanner.config.trade_points)
        both = ga[:, :, None].expand(-1, -1, gb.shape[1]), gb[:, None, :].expand(-1, ga.shape[1], -1)
        grid = torch.stack(both, dim=-1).flatten(1, 2)
        current = torch.stack([params[rows, a[0], a[1]], params[rows, b[0], b[1]]], dim=-1)[:, None, :]
        candidates = torch.cat([current, grid], dim=1)
        exact = scanner.try_values(ids[rows], x0[rows], params[rows], [a, b], candidates)
        choice = preference(exact).argmin(1)
        chosen = candidates[torch.arange(len(rows)), choice]
        moved = exact.passes[torch.arange(len(rows)), choice] & (choice > 0)
        rows = rows[moved]  # a plan the grid left where it was was bisected by the scans already
        if not len(rows):
            continue
        sub = params[rows].clone()
        sub[:, a[0], a[1]], sub[:, b[0], b[1]] = chosen[moved, 0], chosen[moved, 1]
        for j, i in (a, b):
            sub = scanner.bisect(ids[rows], x0[rows], sub, j, i, init[rows, j, i])
        params[rows] = sub
    return params


def trade_plans(scanner: Scanner, plans: Mapping[K, Plan]) -> dict[K, Plan]:
    """Verified plans after ``trade``, each replaced where the exact check finds the traded one cheaper."""
    out = dict(plans)
    keys = [key for key, plan in plans.items() if len(plan.ids)]
    if not keys:
        return out
    ids, params = scanner.program.stack([plans[key] for key in keys])
    x0 = torch.stack([plans[key].x0 for key in keys])
    checked = scanner.verifier.check(ids, x0, trade(scanner, ids, x0, params))
    for j, key in enumerate(keys):
        plan = plans[key]
        if bool(checked.found[j]) and float(checked.cost[j]) < plan.cost - 1e-12:
            n = len(plan.ids)
            new = checked.params[j, :n], checked.step_costs[j, :n], checked.x[j]
            out[key] = plan.but(params=new[0], step_costs=new[1], x=new[2])
    return out
