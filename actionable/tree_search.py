"""Parameters for a tree ensemble without gradients: the values where a plan's outcome can change.

A tree ensemble is piecewise constant: along one parameter, a plan's outcome changes only where a column
the plan writes crosses one of the ensemble's split thresholds, or where a condition starts or stops
holding. ``Cells`` names the cell a final state lies in (per column the ensemble splits on and the
catalogue writes, how many of its thresholds the value lies above, as the ensemble compares: float32
rounding where it casts). ``TreeSearch.crossings`` finds, per pair, every change of cell (or of the
conditions' validity) along one parameter: the parameter's scan grid first, then bisection of every grid
cell whose two ends differ, until each change sits between two values at the parameter's resolution
(whole numbers exactly; real ones within ``2**-bisect`` of a grid cell). Both values at each change are
candidates, with the grid, so the cheapest passing value of a cell is among them when a step's cost grows
with the parameter's distance from no change. A cell whose two grid ends agree is not searched: exact
when each written column moves monotonically with the parameter (``x + amount``, ``x * (1 + rate)``).

``TreeSearch.run`` replaces the gradient optimiser: a pair's candidates per parameter (the others at no
change), all combinations where they are few (``product``), else ``sweeps`` passes of one parameter at a
time, each from the others' current values; the cheapest passing combination wins, else the nearest to
passing (``scan.preference``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.models.trees import TreeEnsemble, tree_layer
from actionable.program import Program
from actionable.scan import Scanner, preference
from actionable.schema import DTYPE

__all__ = ["PRODUCT", "Cells", "TreeSearch", "is_tree_model"]

PRODUCT = 4096  # combinations of per-parameter candidates tried together per pair
ROWS_PER_PASS = 1 << 16  # candidate rows per rollout


def is_tree_model(model: TorchModel) -> bool:
    """Whether the model's network holds a tree ensemble (piecewise constant: no useful gradient)."""
    return tree_layer(model.network) is not None


class Cells:
    """The cell of the ensemble's partition a canonical row lies in, along the columns a catalogue writes."""

    def __init__(self, model: TorchModel, program: Program) -> None:
        layer = tree_layer(model.network)
        if layer is None:
            raise TypeError("Cells: the model holds no tree ensemble")
        self.layer: TreeEnsemble = layer
        self.before = _before(model.network, layer)
        written = {name for action in program.acts for name in action.effects}
        canonical = {c for name in written for c in range(*_span(program, name))}
        index = self._inputs(program.schema.width)
        splits = layer.splits()
        self.columns = [j for j in sorted(splits) if int(index[j]) in canonical]
        self.thresholds = [torch.as_tensor(splits[j], dtype=torch.float64) for j in self.columns]

    def _inputs(self, width: int) -> torch.Tensor:
        """Per ensemble input, the canonical column it reads (its ColumnMap index; itself without one)."""
        for module in self.before:
            if isinstance(module, L.ColumnMap):
                return module.index
        return torch.arange(width)

    def of(self, x: torch.Tensor) -> torch.Tensor:
        """Per row, per written column: how many thresholds its value lies above (n x columns)."""
        z = x.to(torch.float64)
        for module in self.before:
            z = module(z)
        if self.layer.float32:
            z = z.to(torch.float32).to(torch.float64)
        if not self.columns:
            return torch.zeros(len(x), 0, dtype=torch.int64)
        return torch.stack(
            [
                torch.searchsorted(t, z[:, j].contiguous())
                for j, t in zip(self.columns, self.thresholds, strict=True)
            ],
            dim=1,
        )


def _span(program: Program, name: str) -> tuple[int, int]:
    part = program.schema.slice(name)
    return part.start, part.stop


def _before(network: nn.Module, layer: TreeEnsemble) -> list[nn.Module]:
    """The modules that map the canonical tensor to the ensemble's inputs (the Pipeline's column map)."""
    flat: list[nn.Module] = []
    stack: list[nn.Module] = [network]
    while stack:
        module = stack.pop(0)
        if isinstance(module, nn.Sequential):
            stack = list(module) + stack
        elif module is layer:
            return flat
        else:
            flat.append(module)
    return flat


