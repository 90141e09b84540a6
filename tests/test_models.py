"""Models: every supported scikit-learn model / Pipeline converts exactly; files round-trip; bad models fail clearly."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from actionable import DataError, Feature, ModelError, Schema, Target, as_model, load_model, save_model

SCHEMA = Schema(
    (
        Feature("income", "real", (0, 200)),
        Feature("years", "integer", (0, 40)),
        Feature("job", "category", levels=("clerk", "manager", "owner", "none")),
        Feature("phone", "binary"),
    ),
    Target("y", favourable=1),
)
NUMERIC = ["income", "years"]


def raw(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.uniform(0, 200, n),
            "years": rng.integers(0, 41, n),
            "job": rng.choice(["clerk", "manager", "owner", "none"], n),
            "phone": rng.integers(0, 2, n),
        }
    )


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The schema's canonical columns as a named frame (for estimators without a ColumnTransformer)."""
    return pd.DataFrame(SCHEMA.encode(frame).numpy(), columns=list(SCHEMA.columns))


def labels(frame: pd.DataFrame, classes: int) -> np.ndarray:
    score = frame.income / 50 + frame.years / 10 + (frame.job == "owner") * 2 - frame.phone
    return np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))


PREPROCESSING: dict[str, Callable[[], Any] | None] = {
    "bare": None,
    "standard": lambda: StandardScaler(),
    "maxabs+robust": lambda: make_pipeline(MaxAbsScaler(), RobustScaler()),
    "ct-standard-onehot": lambda: ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), ["job", "phone"])]
    ),
    "ct-minmax-drop-passthrough": lambda: ColumnTransformer(
        [("num", MinMaxScaler(), ["income"]), ("cat", OneHotEncoder(drop="first"), ["job"])],
        remainder="passthrough",
    ),
    "ct-nested-pipeline": lambda: ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), RobustScaler()), NUMERIC),
            (
                "cat",
                make_pipeline(OneHotEncoder(handle_unknown="ignore", sparse_output=False), StandardScaler()),
                ["job"],
            ),
            ("bin", "passthrough", ["phone"]),
        ]
    ),
}
CLASSIFIERS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=300),
    **{
        f"mlp-{a}": (lambda a=a: MLPClassifier((6, 5), activation=a, max_iter=60, random_state=0))
        for a in ("identity", "logistic", "tanh", "relu")
    },
}
REGRESSORS: dict[str, Callable[[], Any]] = {
    "linear": LinearRegression,
    "ridge": Ridge,
    "lasso": lambda: Lasso(alpha=0.01),
    "elasticnet": lambda: ElasticNet(alpha=0.01),
    **{
        f"mlp-{a}": (
            lambda a=a: MLPRegressor(hidden_layer_sizes=(7,), activation=a, max_iter=60, random_state=0)
        )
        for a in ("identity", "logistic", "tanh", "relu")
    },
}


