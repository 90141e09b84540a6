"""scikit-learn tree models (issue 13): every family converts exactly, on random rows, on rows placed on
(and one float64 / float32 step beside) each split threshold, and through missing-value branches; files
round-trip; unsupported trees and corrupted tree files are ``ModelError``s naming the fix.

The oracle is scikit-learn itself: its ``predict_proba`` / ``predict``, and the thresholds read from its
own fitted arrays (never from the converted ensemble).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from sklearn.compose import ColumnTransformer
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
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from actionable import Feature, ModelError, Schema, Target, as_model, datasets, load_model, save_model
from actionable.models.tree_fold import fold
from actionable.models.trees import Tree, pack, tree_layer

COLUMNS = ["a", "b", "c", "d"]
SCHEMA = Schema(tuple(Feature(c, "real", (-50, 50)) for c in COLUMNS), Target("y", favourable=1))
EXACT = 1e-9
Make = Callable[[int], Any]
FAMILIES: dict[str, tuple[Make, Make]] = {
    "tree": (
        lambda s: DecisionTreeClassifier(max_depth=7, random_state=s),
        lambda s: DecisionTreeRegressor(max_depth=7, random_state=s),
    ),
    "forest": (
        lambda s: RandomForestClassifier(8, max_depth=6, random_state=s),
        lambda s: RandomForestRegressor(8, max_depth=6, random_state=s),
    ),
    "extra": (
        lambda s: ExtraTreesClassifier(8, max_depth=6, random_state=s),
        lambda s: ExtraTreesRegressor(8, max_depth=6, random_state=s),
    ),
    "gb": (
        lambda s: GradientBoostingClassifier(n_estimators=12, max_depth=3, random_state=s),
        lambda s: GradientBoostingRegressor(n_estimators=12, max_depth=3, random_state=s),
    ),
    "hist": (
        lambda s: HistGradientBoostingClassifier(max_iter=12, random_state=s),
        lambda s: HistGradientBoostingRegressor(max_iter=12, random_state=s),
    ),
}
MISSING = ["tree", "forest", "extra", "hist"]  # the families whose predict accepts NaN


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads on shared cores cost more than they save on these sizes."""
    with threadpool_limits(1):
        yield


def features(n: int, seed: int, missing: float = 0.0) -> pd.DataFrame:
    """Real columns, one of them on a coarse grid (ties with the rows of the edge test), some NaN."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * 3
    x[:, 2] = rng.integers(-4, 5, n) / 2
    x[rng.random(x.shape) < missing] = np.nan
    return pd.DataFrame(x, columns=COLUMNS)


def target(X: pd.DataFrame, task: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    score = X.a.fillna(1) + X.b.fillna(-2) * X.c.fillna(0.5) / 2 + rng.normal(size=len(X))
    if task == "regression":
        return score.to_numpy() * 10
    k = 2 if task == "binary" else 3
    return np.digitize(score, np.quantile(score, np.linspace(0, 1, k + 1)[1:-1]))


def fitted(family: str, task: str, seed: int, missing: float = 0.0) -> tuple[Any, pd.DataFrame]:
    X = features(240, seed, missing)
    est = FAMILIES[family][task == "regression"](seed)
    return est.fit(X, target(X, task, seed)), X


def sk_splits(est: Any) -> list[tuple[int, float]]:
    """(column, threshold) of every split, read from scikit-learn's fitted arrays."""
    if hasattr(est, "_predictors"):
        nodes = [p.nodes for iteration in est._predictors for p in iteration]
        return [
            (int(f), float(t))
            for n in nodes
            for f, t, leaf in zip(n["feature_idx"], n["num_threshold"], n["is_leaf"], strict=True)
            if not leaf
        ]
    members = np.ravel(getattr(est, "estimators_", [est]))
    return [
        (int(f), float(t))
        for m in members
        for f, t, child in zip(m.tree_.feature, m.tree_.threshold, m.tree_.children_left, strict=True)
        if child >= 0
    ]


