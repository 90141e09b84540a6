"""XGBoost and LightGBM models convert exactly: the network equals the library's own predict / predict_proba
on random rows, rows on every split threshold and their neighbours, and missing values; bad models fail."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from actionable import ConfigError, Feature, ModelError, Schema, Target, as_model, load_model, save_model
from actionable.datasets import load
from actionable.models.tree_boosters import convert_booster
from actionable.models.tree_lightgbm import ZERO
from actionable.models.trees import tree_layer

D = 5
NAMES = [f"f{i}" for i in range(D)]
TASKS = ("binary", "multiclass", "regression")
TOL = {"xgboost": 1e-6, "lightgbm": 1e-9}  # XGBoost sums in float32, LightGBM in float64


def schema(task: str) -> Schema:
    features = tuple(Feature(n, "real", (-10, 10)) for n in NAMES)
    if task == "regression":
        return Schema(features, Target("y", above=0.0))
    classes = (0, 1) if task == "binary" else (0, 1, 2)
    return Schema(features, Target("y", favourable=1, classes=classes))


def data(task: str, seed: int, n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with missing values in two columns and a label that depends on them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    X[rng.random(n) < 0.15, 2] = np.nan
    X[rng.random(n) < 0.1, 0] = np.nan
    score = (
        np.nan_to_num(X[:, 0]) + X[:, 1] - 0.5 * np.nan_to_num(X[:, 2], nan=1.0) + 0.3 * rng.normal(size=n)
    )
    if task == "regression":
        return pd.DataFrame(X, columns=NAMES), score
    cuts = [0.0] if task == "binary" else [-0.6, 0.6]
    return pd.DataFrame(X, columns=NAMES), np.digitize(score, cuts)


def fit(library: str, task: str, seed: int, **params: Any) -> Any:
    lib = pytest.importorskip(library)
    X, y = data(task, seed)
    if params.get("objective") in ("count:poisson", "poisson"):
        y = np.exp(y)
    if library == "xgboost":
        kind = lib.XGBRegressor if task == "regression" else lib.XGBClassifier
        est = kind(n_estimators=12, max_depth=3, random_state=seed, **params)
    else:
        kind = lib.LGBMRegressor if task == "regression" else lib.LGBMClassifier
        est = kind(
            n_estimators=12, num_leaves=7, min_child_samples=5, random_state=seed, verbose=-1, **params
        )
    return est.fit(X, y)


def thresholds(est: Any) -> list[tuple[int, float]]:
    """(column, threshold) of every split, read from the library's own dump (the oracle's side)."""
    if hasattr(est, "get_booster"):
        gbm = json.loads(bytes(est.get_booster().save_raw(raw_format="json")))["learner"]["gradient_booster"]
        trees = gbm.get("gbtree", gbm)["model"]["trees"]
        return [
            (int(f), float(c))
            for t in trees
            for f, c, left in zip(t["split_indices"], t["split_conditions"], t["left_children"], strict=True)
            if left >= 0
        ]
    frame = est.booster_.trees_to_dataframe().dropna(subset=["threshold"])
    return [(NAMES.index(f), float(c)) for f, c in zip(frame.split_feature, frame.threshold, strict=True)]


def probes(est: Any, seed: int) -> np.ndarray:
    """Random rows, rows exactly on each threshold and on its float32 and float64 neighbours, NaN rows."""
    rng = np.random.default_rng(seed + 100)
    rows = [rng.normal(scale=1.5, size=(200, D))]
    for col, c in thresholds(est):
        c32 = np.float32(c)
        near = [c, np.nextafter(c, -np.inf), np.nextafter(c, np.inf)]
        near += [float(np.nextafter(c32, np.float32(-np.inf))), float(np.nextafter(c32, np.float32(np.inf)))]
        block = rng.normal(size=(len(near), D))
        block[:, col] = near
        rows.append(block)
    nan = rng.normal(size=(40, D))
    nan[rng.random((40, D)) < 0.4] = np.nan
    rows.append(nan)
    return np.concatenate(rows)


def library_output(est: Any, X: np.ndarray, task: str) -> np.ndarray:
    frame = pd.DataFrame(X, columns=NAMES)
    out = est.predict(frame) if task == "regression" else est.predict_proba(frame)
    return np.asarray(out, np.float64).reshape(len(X), -1)


def network_output(model: Any, X: np.ndarray) -> np.ndarray:
    out = model.network(torch.as_tensor(X))
    return (out if model.task == "regression" else torch.softmax(out, dim=-1)).detach().numpy()


def assert_matches(model: Any, est: Any, X: np.ndarray, task: str, library: str) -> None:
    want, got = library_output(est, X, task), network_output(model, X)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=TOL[library], atol=TOL[library])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_wrapper_and_booster_match_the_library(library: str, task: str, seed: int) -> None:
    est = fit(library, task, seed)
    X = probes(est, seed)
    model = as_model(est, schema(task))
    assert_matches(model, est, X, task, library)
    booster = est.get_booster() if library == "xgboost" else est.booster_
    raw = as_model(booster, schema(task))  # classes from the schema's target
    assert raw.task == model.task and raw.classes == model.classes
    assert_matches(raw, est, X, task, library)
    ensemble = tree_layer(model.network)
    assert ensemble is not None and ensemble.float32 == (library == "xgboost")


def test_the_float32_threshold_matters() -> None:
    """Rows on XGBoost's split conditions go right (strict <): a threshold kept as the condition fails."""
    est = fit("xgboost", "binary", 0)
    model = as_model(est, schema("binary"))
    ensemble = tree_layer(model.network)
    assert ensemble is not None
    inner = ensemble.left != torch.arange(len(ensemble.left))
    with torch.no_grad():
        ensemble.threshold[inner] = torch.as_tensor(
            np.nextafter(ensemble.threshold[inner].numpy().astype(np.float32), np.float32(np.inf)),
            dtype=torch.float64,
        )
    with pytest.raises(AssertionError):
        assert_matches(model, est, probes(est, 0), "binary", "xgboost")


