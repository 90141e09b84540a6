"""Result values: frozen, printable by the caller, serialisable, never holding models or caches."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from actionable.errors import ConfigError, DataError
from actionable.files import atomic_write

__all__ = [
    "FORMAT",
    "NOT_REQUESTED",
    "PROBABILITY",
    "STATUSES",
    "Advice",
    "Attribution",
    "FeatureAdvice",
    "Recourse",
    "RecourseBatch",
    "Status",
    "Step",
    "batch",
    "json_label",
]


Status = Literal["found", "already_favourable", "not_found", "infeasible", "error"]
STATUSES: tuple[str, ...] = ("found", "already_favourable", "not_found", "infeasible", "error")
FORMAT = "actionable.recourse/1"
PROBABILITY = "probability of the favourable outcome"  # what p_before / p_after are for a classifier
# a record's default certificate (see ``certify.Certificate``)
NOT_REQUESTED: Mapping[str, Any] = {"kind": "none", "reason": "not requested"}
# the columns of ``RecourseBatch.to_frame`` before the changed features' ``_before`` / ``_after`` pairs
_RECORD_COLUMNS = ("status", "cost", "p_before", "p_after", "plan", "steps", "seconds", "error")


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
    """The answer for one person: a status, the plan's steps, its cost (penalties never included), before/after.

    ``row`` is the input frame's index label of the row answered (as ``Attribution.rows``), not its position,
    so a result joins back to a filtered frame such as ``X[pred == 1]``."""

    row: Hashable
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
    # invert with an indirect model: its raw predictions after the change (x_after holds them rounded and
    # clipped to each feature's kind and bounds, a row the schema accepts)
    indirect_raw: Mapping[str, float] = field(default_factory=dict)
    # synthesize(k > 1): the person's next cheapest plans, each using another set of actions (status found)
    alternatives: tuple[Recourse, ...] = ()
    # what a mixed-integer program proved about this row (``certify.Certificate.to_dict``): optimal within
    # a gap, no plan exists, or none with the reason
    certificate: Mapping[str, Any] = field(default_factory=lambda: dict(NOT_REQUESTED))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "row": json_label(self.row),
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
            "indirect_raw": {k: _plain(v) for k, v in self.indirect_raw.items()},
            "alternatives": [a.to_dict() for a in self.alternatives],
            "certificate": dict(self.certificate),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recourse:
        if data.get("format") != FORMAT:
            raise DataError(f"recourse record: format {data.get('format')!r} is not {FORMAT!r}.")
        return cls(
            row=data["row"],
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
            indirect_raw={k: _float(v) for k, v in dict(data.get("indirect_raw", {})).items()},
            alternatives=tuple(cls.from_dict(a) for a in data.get("alternatives", [])),
            certificate=dict(data.get("certificate") or NOT_REQUESTED),
        )

    def describe(self) -> str:
        """The plan as text a person can read."""
        # what p_before / p_after measure: a probability, or a regression model's predicted value
        outcome = str(self.provenance.get("outcome", PROBABILITY))
        shown = "{:.2f}" if outcome == PROBABILITY else "{:.4g}"
        before, after = shown.format(self.p_before), shown.format(self.p_after)
        if self.status == "found" or (self.status == "not_found" and self.steps):
            # a not_found with steps: the best change within a budget (invert) that does not flip the decision
            lines = [f"{i}. {s.text}" for i, s in enumerate(self.steps, start=1)]
            short = "; not enough to change the decision" if self.status == "not_found" else ""
            return "\n".join(lines) + f"\n(cost {self.cost:.3g}; {outcome} {before} -> {after}{short})"
        if self.status == "already_favourable":
            what = "probability" if outcome == PROBABILITY else outcome
            return f"Nothing to do: the decision is already favourable ({what} {before})."
        if self.status == "error":
            return f"Could not be processed: {self.error}"
        return f"No plan found ({self.status}){': ' + self.error if self.error else ''}."


@dataclass(frozen=True)
class RecourseBatch:
    """One ``Recourse`` per input row, in input order, failures included; ``index_names``: the input
    frame's index names (a MultiIndex's level names), which ``to_frame`` gives its index so that
    ``X.join(batch.to_frame())`` matches the levels (not part of the records, so not compared)."""

    items: tuple[Recourse, ...]
    index_names: tuple[Hashable, ...] = field(default=(), compare=False)  # not in JSON: equal batches

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Recourse]:
        return iter(self.items)

    def __getitem__(self, i: int) -> Recourse:
        return self.items[i]

    def by_row(self, label: Hashable) -> Recourse:
        """The record of the input row with this index label (``batch[i]`` is the i-th row by position);
        ``ConfigError`` when no row, or more than one (a repeated label), has it."""
        matches = [r for r in self.items if _same_label(r.row, label)]
        if len(matches) != 1:
            what = "no input row has" if not matches else f"{len(matches)} input rows have"
            raise ConfigError(
                f"RecourseBatch.by_row: {what} the label {label!r}; give a label of the input frame's index "
                "exactly once (use batch[i] for the i-th row, or X.reset_index() for unique labels)."
            )
        return matches[0]

    def to_frame(self) -> pd.DataFrame:
        """One row per input row, indexed by its label: status, cost, p_before, p_after, the plan's text
        (steps, seconds, error), and ``<feature>_before`` / ``<feature>_after`` for every feature some plan
        changes (NaN after where a row has no end state: no plan, or an error). The index carries the input
        frame's index names (an unnamed one is called ``row``); an empty batch still has the columns."""
        changed = [
            name
            for name in dict.fromkeys(k for r in self.items for k in r.x_before)
            if any(r.x_after and str(r.x_after.get(name)) != str(r.x_before.get(name)) for r in self.items)
        ]
        records = []
        for r in self.items:
            record: dict[str, Any] = {
                "status": r.status,
                "cost": r.cost,
                "p_before": r.p_before,
                "p_after": r.p_after,
                "plan": " | ".join(s.text for s in r.steps),
                "steps": len(r.steps),
                "seconds": r.seconds,
                "error": r.error,
            }
            for name in changed:
                record[f"{name}_before"] = r.x_before.get(name, math.nan)
                record[f"{name}_after"] = r.x_after.get(name, math.nan)
            records.append(record)
        names = list(self.index_names)
        index = pd.Index([r.row for r in self.items])  # tuples (a MultiIndex's labels) stay a MultiIndex
        if not self.items and len(names) > 1:
            index = pd.MultiIndex.from_tuples([], names=names)
        elif isinstance(index, pd.MultiIndex):
            index.names = names if len(names) == index.nlevels else [None] * index.nlevels
        else:
            index.name = names[0] if len(names) == 1 and names[0] is not None else "row"
        columns = [*_RECORD_COLUMNS, *(f"{name}_{when}" for name in changed for when in ("before", "after"))]
        return pd.DataFrame(records, index=index, columns=columns)

    def to_jsonl(self, path: str | Path) -> Path:
        """One JSON line per record, written whole or not at all (temp file, fsync, rename; see ``files``)."""
        path = Path(path)
        with atomic_write(path) as handle:
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


