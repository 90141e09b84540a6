"""The exact conversion of a fitted scikit-learn estimator or Pipeline into a network of closed-set layers.

Preprocessing (a ColumnTransformer of scalers, one-hot encoders, imputers, passthrough / drop) folds into
one ``ColumnMap`` from the schema's canonical columns; the estimator (linear models, logistic regression,
MLPs) becomes ``Linear`` layers and activations. The result computes what the estimator computes, to
float64 rounding; anything else is a ``ModelError`` naming the step and what is supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from actionable.errors import ModelError
from actionable.models import layers as L
from actionable.models.tree_boosters import convert_booster
from actionable.models.tree_fold import Ops, fold
from actionable.models.tree_sklearn import TREES, convert_tree
from actionable.models.trees import TreeEnsemble
from actionable.schema import DTYPE, Label, Schema

__all__ = ["SUPPORTED", "convert"]

SUPPORTED = (
    "a torch nn.Module mapping the schema's canonical tensor to logits (n x k); or a fitted scikit-learn "
    "LinearRegression, Ridge, Lasso, ElasticNet, LogisticRegression, MLPClassifier, MLPRegressor, "
    f"{TREES}, alone or at the end of a Pipeline whose other steps are a ColumnTransformer of StandardScaler, MinMaxScaler, "
    "MaxAbsScaler, RobustScaler, OneHotEncoder, SimpleImputer, 'passthrough' or 'drop' (or those scalers alone)"
)


@dataclass
class _Columns:
    """An affine map from canonical columns: out[:, j] = x[:, index[j]] * scale[j] + shift[j]; ``ops[j]``
    is how scikit-learn computes column j, operation by operation (what trees need to the last ulp)."""

    index: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    names: list[str]
    ops: list[Ops]

    @classmethod
    def pick(cls, index: np.ndarray, names: list[str]) -> _Columns:
        """Canonical columns as they are."""
        n = len(index)
        return cls(np.asarray(index, np.int64), np.ones(n), np.zeros(n), list(names), [()] * n)

    @classmethod
    def concat(cls, parts: Sequence[_Columns]) -> _Columns:
        if not parts:
            return cls.pick(np.zeros(0, np.int64), [])
        return cls(
            np.concatenate([p.index for p in parts]),
            np.concatenate([p.scale for p in parts]),
            np.concatenate([p.shift for p in parts]),
            [n for p in parts for n in p.names],
            [o for p in parts for o in p.ops],
        )

    def affine(self, a: np.ndarray, b: np.ndarray, steps: Sequence[tuple[str, np.ndarray]]) -> _Columns:
        """Follow this map with y = x * a + b per column, which scikit-learn computes as ``steps``
        (operation, per-column values) in order."""
        n = len(self.names)
        a = np.broadcast_to(np.asarray(a, np.float64), self.scale.shape)
        b = np.broadcast_to(np.asarray(b, np.float64), self.shift.shape)
        values = [(op, np.broadcast_to(np.asarray(v, np.float64), (n,))) for op, v in steps]
        ops = [self.ops[j] + tuple((op, float(v[j])) for op, v in values) for j in range(n)]
        return _Columns(self.index, self.scale * a, self.shift * a + b, self.names, ops)

    def layer(self) -> L.ColumnMap:
        return L.ColumnMap(
            torch.as_tensor(self.index),
            torch.as_tensor(self.scale, dtype=DTYPE),
            torch.as_tensor(self.shift, dtype=DTYPE),
        )


def convert(obj: Any, schema: Schema) -> tuple[nn.Sequential, dict[str, Any]]:
    _check_fitted(obj)
    steps = _flatten(obj)
    estimator, preprocessors = steps[-1], steps[:-1]
    from sklearn.compose import ColumnTransformer

    first = preprocessors[0] if preprocessors else estimator
    if isinstance(first, ColumnTransformer):
        columns = _column_transformer(first, schema)
        preprocessors = preprocessors[1:]
    else:
        columns = _input_columns(first, schema)
    for i, step in enumerate(preprocessors):
        if isinstance(step, ColumnTransformer):
            raise ModelError("as_model: a ColumnTransformer must be the first step of the Pipeline.")
        columns = _transform(step, columns, schema, where=f"Pipeline step {i}")
    _check_inputs(estimator, columns)
    head, info = _estimator(estimator, len(columns.names))
    if head and isinstance(head[0], TreeEnsemble) and any(columns.ops):
        head[0] = fold(head[0], columns.ops)  # splits read the canonical columns, rounding as sklearn does
        columns = _Columns.pick(columns.index, columns.names)
    return nn.Sequential(columns.layer(), *head).to(DTYPE), info


def _check_inputs(est: Any, columns: _Columns) -> None:
    """The estimator reads as many columns as its preprocessing gives; else say which columns differ."""
    n, width = getattr(est, "n_features_in_", None), len(columns.names)
    if n is None or n == width:
        return
    differ = (
        f"the preprocessing's columns {columns.names[n:][:8]} (in its output order) have no estimator input"
        if n < width
        else f"the estimator's inputs {width}..{n - 1} (0-based) have no preprocessing column"
    )
    raise ModelError(
        f"as_model: the {type(est).__name__} expects {n} inputs but its preprocessing gives {width}: "
        f"{differ}. Fit the Pipeline as a whole (Pipeline([..., ('model', estimator)]).fit(X, y))."
    )


def _flatten(obj: Any) -> list[Any]:
    """The steps of a (possibly nested) Pipeline, without 'passthrough' / None steps."""
    from sklearn.pipeline import Pipeline

    if isinstance(obj, Pipeline):
        return [step for _, inner in obj.steps for step in _flatten(inner)]
    return [] if obj is None or (isinstance(obj, str) and obj == "passthrough") else [obj]


def _check_fitted(obj: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError:
        raise ModelError(
            f"as_model: this {type(obj).__name__} is not fitted; call .fit(X, y) first."
        ) from None
    except TypeError:
        pass


def _input_columns(step: Any, schema: Schema) -> _Columns:
    """The canonical columns feeding the first step: by its feature names, else the canonical order."""
    names = getattr(step, "feature_names_in_", None)
    canonical = list(schema.columns)
    if names is None:
        n = getattr(step, "n_features_in_", None)
        if n is not None and n != schema.width:
            differ = (
                f"the schema's columns {canonical[n:][:8]} have no model column"
                if n < schema.width
                else f"the model's columns {schema.width}..{n - 1} (0-based) have no schema column"
            )
            raise ModelError(
                f"as_model: the model was fitted on {n} unnamed columns, the schema's canonical encoding has "
                f"{schema.width} ({', '.join(canonical[:5])}, ...): {differ}, read in canonical order. Fit "
                "it on a DataFrame with those column names, or wrap it in a Pipeline with a "
                "ColumnTransformer over the raw features."
            )
        names = canonical
    position = {c: i for i, c in enumerate(canonical)}
    unknown = [str(n) for n in names if str(n) not in position]
    if unknown:
        raise ModelError(
            f"as_model: the model's input columns {unknown[:5]} are not in the schema's canonical columns "
            f"({', '.join(canonical[:5])}, ...). Use raw features with a ColumnTransformer, or name one-hot "
            "columns 'feature=level'."
        )
    index = np.array([position[str(n)] for n in names], dtype=np.int64)
    return _Columns.pick(index, [str(n) for n in names])


def _column_transformer(ct: Any, schema: Schema) -> _Columns:
    names_in = list(getattr(ct, "feature_names_in_", []))
    if not names_in:
        raise ModelError(
            "as_model: fit the ColumnTransformer on a pandas DataFrame whose columns are the schema's "
            "feature names, so its columns can be matched to the schema."
        )
    indices = getattr(ct, "_transformer_to_input_indices", None)
    parts = []
    for name, transformer, cols in ct.transformers_:
        if indices is not None and name in indices:
            selected = [str(names_in[i]) for i in indices[name]]
        else:
            selected = [str(c) for c in (cols if isinstance(cols, list | tuple | np.ndarray) else [cols])]
        if not selected or (isinstance(transformer, str) and transformer == "drop"):
            continue
        for feature in selected:
            if feature not in schema:
                raise ModelError(
                    f"as_model: ColumnTransformer part {name!r} reads column {feature!r}, which the schema "
                    f"does not declare. Schema features: {list(schema.names)}."
                )
        parts.append(
            _transformer_columns(transformer, selected, schema, where=f"ColumnTransformer part {name!r}")
        )
    return _Columns.concat(parts)


def _transformer_columns(transformer: Any, features: list[str], schema: Schema, where: str) -> _Columns:
    """Columns produced by one ColumnTransformer part (possibly a Pipeline) from raw features."""
    from sklearn.preprocessing import OneHotEncoder

    steps = _flatten(transformer)
    if steps and isinstance(steps[0], OneHotEncoder):
        columns = _one_hot(steps[0], features, schema, where)
        steps = steps[1:]
    else:
        for feature in features:
            if schema[feature].kind == "category":
                raise ModelError(
                    f"as_model: {where} feeds category feature {feature!r} to a numeric transformer; "
                    "encode it with a OneHotEncoder first."
                )
        index = np.array([schema.slice(f).start for f in features], dtype=np.int64)
        columns = _Columns.pick(index, list(features))
    for step in steps:
        columns = _transform(step, columns, schema, where)
    return columns


def _one_hot(encoder: Any, features: list[str], schema: Schema, where: str) -> _Columns:
    if any(c is not None for c in getattr(encoder, "infrequent_categories_", []) or []):
        raise ModelError(f"as_model: {where}: OneHotEncoder with infrequent categories is not supported.")
    drop = getattr(encoder, "drop_idx_", None)
    parts = []
    for j, (feature_name, categories) in enumerate(zip(features, encoder.categories_, strict=True)):
        feature = schema[feature_name]
        block = schema.slice(feature_name)
        index, scale, shift, names = [], [], [], []
        for k, category in enumerate(categories):
            if drop is not None and drop[j] is not None and k == drop[j]:
                continue
            names.append(f"{feature_name}={category}")
            if feature.kind == "category":
                if str(category) in feature.levels:
                    index.append(block.start + feature.levels.index(str(category)))
                    scale.append(1.0)
                else:  # a category the schema does not know never occurs: a constant 0 column
                    index.append(block.start)
                    scale.append(0.0)
                shift.append(0.0)
            elif feature.kind == "binary" and float(category) in (0.0, 1.0):
                index.append(block.start)
                scale.append(1.0 if float(category) == 1.0 else -1.0)
                shift.append(0.0 if float(category) == 1.0 else 1.0)
            else:
                raise ModelError(
                    f"as_model: {where} one-hot encodes {feature.kind} feature {feature_name!r}; declare it "
                    "as kind = 'category' with its levels in the schema, or scale it instead."
                )
        ops: list[Ops] = [(("mul", a), ("add", b)) for a, b in zip(scale, shift, strict=True)]
        parts.append(_Columns(np.array(index, np.int64), np.array(scale), np.array(shift), names, ops))
    return _Columns.concat(parts)


def _transform(step: Any, columns: _Columns, schema: Schema, where: str) -> _Columns:
    """Compose a fitted per-column affine scaler onto ``columns``."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (
        FunctionTransformer,
        MaxAbsScaler,
        MinMaxScaler,
        RobustScaler,
        StandardScaler,
    )

    n = len(columns.names)
    if isinstance(step, FunctionTransformer) and step.func is None:
        return columns  # what a fitted ColumnTransformer makes of 'passthrough'
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.mean_ is not None else np.zeros(n)
        scale = step.scale_ if step.scale_ is not None else np.ones(n)
        return columns.affine(1.0 / scale, -mean / scale, [("sub", mean), ("div", scale)])
    if isinstance(step, MinMaxScaler | MaxAbsScaler) and getattr(step, "clip", False):
        name = type(step).__name__
        raise ModelError(f"as_model: {where}: {name}(clip=True) is not supported; use clip=False.")
    if isinstance(step, MinMaxScaler):
        return columns.affine(step.scale_, step.min_, [("mul", step.scale_), ("add", step.min_)])
    if isinstance(step, MaxAbsScaler):
        return columns.affine(1.0 / step.scale_, np.zeros(n), [("div", step.scale_)])
    if isinstance(step, RobustScaler):
        center = step.center_ if step.center_ is not None else np.zeros(n)
        scale = step.scale_ if step.scale_ is not None else np.ones(n)
        return columns.affine(1.0 / scale, -center / scale, [("sub", center), ("div", scale)])
    if isinstance(step, SimpleImputer):
        if len(step.statistics_) != n or getattr(step, "add_indicator", False):
            raise ModelError(f"as_model: {where}: SimpleImputer must keep every column and add no indicator.")
        return columns  # inputs are validated to have no missing values, so imputation is the identity
    raise ModelError(f"as_model: {where}: {type(step).__name__} is not supported. Supported: {SUPPORTED}.")


