"""The tree of the expression language: whitelisted node types, category values, and a walk over a tree.

These frozen nodes are what ``expr.parse`` builds from a spec file's text and what ``evaluate`` walks; they
hold no behaviour beyond their structure, so both the parser and the evaluators depend on this module and
never on each other's internals.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Union

import torch

__all__ = [
    "ALLOWED",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "NODE_TYPES",
    "Binary",
    "BoolOp",
    "Call",
    "Categorical",
    "Compare",
    "Const",
    "IfElse",
    "Name",
    "Node",
    "Not",
    "Unary",
    "Value",
    "level_example",
    "short",
    "walk",
]

MAX_LENGTH = 2000
MAX_DEPTH = 64
FUNCTIONS: dict[str, tuple[int, int | None]] = {  # name -> (min args, max args)
    "abs": (1, 1),
    "log": (1, 1),
    "exp": (1, 1),
    "sqrt": (1, 1),
    "min": (2, None),
    "max": (2, None),
}
ALLOWED = (
    "feature and parameter names, numbers, quoted category levels, + - * / **, abs min max log exp sqrt, "
    "comparisons (< <= > >= == !=), and/or/not, and 'a if condition else b'"
)


# ---------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Const:
    """A number (always a python float, so huge literals become inf), a bool, or a quoted category level."""

    value: float | str | bool


@dataclass(frozen=True)
class Name:
    """A feature or parameter, looked up in the environment at evaluation."""

    id: str


@dataclass(frozen=True)
class Unary:
    """Sign: ``op`` is ``"-"`` or ``"+"``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """Arithmetic: ``op`` is one of ``+ - * / **``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A whitelisted function (``FUNCTIONS``); ``min``/``max`` are elementwise over two or more arguments."""

    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    """One comparison, ``op`` in ``< <= > >= == !=``; chains ``a < b < c`` become ``BoolOp("and", ...)``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    """``op`` is ``"and"`` or ``"or"`` over two or more conditions."""

    op: str
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """Logical negation of a condition."""

    operand: Node


@dataclass(frozen=True)
class IfElse:
    """``then if test else other``: per row, ``then`` where the condition holds, else ``other`` (numbers only).

    Both branches are evaluated on every row (it is a ``torch.where``); gradients reach the chosen branch.
    """

    test: Node
    then: Node
    other: Node


Node = Union[Const, Name, Unary, Binary, Call, Compare, BoolOp, Not, IfElse]  # noqa: UP007 (a runtime alias)
NODE_TYPES = (Const, Name, Unary, Binary, Call, Compare, BoolOp, Not, IfElse)


@dataclass(frozen=True)
class Categorical:
    """A category feature's value inside an expression: a one-hot block (..., L) and its levels."""

    onehot: torch.Tensor
    levels: tuple[str, ...]


Value = Union[torch.Tensor, Categorical]  # noqa: UP007


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents first (trees are at most ``MAX_DEPTH`` deep, so recursion is safe)."""
    yield node
    if isinstance(node, Unary | Not):
        yield from walk(node.operand)
    elif isinstance(node, Binary | Compare):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, BoolOp):
        for value in node.values:
            yield from walk(value)
    elif isinstance(node, IfElse):
        yield from walk(node.test)
        yield from walk(node.then)
        yield from walk(node.other)


def level_example(name: str, levels: Sequence[str]) -> str:
    """A valid comparison to show in a fix, e.g. ``job == 'skilled'``."""
    return f"{name} == {levels[0]!r}" if levels else f"{name} == 'level'"


def short(text: str, limit: int = 80) -> str:
    """``text`` cut for an error message, so a 2000-character expression does not flood it."""
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------- Expr