def test_lightgbm_zero_band_and_missing_as_zero() -> None:
    """LightGBM reads |x| <= 1e-35 as 0 and, where it saw no NaN in training, NaN as 0."""
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(3)
    X = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(400, 2))
    y = ((X[:, 0] < 0) | (X[:, 1] == 0)).astype(int)
    est = lgb.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1).fit(X, y)
    band = [-ZERO, np.nextafter(-ZERO, -1), np.nextafter(-ZERO, 1), -5e-36, 0.0, 5e-36, ZERO, 1.1e-35, np.nan]
    T = np.array([[a, b] for a in band for b in band])
    assert {t for _, t in thresholds_of(est)} >= {-ZERO, ZERO}  # both edges of the band are split on
    head, _ = convert_booster(est, 2)
    got = torch.softmax(torch.nn.Sequential(*head).double()(torch.as_tensor(T)), -1).detach().numpy()
    np.testing.assert_allclose(got, est.predict_proba(T), atol=1e-12)


def thresholds_of(est: Any) -> list[tuple[str, float]]:
    frame = est.booster_.trees_to_dataframe().dropna(subset=["threshold"])
    return list(zip(frame.split_feature, frame.threshold, strict=True))


@pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_early_stopping_predicts_with_the_best_iteration(library: str) -> None:
    lib = pytest.importorskip(library)
    X, y = data("binary", 4, n=400)
    fit_args: dict[str, Any] = {"eval_set": [(X[300:], y[300:])]}
    if library == "xgboost":
        est = lib.XGBClassifier(n_estimators=200, learning_rate=0.8, max_depth=4, early_stopping_rounds=3)
        est.fit(X[:300], y[:300], verbose=False, **fit_args)
        kept, best = len(est.get_booster().get_dump()), est.best_iteration + 1
    else:
        est = lib.LGBMClassifier(n_estimators=200, learning_rate=0.8, verbose=-1)
        est.fit(X[:300], y[:300], callbacks=[lib.early_stopping(3, verbose=False)], **fit_args)
        kept, best = est.booster_.num_trees(), est.best_iteration_
    model = as_model(est, schema("binary"))
    ensemble = tree_layer(model.network)
    assert ensemble is not None and len(ensemble.roots) == best < 200
    assert kept >= best
    assert_matches(model, est, probes(est, 4), "binary", library)


@pytest.mark.parametrize(
    ("library", "task", "params"),
    [
        ("xgboost", "regression", {"booster": "dart", "rate_drop": 0.3}),
        ("xgboost", "binary", {"num_parallel_tree": 3, "subsample": 0.7}),
        ("xgboost", "multiclass", {"objective": "multi:softmax"}),
        ("xgboost", "regression", {"objective": "reg:absoluteerror"}),
        ("lightgbm", "multiclass", {"boosting_type": "rf", "subsample": 0.7, "subsample_freq": 1}),
        ("lightgbm", "binary", {"objective": "binary", "sigmoid": 0.7}),
        ("lightgbm", "regression", {"objective": "huber"}),
    ],
)
def test_variants_match(library: str, task: str, params: dict[str, Any]) -> None:
    est = fit(library, task, 5, **params)
    assert_matches(as_model(est, schema(task)), est, probes(est, 5), task, library)