def edge_rows(est: Any, seed: int) -> np.ndarray:
    """Random rows with one column set to a split threshold or its float64 / float32 neighbours."""
    rng = np.random.default_rng(seed + 7)
    pairs = [(c, t) for c, t in sk_splits(est) if np.isfinite(t)]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[:300]]
    rows = features(6 * len(pairs), seed + 8).to_numpy().copy()
    for i, (column, t) in enumerate(pairs):
        f = np.float32(t)
        rows[6 * i : 6 * i + 6, column] = [
            t,
            np.nextafter(t, -np.inf),
            np.nextafter(t, np.inf),
            float(f),
            float(np.nextafter(f, np.float32(-np.inf))),
            float(np.nextafter(f, np.float32(np.inf))),
        ]
    return rows


def sk_out(est: Any, x: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(x, columns=COLUMNS)
    return est.predict_proba(frame) if hasattr(est, "classes_") else est.predict(frame)


def our_out(model: Any, x: np.ndarray) -> np.ndarray:
    """The converted model on canonical rows, through the network itself (NaN rows too)."""
    with torch.no_grad():
        out = model.network(torch.as_tensor(x, dtype=torch.float64))
    return (torch.softmax(out, dim=-1) if model.task == "classification" else out[:, 0]).numpy()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("task", ["binary", "3-class", "regression"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_converts_exactly(family: str, task: str, seed: int) -> None:
    est, _ = fitted(family, task, seed)
    model = as_model(est, SCHEMA)
    random = features(300, seed + 50).to_numpy()
    edges = edge_rows(est, seed)
    assert len(edges) >= 60
    for x in (random, edges):
        want = sk_out(est, x)
        if model.task == "classification":
            assert model.classes == tuple(est.classes_)
            assert np.abs(model.predict_proba(x) - want).max() < EXACT
            assert (model.predict(x) == est.predict(pd.DataFrame(x, columns=COLUMNS))).all()
        else:
            assert np.abs(model.predict(x) - want).max() < EXACT


@pytest.mark.parametrize("task", ["binary", "3-class", "regression"])
@pytest.mark.parametrize("family", MISSING)
def test_missing_values_follow_the_fitted_branch(family: str, task: str) -> None:
    est, _ = fitted(family, task, 3, missing=0.15)
    model = as_model(est, SCHEMA)
    x = np.vstack([features(300, 60, missing=0.3).to_numpy(), edge_rows(est, 3)])
    x[::5, 1] = np.nan
    assert np.isnan(x).any(axis=1).mean() > 0.25
    assert np.abs(our_out(model, x) - sk_out(est, x)).max() < EXACT


def test_boosting_links_and_inits() -> None:
    X = features(240, 4)
    y2 = target(X, "binary", 4)
    y3 = target(X, "3-class", 4)
    cases = [
        (GradientBoostingClassifier(n_estimators=8, loss="exponential", random_state=0), y2),
        (GradientBoostingClassifier(n_estimators=8, init="zero", random_state=0), y3),
        (GradientBoostingRegressor(n_estimators=8, loss="huber", random_state=0), y2 * 3.0),
        (GradientBoostingRegressor(n_estimators=8, loss="quantile", alpha=0.8, random_state=0), y3 * 2.0),
        (HistGradientBoostingRegressor(max_iter=8, loss="absolute_error"), y3 * 2.0),
    ]
    x = features(200, 5).to_numpy()
    for est, y in cases:
        est.fit(X, y)
        assert np.abs(our_out(as_model(est, SCHEMA), x) - sk_out(est, x)).max() < EXACT, est


@pytest.mark.parametrize("family", list(FAMILIES))
def test_tree_models_save_and_load_identically(family: str, tmp_path: Path) -> None:
    x = np.vstack([features(100, 9).to_numpy(), edge_rows(fitted(family, "3-class", 0)[0], 0)[:60]])
    for task in ("3-class", "regression"):
        model = as_model(fitted(family, task, 0)[0], SCHEMA)
        save_model(model, tmp_path / task)
        again = load_model(tmp_path / task)
        assert np.array_equal(our_out(again, x), our_out(model, x))
        assert again.classes == model.classes and again.task == model.task
        layer = tree_layer(again.network)
        assert layer is not None and layer.float32 == (family != "hist")


def test_pipelines_on_german_match_predict_proba() -> None:
    data = datasets.load("german")
    numeric = [f.name for f in data.schema.features if f.kind != "category"]
    category = [f.name for f in data.schema.features if f.kind == "category"]
    rows = pd.concat([data.X_train, data.X_test])
    for est in (HistGradientBoostingClassifier(max_iter=30, random_state=0), RandomForestClassifier(10)):
        pipe = Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", StandardScaler(), numeric),
                            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), category),
                        ]
                    ),
                ),
                ("model", est),
            ]
        ).fit(data.X_train, data.y_train)
        model = as_model(pipe, data.schema)
        assert model.classes == tuple(pipe.classes_)
        assert np.abs(model.predict_proba(rows) - pipe.predict_proba(rows)).max() < EXACT


