"""Tree ensembles as tensors: one closed-set layer that evaluates every tree of every row at once, exactly.

A fitted forest or boosted ensemble (``tree_sklearn.py``, ``tree_boosters.py``) becomes ``TreeEnsemble``:
flat node arrays over all trees (split column, threshold, children, where a missing value goes, leaf
values). Every split reads ``cast(x[column]) <= threshold`` (``float32``: the input is rounded to float32
first, as scikit-learn's trees and XGBoost do; XGBoost's strict ``<`` is stored as ``<=`` the float32 just
below). A leaf points to itself, so ``depth`` rounds of one gather route every row to its leaf in every
tree. The output is ``base`` plus the sum of the reached leaves' values (learning rates and averaging are
folded into the values); ``Log`` turns a forest's averaged probabilities into logits.
Split structure (``splits``) is what gradient-free recourse and TreeSHAP read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from actionable.errors import ModelError
from actionable.models.layers import Field, Layer, Shape

__all__ = ["TINY", "Log", "Tree", "TreeEnsemble", "pack", "tree_layer"]

TINY = 1e-300  # a forest's probability 0 is logit log(1e-300): softmax gives it back to 1e-300
MAX_DEPTH = 4096


@dataclass(frozen=True)
class Tree:
    """One fitted tree in local node numbering: ``feature[i] < 0`` marks a leaf; ``left`` / ``right`` are
    child indices (ignored at leaves); ``value`` is (nodes x outputs), read at leaves only; ``cover`` is
    the training weight that reached each node (1 everywhere when the library does not record it)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    cover: np.ndarray | None = None  # training weight reaching each node (TreeSHAP's path weights)


def pack(trees: Sequence[Tree], base: Sequence[float], *, inputs: int, float32: bool) -> TreeEnsemble:
    """One ``TreeEnsemble`` from trees in local numbering (children checked to lie below their parent)."""
    if not trees:
        raise ModelError("as_model: the ensemble has no trees; fit it first.")
    outputs = len(base)
    keys = ("feature", "threshold", "left", "right", "missing", "cover")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    values, roots, offset = [], [], 0
    for t, tree in enumerate(trees):
        n = len(tree.feature)
        feature = np.asarray(tree.feature, np.int64)
        leaf = feature < 0
        own = np.arange(n, dtype=np.int64)
        left = np.where(leaf, own, np.asarray(tree.left, np.int64))
        right = np.where(leaf, own, np.asarray(tree.right, np.int64))
        if n == 0 or ((~leaf) & ((left <= own) | (right <= own) | (left >= n) | (right >= n))).any():
            raise ModelError(f"as_model: tree {t} is malformed (a child that does not lie below its node).")
        value = np.asarray(tree.value, np.float64).reshape(n, -1)
        if value.shape[1] != outputs:
            raise ModelError(
                f"as_model: tree {t} has {value.shape[1]} outputs per leaf, the ensemble {outputs}."
            )
        parts["feature"].append(np.where(leaf, 0, feature))
        parts["threshold"].append(np.where(leaf, 0.0, np.asarray(tree.threshold, np.float64)))
        parts["left"].append(left + offset)
        parts["right"].append(right + offset)
        parts["missing"].append(np.asarray(tree.missing_left, bool).astype(np.int64))
        parts["cover"].append(np.ones(n) if tree.cover is None else np.asarray(tree.cover, np.float64))
        values.append(np.where(leaf[:, None], value, 0.0))
        roots.append(offset)
        offset += n
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    layer = TreeEnsemble(
        torch.as_tensor(cat["feature"]),
        torch.as_tensor(cat["threshold"]),
        torch.as_tensor(cat["left"]),
        torch.as_tensor(cat["right"]),
        torch.as_tensor(cat["missing"]),
        torch.as_tensor(np.concatenate(values)),
        torch.as_tensor(np.asarray(roots, np.int64)),
        torch.as_tensor(np.asarray(base, np.float64)),
        torch.as_tensor(cat["cover"]),
        inputs=inputs,
        float32=float32,
    )
    if np.isnan(cat["threshold"]).any() or not np.isfinite(np.concatenate(values)).all():
        raise ModelError("as_model: the ensemble holds NaN thresholds or leaf values; refit it.")
    if not (np.isfinite(cat["cover"]) & (cat["cover"] >= 0)).all():
        raise ModelError("as_model: the ensemble's node weights (cover) must be finite and >= 0.")
    return layer