def test_xgboost_multi_target_regression() -> None:
    """One tree per target (``tree_info``), a base score per target."""
    xgb = pytest.importorskip("xgboost")
    X, y = data("regression", 6)
    est = xgb.XGBRegressor(n_estimators=8, max_depth=3).fit(X, np.c_[y, np.sin(3 * y)])
    model = as_model(est, schema("regression"))
    assert model.outputs == ("y[0]", "y[1]")
    X = probes(est, 6)
    np.testing.assert_allclose(network_output(model, X), est.predict(X), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_cover_is_the_training_weight(library: str) -> None:
    """Squared error has hessian 1, so XGBoost's cover at each root is the row count, as LightGBM's count."""
    est = fit(library, "regression", 0)
    ensemble = tree_layer(as_model(est, schema("regression")).network)
    assert ensemble is not None
    np.testing.assert_allclose(ensemble.cover[ensemble.roots].numpy(), 300.0)
    leaves = ensemble.left == torch.arange(len(ensemble.left))
    assert float(ensemble.cover[leaves].sum()) == pytest.approx(300.0 * len(ensemble.roots))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_german_pipeline_matches_and_round_trips(library: str, tmp_path: Path) -> None:
    lib = pytest.importorskip(library)
    from sklearn.preprocessing import OneHotEncoder

    german = load("german")
    categories = [f.name for f in german.schema.features if f.kind == "category"]
    ct = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), categories)], remainder="passthrough"
    )
    if library == "xgboost":
        est: Any = lib.XGBClassifier(n_estimators=25, max_depth=4, random_state=0)
    else:
        est = lib.LGBMClassifier(n_estimators=25, num_leaves=15, verbose=-1, random_state=0)
    y = (german.y_train == "good").astype(int)
    pipe = Pipeline([("ct", ct), ("m", est)]).fit(german.X_train, y)
    model = as_model(pipe, german.schema)
    X = german.X_test
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X), atol=TOL[library])
    assert (model.predict(X) == pipe.predict(X)).all()
    again = load_model(save_model(model, tmp_path / "m"), german.schema)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


# ------------------------------------------------------------------------------------------ refusals
def _xgb_refusals() -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("regression", {"objective": "count:poisson"}, "count:poisson"),
        ("regression", {"booster": "gblinear"}, "gblinear"),
        ("regression", {"multi_strategy": "multi_output_tree"}, "multi_output_tree"),
        ("binary", {"missing": 0.0}, "missing=numpy.nan"),
        ("binary", {"objective": "binary:logitraw"}, "binary:logitraw"),
        ("binary", {"objective": "reg:logistic"}, "reg:logistic"),
    ]


@pytest.mark.filterwarnings("ignore::UserWarning")  # gblinear: "max_depth is not used"
@pytest.mark.parametrize(("task", "params", "named"), _xgb_refusals())
def test_xgboost_refusals_name_what_is_supported(task: str, params: dict[str, Any], named: str) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = data(task, 0)
    if params.get("multi_strategy"):
        est: Any = xgb.XGBRegressor(n_estimators=2, tree_method="hist", **params).fit(X, np.c_[y, -y])
    else:
        est = fit("xgboost", task, 0, **params)
    with pytest.raises(ModelError, match="supported") as err:
        as_model(est, schema(task))
    assert named in str(err.value)


def test_xgboost_refuses_categorical_and_ranking() -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = data("binary", 0)
    X = X.assign(f4=pd.Categorical(np.where(X.f4 > 0, "a", "b")))
    est = xgb.XGBClassifier(n_estimators=3, enable_categorical=True, tree_method="hist").fit(X, y)
    with pytest.raises(ModelError, match="enable_categorical"):
        convert_booster(est, D)
    X, y = data("regression", 0)
    ranker = xgb.XGBRanker(n_estimators=2).fit(X, np.digitize(y, [0]), qid=np.repeat(np.arange(30), 10))
    with pytest.raises(ModelError, match="rank:"):
        as_model(ranker, schema("regression"))