MIXED = Schema(
    (
        Feature("income", "real", (0, 200)),
        Feature("years", "integer", (0, 40)),
        Feature("job", "category", levels=("clerk", "manager", "owner", "none")),
        Feature("phone", "binary"),
    ),
    Target("y", favourable=1),
)
SCALERS: dict[str, Callable[[], Any]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    "maxabs+standard": lambda: make_pipeline(MaxAbsScaler(), StandardScaler()),
}


def mixed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.uniform(0, 200, n),
            "years": rng.integers(0, 41, n),
            "job": rng.choice(["clerk", "manager", "owner", "none"], n),
            "phone": rng.integers(0, 2, n),
        }
    )


def on_scaled_thresholds(pipe: Any, seed: int) -> pd.DataFrame:
    """Raw rows whose scaled income lands on (or a few ulps beside) each income split of the estimator."""
    est, pre = pipe.named_steps["model"], pipe.named_steps["pre"]
    scaled = [t for c, t in sk_splits(est) if c == 0 and np.isfinite(t)]
    lo, hi = pre.transform(mixed(2, 0).assign(income=[0.0, 200.0]))[:, 0]  # income is output column 0
    raw = [0.0 + (t - lo) * 200.0 / (hi - lo) for t in scaled]
    values = np.clip([r + k * np.spacing(r) for r in raw for k in range(-3, 4)], 0, 200)
    return mixed(len(values), seed).assign(income=values)


