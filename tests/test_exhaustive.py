"""Small whole-number boxes of several parameters are enumerated: the optimum of each such sequence, exactly."""

from __future__ import annotations

import itertools

import pytest
import torch

from actionable.exhaustive import enumerate_small, small_boxes
from actionable.goals import resolve_goal
from actionable.models import as_model
from actionable.oracle import solve_exhaustively
from actionable.problems import generate
from actionable.program import Program
from actionable.scan import ScanConfig, Scanner
from actionable.synthesis import synthesize
from actionable.verify import Verifier


def test_a_three_parameter_plan_the_coordinate_scans_miss() -> None:
    # pair1(p=1, q=0) then shift2(p=5) costs 2.087; one parameter at a time stops at pair1(p=2) alone (3.26)
    problem = generate(26, people=10)
    X = problem.X.loc[[127]]
    found = synthesize(problem.model, X, problem.actions, max_length=problem.max_length)[0]
    oracle = solve_exhaustively(problem.model, X, problem.actions, max_length=problem.max_length)[0]
    assert found.status == "found" and oracle.helpable
    assert found.cost == pytest.approx(oracle.cost, rel=1e-9)


def test_enumeration_equals_brute_force_on_every_sequence() -> None:
    problem = generate(26, people=4)
    model = as_model(problem.model, problem.schema)
    program = Program(problem.actions)
    verifier = Verifier(program, model, resolve_goal(model, None), 0.1)
    scanner = Scanner(verifier)
    names = [a.name for a in program.acts]
    seq = (names.index("pair1"), names.index("shift2"))
    x0 = problem.schema.encode(problem.X)
    ids = program.pad([seq] * len(x0))
    assert bool(small_boxes(scanner, ids).all())
    _, _, init = program.boxes(ids)
    got = verifier.exact(ids, x0, enumerate_small(scanner, ids, x0, init))
    for k in range(len(x0)):  # brute force: every (p, q, p') one by one
        best = float("inf")
        for p, q, r in itertools.product(range(3), range(5), range(10)):
            params = torch.tensor([[[p, q], [r, 0]]], dtype=init.dtype)
            e = verifier.exact(ids[k : k + 1], x0[k : k + 1], params)
            if bool(e.passes[0]):
                best = min(best, float(e.cost[0]))
        expected = best if best < float("inf") else None
        assert (float(got.cost[k]) if bool(got.passes[k]) else None) == (
            pytest.approx(expected) if expected is not None else None
        )


def test_large_or_real_boxes_are_not_enumerated() -> None:
    problem = generate(26, people=2)
    model = as_model(problem.model, problem.schema)
    program = Program(problem.actions)
    scanner = Scanner(Verifier(program, model, resolve_goal(model, None), 0.1), ScanConfig(exact_product=100))
    names = [a.name for a in program.acts]
    ids = program.pad(
        [(names.index("pair1"), names.index("shift2")), (names.index("pair1"), names.index("shift3"))]
    )
    assert small_boxes(scanner, ids).tolist() == [False, False]  # 150 combinations > 100; a real parameter
    scanner = Scanner(scanner.verifier)
    assert small_boxes(scanner, ids).tolist() == [True, False]