@pytest.mark.parametrize(
    ("task", "params", "named"),
    [
        ("binary", {"zero_as_missing": True}, "zero_as_missing"),
        ("regression", {"objective": "poisson"}, "poisson"),
        ("regression", {"linear_tree": True}, "linear_tree"),
        ("regression", {"reg_sqrt": True}, "sqrt"),
        ("binary", {"objective": "cross_entropy"}, "cross_entropy"),
    ],
)
def test_lightgbm_refusals_name_the_fix(task: str, params: dict[str, Any], named: str) -> None:
    est = fit("lightgbm", task, 0, **params)
    with pytest.raises(ModelError, match="supported") as err:
        convert_booster(est, D)
    assert named in str(err.value)


def test_lightgbm_refuses_categorical_splits() -> None:
    """A split on category codes ('==') is refused, from a pandas 'category' column or categorical_feature."""
    lgb = pytest.importorskip("lightgbm")
    X, _ = data("binary", 0)
    codes = np.random.default_rng(0).integers(0, 6, len(X))
    y = np.isin(codes, [0, 2, 4]).astype(int)
    frame = X.assign(f4=pd.Categorical(np.asarray(list("abcdef"))[codes]))
    est = lgb.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1).fit(frame, y)
    with pytest.raises(ModelError, match="OneHotEncoder") as err:
        convert_booster(est, D)
    assert "'category' columns" in str(err.value)
    est = lgb.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
    est.fit(X.assign(f4=codes), y, categorical_feature=[4])
    with pytest.raises(ModelError, match="OneHotEncoder") as err:
        convert_booster(est, D)
    assert "categorical split ('==' on feature 4)" in str(err.value)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_feature_count_mismatches_name_the_columns(library: str) -> None:
    lib = pytest.importorskip(library)
    est = fit(library, "binary", 0)
    with pytest.raises(
        ModelError, match=r"fitted on 5 columns \(f0, f1, f2, f3, f4\), but its preprocessing gives 6"
    ):
        convert_booster(est, D + 1)
    X, y = data("binary", 0)
    if library == "xgboost":
        unnamed = lib.train({"objective": "binary:logistic"}, lib.DMatrix(X.to_numpy()[:, :4], y), 2)
        renamed = lib.train(
            {"objective": "binary:logistic"}, lib.DMatrix(X.rename(columns={"f3": "g"}), y), 2
        )
    else:
        unnamed = lib.train({"objective": "binary", "verbose": -1}, lib.Dataset(X.to_numpy()[:, :4], y), 2)
        renamed = lib.train(
            {"objective": "binary", "verbose": -1}, lib.Dataset(X.rename(columns={"f3": "g"}), y), 2
        )
    with pytest.raises(ModelError, match=r"4 unnamed columns.*has 5 \(f0, f1, f2, f3, f4\)"):
        as_model(unnamed, schema("binary"))
    with pytest.raises(ModelError, match=r"columns \['g'\] are not in the schema.*does not read: \['f3'\]"):
        as_model(renamed, schema("binary"))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_raw_booster_classes_and_task(library: str) -> None:
    est = fit(library, "multiclass", 0)
    booster = est.get_booster() if library == "xgboost" else est.booster_
    plain = Schema(schema("multiclass").features)
    with pytest.raises(ModelError, match="does not know its classes"):
        as_model(booster, plain)
    with pytest.raises(ModelError, match="predicts 3 classes, but 2 are given"):
        as_model(booster, plain, classes=["a", "b"])
    with pytest.raises(ConfigError, match="task = 'regression'"):
        as_model(booster, plain, task="regression", classes=["a", "b", "c"])
    model = as_model(booster, plain, classes=["a", "b", "c"])
    assert model.classes == ("a", "b", "c")
    X = probes(est, 0)
    np.testing.assert_allclose(network_output(model, X), library_output(est, X, "multiclass"), atol=1e-6)


def test_unfitted_boosters_are_refused() -> None:
    for library, name in (("xgboost", "XGBClassifier"), ("lightgbm", "LGBMClassifier")):
        lib = pytest.importorskip(library)
        with pytest.raises(ModelError, match="not fitted"):
            as_model(getattr(lib, name)(), schema("binary"))


def test_works_without_the_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither library is imported for other models (a missing package reads as an ImportError)."""
    monkeypatch.setitem(sys.modules, "xgboost", None)
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    X, y = data("binary", 0)
    est = LogisticRegression().fit(X.fillna(0), y)
    model = as_model(est, schema("binary"))
    np.testing.assert_allclose(model.predict_proba(X.fillna(0)), est.predict_proba(X.fillna(0)), atol=1e-9)