@pytest.mark.parametrize("scaler", list(SCALERS))
@pytest.mark.parametrize("family", ["forest", "hist", "gb"])
def test_pipelines_with_scalers_and_one_hot_are_exact_on_thresholds(family: str, scaler: str) -> None:
    train = mixed(300, 1)
    score = train.income / 50 + train.years / 10 + (train.job == "owner") * 2 - train.phone
    y = (score > score.median()).to_numpy().astype(int)
    pre = ColumnTransformer(
        [
            ("num", SCALERS[scaler](), ["income", "years"]),
            ("cat", OneHotEncoder(sparse_output=False), ["job"]),
            ("bin", OneHotEncoder(drop=[1], sparse_output=False), ["phone"]),  # phone=0: 1 - x
        ]
    )
    pipe = Pipeline([("pre", pre), ("model", FAMILIES[family][0](0))]).fit(train, y)
    model = as_model(pipe, MIXED)
    rows = pd.concat([mixed(200, 2), on_scaled_thresholds(pipe, 3)], ignore_index=True)
    assert len(rows) > 200
    assert np.abs(model.predict_proba(rows) - pipe.predict_proba(rows)).max() < EXACT


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sub", "add", "mul", "div"]),
            st.floats(-1e3, 1e3, allow_nan=False).filter(lambda v: abs(v) > 1e-3 or v == 0),
        ),
        max_size=4,
    ),
    st.floats(-1e4, 1e4, allow_nan=False),
    st.booleans(),
    st.integers(0, 2**32),
)
def test_folding_a_chain_into_the_threshold_keeps_every_split(
    chain: list[tuple[str, float]], t: float, float32: bool, seed: int
) -> None:
    chain = [(op, 1.0 if op == "div" and v == 0 else v) for op, v in chain]

    def g(x: np.ndarray) -> np.ndarray:  # the chain written out, as scikit-learn's scalers compute
        out = x.copy()
        for op, v in chain:
            out = {"sub": out - v, "add": out + v, "mul": out * v, "div": out / v}[op]
        return out.astype(np.float32).astype(np.float64) if float32 else out

    one = Tree(
        np.array([0, -1, -1]),
        np.array([t, 0, 0]),
        np.array([1, 0, 0]),
        np.array([2, 0, 0]),
        np.array([True, False, False]),
        np.array([[0.0], [1.0], [2.0]]),
    )
    ensemble = pack([one], [0.0], inputs=1, float32=float32)
    folded = fold(ensemble, [tuple(chain)])
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=50) * 10 ** rng.uniform(-3, 6, 50), [folded.threshold[0].item()]])
    x = np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
    with np.errstate(all="ignore"):
        x = np.append(x[np.isfinite(x) & ~np.isnan(g(x))], np.nan)  # g(x) NaN (inf * 0): not finite math
        gx = g(x)
    want = np.where(np.isnan(gx), 1.0, np.where(gx <= t, 1.0, 2.0))
    got = folded(torch.as_tensor(x[:, None]))[:, 0].numpy()
    assert np.array_equal(got, want)
    assert not folded.float32


def test_a_falling_one_hot_column_is_folded_with_its_children_swapped() -> None:
    train = mixed(300, 1)
    y = (train.phone == 0).to_numpy().astype(int) ^ (train.income > 100).to_numpy()
    pre = ColumnTransformer([("bin", OneHotEncoder(drop=[1], sparse_output=False), ["phone"])])
    pipe = Pipeline([("pre", pre), ("model", DecisionTreeClassifier(max_depth=1))]).fit(train, y)
    model = as_model(pipe, MIXED)
    layer = tree_layer(model.network)
    assert layer is not None and int(layer.left[0]) == 2  # 'phone=0 <= 0.5' is 'phone > 0.5', swapped
    rows = mixed(50, 4)
    assert np.abs(model.predict_proba(rows) - pipe.predict_proba(rows)).max() < EXACT


UNSUPPORTED: list[tuple[str, Callable[[], Any], str]] = [
    (
        "multi-output",
        lambda: DecisionTreeRegressor().fit(features(50, 0), np.ones((50, 2))),
        r"fitted on 2 target columns; multi-output trees are not supported\. Fit one model per target",
    ),
    (
        "multi-output-forest",
        lambda: RandomForestClassifier(2).fit(features(50, 0), np.arange(100).reshape(50, 2) % 2),
        "multi-output trees are not supported",
    ),
    (
        "hist-categorical",
        lambda: HistGradientBoostingClassifier(max_iter=3, categorical_features=[2]).fit(
            features(80, 0).assign(c=lambda f: f.c + 2), target(features(80, 0), "binary", 0)
        ),
        r"categorical splits \(columns \['c'\]\).*One-hot encode the column in the Pipeline instead",
    ),
    (
        "gb-custom-init",
        lambda: GradientBoostingRegressor(n_estimators=3, init=LinearRegression()).fit(
            features(50, 0), np.arange(50.0)
        ),
        r"custom init estimator \(LinearRegression\).*init=None",
    ),
    (
        "hist-poisson",
        lambda: HistGradientBoostingRegressor(max_iter=3, loss="poisson").fit(
            features(50, 0), np.arange(50.0)
        ),
        r"loss='poisson', whose predictions are exp\(raw\), not the sum of its trees; supported losses "
        r"have an identity link",
    ),
    (
        "gb-unnamed-width",
        lambda: GradientBoostingRegressor(n_estimators=3).fit(np.zeros((20, 3)), np.arange(20.0)),
        r"fitted on 3 unnamed columns.*the schema's columns \['d'\] have no model column",
    ),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in UNSUPPORTED], ids=[c[0] for c in UNSUPPORTED])
