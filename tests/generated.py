"""Generated problems shared by the tests of the generator, the oracle and the optimality targets.

Each is built once per test process (10 people each, to keep the suite fast).
"""

from __future__ import annotations

import functools

from actionable.problems import Problem, generate

__all__ = ["SEEDS", "problem"]

SEEDS = range(25)


@functools.cache
def problem(seed: int) -> Problem:
    """The generated problem of ``seed`` with 10 people."""
    return generate(seed, people=10)