def _depth(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> int:
    """Rounds of routing until every row sits at a leaf: the longest root-to-leaf path, level by level."""
    own = np.arange(len(left))
    level, depth = np.unique(roots), 0
    while True:
        inner = level[left[level] != own[level]]
        if not len(inner):
            return depth
        depth += 1
        if depth > MAX_DEPTH:
            raise ModelError(f"as_model: a tree is deeper than {MAX_DEPTH} levels.")
        level = np.unique(np.concatenate([left[inner], right[inner]]))


class TreeEnsemble(Layer):
    """out = base + sum over trees of the value of the leaf each row reaches (see the module's text)."""

    kind = "TreeEnsemble"
    fields: ClassVar[Mapping[str, Field]] = {
        "inputs": Field(),
        "nodes": Field(),
        "trees": Field(),
        "outputs": Field(),
        "depth": Field(low=0, high=MAX_DEPTH),
        "float32": Field(bool, default=False, required=False),
    }
    integer: ClassVar[frozenset[str]] = frozenset({"feature", "left", "right", "missing_left", "roots"})
    feature: torch.Tensor
    threshold: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    missing_left: torch.Tensor
    value: torch.Tensor
    roots: torch.Tensor
    base: torch.Tensor
    cover: torch.Tensor

    def __init__(
        self,
        feature: torch.Tensor,
        threshold: torch.Tensor,
        left: torch.Tensor,
        right: torch.Tensor,
        missing_left: torch.Tensor,
        value: torch.Tensor,
        roots: torch.Tensor,
        base: torch.Tensor,
        cover: torch.Tensor | None = None,
        *,
        inputs: int,
        float32: bool = False,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        self.inputs, self.float32 = int(inputs), bool(float32)
        for name, tensor in (("feature", feature), ("left", left), ("right", right), ("roots", roots)):
            self.register_buffer(name, torch.as_tensor(tensor, dtype=torch.int64).clone())
        self.register_buffer("missing_left", torch.as_tensor(missing_left, dtype=torch.int64).clone())
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float64).clone())
        self.register_buffer("value", torch.as_tensor(value, dtype=torch.float64).clone())
        self.register_buffer("base", torch.as_tensor(base, dtype=torch.float64).clone())
        weight = torch.ones(len(self.feature)) if cover is None else torch.as_tensor(cover)
        self.register_buffer("cover", weight.to(torch.float64).clone())
        self.depth = (
            _depth(self.left.numpy(), self.right.numpy(), self.roots.numpy()) if depth is None else int(depth)
        )

    def leaves(self, x: torch.Tensor) -> torch.Tensor:
        """The leaf each row reaches in each tree: (n, trees) node indices.

        All (row, tree) pairs descend one level at a time in NumPy (its fancy indexing is several times
        faster than torch's here); every second level the pairs that reached a leaf drop out, so the work
        follows the paths' lengths rather than the deepest tree's.
        """
        z = x.detach()
        z = z.to(torch.float32).to(torch.float64) if self.float32 else z.to(torch.float64)
        values = np.ascontiguousarray(z.cpu().numpy())
        n, width = values.shape
        flat = values.reshape(-1)
        feature, threshold = self.feature.numpy(), self.threshold.numpy()
        children = torch.stack([self.right, self.left], dim=1).flatten().numpy()  # 2 node + went left
        leaf = (self.left == torch.arange(len(self.left))).numpy()
        missing_left = self.missing_left.numpy() == 1 if bool(np.isnan(flat).any()) else None
        node = np.tile(self.roots.numpy(), n)
        cur, start = node, np.repeat(np.arange(n, dtype=np.int64) * width, len(self.roots))
        going: np.ndarray | None = None  # positions of the pairs still descending (None: all)
        for level in range(self.depth):
            v = flat[start + feature[cur]]
            left = v <= threshold[cur]
            if missing_left is not None:
                left = np.where(np.isnan(v), missing_left[cur], left)
            cur = children[2 * cur + left]
            if level % 2 == 0 and level < self.depth - 1:
                continue
            inner = ~leaf[cur]
            if going is None:
                node, going = cur.copy(), np.nonzero(inner)[0]
            else:
                node[going] = cur
                going = going[inner]
            cur, start = cur[inner], start[inner]
            if not len(going):
                break
        return torch.from_numpy(node.reshape(n, len(self.roots)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, width = x.shape[:-1], x.shape[-1]
        node = self.leaves(x.reshape(-1, width))
        out = self.base + self.value[node].sum(dim=1)
        return out.reshape(*lead, self.base.shape[0]).to(x.dtype)

    def splits(self) -> dict[int, np.ndarray]:
        """Input column -> the sorted distinct thresholds its splits use (what an outcome can change at)."""
        inner = (self.left != torch.arange(len(self.left))).numpy()
        cols, thr = self.feature.numpy()[inner], self.threshold.numpy()[inner]
        return {int(c): np.unique(thr[cols == c]) for c in np.unique(cols)}

    def spec(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "inputs": self.inputs,
            "nodes": int(self.feature.shape[0]),
            "trees": int(self.roots.shape[0]),
            "outputs": int(self.base.shape[0]),
            "depth": self.depth,
            "float32": self.float32,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Layer:
        n, t, k = int(spec["nodes"]), int(spec["trees"]), int(spec["outputs"])
        zeros = torch.zeros(n, dtype=torch.int64)
        return cls(
            zeros,
            torch.zeros(n),
            zeros,
            zeros,
            zeros,
            torch.zeros(n, k),
            torch.zeros(t, dtype=torch.int64),
            torch.zeros(k),
            torch.zeros(n),
            inputs=int(spec["inputs"]),
            float32=bool(spec.get("float32", False)),
            depth=int(spec["depth"]),
        )

    @classmethod
    def tensors(cls, spec: Mapping[str, Any]) -> dict[str, Shape]:
        n = spec["nodes"]
        one = {name: (n,) for name in ("feature", "threshold", "left", "right", "missing_left", "cover")}
        return one | {"value": (n, spec["outputs"]), "roots": (spec["trees"],), "base": (spec["outputs"],)}

    @classmethod
    def out_shape(cls, spec: Mapping[str, Any], shape: Shape) -> Shape:
        if shape[-1] != spec["inputs"]:
            raise ValueError(
                f"its 'inputs' is {spec['inputs']}, but the layer before gives rows of shape {shape}"
            )
        return (*shape[:-1], spec["outputs"])

    @classmethod
    def check_values(cls, spec: Mapping[str, Any], shape: Shape, tensors: Mapping[str, torch.Tensor]) -> None:
        n = int(spec["nodes"])
        own = torch.arange(n)
        left, right, roots = tensors["left"], tensors["right"], tensors["roots"]
        leaf = (left == own) & (right == own)
        inner_ok = (left > own) & (right > own) & (left < n) & (right < n)
        if not bool((leaf | inner_ok).all()):
            j = int(torch.argmax((~(leaf | inner_ok)).to(torch.int8)))
            raise ValueError(
                f"node {j} has children {int(left[j])} and {int(right[j])}; a child lies below its node "
                f"(in ({j}, {n})) and a leaf points to itself"
            )
        inner = ~leaf
        parents = torch.bincount(torch.cat([left[inner], right[inner], roots]), minlength=n)
        if bool((parents > 1).any()):  # a node reached twice: not a forest (and its depth is costly to walk)
            j = int(torch.argmax((parents > 1).to(torch.int8)))
            raise ValueError(
                f"node {j} has {int(parents[j])} parents or roots; in a forest each node has one"
            )
        feature = tensors["feature"]
        if bool(((feature < 0) | (feature >= shape[-1])).any()):
            raise ValueError(f"tensor 'feature' reads a column outside [0, {shape[-1]})")
        if bool(((roots < 0) | (roots >= n)).any()):
            raise ValueError(f"tensor 'roots' holds a node outside [0, {n})")
        if bool(((tensors["missing_left"] != 0) & (tensors["missing_left"] != 1)).any()):
            raise ValueError("tensor 'missing_left' holds a value other than 0 or 1")
        if _depth(left.numpy(), right.numpy(), roots.numpy()) != int(spec["depth"]):
            raise ValueError("its 'depth' is not the depth of its trees")
        if bool(torch.isnan(tensors["threshold"]).any()):
            raise ValueError("tensor 'threshold' holds NaN")
        if bool((tensors["cover"] < 0).any()):
            raise ValueError("tensor 'cover' holds a negative weight")


class Log(Layer):
    """Averaged class probabilities -> logits (``log``, with 0 read as ``TINY``): softmax gives them back."""

    kind = "Log"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(x, min=TINY))


def tree_layer(network: nn.Module) -> TreeEnsemble | None:
    """The ensemble inside a model's network, or None for a differentiable network."""
    for module in network.modules():
        if isinstance(module, TreeEnsemble):
            return module
    return None