def _estimator(est: Any, width: int) -> tuple[list[nn.Module], dict[str, Any]]:
    """The fitted estimator at the end of the Pipeline as layers, with its task, classes and output count."""
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    for tree_model in (convert_tree, convert_booster):
        converted = tree_model(est, width)
        if converted is not None:
            layers, info = converted
            return layers, info | ({"classes": _labels(info["classes"])} if "classes" in info else {})
    n_in = getattr(est, "n_features_in_", width)
    if n_in != width:
        raise ModelError(
            f"as_model: the estimator expects {n_in} inputs but its preprocessing gives {width}."
        )
    if isinstance(est, LinearRegression | Ridge | Lasso | ElasticNet):
        coef = np.atleast_2d(est.coef_)
        return [_linear(coef, np.atleast_1d(est.intercept_))], {
            "task": "regression",
            "n_outputs": coef.shape[0],
        }
    if isinstance(est, LogisticRegression):
        coef, intercept = np.atleast_2d(est.coef_), np.atleast_1d(est.intercept_)
        head: list[nn.Module] = [_linear(coef, intercept)]
        if len(est.classes_) == 2:
            head.append(L.BinaryLogits())
        return head, {
            "task": "classification",
            "classes": _labels(est.classes_),
            "n_outputs": len(est.classes_),
        }
    if isinstance(est, MLPClassifier | MLPRegressor):
        return _mlp(est, regressor=isinstance(est, MLPRegressor))
    raise ModelError(f"as_model: {type(est).__name__} is not supported. Supported: {SUPPORTED}.")