def fit(pre: str, estimator: Any, y: np.ndarray) -> tuple[Any, Callable[[pd.DataFrame], pd.DataFrame]]:
    train = raw(300, 0)
    make = PREPROCESSING[pre]
    view = (lambda f: f) if pre.startswith("ct") else canonical
    model = estimator if make is None else Pipeline([("pre", make()), ("model", estimator)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(view(train), y)
    return model, view


@pytest.mark.parametrize("pre", list(PREPROCESSING))
@pytest.mark.parametrize("name", list(CLASSIFIERS))
@pytest.mark.parametrize("classes", [2, 3])
def test_classifiers_convert_exactly(pre: str, name: str, classes: int) -> None:
    model, view = fit(pre, CLASSIFIERS[name](), labels(raw(300, 0), classes))
    converted = as_model(model, SCHEMA)
    test = raw(200, 1)
    assert converted.classes == tuple(model.classes_)
    assert np.abs(converted.predict_proba(test) - model.predict_proba(view(test))).max() < 1e-6
    assert (converted.predict(test) == model.predict(view(test))).all()


@pytest.mark.parametrize("pre", list(PREPROCESSING))
@pytest.mark.parametrize("name", list(REGRESSORS))
def test_regressors_convert_exactly(pre: str, name: str) -> None:
    train = raw(300, 0)
    model, view = fit(pre, REGRESSORS[name](), (train.income / 20 + train.years / 5).to_numpy())
    converted = as_model(model, SCHEMA)
    test = raw(200, 1)
    assert converted.task == "regression" and converted.outputs == ("y",)
    assert np.abs(converted.predict(test) - model.predict(view(test))).max() < 1e-6


def test_gradients_flow_through_the_converted_scaler() -> None:
    model, _ = fit("ct-standard-onehot", LogisticRegression(), labels(raw(300, 0), 2))
    converted = as_model(model, SCHEMA)
    x = SCHEMA.encode(raw(3, 2)).requires_grad_(True)
    converted(x)[:, 1].sum().backward()
    coef = model.named_steps["model"].coef_[0]
    scale = model.named_steps["pre"].named_transformers_["num"].scale_
    assert x.grad is not None
    assert torch.allclose(x.grad[:, 0], torch.tensor(coef[0] / scale[0], dtype=torch.float64))


@pytest.mark.parametrize("pre", ["bare", "ct-nested-pipeline"])
def test_converted_pipeline_saves_and_reloads_identically(pre: str, tmp_path: Path) -> None:
    model, _ = fit(pre, MLPClassifier((5,), max_iter=50, random_state=0), labels(raw(300, 0), 3))
    converted = as_model(model, SCHEMA)
    save_model(converted, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    again = load_model(tmp_path / "m")
    test = raw(50, 3)
    assert np.array_equal(again.predict_proba(test), converted.predict_proba(test))
    assert again.schema == SCHEMA and again.classes == converted.classes


def test_torch_module_wraps_and_exports(tmp_path: Path) -> None:
    class Custom(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.linspace(-1, 1, SCHEMA.width, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * self.w).sum(-1, keepdim=True).tanh()

    model = as_model(Custom(), SCHEMA, classes=("no", "yes"))
    test = raw(7, 4)
    p = model.predict_proba(test)
    assert p.shape == (7, 2) and np.allclose(p.sum(1), 1)
    save_model(model, tmp_path / "c")
    assert (tmp_path / "c" / "model.pt2").is_file()
    # a .pt2 program can run code when loaded: refused by default, loaded only with the loud opt-in
    with pytest.raises(ModelError, match=r"can run code.*unsafe_allow_program=True"):
        load_model(tmp_path / "c")
    assert np.allclose(load_model(tmp_path / "c", unsafe_allow_program=True).predict_proba(test), p)


def test_torch_module_classes_default_to_the_schema() -> None:
    schema = Schema(SCHEMA.features, Target("y", favourable="b", classes=("a", "b", "c")))
    model = as_model(torch.nn.Linear(schema.width, 3).double(), schema)
    assert model.classes == ("a", "b", "c")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (RandomForestClassifier(n_estimators=2), "not fitted"),
        (object(), "cannot use a object. Supported: a torch nn.Module"),
        (torch.nn.Linear(SCHEMA.width, 5).double(), "returns 5 columns but has 2 classes"),
        (
            torch.nn.Linear(3, 2).double(),
            r"reads 3 input columns, the schema.s canonical tensor has 7.*encoding=",
        ),
    ],
)
def test_unsupported_models_raise_model_error(obj: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        as_model(obj, SCHEMA, classes=(0, 1))


def test_unsupported_estimator_names_what_is_supported() -> None:
    neighbours = KNeighborsClassifier(3).fit(canonical(raw(30, 0)), labels(raw(30, 0), 2))
    with pytest.raises(
        ModelError,
        match=r"KNeighborsClassifier is not supported\. Supported: .*LogisticRegression.*"
        r"RandomForestClassifier.*HistGradientBoostingRegressor",
    ):
        as_model(neighbours, SCHEMA)


def test_unsupported_transformer_and_wrong_encodings() -> None:
    y = labels(raw(300, 0), 2)
    poly = Pipeline([("p", PolynomialFeatures()), ("m", LogisticRegression())]).fit(canonical(raw(300, 0)), y)
    with pytest.raises(ModelError, match="PolynomialFeatures is not supported"):
        as_model(poly, SCHEMA)
    onehot_int = Pipeline(
        [("ct", ColumnTransformer([("o", OneHotEncoder(), ["years"])])), ("m", LogisticRegression())]
    ).fit(raw(300, 0), y)
    with pytest.raises(
        ModelError, match="one-hot encodes integer feature 'years'; declare it as kind = 'category'"
    ):
        as_model(onehot_int, SCHEMA)
    extra = raw(300, 0).assign(other=1.0)
    undeclared = Pipeline(
        [
            ("ct", ColumnTransformer([("s", StandardScaler(), ["income", "other"])])),
            ("m", LogisticRegression()),
        ]
    ).fit(extra, y)
    with pytest.raises(ModelError, match="reads column 'other', which the schema does not declare"):
        as_model(undeclared, SCHEMA)
    unnamed = LogisticRegression().fit(np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(ModelError, match="fitted on 3 unnamed columns"):
        as_model(unnamed, SCHEMA)


def test_model_input_width_is_checked() -> None:
    model = as_model(torch.nn.Linear(SCHEMA.width, 2).double(), SCHEMA, classes=(0, 1))
    with pytest.raises(DataError, match="3 columns, the schema's canonical encoding has 7"):
        model(torch.zeros(1, 3))


def test_tampered_model_files_raise_model_error(tmp_path: Path) -> None:
    model = as_model(LogisticRegression().fit(canonical(raw(40, 0)), labels(raw(40, 0), 2)), SCHEMA)
    folder = save_model(model, tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    meta["layers"][1]["type"] = "Exec"
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="layer 1 has type 'Exec'; supported layer types are"):
        load_model(folder)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(folder)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_loading_on_another_schema_is_refused(tmp_path: Path) -> None:
    model = as_model(LogisticRegression().fit(canonical(raw(40, 0)), labels(raw(40, 0), 2)), SCHEMA)
    save_model(model, tmp_path / "m")
    other = SCHEMA.with_features(job={"levels": ("clerk", "manager", "owner", "retired")})
    with pytest.raises(ModelError, match="another encoding"):
        load_model(tmp_path / "m", schema=other)
    assert load_model(tmp_path / "m", schema=SCHEMA).schema == SCHEMA
    # bounds, mutability and descriptions are not part of the encoding: the model still fits
    edited = SCHEMA.with_features(income={"bounds": (0, 500), "mutability": "direct", "description": "x"})
    assert load_model(tmp_path / "m", schema=edited).schema == edited
