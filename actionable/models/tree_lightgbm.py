"""A LightGBM ``Booster`` read from ``dump_model()`` (JSON as data, never a pickle) into a ``Forest``.

LightGBM compares in float64: ``x <= threshold`` goes left. Missing type ``NaN`` sends NaN to
``default_left``; ``None`` reads NaN as 0.0 (so it goes left where ``0 <= threshold``). Its predictor reads
any ``|x| <= 1e-35`` (``kZeroThreshold``) as 0.0, so a threshold inside that band is moved to the band's
edge, which decides every row the same way. The margin is the sum of the leaves (the average for
``boosting='rf'``); ``binary`` multiplies it by its ``sigmoid`` parameter; multiclass tree ``i`` adds to
class ``i % num_tree_per_iteration``. Leaf values already hold the learning rate and the initial score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actionable.errors import ModelError
from actionable.models.tree_dumps import Forest, Link
from actionable.models.trees import Tree

__all__ = ["OBJECTIVES", "ZERO", "read_lightgbm"]

ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float), read as a double
REGRESS = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
OBJECTIVES = ("binary", "multiclass", *REGRESS)
SUPPORTED = (
    f"numerical '<=' splits with missing_type 'NaN' or 'None', constant leaves and objective one of "
    f"{list(OBJECTIVES)}"
)


def read_lightgbm(booster: Any) -> Forest:
    """The trees of a ``lightgbm.Booster`` from ``dump_model()``: its best iteration when early stopping
    recorded one, all of them otherwise (what ``predict`` uses)."""
    dump = booster.dump_model()
    if dump.get("pandas_categorical"):
        raise ModelError(
            "as_model: this LightGBM model was fitted on pandas 'category' columns, which it reads as "
            f"category codes the schema does not produce; supported: {SUPPORTED}. One-hot encode them in the "
            "Pipeline (a ColumnTransformer with a OneHotEncoder) and fit without categorical_feature."
        )
    link, scale = _link(str(dump.get("objective", "")))
    per = int(dump["num_tree_per_iteration"])
    outputs = 1 if link == "binary" else per
    if link == "multiclass" and per != int(dump["num_class"]):
        raise ModelError("as_model: this LightGBM multiclass model does not grow one tree per class.")
    infos = dump["tree_info"]
    if dump.get("average_output", False):  # boosting='rf': the prediction is the mean over iterations
        scale /= max(len(infos) // per, 1)
    n_features = int(dump["max_feature_idx"]) + 1
    trees = [_tree(info["tree_structure"], t, outputs, t % per, scale) for t, info in enumerate(infos)]
    for t, tree in enumerate(trees):
        if (tree.feature >= n_features).any():
            raise ModelError(f"as_model: LightGBM tree {t} splits on a feature beyond its {n_features}.")
    names = [str(n) for n in dump.get("feature_names", []) or []]
    unnamed = names == [f"Column_{i}" for i in range(n_features)]
    return Forest(
        trees=trees,
        base=np.zeros(outputs),
        link=link,
        float32=False,
        n_features=n_features,
        features=None if unnamed or not names else names,
        library="LightGBM",
    )


def _link(objective: str) -> tuple[Link, float]:
    """What the summed leaves mean, and the factor that turns them into logits / predictions."""
    name, *options = objective.split()
    values = dict(o.split(":", 1) for o in options if ":" in o)
    if name == "binary":
        return "binary", float(values.get("sigmoid", 1.0))
    if name in ("multiclass", "softmax"):
        return "multiclass", 1.0
    if name in REGRESS and "sqrt" not in options:
        return "regression", 1.0
    got = f"{name} with sqrt=True" if "sqrt" in options else repr(name or "custom")
    raise ModelError(
        f"as_model: LightGBM objective {got} is not supported (its prediction is not a sum of leaves, a "
        f"sigmoid or a softmax of one); supported: {SUPPORTED}."
    )


def _flatten(root: dict[str, Any]) -> list[dict[str, Any]]:
    """The nested dump's nodes in depth-first order (children after their parent), without recursion."""
    nodes: list[dict[str, Any]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if "left_child" in node:
            stack.extend((node["right_child"], node["left_child"]))
    return nodes


def _check_split(node: dict[str, Any], where: str) -> None:
    if node.get("decision_type") != "<=":
        raise ModelError(
            f"as_model: {where} has a categorical split ({node.get('decision_type')!r} on feature "
            f"{node.get('split_feature')}); supported: {SUPPORTED}. One-hot encode the category in the "
            "Pipeline (a ColumnTransformer with a OneHotEncoder) and fit without categorical_feature or "
            "pandas 'category' columns."
        )
    if node.get("missing_type") not in ("None", "NaN"):
        raise ModelError(
            f"as_model: {where} treats zero as missing (zero_as_missing=True, missing_type "
            f"{node.get('missing_type')!r}); supported: {SUPPORTED}. Refit with zero_as_missing=False."
        )


def _tree(root: dict[str, Any], t: int, outputs: int, column: int, scale: float) -> Tree:
    """One LightGBM tree, its leaf values times ``scale`` in column ``column`` (its class)."""
    where = f"LightGBM tree {t}"
    nodes = _flatten(root)
    index = {id(node): i for i, node in enumerate(nodes)}
    n = len(nodes)
    feature, left, right = np.full(n, -1), np.full(n, -1), np.full(n, -1)
    threshold, missing, value, cover = np.zeros(n), np.zeros(n, bool), np.zeros((n, outputs)), np.zeros(n)
    for i, node in enumerate(nodes):
        if "left_child" not in node:
            if node.get("leaf_coeff"):
                raise ModelError(
                    f"as_model: {where} has linear leaves (linear_tree=True); supported: {SUPPORTED}. "
                    "Refit with linear_tree=False."
                )
            value[i, column] = float(node["leaf_value"]) * scale
            cover[i] = float(node.get("leaf_count", 1))
            continue
        _check_split(node, where)
        feature[i], cover[i] = int(node["split_feature"]), float(node.get("internal_count", 1))
        left[i], right[i] = index[id(node["left_child"])], index[id(node["right_child"])]
        threshold[i] = _snap(float(node["threshold"]))
        nan_left = bool(node["default_left"]) if node["missing_type"] == "NaN" else threshold[i] >= 0.0
        missing[i] = nan_left
    return Tree(feature, threshold, left, right, missing, value, cover)


def _snap(threshold: float) -> float:
    """A threshold inside LightGBM's zero band [-ZERO, ZERO) moved to the band's edge: rows in the band
    are read as 0.0, so they all go one way (left where 0 <= threshold), and the rest are unaffected."""
    if -ZERO <= threshold < 0.0:
        return float(np.nextafter(-ZERO, -np.inf))
    if 0.0 <= threshold < ZERO:
        return ZERO
    return threshold