def _mlp(est: Any, *, regressor: bool) -> tuple[list[nn.Module], dict[str, Any]]:
    """A fitted MLPClassifier / MLPRegressor as Linear layers and its activations (logits out)."""
    head: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        head.append(_linear(w.T, b))
        if i < len(est.coefs_) - 1:
            head.append(L.ACTIVATIONS[est.activation]())
    if regressor:
        if est.out_activation_ != "identity":
            raise ModelError(
                f"as_model: MLPRegressor with output activation {est.out_activation_!r} "
                "(loss='poisson') is not supported; use loss='squared_error'."
            )
        return head, {"task": "regression", "n_outputs": est.coefs_[-1].shape[1]}
    if est.out_activation_ == "logistic":
        if len(est.classes_) != 2:
            raise ModelError("as_model: multi-label MLPClassifier is not supported; use one label column.")
        head.append(L.BinaryLogits())
    return head, {
        "task": "classification",
        "classes": _labels(est.classes_),
        "n_outputs": len(est.classes_),
    }


def _linear(weight: np.ndarray, bias: np.ndarray) -> L.Linear:
    layer = L.Linear(weight.shape[1], weight.shape[0]).to(DTYPE)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.asarray(weight, np.float64)))
        layer.bias.copy_(torch.as_tensor(np.asarray(bias, np.float64)))
    return layer


def _labels(classes: np.ndarray) -> tuple[Label, ...]:
    return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
