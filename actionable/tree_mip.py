"""A tree ensemble inside a mixed-integer program: one binary per threshold, one weight per reachable leaf.

For each input column and each distinct threshold ``t`` of its splits, a binary ``y`` says "the column's
value goes left of ``t``" (``y = 1``: at most ``t``; ``y = 0``: above it), linked to the column's affine form
by big-M rows whose constants come from the form's range, and ordered (left of ``t`` implies left of every
larger threshold). Each tree's leaves get weights in [0, 1] summing to one; a leaf's weight is at most the
``y`` of each split on its path that it lies left of, and at most ``1 - y`` where it lies right, which makes
the weights integral at every ``y`` (Misic, "Optimization of tree ensembles", 2020). Splits whose side the
box already decides take no variable, and leaves they rule out none.

``"relax"`` mode lets a value within a tolerance of ``t`` (float32 rounding when the ensemble casts, the
solver's own tolerance) take either side, so every real plan is feasible; ``"tight"`` mode keeps values that
far from ``t`` on the side they choose, so the plan it returns routes as the program says.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from actionable.mip import TIGHT_STRICT, Mip
from actionable.models.trees import TreeEnsemble

__all__ = ["encode_trees"]

_F32 = 2.0**-23  # relative spacing of float32 numbers: how far rounding to float32 can move a value


def _margins(mip: Mip, t: np.ndarray, float32: bool, whole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a value still goes left (<= first) and where it already goes right (>= second). A column
    that only takes whole numbers (``whole``) goes left at most ``floor(t)`` and right at least one more,
    exactly, in both modes (a float32 cast keeps whole numbers below 2**24 exact)."""
    cast = _F32 * (np.abs(t) + 1e-30) if float32 else 0.0
    if mip.mode == "relax":
        slack = mip.tolerance * (1.0 + np.abs(t)) + cast
        left, right = t + slack, t - slack
    else:
        slack = TIGHT_STRICT * (1.0 + np.abs(t)) + 2 * cast
        left, right = t - slack, t + slack
    exact = whole & (np.abs(t) < 2.0**24)
    return np.where(exact, np.floor(t), left), np.where(exact, np.floor(t) + 1.0, right)