def json_label(label: Hashable) -> Any:
    """A row label as JSON holds it: a string, a whole number, a finite number, a flag or null as it is;
    anything else (a timestamp, a tuple of a MultiIndex, NaN) as its text."""
    if isinstance(label, np.generic):
        label = label.item()
    if label is None or isinstance(label, str | bool | int):
        return label
    if isinstance(label, float) and math.isfinite(label):
        return label
    return str(label)


def _same_label(a: Hashable, b: Hashable) -> bool:
    """Whether two row labels are the same (a NaN label equals itself; numpy scalars equal their values)."""
    if isinstance(b, np.generic):
        b = b.item()
    try:
        return bool(a == b) or (a != a and b != b)  # a NaN label is never == itself
    except (TypeError, ValueError):
        return False


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def batch(items: Sequence[Recourse]) -> RecourseBatch:
    return RecourseBatch(tuple(items))


@dataclass(frozen=True)
class Attribution:
    """Attributions per row and raw feature (one-hot blocks summed), with the completeness delta.

    ``values`` (rows x features): in the explained output's units, or for ``gradient`` its change per
    raw unit (``unit`` "per unit") or per standard deviation ("per sd"). ``prediction`` is f(x) and
    ``reference`` f(baseline) per row (NaN for ``gradient``); ``delta`` per row is the sum of the
    attributions minus (prediction - reference): 0 for an exact method, NaN for ``gradient``.
    ``errors``: the rows of a raw frame that do not fit the schema (row label -> the schema's message);
    they keep their place with NaN values, no reasons in ``top`` and an error record in ``to_records``.
    ``protected``: the schema's protected features (``protected = true``). Adverse-action reasons must not
    cite them, so ``to_records`` marks them among the top reasons and ``top(exclude_protected=True)``
    leaves them out; their values are kept (the model may still lean on them, and that is worth knowing).
    """

    values: np.ndarray
    features: tuple[str, ...]
    method: str
    rows: tuple[Any, ...]
    baseline: str
    delta: np.ndarray
    target: str
    prediction: np.ndarray
    reference: np.ndarray
    unit: str = "output"
    errors: Mapping[Any, str] = field(default_factory=dict)
    protected: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("values", "delta", "prediction", "reference"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "protected", tuple(self.protected))
        unknown = [p for p in self.protected if p not in self.features]
        if unknown:
            raise DataError(
                f"Attribution: protected features {unknown} are not among its features; name features of "
                "the schema (those with protected = true)."
            )

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per input row, one column per raw feature."""
        return pd.DataFrame(self.values, columns=list(self.features), index=list(self.rows))

    def top(
        self,
        k: int = 3,
        sign: Literal["both", "positive", "negative"] = "both",
        *,
        exclude_protected: bool = False,
    ) -> list[list[tuple[str, float]]]:
        """Per row, the ``k`` features with the largest attributions, largest first.

        ``both``: by absolute value; ``positive`` / ``negative``: only features pushing the output up /
        down, strongest first (fewer than ``k`` when fewer push that way). ``exclude_protected``: the
        ``k`` strongest among the features that are not protected (reasons a lender may give).
        """
        if sign not in ("both", "positive", "negative"):
            raise DataError(f"Attribution.top: sign {sign!r}; use 'both', 'positive' or 'negative'.")
        if not isinstance(exclude_protected, bool):
            raise DataError(
                f"Attribution.top: exclude_protected must be True or False; got {exclude_protected!r}."
            )
        key = {"both": -np.abs(self.values), "positive": -self.values, "negative": self.values}[sign]
        skip = [j for j, f in enumerate(self.features) if exclude_protected and f in self.protected]
        if skip:
            key = key.copy()
            key[:, skip] = np.inf  # sorted last, and dropped below
        order = np.argsort(key, axis=1, kind="stable")[:, : max(int(k), 0)]
        keep: Callable[[float], bool] = {
            "both": lambda v: True,
            "positive": lambda v: v > 0,
            "negative": lambda v: v < 0,
        }[sign]
        return [
            []
            if label in self.errors
            else [
                (self.features[j], float(self.values[i, j]))
                for j in row
                if j not in skip and keep(self.values[i, j])
            ]
            for i, (label, row) in enumerate(zip(self.rows, order, strict=True))
        ]

    def to_records(self, k: int = 3) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: values by feature, the top ``k`` (``top``: ``[feature, value]``
        pairs; ``reasons``: the same as ``{"feature", "value", "protected"}``, so a protected feature is
        marked), prediction, reference, delta; a row that did not fit the schema gets
        ``{"format", "row", "error"}``."""
        return [
            {"format": "actionable.attribution/1", "row": _plain(row), "error": self.errors[row]}
            if row in self.errors
            else {
                "format": "actionable.attribution/1",
                "row": _plain(row),
                "method": self.method,
                "target": self.target,
                "baseline": self.baseline,
                "unit": self.unit,
                "values": {f: float(v) for f, v in zip(self.features, self.values[i], strict=True)},
                "top": [[f, v] for f, v in tops],
                "reasons": [{"feature": f, "value": v, "protected": f in self.protected} for f, v in tops],
                "prediction": _plain(float(self.prediction[i])),
                "reference": _plain(float(self.reference[i])),
                "delta": _plain(float(self.delta[i])),
            }
            for i, (row, tops) in enumerate(zip(self.rows, self.top(k), strict=True))
        ]


