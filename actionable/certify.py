"""Certificates by mixed-integer programming: a proof that a plan is optimal within a gap, or that none exists.

For each person, every canonical sequence of at most two actions becomes one mixed-integer program
(``plan_mip``: affine effects and conditions, whole numbers as integer variables, the network's ReLUs as
big-M rows, the goal's margin as rows), solved with HiGHS (``scipy.optimize.milp``) in "relax" mode, so
a real plan is always feasible with room to spare. The least of the sequences' proved bounds bounds the
cost of every plan. A ``Certificate`` says what that proves:

* ``optimal``: the best verified plan (the caller's incumbent, or the program's own plan once it passes
  the exact re-check) costs at most ``gap`` (relative) above the bound;
* ``no_plan_exists``: every sequence's program is infeasible, with the margin relaxed by a tolerance (so
  the claim never rests on the solver's tolerances), and no longer sequence exists or is allowed;
* ``none``: nothing was proved, and ``reason`` says why (a tanh network, an effect that is not affine,
  the time limit, sequences longer than two, a bound not close enough).

A sequence whose constant cost bound already reaches the best cost known is not solved; the best cost
known so far is a cutoff for the rest. HiGHS stopping on its time limit never yields ``optimal``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from actionable.affine import NotAffine
from actionable.errors import ConfigError, DataError
from actionable.goals import Goal
from actionable.mip import Solved
from actionable.models import TorchModel
from actionable.network_mip import layers
from actionable.plan_mip import Encoded, action_bound, encode_sequence
from actionable.program import Plan, Program
from actionable.rows import Outcome
from actionable.search import canonical_levels
from actionable.verify import Verifier

__all__ = [
    "MAX_CERTIFIED_LENGTH",
    "Certificate",
    "CertificateKind",
    "MilpPlan",
    "Prover",
    "certify",
    "certify_plans",
    "with_certificates",
]

CertificateKind = Literal["optimal", "no_plan_exists", "none"]
MAX_CERTIFIED_LENGTH = 2  # sequences longer than this are not modelled


def _json(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class MilpPlan:
    """The program's own best plan: action indices, parameters per step (raw units), its exact cost
    (infinity where it failed the exact re-check) and whether it passed."""

    ids: tuple[int, ...]
    params: tuple[tuple[float, ...], ...]
    cost: float
    verified: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": list(self.ids),
            "params": [list(p) for p in self.params],
            "cost": _json(self.cost),
            "verified": self.verified,
        }


@dataclass(frozen=True)
class Certificate:
    """What the mixed-integer programs proved for one person (see the module's text). ``gap``: the
    relative gap between the best verified cost and ``bound``; ``bound``: a lower bound on the cost of
    any plan (infinity when none exists); ``seconds``: the time spent proving."""

    kind: CertificateKind
    gap: float = math.inf
    bound: float = 0.0
    reason: str = ""
    seconds: float = 0.0
    plan: MilpPlan | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (infinities as null)."""
        return {
            "kind": self.kind,
            "gap": _json(self.gap),
            "bound": _json(self.bound),
            "reason": self.reason,
            "seconds": self.seconds,
            "plan": self.plan.to_dict() if self.plan is not None else None,
        }


def certify(
    model: TorchModel,
    goal: Goal,
    program: Program,
    x0: torch.Tensor,
    *,
    max_length: int,
    margin: float,
    incumbent: Sequence[float] | None = None,
    gap: float = 1e-4,
    time_limit: float = 10.0,
) -> list[Certificate]:
    """One ``Certificate`` per canonical row of ``x0`` (plans of at most ``max_length`` actions that
    reach ``Goal.margin(out) >= margin``). ``incumbent``: per row, the cost of a verified plan already
    known (``inf`` or NaN where there is none); ``gap``: the relative gap an ``optimal`` certificate
    allows; ``time_limit``: seconds per row for all its programs."""
    if not isinstance(x0, torch.Tensor) or x0.ndim != 2 or x0.shape[1] != program.schema.width:
        shape = tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__
        raise DataError(
            f"certify: x0 must be canonical rows, a tensor (n, {program.schema.width}); got {shape}. "
            "Encode raw rows with schema.encode(frame)."
        )
    for name, value, low in (
        ("margin", margin, -math.inf),
        ("gap", gap, 0.0),
        ("time_limit", time_limit, 0.0),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < low
        ):
            raise ConfigError(f"certify: {name} = {value!r}; give a finite number >= {low:g}.")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
        raise ConfigError(f"certify: max_length = {max_length!r}; give a whole number >= 0.")
    known = [math.inf] * len(x0) if incumbent is None else [float(c) for c in incumbent]
    if len(known) != len(x0):
        raise ConfigError(f"certify: {len(known)} incumbent costs for {len(x0)} rows; give one per row.")
    prover = Prover(model, goal, program, max_length=max_length, margin=float(margin))
    x = x0.to(torch.float64)
    return [prover.row(x[i], known[i], gap=float(gap), time_limit=float(time_limit)) for i in range(len(x))]


class Prover:
    """The parts shared by every row: the network's layers, the sequences in order of their cost bounds,
    the exact verifier and, where longer sequences exist, a bound on their cost."""

    def __init__(
        self, model: TorchModel, goal: Goal, program: Program, *, max_length: int, margin: float
    ) -> None:
        self.model, self.goal, self.program, self.margin = model, goal, program, margin
        network = layers(model)
        self.network = network if not isinstance(network, str) else []
        self.unsupported = network if isinstance(network, str) else None
        self.precise = model.dtype == torch.float64
        self.verifier = Verifier(program, model, goal, margin)
        acts = program.acts
        self.action_bounds = [action_bound(a, program) for a in acts]
        length = min(max_length, MAX_CERTIFIED_LENGTH)
        levels = canonical_levels(acts, length) if length else []
        sequences = [s for level in levels for s in level]
        self.sequences = sorted(sequences, key=lambda s: (self.bound_of(s), len(s)))
        longer = (
            max_length > MAX_CERTIFIED_LENGTH
            and len(canonical_levels(acts, MAX_CERTIFIED_LENGTH + 1, limit=len(sequences) + 1))
            > MAX_CERTIFIED_LENGTH
        )
        # a plan of three or more actions costs at least three of the cheapest action's bound
        self.long_bound = (MAX_CERTIFIED_LENGTH + 1) * min(self.action_bounds) if longer else math.inf
        self.longer = longer

    def bound_of(self, seq: Sequence[int]) -> float:
        return float(sum(self.action_bounds[a] for a in seq))

    def encode(self, x0: torch.Tensor, seq: Sequence[int], mode: Literal["relax", "tight"]) -> Encoded:
        return encode_sequence(
            self.program,
            self.network,
            self.goal,
            x0,
            seq,
            margin=self.margin,
            mode=mode,
            precise=self.precise,
        )

    def check(self, seq: Sequence[int], params: torch.Tensor, x0: torch.Tensor) -> MilpPlan:
        """The exact re-check of a program's plan (``Verifier.check``, and the margin)."""
        ids = torch.as_tensor([list(seq)], dtype=torch.int64)
        padded = torch.zeros(1, len(seq), self.program.slots, dtype=torch.float64)
        padded[0, :, : params.shape[1]] = params
        # whole numbers where declared first: the verifier's floor / ceil of -1390.9999999999998 would differ
        padded = self.program.round(ids, padded)
        checked = self.verifier.check(ids, x0[None, :], padded)
        with torch.no_grad():
            reached = float(self.goal.margin(self.model(checked.x))[0])
        ok = bool(checked.found[0]) and reached >= self.margin
        shown = checked.params[0] if ok else padded[0]
        return MilpPlan(
            tuple(seq),
            tuple(tuple(float(v) for v in row) for row in shown),
            float(checked.cost[0]) if ok else math.inf,
            ok,
        )

    def row(self, x0: torch.Tensor, incumbent: float, *, gap: float, time_limit: float) -> Certificate:
        """The certificate of one canonical row."""
        start = time.perf_counter()
        if self.unsupported is not None:
            return Certificate("none", reason=self.unsupported, seconds=time.perf_counter() - start)
        run = _Row(self, x0, incumbent if math.isfinite(incumbent) else math.inf, gap, time_limit)
        run.search()
        return run.certificate(time.perf_counter() - start)


class _Row:
    """One row's proof: the sequences' bounds, the cutoff, the best verified plan, what went wrong."""

    def __init__(
        self, prover: Prover, x0: torch.Tensor, incumbent: float, gap: float, time_limit: float
    ) -> None:
        self.prover, self.x0, self.incumbent = prover, x0, incumbent
        self.gap, self.time_limit, self.start = gap, time_limit, time.perf_counter()
        self.cutoff = incumbent  # the least cost known (incumbent, or a relaxed solution): a bound to beat
        self.bounds: list[float] = []
        self.unsupported: list[str] = []
        self.relaxed: list[str] = []
        self.timeouts = 0
        self.plan: MilpPlan | None = None  # the cheapest program plan that passed the exact re-check
        self.rejected: MilpPlan | None = None  # else the last one that did not

    def left(self) -> float:
        return self.time_limit - (time.perf_counter() - self.start)

    def search(self) -> None:
        p = self.prover
        with torch.no_grad():
            out = p.model(self.x0[None, :])
            reached = float(p.goal.margin(out)[0])
        slack = (1e-9 if p.precise else 1e-5) * (1.0 + abs(reached))
        if reached >= p.margin - slack:  # the empty plan (nothing to do) is feasible: the bound is 0
            self.bounds.append(0.0)
            if reached >= p.margin and bool(p.goal.satisfied(out)[0]):
                self.plan = MilpPlan((), (), 0.0, True)
                self.cutoff = 0.0
        for seq in p.sequences:
            self.solve(seq)

    def solve(self, seq: tuple[int, ...]) -> None:
        """One sequence's program: its bound into ``bounds``, a cheaper verified plan into ``plan``."""
        p = self.prover
        floor = p.bound_of(seq)
        if floor >= self.cutoff:  # no plan of this sequence can beat the best cost known
            self.bounds.append(floor)
            return
        if self.left() <= 0:
            self.timeouts += 1
            self.bounds.append(floor)
            return
        try:
            encoded = p.encode(self.x0, seq, "relax")
        except (NotAffine, OverflowError) as exc:
            self.unsupported.append(str(exc))
            self.bounds.append(floor)
            return
        self.relaxed += [r for r in encoded.relaxed if r not in self.relaxed]
        solved = encoded.mip.solve(
            encoded.objective, gap=self.gap / 2, time_limit=self.left(), cutoff=self.cutoff
        )
        self.record(seq, encoded, solved, floor)

    def record(self, seq: tuple[int, ...], encoded: Encoded, solved: Solved, floor: float) -> None:
        if solved.status == "infeasible":
            self.bounds.append(math.inf)
            return
        if solved.status == "failed":
            self.unsupported.append(f"HiGHS failed on the sequence {self.names(seq)}")
            self.bounds.append(floor)
            return
        if solved.status == "time":
            self.timeouts += 1
        self.bounds.append(max(solved.bound, floor))
        if solved.x is None:
            return
        best = self.plan.cost if self.plan is not None else math.inf
        if solved.value < best:  # a solution that may beat the best verified plan: check it exactly
            plan = self.verify(seq, encoded, solved.x)
            if plan.verified and plan.cost < best:
                self.plan = plan
            elif not plan.verified:
                self.rejected = plan
        self.cutoff = min(self.cutoff, solved.value)

    def names(self, seq: Sequence[int]) -> str:
        return "(" + ", ".join(self.prover.program.acts[a].name for a in seq) + ")"

    def verify(self, seq: tuple[int, ...], encoded: Encoded, x: np.ndarray) -> MilpPlan:
        """A program solution as a plan, re-checked exactly; re-solved in "tight" mode (the constraints
        narrowed past HiGHS's tolerances) when the relaxed solution misses the exact check."""
        p = self.prover
        plan = p.check(seq, encoded.parameters(x, p.program.slots), self.x0)
        if plan.verified or self.left() <= 0:
            return plan
        try:
            tight = p.encode(self.x0, seq, "tight")
        except (NotAffine, OverflowError):
            return plan
        solved = tight.mip.solve(tight.objective, gap=self.gap / 2, time_limit=self.left())
        if solved.x is None:
            return plan
        return p.check(seq, tight.parameters(solved.x, p.program.slots), self.x0)

    def certificate(self, seconds: float) -> Certificate:
        p = self.prover
        plan = self.plan or self.rejected
        best = min(self.incumbent, plan.cost if plan is not None else math.inf)
        bound = min(min(self.bounds, default=math.inf), p.long_bound)
        seconds = time.perf_counter() - self.start
        if math.isinf(bound) and math.isinf(best):
            return Certificate(
                "no_plan_exists", 0.0, math.inf, "every sequence's program is infeasible", seconds, plan
            )
        gap = max(0.0, (best - bound) / max(abs(best), 1e-12)) if math.isfinite(best) else math.inf
        close = math.isfinite(best) and (gap <= self.gap or best - bound <= 1e-9)
        if close and not self.timeouts:
            return Certificate("optimal", gap, bound, "", seconds, plan)
        return Certificate("none", gap, bound, self.reason(best, bound, gap, plan), seconds, plan)

    def reason(self, best: float, bound: float, gap: float, plan: MilpPlan | None) -> str:
        """Why nothing was proved, in words."""
        p, why = self.prover, []
        why += list({u.split(" (")[0]: u for u in self.unsupported}.values())[:3]  # one per cause
        if self.timeouts:
            why.append(
                f"HiGHS stopped at the time limit ({self.time_limit:g} s) on {self.timeouts} sequence(s)"
            )
        if p.longer:
            why.append(
                f"sequences longer than {MAX_CERTIFIED_LENGTH} are not modelled (they cost at least "
                f"{p.long_bound:.4g}); plans of at most {MAX_CERTIFIED_LENGTH} actions cost at least "
                f"{min(self.bounds, default=math.inf):.4g}"
            )
        if math.isinf(best) and math.isfinite(bound):
            found = "no verified plan to compare with the bound"
            if plan is not None and not plan.verified:
                found += " (the program's own plan fails the exact re-check)"
            why.append(found)
        elif math.isinf(bound):
            why.append("the programs found no plan, yet the incumbent exists (a numerical disagreement)")
        elif math.isfinite(gap) and gap > self.gap:
            why.append(f"the bound {bound:.6g} is {gap:.2%} below the best plan's cost {best:.6g}")
        why += self.relaxed[:2]
        return "; ".join(why)


# ------------------------------------------------------------------------------- after a search
def certify_plans(
    verifier: Verifier,
    x0: torch.Tensor,
    best: Mapping[int, Plan],
    *,
    max_length: int,
    gap: float = 1e-4,
    time_limit: float = 10.0,
) -> tuple[dict[int, Certificate], dict[int, Plan]]:
    """Certificates for searched rows ``x0`` (the search's best plans as incumbents, by position) and the
    plans to report: the program's own plan where it is cheaper and ``Verifier.check`` passes it exactly.

    A search plan that misses the verifier's margin is no incumbent (the certificate is about plans that
    clear it); where such a plan is kept, an ``optimal`` certificate (which speaks of another plan) is
    turned into ``none``."""
    model, goal, margin = verifier.model, verifier.goal, verifier.margin
    clears: dict[int, bool] = {}
    with torch.no_grad():
        for i, plan in best.items():
            clears[i] = float(goal.margin(model(plan.x[None, :]))[0]) >= margin
    incumbent = [best[i].cost if clears.get(i) else math.inf for i in range(len(x0))]
    found = certify(
        model, goal, verifier.program, x0, max_length=max_length, margin=margin, incumbent=incumbent,
        gap=gap, time_limit=time_limit,
    )  # fmt: skip
    plans = dict(best)
    certificates = dict(enumerate(found))
    for i, cert in certificates.items():
        mine = cert.plan
        cost = best[i].cost if i in best else math.inf
        adopted = (
            _adopt(verifier, mine, x0[i]) if mine is not None and mine.verified and mine.cost < cost else None
        )
        if adopted is not None:
            plans[i] = adopted
        elif i in best and not clears[i] and cert.kind == "optimal":
            reason = f"the search's plan does not clear the margin {margin:g}; the bound is for plans that do"
            certificates[i] = replace(cert, kind="none", reason=reason)
    return certificates, plans


def _adopt(verifier: Verifier, plan: MilpPlan, x0: torch.Tensor) -> Plan | None:
    """The program's plan as a verified ``Plan`` (``Verifier.check`` on it exactly), idle steps dropped."""
    if not plan.ids:
        return None
    ids = torch.as_tensor([list(plan.ids)], dtype=torch.int64)
    params = torch.as_tensor([list(plan.params)], dtype=torch.float64)
    checked = verifier.check(ids, x0[None, :], params)
    if not bool(checked.found[0]):
        return None
    verified = Plan(plan.ids, checked.params[0], checked.step_costs[0], checked.x[0], x0)
    return verifier.without_idle_steps(verified)


def with_certificates(
    outcomes: Sequence[Outcome],
    person: Mapping[int, int],
    certificates: Mapping[int, Certificate],
    max_length: int,
) -> list[Outcome]:
    """Outcomes with their certificates (``person``: outcome position -> certified row); a proved
    "no plan" turns ``not_found`` into ``infeasible``."""
    out = list(outcomes)
    for k, j in person.items():
        cert = certificates.get(j)
        if cert is None:
            continue
        changes: dict[str, Any] = {"certificate": cert.to_dict()}
        if cert.kind == "no_plan_exists" and out[k].status == "not_found":
            changes |= {
                "status": "infeasible",
                "error": f"proved: no plan of at most {max_length} action{'s' * (max_length != 1)} reaches "
                "the goal (every sequence's mixed-integer program is infeasible)",
            }
        out[k] = replace(out[k], **changes)
    return out
