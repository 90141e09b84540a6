"""Settings of Lash's budget-constrained inverse classification: a frozen, validated ``InverseConfig``.

Kept apart from the solver so that the solver's parts (``inverse``, the whole-number lattice search of
``inverse_lattice``) read one definition of what may be configured and how it is checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from actionable.validation import FLAG, Rule, check, choice, real, whole

__all__ = ["CHUNK", "DEFAULT_CONFIG", "RULES", "TOLERANCE", "Ambiguous", "InverseConfig", "Projection"]

Projection = Literal["exact", "shrink"]
Ambiguous = Literal["gradient", "free"]
TOLERANCE = 1e-9  # relative slack on "cost <= budget" (the projection is exact to rounding)


@dataclass(frozen=True)
class InverseConfig:
    """Settings of the solver (stored as given, validated here).

    ``steps``: most gradient steps per budget; ``method``: "exact" projection or Lash's "shrink";
    ``rounding``: make integer / binary direct features whole (False keeps Lash's continuous relaxation);
    ``ambiguous``: a feature that may move either way is fixed to the direction its initial gradient
    favours ("gradient", as in Lash et al.) or left free ("free"); ``warm_start``: a sweep starts each
    budget from the previous budget's solution; ``tol``: a row stops when its step moves less than this
    (scaled units); ``max_round``: most fractional features whose floor / ceil choices are enumerated;
    ``time_limit``: seconds per row and budget for the mixed-integer programs of a tree model.
    """

    steps: int = 300
    method: Projection = "exact"
    rounding: bool = True
    ambiguous: Ambiguous = "gradient"
    warm_start: bool = True
    tol: float = 1e-9
    max_round: int = 10
    time_limit: float = 30.0

    def __post_init__(self) -> None:
        for name, value in check("invert", RULES, asdict(self)).items():
            object.__setattr__(self, name, value)  # numpy and whole-float values stored as plain ints


RULES: dict[str, Rule] = {
    "steps": whole(1, 10**6),
    "method": choice(("exact", "shrink")),
    "rounding": FLAG,
    "ambiguous": choice(("gradient", "free")),
    "warm_start": FLAG,
    "tol": real(0, open_low=True),
    "max_round": whole(0, 16),
    "time_limit": real(0, open_low=True),
}
CHUNK = 2048  # rows solved together: memory stays flat per row (the lattice search holds rows x moves x k)
DEFAULT_CONFIG = InverseConfig()  # the solver's defaults (a frozen value, shared safely)