@dataclass(frozen=True)
class FeatureAdvice:
    """Adversarial advising for one changeable feature: which way to move it, and what the model predicts.

    ``per_sd``: first-order change of the prediction per standard deviation (per raw unit without a
    scale) in the helpful ``direction``; NaN for a category or binary switch. ``step``: the small change
    tried, in raw units (``to``: the new level for a switch). ``effect``: the model's own change of the
    prediction after that step; ``linear_effect``: the gradient's forecast of it.
    """

    feature: str
    direction: str
    per_sd: float
    sd: float
    step: float
    to: Any
    effect: float
    linear_effect: float
    text: str


@dataclass(frozen=True)
class Advice:
    """Ranked advice for one person: the changeable features that move the prediction toward the goal."""

    items: tuple[FeatureAdvice, ...]
    goal: str
    quantity: str
    prediction: float
    x: Mapping[str, Any]
    unit: str

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[FeatureAdvice]:
        return iter(self.items)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([a.__dict__ for a in self.items])

    def describe(self) -> str:
        """One sentence per feature, best first."""
        head = f"{self.quantity} is {self.prediction:.4g}; goal: {self.goal}."
        if not self.items:
            return head + "\nNo changeable feature moves the prediction toward the goal."
        return "\n".join([head] + [f"{i}. {a.text}" for i, a in enumerate(self.items, start=1)])