def test_unsupported_tree_models_name_the_fix(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        as_model(make(), SCHEMA)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_unfitted_tree_models_are_refused(family: str) -> None:
    for make in FAMILIES[family]:
        with pytest.raises(ModelError, match=r"is not fitted; call \.fit\(X, y\) first"):
            as_model(make(0), SCHEMA)


def test_an_estimator_fitted_on_other_columns_than_its_preprocessing_says_which() -> None:
    train = mixed(100, 0)
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["income", "years"]), ("cat", OneHotEncoder(), ["job"])]
    )
    pipe = Pipeline([("pre", pre), ("model", RandomForestClassifier(2))]).fit(train, train.phone)
    pipe.steps[-1] = ("model", RandomForestClassifier(2).fit(np.zeros((10, 4)), np.arange(10) % 2))
    with pytest.raises(
        ModelError,
        match=r"RandomForestClassifier expects 4 inputs but its preprocessing gives 6: the preprocessing's "
        r"columns \['job=none', 'job=owner'\] \(in its output order\) have no estimator input",
    ):
        as_model(pipe, MIXED)


def _saved_forest(tmp_path: Path) -> Path:
    est, _ = fitted("forest", "binary", 0)
    return save_model(as_model(est, SCHEMA), tmp_path / "m")


def _edit_json(folder: Path, **keys: object) -> None:
    meta = json.loads((folder / "model.json").read_text())
    meta["layers"][1].update(keys)
    (folder / "model.json").write_text(json.dumps(meta))


def _edit_tensor(folder: Path, name: str, position: int, value: int) -> None:
    state = load_file(str(folder / "model.safetensors"))
    state[name][position] = value
    save_file(state, str(folder / "model.safetensors"))


CORRUPT: list[tuple[str, Callable[[Path], None], str]] = [
    (
        "wrong-depth",
        lambda f: _edit_json(f, depth=json.loads((f / "model.json").read_text())["layers"][1]["depth"] + 1),
        "its 'depth' is not the depth of its trees",
    ),
    ("negative-depth", lambda f: _edit_json(f, depth=-1), "key 'depth'"),
    ("child-points-up", lambda f: _edit_tensor(f, "1.left", 1, 0), "node 1 has children 0 and"),
    ("child-outside", lambda f: _edit_tensor(f, "1.right", 0, 10**6), "a child lies below its node"),
    (
        "feature-out-of-range",
        lambda f: _edit_tensor(f, "1.feature", 0, 9),
        r"reads a column outside \[0, 4\)",
    ),
    ("missing-flag", lambda f: _edit_tensor(f, "1.missing_left", 0, 3), "missing_left"),
    (
        "nodes-count",
        lambda f: _edit_json(f, nodes=5),
        r"tensor '1\.feature' is I64 of shape \(\d+,\); the layers in model.json need I64 of shape \(5,\)",
    ),
]


@pytest.mark.parametrize(("corrupt", "message"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_corrupted_tree_model_files_are_model_errors(
    tmp_path: Path, corrupt: Callable[[Path], None], message: str
) -> None:
    folder = _saved_forest(tmp_path)
    load_model(folder)  # the clean folder loads
    corrupt(folder)
    with pytest.raises(ModelError, match=message):
        load_model(folder)
