"""One sequence of actions for one person as a mixed-integer program, mirroring the exact rollout.

``encode_sequence`` follows ``program.Kernel.step`` step by step: each parameter is a variable in its box
(whole numbers where declared); each numeric effect (an affine form of the state before the action and
its parameters, see ``affine``) sets a new state variable in the feature's bounds, a whole-number feature
within the rounding window of that value (half a unit for rounding to nearest); directions bound the
change; preconditions hold on the state before, postconditions after; category effects set a known level.
Each step's cost is >= 0 (the exact check refuses a negative one) and the program minimises their sum.
The final canonical row goes through the network (``network_mip``) and must meet the goal's margin.

Where a cost is neither affine nor convex it is replaced by its minimum on the box (a lower bound: the
program's bound stays valid, and ``Encoded.relaxed`` says so); a parameter with a resolution is modelled
as real (a relaxation too). An effect or condition that is not affine raises ``NotAffine`` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from actionable import intervals
from actionable.actions import Action, Condition
from actionable.affine import Env, Form, Level, NotAffine, Sum, conditions, constant, lower
from actionable.features import Feature
from actionable.goals import Goal
from actionable.mip import Mip, Mode
from actionable.network_mip import encode, require_goal
from actionable.program import Program

__all__ = ["Encoded", "action_bound", "encode_sequence", "initial_state", "rounding_window"]


@dataclass
class Encoded:
    """A sequence's program: the total cost to minimise, each step's parameter forms, and what was relaxed."""

    mip: Mip
    objective: Form
    params: list[list[Form]]
    relaxed: list[str] = field(default_factory=list)

    def parameters(self, x: np.ndarray, slots: int) -> torch.Tensor:
        """The solution's parameters as the rollout takes them: steps x slots, raw units."""
        out = torch.zeros(len(self.params), slots, dtype=torch.float64)
        for j, forms in enumerate(self.params):
            for i, form in enumerate(forms):
                out[j, i] = self.mip.value(form, x)
        return out


def initial_state(program: Program, x0: torch.Tensor) -> dict[str, Form | Level]:
    """A canonical row as the program's constants: numbers as constant forms, categories as levels."""
    state: dict[str, Form | Level] = {}
    for name, part in program.schema.split(x0[None, :]).items():
        feature = program.schema[name]
        if feature.is_category:
            state[name] = Level(feature.levels[int(torch.argmax(part[0]))])
        else:
            state[name] = Form(float(part[0]))
    return state


def _box(mip: Mip, env: Env) -> intervals.Box:
    return {
        name: (value.value,) if isinstance(value, Level) else intervals.Span(*mip.span(value))
        for name, value in env.items()
    }


def action_bound(action: Action, program: Program) -> float:
    """A lower bound on the action's cost on any state within the schema's bounds (and at least 0)."""
    box: dict[str, Any] = {}
    for f in program.schema.features:
        box[f.name] = f.levels if f.is_category else intervals.Span(*f.bounds)
    for p in action.params:
        box[p.name] = intervals.Span(*p.bounds)
    low = intervals.span(action.expressions.cost.node, box).lo
    return max(0.0, low) if math.isfinite(low) else 0.0


def rounding_window(feature: Feature, action: Action) -> tuple[float, float, bool, bool]:
    """Where a whole-number feature's new value lies relative to the effect's value: ``(low, high,
    low strict, high strict)`` for ``new - value``. Nearest: within half a unit (strict both sides, so the
    plan avoids ties); ``floor`` / ``ceil``, where the catalogue declares them: within one unit below /
    above; an unknown rule: within one unit either way (a relaxation)."""
    rule: Any = getattr(action, "rounding", None) or getattr(feature, "rounding", None) or "nearest"
    if isinstance(rule, Mapping):
        rule = rule.get(feature.name, "nearest")
    if rule in ("nearest", "round", "half_even", "half_away"):
        return -0.5, 0.5, True, True
    if rule == "floor":
        return -1.0, 0.0, True, False
    if rule == "ceil":
        return 0.0, 1.0, False, True
    return -1.0, 1.0, False, False


