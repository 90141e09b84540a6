"""The inner optimisation of synthesis: many plans' parameters at once, and the model seen from the few
columns actions write.

``Optimiser(program, model, goal, InnerConfig(...)).run(ids, x0)`` runs Adam on every (sequence, person)
pair's parameters together, scaled to their boxes, on the Carlini-Wagner objective ``Objective``: exact
cost + relaxed penalty + c * max(0, margin - goal margin), with an adaptive c per pair. Its iterations are
pure functions of one named ``State``, eager (autograd) or, with ``compile=True``, ``UNROLL`` iterations
at a time as one ``torch.compile`` program (``torch.func.grad``).

Inside one optimisation every (sequence, person) pair's final state is a constant row with a handful of
columns replaced by the numeric state ``z`` the parameters move. When the network opens with affine layers
(``Standardize``, ``ColumnMap``, ``Linear``: every converted or trained model), those layers fold into one
pre-activation per pair, ``base + z @ weight.T``, computed once per optimisation: each step then multiplies
``z``'s few columns instead of the whole canonical row, and the rest of the network runs in float32 (the
exact re-check afterwards is float64 on the real model). Any other model is called unchanged.

``compiled`` wraps a step function in ``torch.compile`` (inductor) and falls back to the plain function,
with one warning, when compilation is unavailable or fails (no C++ compiler, unsupported operations).
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from actionable.goals import Goal
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.program import Dispatch, Fixed, Program
from actionable.schema import DTYPE

__all__ = [
    "AFFINE",
    "BACKEND",
    "COMPUTE",
    "KNOWN",
    "SERIAL_UP_TO",
    "UNROLL",
    "Constants",
    "InnerConfig",
    "Optimiser",
    "State",
    "Terms",
    "compiled",
    "fold",
    "one_thread",
    "split_affine",
]

AFFINE = (L.Standardize, L.ColumnMap, nn.Linear, nn.Identity)
KNOWN = (L.Layer, nn.Linear, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Identity)
COMPUTE = torch.float32  # the dtype of the folded network inside the optimisation
BACKEND = "inductor"  # torch.compile's backend for compile=True
UNROLL = 10  # iterations per compiled call (compile=True): amortises the call overhead
SERIAL_UP_TO = 50_000  # pairs (the default chunk): batches up to this size run on one intra-op thread


def fold(
    model: TorchModel, prefix: nn.Module, static: torch.Tensor, touched: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(base, weight)`` with ``prefix(x) == base + z @ weight.T`` for ``x = static`` with columns ``touched``
    replaced by ``z`` (``prefix``: the affine layers from ``split_affine``), in float32.

    The map's columns are probed exactly: ``prefix(e_j) - prefix(0)`` for each touched column ``j``.
    """
    with torch.no_grad():
        base = prefix(static.index_fill(1, touched, 0.0).to(model.dtype))
        probe = torch.zeros(len(touched) + 1, static.shape[1], dtype=model.dtype)
        probe[torch.arange(1, len(touched) + 1), touched] = 1.0
        out = prefix(probe)
        weight = (out[1:] - out[:1]).T
    return base.to(COMPUTE), weight.to(COMPUTE).contiguous()


def split_affine(model: TorchModel) -> tuple[nn.Module, nn.Module] | None:
    """The network as (its leading affine layers up to the first ``Linear``, a float32 copy of the rest).

    None when the network is not an ``nn.Sequential`` of the library's layers opening with affine layers,
    or when a layer is not one of the known types (a user's module is then used as it is).
    """
    network = model.network
    if not isinstance(network, nn.Sequential):
        return None
    layers = list(network)
    for i, layer in enumerate(layers):
        if not isinstance(layer, AFFINE):
            return None
        if isinstance(layer, nn.Linear):
            rest = layers[i + 1 :]
            if not all(isinstance(r, KNOWN) for r in rest):
                return None
            tail = copy.deepcopy(nn.Sequential(*rest)).to(COMPUTE)
            for p in tail.parameters():
                p.requires_grad_(False)
            return nn.Sequential(*layers[: i + 1]), tail
    return None


