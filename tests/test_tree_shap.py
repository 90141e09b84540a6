"""attribute(tree_model, X, "shap"): TreeSHAP through shap's TreeExplainer on our own node arrays.

Oracle: shap's TreeExplainer run on the original scikit-learn model, on the same ensemble inputs z, with
its values mapped to raw features by plain loops; completeness (sum of values = f(x) - reference) to 1e-6.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from actionable import as_model, load_model, save_model
from actionable.advice import advise_gradient, gradient_table
from actionable.attribution import attribute
from actionable.errors import ConfigError, DataError
from actionable.models.trees import tree_layer
from actionable.tree_shap import shap_model, split_ranks
from tests import tree_models as T

shap = pytest.importorskip("shap")

TOL = 1e-6
FOREST = {"n_estimators": 12, "max_depth": 5, "random_state": 0}
BOOST = {"n_estimators": 15, "max_depth": 3, "random_state": 0}
HIST = {"max_iter": 15, "max_leaf_nodes": 8, "random_state": 0}


def _signal(X: pd.DataFrame, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 8, len(X))
    return X["income"] - 0.6 * X["age"] + 25 * (X["job"] == "b") + 15 * X["owner"] + noise


@functools.cache
def _fit(kind: str, seed: int = 0, decimals: int | None = 1) -> tuple[Any, Any, pd.DataFrame]:
    """(sklearn model fitted on the ensemble inputs z, our TorchModel, the raw training frame)."""
    est = {
        "rf_c": RandomForestClassifier(**FOREST),
        "rf_r": RandomForestRegressor(**FOREST),
        "gb_c": GradientBoostingClassifier(**BOOST),
        "gb_c3": GradientBoostingClassifier(**BOOST),
        "gb_r": GradientBoostingRegressor(**BOOST),
        "hgb_c": HistGradientBoostingClassifier(**HIST),
        "hgb_c3": HistGradientBoostingClassifier(**HIST),
        "hgb_r": HistGradientBoostingRegressor(**HIST),
        "rf_c3": RandomForestClassifier(**FOREST),
    }[kind]
    X = T.frame(300, seed, decimals)
    signal = _signal(X, seed)
    if kind.endswith("_r"):
        s, y = T.schema(None), signal.to_numpy()
    elif kind.endswith("3"):
        s = T.schema(("low", "mid", "high"))
        y = np.array(["low", "mid", "high"])[np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))]
    else:
        s, y = T.schema(), np.where(signal > np.median(signal), "yes", "no")
    est.fit(T.column_map(s, X), y)
    model = T.packed(est, s)
    z = T.column_map(s, X)
    ours = torch.softmax(model(s.encode(X)), -1) if hasattr(est, "classes_") else model(s.encode(X))[:, 0]
    theirs = est.predict_proba(z) if hasattr(est, "classes_") else est.predict(z)
    np.testing.assert_allclose(ours.detach().numpy(), theirs, atol=1e-9)  # the hand-packed model is exact
    return est, model, X


def _multiclass_booster(est: GradientBoostingClassifier, k: int) -> dict[str, Any]:
    """Class ``k``'s trees of a multiclass GradientBoostingClassifier (which shap does not load) as shap's
    custom dict, straight from scikit-learn's arrays (leaves already -1), as shap loads the binary one."""
    trees = []
    for reg in est.estimators_[:, k]:
        t = reg.tree_
        trees.append(
            {
                "children_left": t.children_left,
                "children_right": t.children_right,
                "children_default": t.children_right if t.missing_go_to_left is None else t.children_left,
                "features": t.feature,
                "thresholds": t.threshold,
                "values": t.value[:, 0, :] * est.learning_rate,
                "node_sample_weight": t.weighted_n_node_samples,
            }
        )
    base = est._raw_predict_init(np.zeros((1, est.n_features_in_)))[0, k]
    return {"trees": trees, "base_offset": base, "input_dtype": np.float32}


