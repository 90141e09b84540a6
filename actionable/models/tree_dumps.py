"""What a booster's JSON dump reads into (``tree_xgboost.py``, ``tree_lightgbm.py``): its trees in the
``TreeEnsemble`` convention, the base margin per output, and what its outputs mean (the link)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from actionable.errors import ModelError
from actionable.models.trees import Tree

__all__ = ["Forest", "Link", "preorder"]

Link = Literal["binary", "multiclass", "regression"]  # sigmoid of one margin, softmax of k, identity


@dataclass(frozen=True)
class Forest:
    """A booster read from its dump: ``trees`` summed onto ``base`` give margins (logits for ``binary`` /
    ``multiclass``, predictions for ``regression``); ``float32`` says the library rounds inputs to float32
    before comparing; ``features`` are the names it was fitted on (None when unnamed)."""

    trees: list[Tree]
    base: np.ndarray
    link: Link
    float32: bool
    n_features: int
    features: list[str] | None
    library: str

    @property
    def n_outputs(self) -> int:
        return len(self.base)


def preorder(left: np.ndarray, right: np.ndarray, where: str) -> np.ndarray:
    """The nodes reachable from node 0 in depth-first order (each child after its parent), so a dump's
    arbitrary numbering becomes the ``TreeEnsemble`` one; a node reached twice (a cycle) is refused."""
    order: list[int] = []
    seen = np.zeros(len(left), bool)
    stack = [0]
    while stack:
        node = stack.pop()
        if node < 0 or node >= len(left) or seen[node]:
            raise ModelError(
                f"as_model: {where} is malformed (node {node} is out of range or reached twice)."
            )
        seen[node] = True
        order.append(node)
        if left[node] >= 0:
            stack.extend((int(right[node]), int(left[node])))
    return np.asarray(order, np.int64)