def compiled(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``function`` compiled with ``torch.compile`` (inductor); on any failure, ``function`` itself.

    A failure (at wrapping or at the first call, where inductor builds its C++ kernels) is reported once as
    a ``RuntimeWarning`` and the plain function is used from then on: results equal up to float rounding.
    """
    try:
        program = torch.compile(function, backend=BACKEND, dynamic=False, fullgraph=True)
    except Exception as error:
        return _fallback(function, name, error)
    state: dict[str, Any] = {"call": program}

    def call(*args: Any) -> Any:
        try:
            return state["call"](*args)
        except Exception as error:
            if state["call"] is function:
                raise
            state["call"] = _fallback(function, name, error)
            return function(*args)

    return call


def _fallback(function: Callable[..., Any], name: str, error: Exception) -> Callable[..., Any]:
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    warnings.warn(
        f"synthesize: torch.compile is unavailable for {name} ({type(error).__name__}: {first}); "
        "running eagerly (same results, slower). Pass compile=False to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )
    return function


@contextlib.contextmanager
def one_thread(batch: int) -> Iterator[None]:
    """One intra-op thread for batches of at most ``SERIAL_UP_TO`` pairs: their matrix products (pairs x 40) gain
    little from splitting, and where the cores are shared OpenMP's waiting threads cost far more than the
    work (measured on 2 shared cores: the 13,500-pair German program took 104 ms per step on one thread,
    611-973 ms on two)."""
    before = torch.get_num_threads()
    if batch > SERIAL_UP_TO or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------ the optimiser
@dataclass(frozen=True)
class InnerConfig:
    """The inner optimisation: Adam ``steps`` at step size ``lr`` (cosine-decayed), goal ``margin`` to reach,
    the initial weight ``c_init`` of the goal term, adapted every ``check_every`` steps, and whether to run
    the iterations through ``torch.compile``. Values are checked by ``synthesis.SynthesisConfig``."""

    steps: int = 150
    lr: float = 0.05
    margin: float = 0.1
    c_init: float = 1.0
    check_every: int = 20
    compile: bool = False


class State(NamedTuple):
    """The optimisation state per pair: parameters ``u`` in [0, 1] of their boxes, Adam's moments, the best
    iterates (cheapest reaching ``margin``, cheapest merely meeting the goal), whether the goal was met
    since the last check, and the goal term's weight ``c``."""

    u: torch.Tensor
    m1: torch.Tensor
    m2: torch.Tensor
    best_cost: torch.Tensor
    best_any: torch.Tensor
    best_u: torch.Tensor
    any_u: torch.Tensor
    met: torch.Tensor
    c: torch.Tensor


class Terms(NamedTuple):
    """The objective's parts per pair at one iterate: exact cost, goal margin, exact validity."""

    cost: torch.Tensor
    margin: torch.Tensor
    ok: torch.Tensor


class Constants(NamedTuple):
    """What stays fixed through one optimisation: boxes, start, static columns, dispatch, the fixed steps' parts,
    folded network."""

    lo: torch.Tensor
    span: torch.Tensor
    z0: torch.Tensor
    xs_final: torch.Tensor
    plan: Dispatch
    per_step: list[list[torch.Tensor]]
    fixed: Fixed
    base: torch.Tensor | None
    weight: torch.Tensor | None


class Optimiser:
    """The Carlini-Wagner optimisation of many (sequence, person) pairs at once, on one compiled program."""

    def __init__(self, program: Program, model: TorchModel, goal: Goal, config: InnerConfig) -> None:
        self.program, self.model, self.goal, self.config = program, model, goal, config
        self._split = split_affine(model)
        self._compiled: Any = None

    def run(self, ids: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Adam on parameters scaled to [0, 1] in their boxes; returns the best parameters seen (raw units).

        Best = the cheapest iterate whose exact conditions hold and whose goal margin reaches ``margin``
        (else the cheapest that merely meets the goal). The Adam update is written out on one tensor: a
        cosine-decayed step, clipped to the box after each update. The iterations are pure functions of one
        ``State``: ``_step`` (eager, autograd), or with ``compile=True`` blocks of ``UNROLL`` iterations
        compiled as one program (``torch.func.grad``), the remainder eager.
        """
        cfg, program = self.config, self.program
        lo, span, init = program.boxes(ids)
        if not program.has_params(ids):
            return init
        plan = program.dispatch(ids)
        per_step, xs_final = program.static_states(x0, plan)
        base, weight = (
            fold(self.model, self._split[0], xs_final, program.touched)
            if self._split is not None and len(program.touched)
            else (None, None)
        )
        state = self.start(((init - lo) / span).clamp(0, 1))
        schedule = self.schedule()
        fixed = program.fixed_steps(len(ids), plan, per_step, exact=False)  # the same at every iteration
        constants = Constants(lo, span, x0[:, program.touched], xs_final, plan, per_step, fixed, base, weight)
        done = 0
        with one_thread(len(ids)):
            if cfg.compile and cfg.steps >= UNROLL:
                compiled_steps = self._compiled_steps()
                while done + UNROLL <= cfg.steps:
                    state = compiled_steps(state, schedule[done : done + UNROLL], *constants)
                    done += UNROLL
            for k in range(done, cfg.steps):
                state = self._step(state, schedule[k], *constants)
        chosen = torch.where(torch.isfinite(state.best_cost)[:, None, None], state.best_u, state.any_u)
        return (lo + chosen * span).detach()

    def start(self, u: torch.Tensor) -> State:
        """The state before the first iteration, at the parameters' initial values ``u``."""
        batch = len(u)
        return State(
            u,
            torch.zeros_like(u),
            torch.zeros_like(u),
            torch.full((batch,), math.inf, dtype=DTYPE),
            torch.full((batch,), math.inf, dtype=DTYPE),
            u.clone(),
            u.clone(),
            torch.zeros(batch, dtype=torch.bool),
            torch.full((batch,), self.config.c_init, dtype=DTYPE),
        )

    def schedule(self) -> torch.Tensor:
        """Per iteration: step size, Adam's two bias corrections, whether to update c after it."""
        cfg = self.config
        t = torch.arange(cfg.steps, dtype=DTYPE)
        return torch.stack(
            [
                cfg.lr * (0.05 + 0.95 * 0.5 * (1 + torch.cos(math.pi * t / cfg.steps))),
                1 - 0.9 ** (t + 1),
                1 - 0.999 ** (t + 1),
                ((t + 1) % cfg.check_every == 0).to(DTYPE),
            ],
            dim=1,
        )

    def _compiled_steps(self) -> Any:
        """``UNROLL`` iterations as one program compiled by ``torch.compile`` (made once per optimiser; it
        recompiles per program shape, and falls back to eager where compiling fails)."""
        if self._compiled is None:
            self._compiled = compiled(self._steps_functional, "the synthesis step")
        return self._compiled

    def objective(
        self,
        u: torch.Tensor,
        c: torch.Tensor,
        lo: torch.Tensor,
        span: torch.Tensor,
        z0: torch.Tensor,
        xs_final: torch.Tensor,
        plan: Dispatch,
        per_step: list[list[torch.Tensor]],
        fixed: Fixed,
        base: torch.Tensor | None,
        weight: torch.Tensor | None,
    ) -> tuple[torch.Tensor, Terms]:
        """The summed relaxed objective at ``u`` and, per pair, its ``Terms``."""
        program = self.program
        z, step_costs, penalty, ok = program.roll(z0, lo + u * span, plan, per_step, False, fixed)
        if base is not None and weight is not None:  # the folded network (see fold)
            out = self._split[1](torch.addmm(base, z.to(base.dtype), weight.T))  # type: ignore[index]
        else:
            out = self.model(program.assemble(xs_final, z))
        margin = self.goal.margin(out).to(DTYPE)
        cost = step_costs.sum(1)
        loss = cost + penalty + c * torch.relu(self.config.margin - margin)
        return loss.sum(), Terms(cost, margin, ok)

    def _step(self, state: State, schedule: torch.Tensor, *args: Any) -> State:
        """One iteration with the gradient from autograd (eager)."""
        u = state.u.detach().requires_grad_(True)
        loss, terms = self.objective(u, state.c, *args)
        (grad,) = torch.autograd.grad(loss, u)
        with torch.no_grad():
            return self._update(state, grad, terms, schedule)

    def _steps_functional(self, state: State, schedule: torch.Tensor, *args: Any) -> State:
        """``len(schedule)`` iterations with gradients from ``torch.func.grad``: pure, for ``torch.compile``."""
        for row in schedule:
            grad, terms = torch.func.grad(self.objective, has_aux=True)(state.u, state.c, *args)
            state = self._update(state, grad, terms, row)
        return state

    def _update(self, state: State, grad: torch.Tensor, terms: Terms, schedule: torch.Tensor) -> State:
        """Record the best iterates, one Adam update, and the adaptive c (``schedule``: step size, bias
        corrections, whether to update c after this iteration)."""
        u, m1, m2, best_cost, best_any, best_u, any_u, met, c = state
        cost, margin, ok = terms
        valid = ok & (margin >= 0)
        strong = valid & (margin >= self.config.margin)
        better = strong & (cost < best_cost)
        best_cost = torch.where(better, cost, best_cost)
        best_u = torch.where(better[:, None, None], u, best_u)
        better_any = valid & (cost < best_any)
        best_any = torch.where(better_any, cost, best_any)
        any_u = torch.where(better_any[:, None, None], u, any_u)
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad * grad
        step = schedule[0] * (m1 / schedule[1]) / ((m2 / schedule[2]).sqrt() + 1e-8)
        u = (u - step).clamp(0, 1)
        met = met | strong
        # every check_every iterations: c shrinks where the goal was met since the last check, else grows
        check = schedule[3] > 0
        c = torch.where(check, torch.where(met, c * 0.7, c * 2.0).clamp(1e-3, 1e6), c)
        met = met & ~check
        return State(u, m1, m2, best_cost, best_any, best_u, any_u, met, c)
