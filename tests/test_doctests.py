"""The examples in the verbs' docstrings run as written (``attribute``, ``synthesize``, ``invert``,
``project_weighted_l1_ball``)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from actionable import attribution, inverse, projections, synthesis

MODULES = [attribution, synthesis, inverse, projections]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no example"
    assert result.failed == 0
