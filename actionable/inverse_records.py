"""What inverse classification reports: ``Recourse`` records per row, budgets, the curve over budgets.

``InverseRecords`` (a mixin of ``InverseProblem``) turns solved changes into records: settled indirect
predictions, the state after, readable steps and provenance. ``sweep_curve`` and ``plot_curves`` summarise
a sweep over budgets (Lash et al.'s figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable._version import __version__
from actionable.errors import ConfigError
from actionable.goals import Goal
from actionable.inverse_config import InverseConfig
from actionable.models import TorchModel
from actionable.results import NOT_REQUESTED, RecourseBatch, Status, Step
from actionable.rounding import make_whole
from actionable.rows import Outcome, Rows, assemble
from actionable.schema import Feature, Schema

__all__ = ["MAX_BUDGETS", "InverseRecords", "check_budgets", "plot_curves", "readable", "sweep_curve"]


MAX_BUDGETS = 1000  # the most budgets one sweep solves (each is a full solve of every row)


class InverseRecords:
    """Records of solved rows; mixed into ``InverseProblem``, which provides the model and the state."""

    schema: Schema
    config: InverseConfig
    model: TorchModel
    goal: Goal
    direct: list[Feature]
    cols: torch.Tensor
    span: torch.Tensor
    indirect: tuple[TorchModel, torch.Tensor] | None

    def state(self, x0: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _batch(
        self,
        rows: Rows,
        solution: tuple[torch.Tensor, int, list[dict[str, Any]] | None] | None,
        budget: float,
        seconds: float,
    ) -> RecourseBatch:
        exact = getattr(self, "leaves", None) is not None  # a tree model: mixed-integer programs
        provenance = {
            "method": "lash2017-leaves" if exact else "lash2017",
            "solver": "mixed-integer programs over the leaves (HiGHS)" if exact else "projected gradient",
            "budget": budget,
            "config": asdict(self.config),
            "goal": self.goal.describe(),
            "indirect": self.indirect is not None,
            "iterations": solution[1] if solution is not None else 0,
            "version": __version__,
        }
        outcomes: list[Outcome] = []
        if solution is not None:
            delta = solution[0]
            with torch.no_grad():
                raw_end = self.state(rows.x, delta)
                start = self.settle(self.state(rows.x, torch.zeros_like(delta)))
                end = self.settle(raw_end)
                out0, out1 = self.model(start), self.model(end)  # on the rows reported
                p0, p1 = self.goal.probability(out0).tolist(), self.goal.probability(out1).tolist()
                ok0, ok1 = self.goal.satisfied(out0).tolist(), self.goal.satisfied(out1).tolist()
            raw = (end[:, self.cols] - rows.x[:, self.cols]).numpy()
            after = self._after(end, list(rows.before))
            predicted = self._indirect_raw(raw_end)
            proofs = solution[2] or [dict(NOT_REQUESTED)] * len(rows.before)
            for i, before in enumerate(rows.before):
                steps = self._steps(raw[i], before, exact)
                status: Status = "already_favourable" if ok0[i] else ("found" if ok1[i] else "not_found")
                cost = float(sum(s.cost for s in steps))
                extra = predicted[i] if predicted else {}
                outcomes.append(
                    Outcome(
                        status, p0[i], steps, cost, after[i], p1[i], indirect_raw=extra, certificate=proofs[i]
                    )
                )
        return assemble(rows, outcomes, seconds=seconds, provenance=provenance)

    def settle(self, x: torch.Tensor) -> torch.Tensor:
        """Rows with the indirect model's predictions made valid: made whole numbers for integer and binary
        features (as each feature's ``rounding`` says) and clipped to each feature's bounds, as the schema
        accepts them (the model's raw outputs go to ``Recourse.indirect_raw``)."""
        if self.indirect is None:
            return x
        g, cols = self.indirect
        out = x.clone()
        for name, col in zip(g.outputs, cols.tolist(), strict=True):
            f = self.schema[name]
            value = make_whole(out[:, col], f.rounding) if f.is_whole else out[:, col]
            out[:, col] = value.clamp(f.bounds[0], f.bounds[1])
        return out

    def _indirect_raw(self, x: torch.Tensor) -> list[dict[str, float]]:
        """Per row, the indirect model's raw prediction of each indirect feature (empty without one)."""
        if self.indirect is None:
            return []
        g, cols = self.indirect
        values = x[:, cols].tolist()
        return [dict(zip(map(str, g.outputs), row, strict=True)) for row in values]

    def _after(self, end: torch.Tensor, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
        moved = [f.name for f in self.schema.features if not f.is_fixed]
        cols = [self.schema.slice(name).start for name in moved]
        values = end[:, cols].numpy()
        out = []
        for i, record in enumerate(before):
            new = dict(record)
            for name, value in zip(moved, values[i], strict=True):
                new[name] = _number(self.schema[name], float(value))
            out.append(new)
        return out

    def _steps(self, raw: np.ndarray, before: dict[str, Any], exact: bool = False) -> tuple[Step, ...]:
        """The readable steps of one row's change; ``exact``: values printed with every digit they need
        (on a tree model a value is often a split's edge, and 4 digits would land in another cell)."""
        shown = precise if exact else readable
        steps = []
        for j, f in enumerate(self.direct):
            change = float(raw[j])
            if abs(change) <= 1e-12 * max(1.0, float(self.span[j])):
                continue
            start = float(before[f.name])
            end = _number(f, start + change)
            change = float(end) - start
            price = (f.cost_up if change > 0 else f.cost_down) or 0.0
            verb = "Increase" if change > 0 else "Decrease"
            text = f"{verb} {f.name} from {shown(start)} to {shown(end)}"
            steps.append(
                Step(f.name, {"from": start, "to": float(end), "change": change}, abs(change) * price, text)
            )
        return tuple(steps)


def readable(value: float) -> str:
    """A raw value as a person writes it: 4 significant digits, never scientific notation (29150, not
    2.915e+04; 0.125; 3)."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def precise(value: float) -> str:
    """``readable`` when it reads back as the same number, else the fewest digits that do."""
    text = readable(value)
    if not math.isfinite(value) or float(text) == value:
        return text
    for digits in range(5, 18):
        text = f"{value:.{digits}g}"
        if float(text) == value:
            return text if "e" not in text else f"{value:f}".rstrip("0")
    return repr(value)


def _number(feature: Feature, value: float) -> float | int:
    """Whole numbers of integer / binary features as int, everything else as float."""
    if feature.is_whole and abs(value - round(value)) <= 1e-9:
        return round(value)
    return value


def check_budgets(budgets: Sequence[float]) -> list[float]:
    if isinstance(budgets, int | float) or not len(budgets):
        raise ConfigError(f"invert: budgets must be a non-empty list of numbers; got {budgets!r}.")
    levels = []
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, int | float | np.integer | np.floating) or math.isnan(b):
            raise ConfigError(
                f"invert: budget = {b!r} ({type(b).__name__}) is not a number; give a number >= 0."
            )
        if b < 0:
            raise ConfigError(f"invert: budget = {b!r} is negative; give a budget >= 0 (0 = change nothing).")
        if not math.isfinite(b):
            raise ConfigError(
                f"invert: budget = {b!r} is not finite; give a finite budget (the sum of every allowed change's "
                "cost is the most anyone can spend)."
            )
        levels.append(float(b))
    if len(set(levels)) > MAX_BUDGETS:
        raise ConfigError(f"invert: {len(set(levels))} budgets; at most {MAX_BUDGETS} per sweep.")
    return sorted(set(levels))


def sweep_curve(sweep: dict[float, RecourseBatch]) -> pd.DataFrame:
    """One row per budget: mean probability of the unfavourable outcome after the change, the share of
    rows whose favourable probability exceeds 0.5, mean cost spent and rows per status (errors skipped)."""
    rows = []
    for budget, batch in sweep.items():
        done = [r for r in batch if r.status != "error"]
        p = np.array([1 - r.p_after for r in done], dtype=float)
        rows.append(
            {
                "budget": budget,
                "mean_p_unfavourable": float(p.mean()) if len(p) else math.nan,
                "share_below_half": float((p < 0.5).mean()) if len(p) else math.nan,
                "mean_cost": float(np.mean([r.cost for r in done])) if done else math.nan,
                "rows": len(done),
                "errors": len(batch) - len(done),
            }
        )
    return pd.DataFrame(rows)


def plot_curves(curves: dict[str, pd.DataFrame], path: str | Any, *, title: str = "") -> Any:
    """Mean probability of the unfavourable outcome against budget, one line per curve; saves a PNG.

    Each frame needs ``budget`` and ``mean_p_unfavourable`` columns (``sweep_curve`` output).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plot: matplotlib is not installed; pip install 'actionable[plot]'.") from None
    figure, axes = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for label, frame in curves.items():
        axes.plot(frame["budget"], frame["mean_p_unfavourable"], marker="o", markersize=3, label=label)
    axes.set_xlabel("budget")
    axes.set_ylabel("mean P(unfavourable)")
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
