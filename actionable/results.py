"""Result values: frozen, printable by the caller, serialisable, never holding models or caches."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from actionable.errors import DataError

Status = Literal["found", "already_favourable", "not_found", "infeasible", "error"]
STATUSES: tuple[str, ...] = ("found", "already_favourable", "not_found", "infeasible", "error")
FORMAT = "actionable.recourse/1"


@dataclass(frozen=True)
class Step:
    """One action of a plan: its parameters in raw units, its cost and the sentence a person reads."""

    action: str
    params: Mapping[str, float]
    cost: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "params": dict(self.params), "cost": self.cost, "text": self.text}


@dataclass(frozen=True)
class Recourse:
    """The answer for one person: a status, the plan's steps, its cost (penalties never included), before/after."""

    row: int
    status: Status
    steps: tuple[Step, ...] = ()
    cost: float = math.nan
    x_before: Mapping[str, Any] = field(default_factory=dict)
    x_after: Mapping[str, Any] = field(default_factory=dict)
    p_before: float = math.nan
    p_after: float = math.nan
    seconds: float = 0.0
    error: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "row": self.row,
            "status": self.status,
            "steps": [s.to_dict() for s in self.steps],
            "cost": _plain(self.cost),
            "x_before": {k: _plain(v) for k, v in self.x_before.items()},
            "x_after": {k: _plain(v) for k, v in self.x_after.items()},
            "p_before": _plain(self.p_before),
            "p_after": _plain(self.p_after),
            "seconds": self.seconds,
            "error": self.error,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recourse:
        if data.get("format") != FORMAT:
            raise DataError(f"recourse record: format {data.get('format')!r} is not {FORMAT!r}.")
        return cls(
            row=int(data["row"]),
            status=data["status"],
            steps=tuple(
                Step(s["action"], dict(s["params"]), float(s["cost"]), s["text"]) for s in data["steps"]
            ),
            cost=_float(data["cost"]),
            x_before=dict(data["x_before"]),
            x_after=dict(data["x_after"]),
            p_before=_float(data["p_before"]),
            p_after=_float(data["p_after"]),
            seconds=float(data["seconds"]),
            error=str(data["error"]),
            provenance=dict(data.get("provenance", {})),
        )

    def describe(self) -> str:
        """The plan as text a person can read."""
        if self.status == "found" or (self.status == "not_found" and self.steps):
            # a not_found with steps: the best change within a budget (invert) that does not flip the decision
            lines = [f"{i}. {s.text}" for i, s in enumerate(self.steps, start=1)]
            short = "; not enough to change the decision" if self.status == "not_found" else ""
            return (
                "\n".join(lines)
                + f"\n(cost {self.cost:.3g}; probability of the favourable outcome {self.p_before:.2f} -> {self.p_after:.2f}{short})"
            )
        if self.status == "already_favourable":
            return f"Nothing to do: the decision is already favourable (probability {self.p_before:.2f})."
        if self.status == "error":
            return f"Could not be processed: {self.error}"
        return f"No plan found ({self.status}){': ' + self.error if self.error else ''}."


@dataclass(frozen=True)
class RecourseBatch:
    """One ``Recourse`` per input row, in input order, failures included."""

    items: tuple[Recourse, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Recourse]:
        return iter(self.items)

    def __getitem__(self, i: int) -> Recourse:
        return self.items[i]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "row": r.row,
                    "status": r.status,
                    "cost": r.cost,
                    "steps": len(r.steps),
                    "plan": " | ".join(s.text for s in r.steps),
                    "p_before": r.p_before,
                    "p_after": r.p_after,
                    "seconds": r.seconds,
                    "error": r.error,
                }
                for r in self.items
            ]
        )

    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", encoding="utf-8") as handle:
            for r in self.items:
                handle.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        return path

    @classmethod
    def from_jsonl(cls, path: str | Path) -> RecourseBatch:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls(tuple(Recourse.from_dict(json.loads(line)) for line in lines if line.strip()))

    def summary(self) -> dict[str, Any]:
        """Counts per status, success rate among rows that needed a plan, cost quantiles, time."""
        counts = {s: sum(r.status == s for r in self.items) for s in STATUSES}
        needed = len(self.items) - counts["already_favourable"] - counts["error"]
        costs = np.array([r.cost for r in self.items if r.status == "found"], dtype=float)
        return {
            "rows": len(self.items),
            **counts,
            "success_rate": counts["found"] / needed if needed else math.nan,
            "cost_median": float(np.median(costs)) if costs.size else math.nan,
            "cost_q25": float(np.quantile(costs, 0.25)) if costs.size else math.nan,
            "cost_q75": float(np.quantile(costs, 0.75)) if costs.size else math.nan,
            "seconds_total": float(sum(r.seconds for r in self.items)),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def batch(items: Sequence[Recourse]) -> RecourseBatch:
    return RecourseBatch(tuple(items))
