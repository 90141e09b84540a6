"""An XGBoost ``Booster`` read from its JSON model (``save_raw("json")``, never a pickle) into a ``Forest``.

XGBoost rounds every input to float32 and sends a row left when ``x < split_condition``: stored here as
``x <= `` the float32 just below the condition, with ``float32=True``. A missing value follows
``default_left``. The margin is ``base_score`` (a probability for ``binary:logistic``, so its logit) plus
the leaves reached; each tree adds to the output ``tree_info`` names; ``dart`` scales each tree by its
``weight_drop``. XGBoost sums in float32 and this in float64: they agree to about 1e-7 relative.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from actionable.errors import ModelError
from actionable.models.tree_dumps import Forest, Link, preorder
from actionable.models.trees import Tree

__all__ = ["OBJECTIVES", "read_xgboost"]

CLASSIFY: dict[str, Link] = {
    "binary:logistic": "binary",
    "multi:softprob": "multiclass",
    "multi:softmax": "multiclass",
}
REGRESS = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")
OBJECTIVES = (*CLASSIFY, *REGRESS)
SUPPORTED = (
    f"booster 'gbtree' or 'dart' with numerical splits, one output per tree and objective one of "
    f"{list(OBJECTIVES)}"
)


def read_xgboost(booster: Any, *, iterations: int | None = None) -> Forest:
    """The trees of an ``xgboost.Booster`` from its JSON; ``iterations``: keep the first so many boosting
    rounds (what the scikit-learn wrapper predicts with after early stopping), None: all of them."""
    learner = json.loads(bytes(booster.save_raw(raw_format="json")))["learner"]
    params = learner["learner_model_param"]
    objective = str(learner["objective"]["name"])
    link, outputs = _link(objective, int(params.get("num_class", 0)), int(params.get("num_target", 1)))
    gbm = learner["gradient_booster"]
    if gbm["name"] not in ("gbtree", "dart"):
        raise ModelError(
            f"as_model: XGBoost booster {gbm['name']!r} is not supported (no trees to read); supported: "
            f"{SUPPORTED}. Refit with booster='gbtree'."
        )
    weights = np.asarray(gbm.get("weight_drop", []), np.float64)
    model = (gbm["gbtree"] if gbm["name"] == "dart" else gbm)["model"]
    types = [str(t) for t in learner.get("feature_types", []) or []]
    if "c" in types:
        raise ModelError(
            "as_model: this XGBoost model reads categorical features (enable_categorical=True), which take "
            f"category codes the schema does not produce; supported: {SUPPORTED}. One-hot encode them in the "
            "Pipeline (a ColumnTransformer with a OneHotEncoder) and refit without enable_categorical."
        )
    stop = _stop(model, iterations)
    n_features = int(params["num_feature"])
    trees = [
        _tree(tree, t, outputs, int(model["tree_info"][t]), float(weights[t]) if len(weights) else 1.0)
        for t, tree in enumerate(model["trees"][:stop])
    ]
    for t, tree in enumerate(trees):
        if (tree.feature >= n_features).any():
            raise ModelError(f"as_model: XGBoost tree {t} splits on a feature beyond its {n_features}.")
    names = [str(n) for n in learner.get("feature_names", []) or []]
    return Forest(
        trees=trees,
        base=_base(str(params["base_score"]), link, outputs),
        link=link,
        float32=True,
        n_features=n_features,
        features=names or None,
        library="XGBoost",
    )


def _link(objective: str, num_class: int, num_target: int) -> tuple[Link, int]:
    """What the margins mean, and how many there are."""
    if objective in CLASSIFY:
        link = CLASSIFY[objective]
        return link, (1 if link == "binary" else num_class)
    if objective in REGRESS:
        return "regression", max(num_target, 1)
    raise ModelError(
        f"as_model: XGBoost objective {objective!r} is not supported (its prediction is not a sum of "
        f"leaves, a sigmoid or a softmax of one); supported: {SUPPORTED}."
    )


def _base(text: str, link: Link, outputs: int) -> np.ndarray:
    """``base_score`` as margins: XGBoost 3 writes a vector like ``"[5E-1]"``, older versions a number."""
    try:
        base = np.asarray([float(v) for v in text.strip("[] ").split(",")], np.float64)
    except ValueError:
        raise ModelError(
            f"as_model: XGBoost base_score {text!r} is not a number or a list of them."
        ) from None
    if link == "binary":
        if not 0.0 < base[0] < 1.0:
            raise ModelError(f"as_model: XGBoost binary:logistic base_score {base[0]} is not in (0, 1).")
        base = np.log(base / (1.0 - base))
    if len(base) not in (1, outputs):
        raise ModelError(f"as_model: XGBoost base_score has {len(base)} values for {outputs} outputs.")
    return np.broadcast_to(base, (outputs,)).copy()


def _stop(model: dict[str, Any], iterations: int | None) -> int:
    """How many trees the first ``iterations`` boosting rounds hold (all trees for None)."""
    total = len(model["trees"])
    if iterations is None:
        return total
    indptr = model.get("iteration_indptr")
    if not indptr:
        raise ModelError("as_model: this XGBoost model has no iteration_indptr; save it with XGBoost >= 2.")
    return int(indptr[min(iterations, len(indptr) - 1)])


def _tree(tree: dict[str, Any], t: int, outputs: int, column: int, weight: float) -> Tree:
    """One XGBoost tree in depth-first numbering, its leaf value in column ``column`` (its class/target)."""
    where = f"XGBoost tree {t}"
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise ModelError(
            f"as_model: {where} is a multi-output tree (multi_strategy='multi_output_tree'); supported: "
            f"{SUPPORTED}. Refit with multi_strategy='one_output_per_tree'."
        )
    if any(int(s) != 0 for s in tree.get("split_type", [])):
        raise ModelError(
            f"as_model: {where} has a categorical split (enable_categorical=True); supported: {SUPPORTED}. "
            "One-hot encode the category in the Pipeline and refit without enable_categorical."
        )
    if not 0 <= column < outputs:
        raise ModelError(f"as_model: {where} adds to output {column}, the model has {outputs}.")
    left, right = np.asarray(tree["left_children"], np.int64), np.asarray(tree["right_children"], np.int64)
    order = preorder(left, right, where)
    new = np.zeros(len(left), np.int64)
    new[order] = np.arange(len(order))
    left, right = left[order], right[order]
    leaf = left < 0
    condition = np.asarray(tree["split_conditions"], np.float32)[order]
    below = np.nextafter(condition, np.float32(-np.inf))  # x < c  <=>  x <= the float32 below c
    value = np.zeros((len(order), outputs))
    value[:, column] = np.where(leaf, condition.astype(np.float64) * weight, 0.0)
    return Tree(
        feature=np.where(leaf, -1, np.asarray(tree["split_indices"], np.int64)[order]),
        threshold=np.where(leaf, 0.0, below.astype(np.float64)),
        left=np.where(leaf, -1, new[np.maximum(left, 0)]),
        right=np.where(leaf, -1, new[np.maximum(right, 0)]),
        missing_left=np.asarray(tree["default_left"], bool)[order],
        value=value,
        cover=np.asarray(tree["sum_hessian"], np.float64)[order],
    )