def _oracle(
    est: Any, z: np.ndarray, k: int, background: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """shap on the original sklearn model: values of output ``k`` per raw feature, and its expected value."""
    if isinstance(est, GradientBoostingClassifier) and len(est.classes_) > 2:
        est, k = _multiclass_booster(est, k), 0
    if background is None:
        explainer = shap.TreeExplainer(est)
    else:
        explainer = shap.TreeExplainer(est, data=background, feature_perturbation="interventional")
    phi = np.asarray(explainer.shap_values(z, check_additivity=False))
    expected = np.ravel(explainer.expected_value)
    if phi.ndim == 3:
        return T.to_raw(phi[:, :, k]), float(expected[k])
    return T.to_raw(phi), float(expected[0])


def _favourable(est: Any, model: Any) -> int:
    """The explained output's index: the favourable class among the estimator's (sorted) classes."""
    return list(est.classes_).index(model.schema.target.favourable) if hasattr(est, "classes_") else 0


KINDS = ["rf_c", "rf_r", "gb_c", "gb_r", "hgb_c", "hgb_r", "gb_c3", "hgb_c3", "rf_c3"]


@pytest.mark.parametrize("kind", KINDS)
def test_path_dependent_values_equal_shap_on_the_sklearn_model_and_add_up(kind: str) -> None:
    est, model, X = _fit(kind)
    rows = X.iloc[:40]
    result = attribute(model, rows, "shap")
    k = _favourable(est, model)
    oracle, expected = _oracle(est, T.column_map(model.schema, rows), k)
    np.testing.assert_allclose(result.values, oracle, atol=TOL, rtol=0)
    np.testing.assert_allclose(result.reference, expected, atol=TOL, rtol=0)
    assert np.abs(result.delta).max() < TOL
    assert result.method == "shap" and "tree_path_dependent" in result.baseline
    assert result.values.shape == (40, 4) and np.abs(result.values).sum() > 0


def _explained(est: Any, k: int) -> Any:
    """The sklearn model's own explained output k: a booster's margin, a forest's probability, a value."""
    if isinstance(est, RandomForestClassifier):
        return lambda z: est.predict_proba(z)[:, k]
    if hasattr(est, "classes_") and len(est.classes_) == 2:  # one margin, the second class's log-odds
        return lambda z: est.decision_function(z) * (1.0 if k == 1 else -1.0)
    if hasattr(est, "classes_"):
        return lambda z: est.decision_function(z)[:, k]
    return est.predict


def _brute_interventional(f: Any, z: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Interventional Shapley values by brute force over all 2^M subsets of the M inputs: the game
    v(S) = mean over background rows b of f(x on S, b elsewhere), on the sklearn model's own outputs."""
    m = z.shape[1]
    masks = np.array(list(itertools.product([False, True], repeat=m)))  # subset i: bit j adds 2^(m-1-j)
    hybrid = np.where(masks[:, None, None, :], z[None, :, None, :], zb[None, None, :, :])
    v = f(hybrid.reshape(-1, m)).reshape(len(masks), len(z), len(zb)).mean(2)
    sizes = masks.sum(1)
    phi = np.zeros(z.shape)
    for j in range(m):
        for i in np.flatnonzero(~masks[:, j]):
            weight = math.factorial(sizes[i]) * math.factorial(m - sizes[i] - 1) / math.factorial(m)
            phi[:, j] += weight * (v[i + 2 ** (m - 1 - j)] - v[i])
    return T.to_raw(phi)


@pytest.mark.parametrize("kind", ["rf_c", "gb_r", "hgb_c", "gb_c3"])
def test_interventional_values_equal_brute_force_shapley_values_on_the_sklearn_model(kind: str) -> None:
    est, model, X = _fit(kind, seed=1)
    rows, background = X.iloc[:12], X.iloc[200:240]
    result = attribute(model, rows, "shap", baseline=background)
    f = _explained(est, _favourable(est, model))
    s = model.schema
    z, zb = T.column_map(s, rows), T.column_map(s, background)
    np.testing.assert_allclose(result.values, _brute_interventional(f, z, zb), atol=TOL, rtol=0)
    assert np.abs(result.delta).max() < TOL
    # the reference is the mean explained output on the background rows; the prediction f(x)
    np.testing.assert_allclose(result.reference, f(zb).mean(), atol=1e-9)
    np.testing.assert_allclose(result.prediction, f(z), atol=1e-9)
    assert result.baseline == "interventional (40 background rows)"
    canonical = attribute(model, rows, "shap", baseline=s.encode(background).numpy())
    np.testing.assert_allclose(canonical.values, result.values, atol=1e-12)


def test_interventional_routes_values_on_a_threshold_as_the_model_does() -> None:
    """HistGradientBoosting splits at float64 midpoints; rounded incomes land on them. shap's interventional
    code holds thresholds in float32, so on the original model its values do not add up there; on split
    ranks (``split_ranks``) ours do, to 1e-6."""
    est, model, X = _fit("hgb_c", seed=1)
    rows, background = X.iloc[:25], X.iloc[200:260]
    s = model.schema
    z, zb = T.column_map(s, rows), T.column_map(s, background)
    layer = tree_layer(model.network)
    assert layer is not None
    splits = layer.splits()
    assert any(np.isin(zb[:, c], t).any() for c, t in splits.items())  # values exactly on a threshold
    oracle, expected = _oracle(est, z, 0, zb)
    theirs = oracle.sum(1) - (est._raw_predict(z)[:, 0] - expected)
    assert np.abs(theirs).max() > 1e-3  # shap on the original model: not complete on these rows
    result = attribute(model, rows, "shap", baseline=background)
    assert np.abs(result.delta).max() < TOL
    ranks = split_ranks(layer, z)
    for c, t in splits.items():  # rank <= k exactly where z <= the k-th threshold
        np.testing.assert_array_equal(ranks[:, c][:, None] <= np.arange(len(t)), z[:, c][:, None] <= t)


def test_what_is_explained_is_named_and_the_first_class_of_a_binary_margin_is_its_negation() -> None:
    _, boosted, X = _fit("gb_c")
    yes = attribute(boosted, X.iloc[:10], "shap")
    no = attribute(boosted, X.iloc[:10], "shap", target="no")
    assert yes.target == "yes (margin: log-odds)"
    np.testing.assert_allclose(no.values, -yes.values, atol=1e-12)
    np.testing.assert_allclose(no.prediction, -yes.prediction, atol=1e-12)
    assert np.abs(no.delta).max() < TOL
    est, forest, X = _fit("rf_c")
    first = attribute(forest, X.iloc[:10], "shap", target="no")
    assert first.target == "no (probability: the trees' average)"
    oracle, _ = _oracle(est, T.column_map(forest.schema, X.iloc[:10]), 0)
    np.testing.assert_allclose(first.values, oracle, atol=TOL)
    # a forest's explained output is its averaged probability: prediction = predict_proba
    np.testing.assert_allclose(
        first.prediction, est.predict_proba(T.column_map(forest.schema, X.iloc[:10]))[:, 0]
    )
    _, regression, X = _fit("hgb_r")
    assert attribute(regression, X.iloc[:3], "shap").target == "amount"


def test_rows_that_do_not_fit_the_schema_keep_their_place() -> None:
    _, model, X = _fit("hgb_c")
    rows = X.iloc[:4].copy()
    rows.loc[rows.index[1], "income"] = 1000.0
    result = attribute(model, rows, "shap")
    assert list(result.errors) == [rows.index[1]]
    assert np.isnan(result.values[1]).all() and np.isfinite(result.values[[0, 2, 3]]).all()
    assert np.abs(result.delta[[0, 2, 3]]).max() < TOL
    rows["income"] = 1000.0
    assert len(attribute(model, rows, "shap").errors) == 4


def test_saved_and_loaded_tree_model_gives_the_same_values(tmp_path: Any) -> None:
    _, model, X = _fit("gb_c3")
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    a, b = attribute(model, X.iloc[:8], "shap"), attribute(again, X.iloc[:8], "shap")
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize(
    "method", ["gradient", "gradient_x_input", "integrated_gradients", "deeplift", "coefficients"]
)
def test_gradient_methods_refuse_a_tree_model_naming_shap(method: str) -> None:
    _, model, X = _fit("rf_c")
    with pytest.raises(ConfigError, match="'shap'"):
        attribute(model, X.iloc[:2], method)  # type: ignore[arg-type]


def test_advising_refuses_a_tree_model_naming_shap() -> None:
    _, model, X = _fit("gb_c")
    with pytest.raises(ConfigError, match=r"advise_gradient: .*'shap'"):
        advise_gradient(model, X.iloc[0])
    with pytest.raises(ConfigError, match=r"gradient_table: .*'shap'"):
        gradient_table({"trees": model}, X)


def test_shap_on_a_differentiable_model_names_the_gradient_methods() -> None:
    s = T.schema()
    net = as_model(torch.nn.Linear(s.width, 1).double(), s)
    with pytest.raises(ConfigError, match="integrated_gradients"):
        attribute(net, T.frame(3, 0), "shap")


def test_bad_options_for_shap_are_config_errors() -> None:
    _, model, X = _fit("gb_r")
    with pytest.raises(ConfigError, match="raw output"):
        attribute(model, X.iloc[:2], "shap", output="probability")
    with pytest.raises(ConfigError, match="background"):
        attribute(model, X.iloc[:2], "shap", baseline="mean")
    with pytest.raises(DataError, match="no rows"):
        attribute(model, X.iloc[:2], "shap", baseline=X.iloc[:0])
    bad = X.iloc[:3].copy()
    bad["age"] = 5
    with pytest.raises(DataError, match="baseline row"):
        attribute(model, X.iloc[:2], "shap", baseline=bad)
    with pytest.raises(DataError, match="canonical background"):
        attribute(model, X.iloc[:2], "shap", baseline=np.zeros((3, 2)))


def test_a_missing_shap_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _, model, X = _fit("gb_r")
    monkeypatch.setitem(sys.modules, "shap", None)  # import shap now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install actionable\[shap\]"):
        attribute(model, X.iloc[:2], "shap")


def test_path_dependent_refuses_trees_without_training_weights_interventional_still_exact() -> None:
    est, _, X = _fit("gb_c")
    model = T.packed(est, T.schema(), cover=False)  # cover 1 everywhere: the weights do not add up
    with pytest.raises(ConfigError, match="baseline= a background frame"):
        attribute(model, X.iloc[:3], "shap")
    result = attribute(model, X.iloc[:5], "shap", baseline=X.iloc[100:130])
    assert np.abs(result.delta).max() < TOL


def test_shap_model_lays_out_local_trees_with_shaps_leaf_convention() -> None:
    _, model, _ = _fit("gb_c3")
    layer = tree_layer(model.network)
    assert layer is not None
    described = shap_model(layer, 1)
    # a multiclass booster's trees for the other classes add nothing to class 1's margin: left out
    assert len(described["trees"]) == 15
    for tree in described["trees"]:
        leaf = tree["children_left"] < 0
        assert (tree["children_right"][leaf] < 0).all() and (tree["features"][leaf] == -2).all()
        inner = ~leaf
        assert (tree["children_left"][inner] > np.flatnonzero(inner)).all()
        assert (tree["values"][inner] == 0).all()
    assert described["base_offset"] == pytest.approx(float(layer.base[1]))


def test_the_command_line_explains_a_tree_model_with_shap(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from actionable.cli import app

    _, model, X = _fit("hgb_c")
    save_model(model, tmp_path / "model")
    (tmp_path / "schema.toml").write_text(model.schema.to_toml())
    X.iloc[:6].to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "why.jsonl"
    files = ["--data", str(tmp_path / "rows.csv"), "--schema", str(tmp_path / "schema.toml")]
    args = ["explain", *files, "--model", str(tmp_path / "model"), "--method", "shap", "--rows", "0:4"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "shap: yes (margin: log-odds)" in result.output and "tree_path_dependent" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    direct = attribute(model, X.iloc[:4], "shap")
    assert [r["values"]["income"] for r in records] == pytest.approx(direct.values[:, 0].tolist(), abs=1e-12)
    assert all(abs(r["delta"]) < TOL for r in records)
    result = CliRunner().invoke(app, [*args, "--baseline", "zeros"], terminal_width=200)
    assert result.exit_code == 2 and "drop --baseline" in result.output


def test_a_converted_pipeline_agrees_with_shap_on_its_transformed_rows() -> None:
    """``as_model`` on a Pipeline (ColumnTransformer + HistGradientBoosting): the values equal shap's on
    the original model fed the Pipeline's own transformed rows, mapped back to raw features by name."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from actionable.models.tree_sklearn import convert_tree

    probe = HistGradientBoostingClassifier(max_iter=2).fit(np.arange(10.0)[:, None], [0, 1] * 5)
    if convert_tree(probe, 1) is None:
        pytest.skip("the scikit-learn tree converter (issue 13, part 1) is not on this branch yet")
    s = T.schema()
    X = T.frame(300, 3)
    y = np.where(_signal(X, 3) > 0, "yes", "no")
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["income", "age"]),
            ("cat", OneHotEncoder(), ["job"]),
            ("bin", "passthrough", ["owner"]),
        ]
    )
    pipeline = Pipeline([("columns", columns), ("model", HistGradientBoostingClassifier(**HIST))]).fit(X, y)
    model = as_model(pipeline, s)
    rows = X.iloc[:20]
    result = attribute(model, rows, "shap")
    transformed = pipeline[:-1].transform(rows)
    phi = np.asarray(shap.TreeExplainer(pipeline[-1]).shap_values(transformed, check_additivity=False))
    owner = {
        "num__income": 0,
        "num__age": 1,
        "cat__job_a": 2,
        "cat__job_b": 2,
        "cat__job_c": 2,
        "bin__owner": 3,
    }
    oracle = np.zeros((len(rows), 4))
    for j, name in enumerate(pipeline[:-1].get_feature_names_out()):
        oracle[:, owner[name]] += phi[:, j]
    np.testing.assert_allclose(result.values, oracle, atol=TOL, rtol=0)
    assert np.abs(result.delta).max() < TOL
