"""A mixed-integer linear program built row by row and solved with HiGHS (``scipy.optimize.milp``).

``Mip`` holds bounded variables (real, integer or binary), constraints on affine ``Form``s (sparse rows)
and on matrices (dense blocks, for a network's layers), and epigraph variables for the convex atoms of a
cost (``Sum``): ``abs`` and ``max`` exactly, a square by tangent cuts that ``solve`` refines at each
solution until the gap is closed (every cut lies below the square, so every bound stays valid).

Two modes make its answers safe against the solver's tolerances. ``"relax"`` widens every constraint by a
small tolerance relative to its size, so a real plan is feasible with room to spare: an infeasible
program proves that no plan exists, and its bound is below every real plan's cost. ``"tight"`` narrows
the constraints a plan must meet (conditions, the goal, rounding) by the same amount, so the plan it
returns passes the exact re-check; its bound is not used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from actionable.affine import Atom, Form, Sum

__all__ = [
    "MAX_CUT_ROUNDS",
    "MAX_VALUE",
    "PRESOLVE",
    "TIGHT",
    "TIGHT_STRICT",
    "TOLERANCE",
    "Mip",
    "Mode",
    "Solved",
    "Status",
]

Mode = Literal["relax", "tight"]
Status = Literal["optimal", "infeasible", "cutoff", "time", "failed"]
TOLERANCE = 1e-9  # relative to a constraint's size: how much "relax" widens and "tight" narrows it
MAX_VALUE = 1e9  # a variable or a network value beyond this makes big-M constants numerically unsafe
MAX_CUT_ROUNDS = 40  # re-solves that add tangents to squares of a cost
TIGHT = 1e-6  # "tight" mode: past HiGHS's primal feasibility tolerance (1e-7)
TIGHT_STRICT = 1e-5  # and past its integrality tolerance (1e-6), for strict inequalities and rounding ties
PRESOLVE = True  # off only to confirm an infeasible verdict (see solve)


@dataclass(frozen=True)
class Solved:
    """A solve: status, the solution (None without one), its cost with squares exact, and the proved bound
    (``cutoff``: the program is infeasible below the cutoff, so the bound is the cutoff)."""

    status: Status
    x: np.ndarray | None
    value: float
    bound: float
    seconds: float


class Mip:
    """Variables, constraints and cost epigraphs of one mixed-integer program (see the module's text)."""

    def __init__(self, mode: Mode, tolerance: float = TOLERANCE) -> None:
        self.mode, self.tolerance = mode, tolerance
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[Form, float, float]] = []
        self.blocks: list[tuple[np.ndarray | sparse.csr_array, np.ndarray, np.ndarray]] = []
        self.squares: list[tuple[int, Form]] = []  # epigraph variable, the affine form squared
        self.infeasible: str | None = None  # why, when a constant constraint already fails

    @property
    def n(self) -> int:
        return len(self.lb)

    def var(self, lo: float, hi: float, integer: bool = False) -> Form:
        """A new variable in ``[lo, hi]`` (whole numbers when ``integer``) as a form."""
        if integer:
            lo, hi = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
        if lo > hi and self.infeasible is None:
            self.infeasible = f"a variable's range [{lo:g}, {hi:g}] is empty"
        if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) > MAX_VALUE:
            raise OverflowError(f"a quantity ranges over [{lo:g}, {hi:g}], beyond +-{MAX_VALUE:g}")
        self.lb.append(float(lo))
        self.ub.append(float(hi))
        self.integer.append(integer)
        return Form(0.0, {self.n - 1: 1.0})

    def vars(self, count: int, lo: float, hi: float, integer: bool = False) -> int:
        """``count`` new variables in ``[lo, hi]`` (finite, small); the index of the first."""
        first = self.n
        self.lb += [float(lo)] * count
        self.ub += [float(hi)] * count
        self.integer += [integer] * count
        return first

    def span(self, form: Form) -> tuple[float, float]:
        """The range of a form over the variables' boxes (interval arithmetic; exact for one form)."""
        lo = hi = form.const
        for v, c in form.terms.items():
            a, b = c * self.lb[v], c * self.ub[v]
            lo, hi = lo + min(a, b), hi + max(a, b)
        return lo, hi

    def size(self, form: Form) -> float:
        """How large the terms of a form can be: the scale of its tolerance."""
        return abs(form.const) + sum(
            abs(c) * max(abs(self.lb[v]), abs(self.ub[v])) for v, c in form.terms.items()
        )

    def integral(self, form: Form) -> bool:
        """Whether the form is a whole number at every point where the integer variables are whole."""
        return float(form.const).is_integer() and all(
            self.integer[v] and float(c).is_integer() for v, c in form.terms.items()
        )

    def require(
        self,
        form: Form,
        lo: float = -math.inf,
        hi: float = math.inf,
        *,
        tighten: bool = False,
        strict: bool = False,
    ) -> None:
        """``lo <= form <= hi`` (``strict``: ``lo < form < hi``), widened in "relax" mode. In "tight" mode
        a ``tighten`` row is narrowed past HiGHS's feasibility tolerance, a ``strict`` one past its
        integrality tolerance too. A whole-number form needs neither: its bounds are rounded inward
        exactly (``n > 0.5`` is ``n >= 1``), in both modes."""
        tol = self.tolerance * (1.0 + self.size(form))
        if not form.is_constant and self.integral(form):
            lo = (math.floor(lo + 1e-9) + 1 if strict else math.ceil(lo - 1e-9)) if math.isfinite(lo) else lo
            hi = (math.ceil(hi - 1e-9) - 1 if strict else math.floor(hi + 1e-9)) if math.isfinite(hi) else hi
            tighten = strict = False
        if self.mode == "relax":
            lo, hi = lo - tol, hi + tol
        elif strict or tighten:
            inside = tol + (TIGHT_STRICT if strict else TIGHT)
            lo, hi = lo + inside, hi - inside
        if form.is_constant:
            if not lo <= form.const <= hi and self.infeasible is None:
                self.infeasible = "a condition that the plan cannot change fails"
            return
        self.rows.append((form, lo, hi))

    def require_block(
        self, matrix: np.ndarray | sparse.csr_array, offset: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> None:
        """``lo <= matrix @ x + offset <= hi`` for the first ``matrix.shape[1]`` variables (dense or sparse;
        widened in "relax" mode; never narrowed: these rows define a network's values)."""
        if self.mode == "relax":
            size = np.maximum(np.abs(self.lb), np.abs(self.ub))[: matrix.shape[1]]
            scale = np.abs(offset) + abs(matrix) @ size
            tol = self.tolerance * (1.0 + scale)
            lo, hi = lo - tol, hi + tol
        self.blocks.append((matrix, lo - offset, hi - offset))

    # ----------------------------------------------------------------------------------- costs
    def epigraph(self, cost: Sum) -> Form:
        """An affine form equal to ``cost`` at the optimum: each convex atom replaced by a variable above it."""
        form = cost.form
        for coef, atom in cost.atoms:
            form = form.plus(self._atom(atom), coef)
        return form

    def _atom(self, atom: Atom) -> Form:
        spans = [self.span(a) for a in atom.args]
        if atom.kind == "square":
            lo, hi = spans[0]
            top = max(lo * lo, hi * hi)
            t = self.var(0.0, top * (1 + 1e-9) + 1e-9)
            self.squares.append((next(iter(t.terms)), atom.args[0]))
            points = {lo, hi, *np.linspace(lo, hi, 9).tolist()} | ({0.0} if lo < 0 < hi else set())
            for p in points:
                self.tangent(t, atom.args[0], p)
            return t
        if atom.kind == "abs":
            lo, hi = spans[0]
            t = self.var(max(0.0, lo, -hi), max(abs(lo), abs(hi)))
            self.require(t.plus(atom.args[0], -1.0), 0.0)
            self.require(t.plus(atom.args[0], 1.0), 0.0)
            return t
        t = self.var(max(s[0] for s in spans), max(s[1] for s in spans))  # max(a, b, ...)
        for arg in atom.args:
            self.require(t.plus(arg, -1.0), 0.0)
        return t

    def tangent(self, t: Form, inner: Form, p: float) -> None:
        """The cut ``t >= p**2 + 2 p (inner - p)``, below ``inner ** 2`` everywhere."""
        self.require(t.plus(inner, -2.0 * p), -p * p)

    # ----------------------------------------------------------------------------------- solving
    def matrices(self) -> tuple[np.ndarray, sparse.csr_array, np.ndarray, np.ndarray]:
        """Integrality, the constraint matrix and its row bounds, as ``milp`` takes them."""
        n = self.n
        data: list[float] = []
        rows: list[int] = []
        cols: list[int] = []
        lo: list[float] = []
        hi: list[float] = []
        for i, (form, a, b) in enumerate(self.rows):
            for v, c in form.terms.items():
                rows.append(i)
                cols.append(v)
                data.append(c)
            lo.append(a - form.const)
            hi.append(b - form.const)
        parts = [sparse.csr_array((data, (rows, cols)), shape=(len(self.rows), n))]
        for matrix, low, high in self.blocks:
            if sparse.issparse(matrix):
                coo = sparse.coo_array(matrix)
                parts.append(sparse.csr_array((coo.data, (coo.row, coo.col)), shape=(matrix.shape[0], n)))
            else:
                block = np.zeros((matrix.shape[0], n))
                block[:, : matrix.shape[1]] = matrix
                parts.append(sparse.csr_array(block))
            lo += low.tolist()
            hi += high.tolist()
        return (
            np.asarray(self.integer, dtype=np.int8),
            sparse.csr_array(sparse.vstack(parts)),
            np.asarray(lo),
            np.asarray(hi),
        )

    def value(self, form: Form, x: np.ndarray) -> float:
        return form.const + sum(c * float(x[v]) for v, c in form.terms.items())

    def solve(self, objective: Form, *, gap: float, time_limit: float, cutoff: float = math.inf) -> Solved:
        """Minimise ``objective``; squares refined by tangents at each solution until within ``gap``."""
        start = time.perf_counter()
        if self.infeasible is not None:
            return Solved("infeasible", None, math.inf, math.inf, 0.0)
        if math.isfinite(cutoff):
            self.require(objective, hi=cutoff)
        if self.infeasible is not None:
            return Solved("cutoff", None, math.inf, cutoff, 0.0)
        if self.n == 0:  # nothing to choose: every constraint was checked as a constant
            return Solved("optimal", np.zeros(0), objective.const, objective.const, 0.0)
        bound = -math.inf
        for _ in range(MAX_CUT_ROUNDS):
            left = time_limit - (time.perf_counter() - start)
            if left <= 0:
                return Solved("time", None, math.inf, bound, time.perf_counter() - start)
            result = self._milp(objective, gap, left, presolve=PRESOLVE)
            if result.status == 2 and PRESOLVE:  # HiGHS's MIP presolve is known to misjudge feasibility
                result = self._milp(
                    objective, gap, max(left - (time.perf_counter() - start), 1e-3), presolve=False
                )
            seconds = time.perf_counter() - start
            if result.status == 2:
                status: Status = "cutoff" if math.isfinite(cutoff) else "infeasible"
                return Solved(status, None, math.inf, cutoff if status == "cutoff" else math.inf, seconds)
            if result.status not in (0, 1) or result.x is None:
                return Solved("time" if result.status == 1 else "failed", None, math.inf, bound, seconds)
            reported = getattr(result, "mip_dual_bound", None)
            dual = float(result.fun if reported is None or not math.isfinite(reported) else reported)
            bound = max(bound, dual + objective.const)  # milp minimises the terms; the constant is ours
            x = np.asarray(result.x, dtype=float)
            value = self.value(objective, x) + self._square_excess(objective, x)
            if result.status == 1:
                return Solved("time", x, value, bound, seconds)
            if value - bound <= gap * max(abs(value), 1e-12) + 1e-12 or not self._refine(x):
                return Solved("optimal", x, value, bound, seconds)
        return Solved("time", x, value, bound, time.perf_counter() - start)

    def _milp(self, objective: Form, gap: float, left: float, presolve: bool) -> Any:
        c = np.zeros(self.n)
        for v, coef in objective.terms.items():
            c[v] = coef
        integrality, matrix, lo, hi = self.matrices()
        constraints: Sequence[LinearConstraint] = (
            [LinearConstraint(matrix, lo, hi)] if matrix.shape[0] else []
        )
        options = {"time_limit": max(left, 1e-3), "mip_rel_gap": gap, "disp": False, "presolve": presolve}
        return milp(
            c,
            integrality=integrality,
            bounds=Bounds(self.lb, self.ub),
            constraints=constraints,
            options=options,
        )

    def _square_excess(self, objective: Form, x: np.ndarray) -> float:
        """How much the squares' epigraph variables undercount the objective at ``x``."""
        return sum(
            objective.terms.get(t, 0.0) * (self.value(inner, x) ** 2 - float(x[t]))
            for t, inner in self.squares
        )

    def _refine(self, x: np.ndarray) -> bool:
        """Add a tangent at ``x`` to each square its variable undercounts; whether any was added."""
        added = False
        for t, inner in self.squares:
            p = self.value(inner, x)
            if p * p - float(x[t]) > 1e-9 * (1.0 + p * p):
                self.tangent(Form(0.0, {t: 1.0}), inner, p)
                added = True
        return added
