"""TreeSHAP for tree-ensemble models: exact Shapley values through the shap library's ``TreeExplainer``.

The ensemble is handed to shap as its documented custom-model dict built from our own node arrays (a
converted model does not keep the user's original estimator). What is explained is the ensemble's *raw*
output for the target, before any link: a boosted classifier's margin (log-odds; a binary model's margin
for the first class is the negated margin of the second), a forest's averaged probability of the class
(the output of ``TreeEnsemble`` before ``Log``), a regression's value. ``Attribution.target`` says which.

The ensemble reads z = ColumnMap(x) (rounded to float32 where the layer rounds); shap explains the columns
of z, and each value is added to the canonical column it reads (a canonical column read by several inputs
gets their sum, as a one-hot block's columns are summed to their feature), then to its raw feature.
``tree_path_dependent`` (no baseline) weighs the branches a feature does not decide by the training data
that reached them (the trees' cover); ``interventional`` (a background frame) averages over its rows, so
the reference is the mean raw output on them. Completeness: values sum to f(x) - reference (``delta``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable.deeplift import flat_layers
from actionable.errors import ConfigError, DataError, ModelError
from actionable.explained import explained_output, explained_rows, in_place, per_raw_feature, wrap_model
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.models.trees import Log, TreeEnsemble, tree_layer
from actionable.results import Attribution
from actionable.rows import read_rows
from actionable.schema import DTYPE, Schema

__all__ = ["COVER_TOLERANCE", "explain_trees", "shap_model", "split_ranks"]

COVER_TOLERANCE = 1e-4  # relative: a node's cover must be its children's sum (float32 sums of XGBoost)
GRADIENT_METHODS = "gradient, gradient_x_input, integrated_gradients, deeplift or coefficients"


def explain_trees(
    model: Any,
    X: pd.DataFrame | torch.Tensor | np.ndarray,
    *,
    schema: Schema | None = None,
    target: Any = None,
    output: str = "logit",
    baseline: Any = None,
) -> Attribution:
    """``attribute(model, X, "shap")``: TreeSHAP values of the ensemble's raw output for ``target``, per
    row and raw feature. ``baseline``: None (``tree_path_dependent``, the trees' cover) or background rows,
    raw (a DataFrame) or canonical (an array), for ``interventional`` TreeSHAP (a few hundred rows is
    plenty: the cost grows with rows x background rows x nodes)."""
    net = wrap_model(model, schema)
    layer, prefix, tail = _parts(net)
    if output != "logit":
        raise ConfigError(
            f"attribute: method 'shap' explains the ensemble's raw output (its margin, or a forest's averaged "
            f"probability), exactly; output={output!r} is not available for it. Leave output='logit'."
        )
    x, good, errors = explained_rows(net, X)
    index, label = explained_output(net, target)
    column, sign, kind = _explained(net, layer, tail, index)
    background = None if baseline is None else _inputs(prefix, _background(net, baseline), layer.float32)
    explained = f"{label} ({kind})" if kind else label
    labels = tuple(X.index) if isinstance(X, pd.DataFrame) else tuple(range(len(x)))
    values, prediction = torch.zeros(0, len(net.schema), dtype=DTYPE), torch.zeros(0, dtype=DTYPE)
    reference = prediction
    if good:  # else no row fits the schema: every row is an error, nothing to compute
        values, prediction, reference = _explain(net, layer, prefix, column, sign, x, background)
    placed = functools.partial(in_place, good=good, n=len(labels))
    return Attribution(
        values=placed(values),
        features=net.schema.names,
        method="shap",
        rows=labels,
        baseline="tree_path_dependent (the trees' training cover)"
        if background is None
        else f"interventional ({len(background)} background rows)",
        delta=placed(values.sum(1) - (prediction - reference)),
        target=explained,
        prediction=placed(prediction),
        reference=placed(reference),
        unit="output",
        errors={labels[i]: m for i, m in errors.items()},
        protected=tuple(f.name for f in net.schema.features if f.protected),
    )


def _explain(
    net: TorchModel,
    layer: TreeEnsemble,
    prefix: list[nn.Module],
    column: int,
    sign: float,
    x: torch.Tensor,
    background: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Values per raw feature, the explained output f(x) (our own ensemble's) and shap's reference."""
    z = _inputs(prefix, x, layer.float32)
    phi, expected = _shap_values(layer, column, sign, z, background)
    with torch.no_grad():
        prediction = sign * layer(z)[:, column]
    values = per_raw_feature(net.schema, _to_canonical(phi, prefix, net.schema.width))
    return values, prediction, torch.full_like(prediction, expected)


def _parts(net: TorchModel) -> tuple[TreeEnsemble, list[nn.Module], list[nn.Module]]:
    """The ensemble, the layers before it (the column maps) and after it (``Log``, ``BinaryLogits``)."""
    layer = tree_layer(net.network)
    if layer is None:
        raise ConfigError(
            "attribute: method 'shap' (TreeSHAP) explains tree ensembles; this model is differentiable: use "
            f"one of the gradient methods ({GRADIENT_METHODS})."
        )
    layers = flat_layers(net.network)
    if not any(m is layer for m in layers):
        raise ModelError("attribute: the tree ensemble must be a layer of the model's nn.Sequential network.")
    at = next(i for i, m in enumerate(layers) if m is layer)
    prefix, tail = layers[:at], layers[at + 1 :]
    for m in prefix:
        if not isinstance(m, L.ColumnMap | L.Standardize | nn.Identity):
            raise ModelError(
                f"attribute: a {type(m).__name__} before the tree ensemble; TreeSHAP maps its values back "
                "through column maps and scalers only (ColumnMap, Standardize)."
            )
    kinds = tuple(type(m) for m in tail)
    if kinds not in ((), (L.BinaryLogits,), (Log,)):
        raise ModelError(
            f"attribute: layers {[k.__name__ for k in kinds]} after the tree ensemble; TreeSHAP explains an "
            "ensemble followed by nothing, BinaryLogits or Log."
        )
    return layer, prefix, tail


def _explained(
    net: TorchModel, layer: TreeEnsemble, tail: list[nn.Module], index: int
) -> tuple[int, float, str]:
    """The ensemble's output column for the model's output ``index``, its sign (a binary model's first
    class: the negated margin) and what it is (margin, probability, or '' for a regression's value)."""
    if tail and isinstance(tail[0], L.BinaryLogits):
        return 0, (1.0 if index == 1 else -1.0), "margin: log-odds"
    if tail:
        return index, 1.0, "probability: the trees' average"
    if int(layer.base.shape[0]) != net.n_outputs:
        raise ModelError(
            f"attribute: the ensemble has {int(layer.base.shape[0])} outputs, the model {net.n_outputs}."
        )
    return index, 1.0, "margin" if net.task == "classification" else ""


def _background(net: TorchModel, baseline: Any) -> torch.Tensor:
    """Canonical background rows from raw rows (a DataFrame, Series or mapping) or canonical rows."""
    if isinstance(baseline, pd.Series | dict):
        baseline = pd.DataFrame([dict(baseline)])
    if isinstance(baseline, pd.DataFrame):
        rows = read_rows(net.schema, baseline, "attribute")
        if rows.errors:
            i, message = next(iter(rows.errors.items()))
            raise DataError(
                f"attribute: baseline row {baseline.index[i]!r} does not fit the schema: {message}"
            )
        b = rows.x
    elif isinstance(baseline, np.ndarray | torch.Tensor):
        b = torch.as_tensor(np.asarray(baseline, dtype=np.float64))
        b = b[None] if b.ndim == 1 else b
        if b.ndim != 2 or b.shape[1] != net.schema.width or not bool(torch.isfinite(b).all()):
            raise DataError(
                f"attribute: the baseline has shape {tuple(b.shape)}; canonical background rows are finite "
                f"with {net.schema.width} columns ({', '.join(net.schema.columns[:4])}, ...)."
            )
    else:
        raise ConfigError(
            f"attribute: method 'shap' takes baseline=None (tree_path_dependent: the trees' cover) or "
            f"background rows (a DataFrame of raw rows) for interventional TreeSHAP; got {baseline!r}."
        )
    if not len(b):
        raise DataError("attribute: the background frame (baseline=) holds no rows; give at least one.")
    return b.to(DTYPE)


def _inputs(prefix: list[nn.Module], x: torch.Tensor, float32: bool) -> torch.Tensor:
    """What the ensemble reads: the column maps applied, rounded to float32 where the layer rounds."""
    with torch.no_grad():
        z = nn.Sequential(*prefix)(x.to(DTYPE)) if prefix else x.to(DTYPE)
    return z.to(torch.float32).to(DTYPE) if float32 else z


def _to_canonical(values: torch.Tensor, prefix: list[nn.Module], width: int) -> torch.Tensor:
    """Values per ensemble input -> per canonical column: each added to the column it reads."""
    owner = torch.arange(width)
    for m in prefix:
        if isinstance(m, L.ColumnMap):
            owner = owner[m.index]
    out = torch.zeros(values.shape[0], width, dtype=values.dtype)
    return out.index_add_(1, owner, values)


def _shap_values(
    layer: TreeEnsemble, column: int, sign: float, z: torch.Tensor, background: torch.Tensor | None
) -> tuple[torch.Tensor, float]:
    """shap's TreeSHAP values of ``sign`` x the ensemble's output ``column`` on rows ``z``, and its
    expected value (the reference the values explain the output against)."""
    shap = _import_shap()
    described = shap_model(layer, column, sign, path_dependent=background is None)
    explainer = shap.TreeExplainer(
        described,
        data=None if background is None else split_ranks(layer, background.numpy()),
        feature_perturbation="tree_path_dependent" if background is None else "interventional",
    )
    phi = explainer.shap_values(split_ranks(layer, z.numpy()), check_additivity=False)
    expected = float(np.ravel(explainer.expected_value)[0])
    return torch.as_tensor(np.asarray(phi, np.float64).reshape(len(z), -1)), expected


def _import_shap() -> Any:
    try:
        import shap
    except ImportError:
        raise ConfigError(
            "attribute: method 'shap' needs the shap library: pip install actionable[shap]"
        ) from None
    return shap


def shap_model(
    layer: TreeEnsemble, column: int, sign: float = 1.0, *, path_dependent: bool = True
) -> dict[str, Any]:
    """shap's custom-model dict for ``sign`` x output ``column`` of ``layer``, on inputs given as
    ``split_ranks``: one dict of local node arrays per tree (leaves: children -1, feature -2), each
    threshold the rank of its value among its column's thresholds, leaf values only (shap fills the inner
    nodes' expectations from the cover), ``base_offset`` the ensemble's base. Trees whose leaves add
    nothing to this output (another class's trees) are left out. ``path_dependent``: the cover must be
    usable."""
    feature, left, right = layer.feature.numpy(), layer.left.numpy(), layer.right.numpy()
    value, cover, roots = sign * layer.value[:, column].numpy(), layer.cover.numpy(), layer.roots.numpy()
    missing = layer.missing_left.numpy()
    _check_layout(left, right, roots)
    threshold = np.zeros(len(feature))
    for col, values in layer.splits().items():
        at = (feature == col) & (left != np.arange(len(left)))
        threshold[at] = np.searchsorted(values, layer.threshold.numpy()[at])
    trees = []
    for t, (start, end) in enumerate(zip(roots, [*roots[1:], len(feature)], strict=True)):
        own = np.arange(start, end)
        leaf = left[start:end] == own
        if not value[start:end][leaf].any():
            continue
        children_left = np.where(leaf, -1, left[start:end] - start).astype(np.int32)
        children_right = np.where(leaf, -1, right[start:end] - start).astype(np.int32)
        tree = {
            "children_left": children_left,
            "children_right": children_right,
            "children_default": np.where(missing[start:end] == 1, children_left, children_right),
            "features": np.where(leaf, -2, feature[start:end]).astype(np.int32),
            "thresholds": np.where(leaf, 0.0, threshold[start:end]).astype(np.float64),
            "values": np.where(leaf, value[start:end], 0.0).astype(np.float64)[:, None],
            "node_sample_weight": cover[start:end].astype(np.float64),
        }
        if path_dependent:
            _check_cover(tree, t)
        trees.append(tree)
    if not trees:  # the output is the constant base: one leaf that adds 0
        trees.append(_leaf())
    return {"trees": trees, "base_offset": sign * float(layer.base[column]), "input_dtype": np.float64}


def split_ranks(layer: TreeEnsemble, z: np.ndarray) -> np.ndarray:
    """Each input value as the count of its column's thresholds below it (NaN stays NaN; a column no tree
    splits on reads 0). ``z <= t_k`` exactly when ``rank <= k`` (``t_k`` the k-th smallest threshold), so
    shap routes every row as the ensemble does: its interventional code holds thresholds in float32,
    which would send a value within float32 rounding of a float64 threshold (HistGradientBoosting's
    midpoints) the other way."""
    out = np.zeros_like(z, dtype=np.float64)
    for col, values in layer.splits().items():
        out[:, col] = np.searchsorted(values, z[:, col], side="left")
    out[np.isnan(z)] = np.nan
    return out


def _leaf() -> dict[str, np.ndarray]:
    one = np.array([-1], np.int32)
    return {
        "children_left": one,
        "children_right": one,
        "children_default": one,
        "features": np.array([-2], np.int32),
        "thresholds": np.zeros(1),
        "values": np.zeros((1, 1)),
        "node_sample_weight": np.ones(1),
    }


def _check_layout(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> None:
    """Each tree's nodes lie contiguously from its root to the next one's (as ``pack`` lays them out)."""
    n = len(left)
    tree = np.searchsorted(roots, np.arange(n), side="right") - 1
    inner = left != np.arange(n)
    ordered = len(roots) > 0 and roots[0] == 0 and bool((np.diff(roots) > 0).all())
    if not ordered or (tree[left[inner]] != tree[inner]).any() or (tree[right[inner]] != tree[inner]).any():
        raise ModelError(
            "attribute: the ensemble's trees are not laid out one after another from their roots (as "
            "actionable.models.trees.pack builds them); rebuild it with pack."
        )


def _check_cover(tree: dict[str, np.ndarray], t: int) -> None:
    """``ConfigError`` when a tree's cover cannot weigh path-dependent TreeSHAP: a weight that is not > 0,
    or an inner node whose weight is not its children's sum (an ensemble built without training weights)."""
    weight, left, right = tree["node_sample_weight"], tree["children_left"], tree["children_right"]
    inner = left >= 0
    parts = weight[left[inner]] + weight[right[inner]]
    bad = ~(weight > 0).all() or (np.abs(parts - weight[inner]) > COVER_TOLERANCE * weight[inner]).any()
    if bad:
        raise ConfigError(
            f"attribute: tree {t} of the ensemble records no usable training weight per node (cover: a "
            "weight <= 0, or a node whose weight is not its children's sum), which path-dependent TreeSHAP "
            "needs. Pass baseline= a background frame of raw rows for interventional TreeSHAP."
        )
