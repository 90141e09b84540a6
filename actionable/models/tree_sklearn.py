"""scikit-learn's tree models (decision trees, forests, extra trees, gradient boosting, histogram boosting)
read from their fitted arrays into one exact ``TreeEnsemble`` (``trees.py``).

Semantics copied from scikit-learn's own predict code: decision trees, forests and ``GradientBoosting*``
round X to float32 before comparing it with their float64 thresholds; ``HistGradientBoosting*`` compares
float64 X. A missing value follows each node's ``missing_go_to_left``. Forests average per-tree class
probabilities (``Log`` turns them into logits); boosted classifiers give raw margins (one margin and
``BinaryLogits`` for two classes, one per class for more); regressors give ``predict`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from actionable.errors import ModelError
from actionable.models import layers as L
from actionable.models.trees import Log, Tree, pack

__all__ = ["TREES", "convert_tree"]

TREES = (
    "DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier, RandomForestRegressor, "
    "ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier, GradientBoostingRegressor, "
    "HistGradientBoostingClassifier or HistGradientBoostingRegressor (one output column, numeric splits)"
)
# scikit-learn link -> the factor from raw margin to logit (None: predict is the raw value itself)
LINKS: dict[str, float | None] = {
    "IdentityLink": None,
    "LogitLink": 1.0,
    "HalfLogitLink": 2.0,  # GradientBoostingClassifier(loss='exponential'): p = expit(2 * raw)
    "MultinomialLogit": 1.0,
}
Head = tuple[list[nn.Module], dict[str, Any]]


def convert_tree(est: Any, width: int) -> Head | None:
    """The layers and info of a fitted scikit-learn tree model, or None when ``est`` is not one."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    forests = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
    if isinstance(est, (DecisionTreeClassifier, DecisionTreeRegressor, *forests)):
        _check_width(est, width)
        return _forest(est, width)
    if isinstance(est, GradientBoostingClassifier | GradientBoostingRegressor):
        _check_width(est, width)
        return _boosting(est, width)
    if isinstance(est, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        _check_width(est, width)
        return _hist_boosting(est, width)
    return None


def _check_width(est: Any, width: int) -> None:
    n = getattr(est, "n_features_in_", width)
    if n != width:
        raise ModelError(
            f"as_model: the {type(est).__name__} was fitted on {n} columns but its preprocessing gives "
            f"{width}; refit it on the Pipeline's output, or pass the Pipeline it was fitted in."
        )


def _sk_tree(tree: Any, value: np.ndarray) -> Tree:
    """One scikit-learn ``tree_`` (``sklearn.tree._tree.Tree``) with the given per-node values."""
    n = int(tree.node_count)
    missing = getattr(tree, "missing_go_to_left", None)
    return Tree(
        feature=np.asarray(tree.feature, np.int64),
        threshold=_finite(np.asarray(tree.threshold, np.float64)),
        left=np.asarray(tree.children_left, np.int64),
        right=np.asarray(tree.children_right, np.int64),
        missing_left=np.zeros(n, bool) if missing is None else np.asarray(missing, bool),
        value=value.reshape(n, -1),
        cover=np.asarray(tree.weighted_n_node_samples, np.float64),
    )


def _finite(threshold: np.ndarray) -> np.ndarray:
    """+inf (every non-missing value goes left) as the largest float64: the same split for every
    finite input, and a model's tensors must be finite."""
    return np.where(threshold == np.inf, np.finfo(np.float64).max, threshold)


def _forest(est: Any, width: int) -> Head:
    """A decision tree or a forest: the average over trees of each leaf's prediction (probabilities for a
    classifier, each leaf's class weights normalised as ``predict_proba`` does)."""
    if int(getattr(est, "n_outputs_", 1)) != 1:
        raise ModelError(
            f"as_model: this {type(est).__name__} was fitted on {est.n_outputs_} target columns; multi-output "
            f"trees are not supported. Fit one model per target column (y 1-D). Supported: {TREES}."
        )
    members = list(getattr(est, "estimators_", [est]))
    classifier = hasattr(est, "classes_")
    trees = []
    for member in members:
        value = np.asarray(member.tree_.value, np.float64)[:, 0, :]
        if classifier:
            total = value.sum(axis=1, keepdims=True)
            value = value / np.where(total == 0, 1.0, total)
        trees.append(_sk_tree(member.tree_, value / len(members)))
    if not classifier:
        ensemble = pack(trees, [0.0], inputs=width, float32=True)
        return [ensemble], {"task": "regression", "n_outputs": 1}
    k = len(est.classes_)
    ensemble = pack(trees, [0.0] * k, inputs=width, float32=True)
    return [ensemble, Log()], _classes(est)


def _boosting(est: Any, width: int) -> Head:
    """GradientBoosting*: a constant init (the default prior, 'zero' or a Dummy estimator) plus the
    learning rate times each stage's trees, one raw output per class column."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = est.init
    constant = init is None or (isinstance(init, str) and init == "zero")
    constant |= isinstance(init, DummyRegressor) or (
        isinstance(init, DummyClassifier) and init.strategy != "stratified"
    )
    if not constant:
        raise ModelError(
            f"as_model: this {type(est).__name__} starts from a custom init estimator "
            f"({type(init).__name__}), whose predictions cannot be read as trees. Supported: init=None (the "
            "default prior), init='zero' or a DummyClassifier / DummyRegressor; refit with one of those."
        )
    factor = _factor(est)
    stages = np.asarray(est.estimators_)
    k = stages.shape[1]
    base = np.asarray(est._raw_predict_init(np.zeros((1, est.n_features_in_), np.float32)), np.float64)[0]
    trees = []
    for stage in stages:
        for j, member in enumerate(stage):
            leaf = np.asarray(member.tree_.value, np.float64)[:, 0, 0]
            value = np.zeros((len(leaf), k))
            value[:, j] = est.learning_rate * leaf * (factor or 1.0)
            trees.append(_sk_tree(member.tree_, value))
    ensemble = pack(trees, list(base * (factor or 1.0)), inputs=width, float32=True)
    return _head(est, ensemble, k)


def _hist_boosting(est: Any, width: int) -> Head:
    """HistGradientBoosting*: the baseline plus every predictor's leaf values (shrinkage is already in
    them), compared in float64; categorical splits are refused."""
    flags = getattr(est, "is_categorical_", None)
    where = np.flatnonzero(np.asarray([] if flags is None else flags, bool))
    categorical = any(bool(p.nodes["is_categorical"].any()) for it in est._predictors for p in it)
    if len(where) or categorical or getattr(est, "_preprocessor", None) is not None:
        names = getattr(est, "feature_names_in_", None)
        cols = [str(names[i]) if names is not None else str(i) for i in where]
        raise ModelError(
            f"as_model: this {type(est).__name__} makes categorical splits (columns {cols or 'from dtype'}); "
            "only numeric splits are supported. One-hot encode the column in the Pipeline instead "
            "(ColumnTransformer with a OneHotEncoder) and fit with categorical_features=None."
        )
    factor = _factor(est)
    k = int(est.n_trees_per_iteration_)
    trees = []
    for iteration in est._predictors:
        for j, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            value = np.zeros((len(nodes), k))
            value[:, j] = nodes["value"] * (factor or 1.0)
            trees.append(
                Tree(
                    feature=np.where(leaf, -1, nodes["feature_idx"]).astype(np.int64),
                    threshold=_finite(nodes["num_threshold"].astype(np.float64)),
                    left=nodes["left"].astype(np.int64),
                    right=nodes["right"].astype(np.int64),
                    missing_left=nodes["missing_go_to_left"].astype(bool),
                    value=value,
                    cover=nodes["count"].astype(np.float64),
                )
            )
    base = np.asarray(est._baseline_prediction, np.float64).reshape(-1) * (factor or 1.0)
    ensemble = pack(trees, list(base), inputs=width, float32=False)
    return _head(est, ensemble, k)


def _factor(est: Any) -> float | None:
    """Raw margin -> logit factor of a boosted model's loss, or None for an identity (regression) link;
    any other link (poisson, gamma: predict = exp(raw)) is refused."""
    link = type(est._loss.link).__name__
    if link not in LINKS:
        raise ModelError(
            f"as_model: this {type(est).__name__} uses loss={est.loss!r}, whose predictions are "
            f"{'exp(raw)' if link == 'LogLink' else f'the {link} inverse of raw'}, not the sum of its trees; supported losses have an identity link (squared_error, "
            "absolute_error, huber, quantile) or a logit / softmax link (log_loss, exponential). Refit with "
            "one of those (e.g. loss='squared_error' on log(y))."
        )
    return LINKS[link]


def _head(est: Any, ensemble: nn.Module, k: int) -> Head:
    """The layers after a boosted ensemble: nothing for regression or softmax, BinaryLogits for one margin."""
    if not hasattr(est, "classes_"):
        return [ensemble], {"task": "regression", "n_outputs": 1}
    if k == 1:
        return [ensemble, L.BinaryLogits()], _classes(est)
    return [ensemble], _classes(est)


def _classes(est: Any) -> dict[str, Any]:
    """Classification info; ``sklearn.py`` turns the classes into plain labels (``_labels``)."""
    return {"task": "classification", "classes": tuple(est.classes_), "n_outputs": len(est.classes_)}