class _Sequence:
    """The state of one sequence's encoding: the program, the current state, the costs so far."""

    def __init__(self, program: Program, x0: torch.Tensor, mode: Mode) -> None:
        self.program, self.mip = program, Mip(mode)
        self.state = initial_state(program, x0)
        self.objective = Form(0.0)
        self.params: list[list[Form]] = []
        self.relaxed: list[str] = []

    def require(self, condition: Condition, env: Env, where: str) -> None:
        try:
            truth = conditions(condition.expr.node, env)
        except NotAffine as exc:
            raise NotAffine(f"{where} {condition.expr.text!r} is not affine ({exc})") from None
        if truth is False:
            self.mip.infeasible = f"{where} {condition.expr.text!r} fails"
        if isinstance(truth, bool):
            return
        for form, op in truth:
            if op == "==":
                self.mip.require(form, 0.0, 0.0)
            else:
                self.mip.require(form, 0.0, tighten=True, strict=op == ">")

    def cost(self, action: Action, env: Env) -> None:
        """The step's cost added to the objective (its epigraph), required >= 0."""
        node = action.expressions.cost.node
        try:
            value = lower(node, env, convex=True)
        except NotAffine as exc:
            low = intervals.span(node, _box(self.mip, env)).lo
            value = constant(max(0.0, low) if math.isfinite(low) else 0.0)
            self.relaxed.append(f"the cost of {action.name!r} is neither affine nor convex ({exc})")
        form = self.mip.epigraph(value)
        self.mip.require(form, 0.0)
        self.objective = self.objective.plus(form)

    def effect(self, action: Action, feature: Feature, value: Sum, new: dict[str, Form | Level]) -> None:
        """The new value of a numeric feature: a variable in its bounds, rounded as the rollout rounds it."""
        mip, v = self.mip, value.form
        lo, hi = mip.span(v)
        f_lo, f_hi = feature.bounds
        if mip.mode == "relax":  # the exact check allows 1e-9 past a bound
            f_lo, f_hi = f_lo - 1e-9 * (1 + abs(f_lo)), f_hi + 1e-9 * (1 + abs(f_hi))
        if feature.is_whole:
            a, b, strict_a, strict_b = rounding_window(feature, action)
            s = mip.var(max(f_lo, lo + a), min(f_hi, hi + b), integer=True)
            mip.require(s.plus(v, -1.0), lo=a, strict=strict_a)
            mip.require(s.plus(v, -1.0), hi=b, strict=strict_b)
        else:
            s = mip.var(max(f_lo, lo), min(f_hi, hi))
            mip.require(s.plus(v, -1.0), 0.0, 0.0)
        old = self.state[feature.name]
        if isinstance(old, Form):
            if not feature.may_increase:
                mip.require(s.plus(old, -1.0), hi=0.0)
            if not feature.may_decrease:
                mip.require(s.plus(old, -1.0), lo=0.0)
        new[feature.name] = s

    def step(self, action: Action) -> None:
        mip, parsed = self.mip, action.expressions
        forms = []
        for p in action.params:
            forms.append(mip.var(*p.bounds, integer=p.kind == "integer"))
            if p.resolution is not None:
                self.relaxed.append(
                    f"parameter {p.name!r} of {action.name!r} is real (its resolution is relaxed)"
                )
        self.params.append(forms)
        env: dict[str, Form | Level] = {
            **self.state,
            **{p.name: f for p, f in zip(action.params, forms, strict=True)},
        }
        for c in parsed.pre:
            self.require(c, env, f"the precondition of {action.name!r}")
        if mip.infeasible is not None:  # nothing after a failed precondition matters
            return
        self.cost(action, env)
        new = dict(self.state)
        for name, expr in parsed.effects.items():
            feature = self.program.schema[name]
            if feature.is_category:
                new[name] = Level(str(expr.evaluate({})))
                continue
            try:
                value = lower(expr.node, env)
            except NotAffine as exc:
                raise NotAffine(f"the effect of {action.name!r} on {name!r} is not affine ({exc})") from None
            self.effect(action, feature, value, new)
        after = {**new, **{k: v for k, v in env.items() if k not in self.state}}
        for c in parsed.post:
            self.require(c, after, f"the postcondition of {action.name!r}")
        self.state = new

    def columns(self) -> list[Form]:
        """The final canonical row as forms (category blocks as constant one-hot columns)."""
        out: list[Form] = []
        for f in self.program.schema.features:
            value = self.state[f.name]
            if isinstance(value, Level):
                out += [Form(1.0 if level == value.value else 0.0) for level in f.levels]
            else:
                out.append(value)
        return out


def encode_sequence(
    program: Program,
    network: Sequence[nn.Module],
    goal: Goal,
    x0: torch.Tensor,
    seq: Sequence[int],
    *,
    margin: float,
    mode: Mode,
    precise: bool,
) -> Encoded:
    """The program of sequence ``seq`` (action indices) from canonical row ``x0`` (see the module's text).

    Raises ``NotAffine`` (an effect or condition the program cannot hold) or ``OverflowError`` (values too
    large for safe big-M constants)."""
    run = _Sequence(program, x0, mode)
    for a in seq:
        if run.mip.infeasible is None:
            run.step(program.acts[a])
    if run.mip.infeasible is None:
        require_goal(run.mip, goal, encode(run.mip, network, run.columns()), margin, precise)
    return Encoded(run.mip, run.objective, run.params, run.relaxed)
