"""Why a person got no plan: what the search tried and how close it came, in words a person can act on.

``Closest`` follows a search: per person, how many sequences were tried, whether any passed the
catalogue's conditions, bounds and directions, and the sequence that came closest to the goal (the largest
goal margin among those that did). ``why_not_found`` turns that into the ``not_found`` record's text.
"""

from __future__ import annotations

import math

import torch

from actionable.goals import Goal
from actionable.program import NOOP, Program
from actionable.results import PROBABILITY
from actionable.schema import DTYPE
from actionable.verify import Exact

__all__ = ["ESCALATION", "Closest", "why_not_found"]

ESCALATION = 4  # people still without a plan are searched again with this many times the steps and c


class Closest:
    """Per person: sequences tried, whether any met the conditions, and the closest one to the goal."""

    def __init__(self, people: int) -> None:
        self.tried = torch.zeros(people, dtype=torch.int64)
        self.valid = torch.zeros(people, dtype=torch.bool)
        self.margin = torch.full((people,), -math.inf, dtype=DTYPE)
        self.probability = torch.full((people,), math.nan, dtype=DTYPE)
        self.sequence: dict[int, tuple[int, ...]] = {}
        self.escalated = torch.zeros(people, dtype=torch.bool)

    def offer(self, exact: Exact, ids: torch.Tensor, rows: torch.Tensor) -> None:
        """Note the pairs checked (``rows``: each pair's person)."""
        self.tried.index_add_(0, rows, torch.ones_like(rows))
        self.valid[rows[exact.ok]] = True
        margin = torch.where(exact.ok, exact.margin, -math.inf)
        for j in torch.nonzero(margin > -math.inf).flatten().tolist():
            person = int(rows[j])
            if float(margin[j]) > float(self.margin[person]):
                self.margin[person] = margin[j]
                self.probability[person] = exact.probability[j]
                self.sequence[person] = tuple(int(a) for a in ids[j].tolist() if a != NOOP)

    def merge(self, other: Closest, people: list[int]) -> None:
        """Add the escalation's search over some of the people (``other``'s person k is ``people[k]``)."""
        for k, person in enumerate(people):
            self.escalated[person] = True
            self.valid[person] |= other.valid[k]
            if float(other.margin[k]) > float(self.margin[person]):
                self.margin[person] = other.margin[k]
                self.probability[person] = other.probability[k]
                self.sequence[person] = other.sequence[k]


def why_not_found(
    closest: Closest, person: int, program: Program, goal: Goal, margin: float, max_length: int
) -> str:
    """The text of a ``not_found`` record: what was tried, and the closest plan's outcome or why none
    was even valid."""
    tried = int(closest.tried[person])
    head = f"no verified plan of at most {max_length} action(s): {tried} sequence(s) tried"
    if bool(closest.escalated[person]):
        head += f", and again with {ESCALATION}x the optimisation steps"
    if tried == 0:
        return (
            f"no verified plan of at most {max_length} action(s): no sequence could be tried (every one "
            "costs at least as much as a plan already refused, or the catalogue is empty)"
        )
    if not bool(closest.valid[person]):
        return (
            f"{head}, and none of them meets the catalogue's preconditions, postconditions, feature bounds "
            "and directions for this person; check the actions' conditions against this row"
        )
    names = ", ".join(program.acts[a].name for a in closest.sequence.get(person, ()))
    value = float(closest.probability[person])
    quantity = "P(favourable)" if goal.outcome() == PROBABILITY else goal.outcome()
    reached = float(closest.margin[person])
    return (
        f"{head}; the closest, [{names}], reaches {quantity} = {value:.3g} (goal margin {reached:.3g}, "
        f"needed {margin:g}); allow longer plans (max_length), wider parameter bounds or more actions"
    )
