"""The settings of ``synthesize``: one frozen record, each field checked by a declarative rule.

``SynthesisConfig`` turns the verb's keywords into validated plain values and into the parts' own
settings (the search strategy, the inner optimiser's ``InnerConfig``, the search ``Space``); ``SEARCHES``
names the strategies ``search=`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from actionable.errors import ConfigError
from actionable.inner import InnerConfig
from actionable.program import Program
from actionable.search import GRADIENT, OBJECTIVE, BestFirst, Exhaustive, Space, Strategy
from actionable.validation import FLAG, Rule, check, choice, real, whole

__all__ = ["ALIASES", "MARGIN_SLACK", "MAX_LENGTH", "MAX_WORK", "RULES", "SEARCHES", "SynthesisConfig"]

MARGIN_SLACK = (
    1e-3  # how far past ``margin`` (goal units) the optimiser aims; the exact check asks ``margin``
)
MAX_LENGTH = 32  # longest sequence asked for; the search size (Space.levels) usually refuses far earlier
MAX_WORK = 10**9  # default bound on pair-steps (sequences x rows x optimisation steps), see Space.levels
SEARCHES: dict[str, Strategy] = {  # search= by name; "bfs" is the former name of "vanilla"
    "vanilla": Exhaustive(),
    "objective": BestFirst(OBJECTIVE),
    "gradient": BestFirst(GRADIENT),
}
ALIASES = {"bfs": "vanilla"}
RULES: dict[str, Rule] = {
    "max_length": whole(1, MAX_LENGTH),
    "steps": whole(1, 10**6),
    "lr": real(0, open_low=True),
    "margin": real(0),
    "c_init": real(0, open_low=True),
    "check_every": whole(1),
    "chunk": whole(1),
    "seed": whole(0, 2**63 - 1),
    "search": choice((*ALIASES, *SEARCHES)),
    "budget": whole(1, optional=True),
    "round_size": whole(1),
    "compile": FLAG,
    "scan": FLAG,
    "k": whole(1, 100),
    "max_work": whole(1, optional=True),
    "certify": FLAG,
    "certify_seconds": real(0, open_low=True),
}


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of the search and of the inner optimisation, validated by ``RULES`` (one rule per field, one
    message format, see ``validation``); numpy numbers and whole floats (``steps=10.0``) are stored as plain
    ints and floats, ``search="bfs"`` as ``"vanilla"``. ``search`` is a name in ``SEARCHES`` or a
    ``search.Strategy``; ``budget`` and ``round_size`` tune the named best-first searches."""

    max_length: int = 4
    steps: int = 150
    lr: float = 0.05
    margin: float = 0.1
    c_init: float = 1.0
    check_every: int = 20
    chunk: int = 50_000
    seed: int = 0
    search: str | Strategy = "vanilla"
    budget: int | None = None
    round_size: int = 16
    compile: bool = False  # torch.compile the inner step (inductor); pays off only for long runs
    scan: bool = True  # exact parameter scans (see scan.py); False: the optimiser's answers alone
    k: int = 1  # plans per person (each using other actions): the best and k - 1 alternatives
    max_work: int | None = MAX_WORK  # most pair-steps of optimisation (see Space.levels); None: no limit
    certify: bool = False  # prove each searched row's result with mixed-integer programs (certify.py)
    certify_seconds: float = 10.0  # the most seconds of solver time per certified row

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.search, Strategy):
            del values["search"]
        for name, value in check("synthesize", RULES, values).items():
            object.__setattr__(self, name, value)  # numpy and whole-float values stored as plain ints
        if isinstance(self.search, str):
            object.__setattr__(self, "search", ALIASES.get(self.search, self.search))
        if self.budget is not None and not isinstance(self.strategy(), BestFirst):
            raise ConfigError(
                f"synthesize: budget = {self.budget!r} applies to search='objective' or 'gradient' "
                "(sequences per person); drop budget, or choose one of those searches."
            )

    def strategy(self) -> Strategy:
        """The search strategy: the one given, or the named one with ``budget`` and ``round_size``."""
        if isinstance(self.search, Strategy):
            return self.search
        named = SEARCHES[self.search]
        if isinstance(named, BestFirst):
            return BestFirst(named.score, budget=self.budget, round_size=self.round_size)
        return named

    def inner(self) -> InnerConfig:
        """The optimiser's settings: it aims ``MARGIN_SLACK`` past ``margin``, so that a plan it reaches is
        not refused by the exact check for a rounding difference of the folded network."""
        target = self.margin + MARGIN_SLACK
        return InnerConfig(self.steps, self.lr, target, self.c_init, self.check_every, self.compile)

    def space(self, program: Program) -> Space:
        return Space(program, self.max_length, self.steps, self.max_work, self.chunk)

    def record(self) -> dict[str, Any]:
        """The settings as plain values (a strategy by its label), for provenance."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {"search": self.strategy().label}
