"""Every combination of a few whole-number parameters, checked exactly: small boxes need no optimiser.

A sequence whose parameters are all whole numbers with few values between them (at most
``ScanConfig.exact_product`` combinations) is solved exactly by trying them all at once with the exact check:
the cheapest passing combination is its optimum on the box, which neither the optimiser nor one parameter at
a time is sure to reach (a cheaper plan may need two parameters moved together).
"""

from __future__ import annotations

import itertools

import torch

from actionable.scan import Scanner, preference

__all__ = ["enumerate_small", "small_boxes"]


def small_boxes(scanner: Scanner, ids: torch.Tensor) -> torch.Tensor:
    """Per pair: whether every parameter of its sequence is a whole number scanned in full and all of them
    together have at most ``exact_product`` combinations."""
    active = scanner.active(ids)
    index = scanner.program.rows(ids)
    whole = scanner.exhaustive[index]  # pairs x steps x slots
    counts = torch.where(active, scanner.lengths[index], 1).to(torch.float64)
    return (whole | ~active).all((1, 2)) & (counts.flatten(1).prod(1) <= scanner.config.exact_product)


def enumerate_small(
    scanner: Scanner, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor
) -> torch.Tensor:
    """``params`` with each pair's parameters set to the best combination of its box (``small_boxes``
    pairs only): the cheapest that passes, else the nearest to passing (see ``preference``)."""
    out = params.clone()
    active = scanner.active(ids)
    sequences, which = torch.unique(ids, dim=0, return_inverse=True)
    for s in range(len(sequences)):
        rows = torch.nonzero(which == s).flatten()
        coords = [(j, i) for j, i in torch.nonzero(active[rows[0]]).tolist()]
        if not coords:
            continue
        actions = ids[rows[0]]
        axes = [scanner.values[actions[j], i, : scanner.lengths[actions[j], i]].tolist() for j, i in coords]
        combos = torch.as_tensor(list(itertools.product(*axes)), dtype=params.dtype)  # combos x coords
        values = combos[None].expand(len(rows), -1, -1)
        exact = scanner.try_values(ids[rows], x0[rows], params[rows], coords, values)
        choice = preference(exact).argmin(1)
        for c, (j, i) in enumerate(coords):
            out[rows, j, i] = combos[choice, c]
    return out