class TreeSearch:
    """Gradient-free parameters for a tree model (see the module's text); ``run`` is an ``Optimise``."""

    def __init__(self, scanner: Scanner, cells: Cells, *, product: int = PRODUCT, sweeps: int = 2) -> None:
        self.scanner, self.cells = scanner, cells
        self.program = scanner.program
        self.product, self.sweeps = product, sweeps

    def signature(self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Per pair, its final cell and whether its conditions hold (pairs x (columns + 1))."""
        out = []
        for start in range(0, len(ids), ROWS_PER_PASS):
            block = slice(start, start + ROWS_PER_PASS)
            with torch.no_grad():
                path = self.program.rollout(ids[block], x0[block], params[block], exact=True)
            out.append(torch.cat([self.cells.of(path.x), path.ok[:, None].to(torch.int64)], dim=1))
        return torch.cat(out) if out else torch.zeros(0, len(self.cells.columns) + 1, dtype=torch.int64)

    def crossings(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, j: int, i: int
    ) -> torch.Tensor:
        """Per pair, the values of parameter ``i`` of step ``j`` worth trying (pairs x values, padded by
        repeating): the box's ends and both sides of every change of cell or validity along it (within a
        cell the outcome is the same, so its edges are the only values a growing cost can prefer)."""
        scanner = self.scanner
        actions = ids[:, j]
        grid = scanner.grid(actions, i)
        pairs, g = grid.shape
        trial = params.repeat_interleave(g, 0)
        trial[:, j, i] = grid.reshape(-1)
        rep = ids.repeat_interleave(g, 0)
        trial = self.program.round(rep, trial)
        values = trial[:, j, i].reshape(pairs, g)
        sig = self.signature(rep, x0.repeat_interleave(g, 0), trial).reshape(pairs, g, -1)
        changed = (sig[:, 1:] != sig[:, :-1]).any(-1)
        every = scanner.exhaustive[actions, i][:, None]  # every value on the grid: its changes are exact
        near, at = torch.nonzero(changed & every, as_tuple=True)
        edges = values[:, [0, -1]]  # within a cell only its edges can be cheapest: the box's ends, and
        who, k = torch.nonzero(changed & ~every, as_tuple=True)
        lo, hi = values[who, k], values[who, k + 1]
        sig_lo, sig_hi = sig[who, k], sig[who, k + 1]
        step = scanner.resolution[actions[who], i]
        rounds = int(scanner.halvings[actions, i].max()) if len(who) else 0
        found_who, found = [near, near], [values[near, at], values[near, at + 1]]  # both sides of a change
        for _ in range(rounds):
            done = (hi - lo <= step * (1 + 1e-9)) & (step > 0)
            found_who += [who[done], who[done]]
            found += [lo[done], hi[done]]
            who, lo, hi, sig_lo, sig_hi = who[~done], lo[~done], hi[~done], sig_lo[~done], sig_hi[~done]
            step = step[~done]
            if not len(who):
                break
            middle = params[who].clone()
            middle[:, j, i] = (lo + hi) / 2
            middle = self.program.round(ids[who], middle)
            mid = middle[:, j, i]
            stuck = (mid <= lo) | (mid >= hi)  # the resolution is reached: the change lies between lo and hi
            sig_mid = self.signature(ids[who], x0[who], middle)
            left = (sig_mid != sig_lo).any(-1) & ~stuck
            right = (sig_mid != sig_hi).any(-1) & ~stuck
            found_who += [who[stuck], who[stuck]]
            found += [lo[stuck], hi[stuck]]
            who, lo, hi, sig_lo, sig_hi, step = (
                torch.cat([who[left], who[right]]),
                torch.cat([lo[left], mid[right]]),
                torch.cat([mid[left], hi[right]]),
                torch.cat([sig_lo[left], sig_mid[right]]),
                torch.cat([sig_mid[left], sig_hi[right]]),
                torch.cat([step[left], step[right]]),
            )
        found_who += [who, who]
        found += [lo, hi]
        return _padded(edges, torch.cat(found_who), torch.cat(found))

    def run(self, ids: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Each pair's parameters: the best combination of its candidates (see the module's text)."""
        _, _, params = self.program.boxes(ids)
        params = self.program.round(ids, params.clone())
        active = self.scanner.active(ids)
        sequences, which = torch.unique(ids, dim=0, return_inverse=True)
        for s in range(len(sequences)):
            rows = torch.nonzero(which == s).flatten()
            coords = [(j, i) for j, i in torch.nonzero(active[rows[0]]).tolist()]
            if coords:
                params[rows] = self._sequence(ids[rows], x0[rows], params[rows], coords)
        return params

    def _sequence(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, coords: list[tuple[int, int]]
    ) -> torch.Tensor:
        """The pairs of one sequence: all combinations of their candidates, or sweeps over the coordinates."""
        axes = [self.crossings(ids, x0, params, j, i) for j, i in coords]
        sizes = [a.shape[1] for a in axes]
        total = 1
        for size in sizes:
            total *= size
        out, sweeps = params, self.sweeps
        if total <= self.product:
            index = torch.as_tensor(list(itertools.product(*(range(n) for n in sizes))), dtype=torch.int64)
            values = torch.stack([a[:, index[:, c]] for c, a in enumerate(axes)], dim=2)
            out, sweeps = self._best(ids, x0, params, coords, values), 1
        if len(coords) == 1:
            return out
        # each parameter again from the others' values: the changes of cell move when another parameter
        # writes the same column, or a later step reads what an earlier one wrote
        for _ in range(sweeps):
            for j, i in coords:
                out = self.coordinate(ids, x0, out, j, i)
        return out

    def coordinate(
        self, ids: torch.Tensor, x0: torch.Tensor, params: torch.Tensor, j: int, i: int
    ) -> torch.Tensor:
        """``params`` with parameter ``i`` of step ``j`` at its best candidate, the others held."""
        return self._best(ids, x0, params, [(j, i)], self.crossings(ids, x0, params, j, i)[:, :, None])

    def _best(
        self,
        ids: torch.Tensor,
        x0: torch.Tensor,
        params: torch.Tensor,
        coords: list[tuple[int, int]],
        values: torch.Tensor,
    ) -> torch.Tensor:
        """``params`` with ``coords`` set to each pair's preferred candidate (``values``: pairs x k x coords)."""
        held = torch.stack([params[:, j, i] for j, i in coords], dim=1)[:, None, :]
        values = torch.cat([held, values], dim=1)  # the values in hand stay a candidate
        exact = self.scanner.try_values(ids, x0, params, coords, values)
        choice = preference(exact).argmin(1)
        out = params.clone()
        pick = torch.arange(len(ids))
        for c, (j, i) in enumerate(coords):
            out[:, j, i] = values[pick, choice, c]
        return self.program.round(ids, out)


def _padded(grid: torch.Tensor, who: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
    """Per pair, its grid values and its extra values, distinct and sorted, padded by repeating the last."""
    rows = [grid[p] for p in range(len(grid))]
    if len(who):
        order = torch.argsort(who, stable=True)
        who, extra = who[order], extra[order]
        counts = torch.bincount(who, minlength=len(grid)).tolist()
        for p, part in enumerate(torch.split(extra, counts)):
            if len(part):
                rows[p] = torch.cat([rows[p], part])
    rows = [torch.unique(r) for r in rows]
    width = max(len(r) for r in rows) if rows else 1
    out = torch.empty(len(rows), width, dtype=DTYPE)
    for p, r in enumerate(rows):
        out[p, : len(r)] = r
        out[p, len(r) :] = r[-1]
    return out