def _whole(mip: Mip, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Which input columns are whole numbers at every point whose integer variables are whole."""
    integer = np.asarray(mip.integer[: matrix.shape[1]], dtype=bool)
    used = matrix != 0.0
    whole_coef = np.all(~used | (integer[None, :] & (matrix == np.round(matrix))), axis=1)
    whole: np.ndarray = whole_coef & (offset == np.round(offset))
    return whole


def _paths(left: np.ndarray, right: np.ndarray, leaves: np.ndarray) -> tuple[np.ndarray, ...]:
    """(node, leaf, went_left) for every split node on the path of every given leaf."""
    parent = np.full(len(left), -1, np.int64)
    inner = np.nonzero(left != np.arange(len(left)))[0]
    parent[left[inner]] = inner
    parent[right[inner]] = inner
    nodes, owners, sides = [], [], []
    cur, owner = leaves.copy(), np.arange(len(leaves))
    while len(cur):
        up = parent[cur]
        keep = up >= 0
        cur, owner, up = cur[keep], owner[keep], up[keep]
        nodes.append(up)
        owners.append(owner)
        sides.append(left[up] == cur)
        cur = up
    cat = [np.concatenate(p) if p else np.zeros(0, np.int64) for p in (nodes, owners, sides)]
    return cat[0], cat[1], cat[2].astype(bool)


def _reached(layer: TreeEnsemble, can_left: np.ndarray, can_right: np.ndarray) -> np.ndarray:
    """Which nodes some value in the box routes to (each split passes on the sides the box allows)."""
    left, right = layer.left.numpy(), layer.right.numpy()
    inner = left != np.arange(len(left))
    reach = np.zeros(len(left), bool)
    level = layer.roots.numpy()
    while len(level):
        reach[level] = True
        level = level[inner[level]]
        level = np.concatenate([left[level[can_left[level]]], right[level[can_right[level]]]])
    return reach


def encode_trees(
    mip: Mip, layer: TreeEnsemble, matrix: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ensemble's outputs on input columns ``matrix @ x + offset`` (over the program's first
    ``matrix.shape[1]`` variables), as a matrix over all variables and an offset; adds its variables and
    rows to ``mip`` (see the module's text)."""
    feature, thr, left = layer.feature.numpy(), layer.threshold.numpy(), layer.left.numpy()
    inner = left != np.arange(len(left))
    n0 = matrix.shape[1]
    lb, ub = np.asarray(mip.lb)[:n0], np.asarray(mip.ub)[:n0]
    pos, neg = np.clip(matrix, 0, None), np.clip(matrix, None, 0)
    zlo, zhi = offset + pos @ lb + neg @ ub, offset + pos @ ub + neg @ lb
    whole = _whole(mip, matrix, offset)
    go_left, go_right = _margins(mip, thr, layer.float32, whole[feature])
    can_left = inner & (zlo[feature] <= go_left)
    can_right = inner & (zhi[feature] >= go_right)
    fixed = zlo[feature] == zhi[feature]  # a column the plan cannot move routes exactly, as the layer does
    value = zlo[feature].astype(np.float32).astype(np.float64) if layer.float32 else zlo[feature]
    can_left = np.where(fixed, inner & (value <= thr), can_left)
    can_right = np.where(fixed, inner & ~(value <= thr), can_right)
    reach = _reached(layer, can_left, can_right)
    open_nodes = np.nonzero(reach & can_left & can_right)[0]
    leaves = np.nonzero(reach & ~inner)[0]
    # one binary per (column, threshold) an open split uses, ordered by threshold within a column
    pairs, which = np.unique(np.stack([feature[open_nodes], thr[open_nodes]], 1), axis=0, return_inverse=True)
    n_y, n_leaf = len(pairs), len(leaves)
    y0 = mip.vars(n_y, 0.0, 1.0, integer=True)
    w0 = mip.vars(n_leaf, 0.0, 1.0)
    n = mip.n
    cols = pairs[:, 0].astype(np.int64) if n_y else np.zeros(0, np.int64)
    t = pairs[:, 1] if n_y else np.zeros(0)
    tl, tr = _margins(mip, t, layer.float32, whole[cols])
    big_left, big_right = np.maximum(zhi[cols] - tl, 0.0), np.maximum(tr - zlo[cols], 0.0)
    ys = sparse.csr_array((np.ones(n_y), (np.arange(n_y), y0 + np.arange(n_y))), shape=(n_y, n))
    z = sparse.csr_array(matrix[cols], shape=(n_y, n0))
    z = sparse.hstack([z, sparse.csr_array((n_y, n - n0))]).tocsr()
    inf = np.full(n_y, np.inf)
    # y = 1 -> z <= tl;  y = 0 -> z >= tr
    mip.require_block(z + ys.multiply(big_left[:, None]), offset[cols], -inf, tl + big_left)
    mip.require_block(z + ys.multiply(big_right[:, None]), offset[cols], tr, inf)
    same = np.nonzero(cols[1:] == cols[:-1])[0]  # consecutive thresholds of one column
    if len(same):
        order = sparse.csr_array(
            (
                np.r_[np.ones(len(same)), -np.ones(len(same))],
                (np.r_[np.arange(len(same)), np.arange(len(same))], np.r_[y0 + same, y0 + same + 1]),
            ),
            shape=(len(same), n),
        )
        mip.require_block(order, np.zeros(len(same)), np.full(len(same), -np.inf), np.zeros(len(same)))
    _leaf_rows(mip, layer, open_nodes, which, leaves, y0, w0)
    out = np.zeros((layer.value.shape[1], n))
    out[:, w0 : w0 + n_leaf] = layer.value.numpy()[leaves].T
    return out, layer.base.numpy().copy()


def _leaf_rows(
    mip: Mip,
    layer: TreeEnsemble,
    open_nodes: np.ndarray,
    which: np.ndarray,
    leaves: np.ndarray,
    y0: int,
    w0: int,
) -> None:
    """Each tree's reachable leaves weigh one in all; a leaf is bounded by the splits on its path."""
    n = mip.n
    left, right = layer.left.numpy(), layer.right.numpy()
    tree = np.searchsorted(layer.roots.numpy(), leaves, side="right") - 1
    trees, tree_row = np.unique(tree, return_inverse=True)
    total = sparse.csr_array(
        (np.ones(len(leaves)), (tree_row, w0 + np.arange(len(leaves)))), shape=(len(trees), n)
    )
    mip.require_block(total, np.zeros(len(trees)), np.ones(len(trees)), np.ones(len(trees)))
    if not len(open_nodes):
        return
    slot = np.full(len(left), -1, np.int64)
    slot[open_nodes] = np.arange(len(open_nodes))
    node, owner, went_left = _paths(left, right, leaves)
    keep = slot[node] >= 0
    node, owner, went_left = node[keep], owner[keep], went_left[keep]
    row = 2 * slot[node] + (~went_left)  # row 2s: left leaves of node s; 2s + 1: its right leaves
    m = 2 * len(open_nodes)
    weights = sparse.csr_array((np.ones(len(row)), (row, w0 + owner)), shape=(m, n))
    sign = np.tile([-1.0, 1.0], len(open_nodes))
    ys = sparse.csr_array((sign, (np.arange(m), y0 + np.repeat(which, 2))), shape=(m, n))
    high = np.tile([0.0, 1.0], len(open_nodes))
    mip.require_block((weights + ys).tocsr(), np.zeros(m), np.full(m, -np.inf), high)
