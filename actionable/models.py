"""Models: one torch network from the canonical tensor to logits, whatever the user brought.

``as_model`` wraps a torch module, or converts a fitted scikit-learn estimator or Pipeline *exactly* into
a network of closed-set layers (``layers.py``); ``save_model`` / ``load_model`` write and read it as
safetensors + JSON, checked as data before anything is built. Never pickle: a ``torch.export`` program
(what ``save_model`` writes for other modules) loads only with the explicit ``unsafe_allow_program=True``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from actionable import layers as L
from actionable.errors import ConfigError, DataError, ModelError, SpecError
from actionable.schema import DTYPE, Label, Schema

Task = Literal["classification", "regression"]
FORMAT = "actionable.model/1"
SUPPORTED = (
    "a torch nn.Module mapping the schema's canonical tensor to logits (n x k); or a fitted scikit-learn "
    "LinearRegression, Ridge, Lasso, ElasticNet, LogisticRegression, MLPClassifier or MLPRegressor, alone or "
    "at the end of a Pipeline whose other steps are a ColumnTransformer of StandardScaler, MinMaxScaler, "
    "MaxAbsScaler, RobustScaler, OneHotEncoder, SimpleImputer, 'passthrough' or 'drop' (or those scalers alone)"
)


class TorchModel(nn.Module):
    """A differentiable model on the schema's canonical tensor; answers ``predict`` like a fitted estimator.

    Classification: ``forward`` returns logits (n x len(classes)); softmax gives ``predict_proba``.
    Regression: ``forward`` returns the predicted values (n x len(outputs)).
    """

    def __init__(
        self,
        network: nn.Module,
        schema: Schema,
        *,
        task: Task,
        classes: Sequence[Label] = (),
        outputs: Sequence[str] = (),
        provenance: Mapping[str, Any] | None = None,
        dtype: torch.dtype = DTYPE,
    ) -> None:
        super().__init__()
        if task not in ("classification", "regression"):
            raise ConfigError(f"as_model: task = {task!r}; use 'classification' or 'regression'.")
        self.network = network
        self.schema = schema
        self.task: Task = task
        self.classes: tuple[Label, ...] = tuple(classes)
        self.outputs: tuple[str, ...] = tuple(outputs) if task == "regression" else ()
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.dtype = dtype
        if task == "classification" and len(self.classes) < 2:
            raise ModelError("as_model: a classifier needs at least two classes; pass classes=[...].")
        self._check_finite()
        self._check_output()

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else len(self.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (classification) or predicted values (regression) for a canonical tensor."""
        if x.shape[-1] != self.schema.width:
            raise DataError(
                f"model input: {x.shape[-1]} columns, the schema's canonical encoding has {self.schema.width}."
            )
        return self.network(x.to(self.dtype))

    def encode(self, X: pd.DataFrame | torch.Tensor | np.ndarray) -> torch.Tensor:
        """A raw frame (validated by the schema) or an already canonical array -> canonical tensor."""
        if isinstance(X, pd.DataFrame | pd.Series | Mapping):
            return self.schema.encode(X)
        fix = (
            f"An array is read as canonical rows: the schema's canonical encoding has {self.schema.width} "
            f"columns ({', '.join(self.schema.columns[:4])}, ...). Pass raw rows as a pandas DataFrame with the "
            f"columns {list(self.schema.names)[:6]}{'...' if len(self.schema) > 6 else ''}."
        )
        if isinstance(X, np.ndarray) and not (
            np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.bool_)
        ):
            raise DataError(f"model input: an array of {X.dtype} values (text?). {fix}")
        if not isinstance(X, np.ndarray | torch.Tensor):
            raise DataError(f"model input: got a {type(X).__name__}. {fix}")
        x = torch.as_tensor(np.asarray(X, dtype=np.float64) if isinstance(X, np.ndarray) else X)
        x = x[None, :] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[-1] != self.schema.width:
            raise DataError(f"model input: an array of shape {tuple(x.shape)}. {fix}")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise DataError(
                f"model input: the array holds NaN or infinite values; fill or drop those rows. {fix}"
            )
        return x.to(self.dtype)

    @torch.no_grad()
    def predict_proba(self, X: pd.DataFrame | torch.Tensor | np.ndarray) -> np.ndarray:
        """Class probabilities, columns in ``classes`` order, like scikit-learn's ``predict_proba``."""
        if self.task != "classification":
            raise ModelError("predict_proba: this is a regression model; use predict().")
        return torch.softmax(self(self.encode(X)), dim=-1).cpu().numpy()

    @torch.no_grad()
    def predict(self, X: pd.DataFrame | torch.Tensor | np.ndarray) -> np.ndarray:
        """Class labels (classification) or values (regression; 1-D when there is one output)."""
        out = self(self.encode(X))
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[out.argmax(dim=-1).cpu().numpy()]
        values = out.cpu().numpy()
        return values[:, 0] if values.shape[1] == 1 else values

    def _check_finite(self) -> None:
        """Refuse NaN or infinite weights: such a model answers every row with NaN, which reads as 'no'."""
        named = [*self.network.named_parameters(), *self.network.named_buffers()]
        for name, tensor in named:
            if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
                raise ModelError(
                    f"as_model: the model's tensor {name!r} holds NaN or infinite values; a model's numbers "
                    "must all be finite (check its training, or the fitted estimator's coefficients)."
                )

    def _check_output(self) -> None:
        lo, hi = self.schema.bounds_tensor()
        probe = torch.where(torch.isfinite(lo) & torch.isfinite(hi), (lo + hi) / 2, torch.zeros_like(lo))
        try:
            with torch.no_grad():
                out = self(probe[None, :].repeat(2, 1))
        except Exception as exc:
            raise ModelError(
                f"as_model: the model failed on a batch of 2 canonical rows of width {self.schema.width} "
                f"({type(exc).__name__}: {exc}). It must map (n, {self.schema.width}) to (n, k)."
            ) from None
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"as_model: the model returned {shape} for 2 rows; it must return (n, k).")
        if not bool(torch.isfinite(out).all()):
            raise ModelError(
                "as_model: the model returns NaN or infinite values at the middle of the schema's bounds "
                "(a division by zero, or weights too large for its dtype?); check its weights or scaler."
            )
        if out.shape[1] != self.n_outputs:
            what = (
                f"classes {list(self.classes)}"
                if self.task == "classification"
                else f"outputs {list(self.outputs)}"
            )
            raise ModelError(
                f"as_model: the model returns {out.shape[1]} columns but has {self.n_outputs} {what}; "
                "return one logit per class (or pass the matching classes=/outputs=)."
            )


# --------------------------------------------------------------------------------------- as_model
def as_model(
    obj: Any,
    schema: Schema,
    *,
    task: Task | None = None,
    classes: Sequence[Label] | None = None,
    outputs: Sequence[str] | None = None,
) -> TorchModel:
    """Wrap a torch module or convert a fitted scikit-learn model into a ``TorchModel`` on ``schema``.

    A torch module's classes default to the schema target's ``classes``; a module with one output column
    and two classes is read as the logit of the second class.
    """
    if not isinstance(schema, Schema):
        raise ConfigError(f"as_model: schema must be an actionable Schema; got {type(schema).__name__}.")
    if isinstance(obj, TorchModel):
        if obj.schema == schema:
            return obj
        if obj.schema.hash == schema.hash:  # same encoding: bounds, mutability, costs edited; same network
            return TorchModel(
                obj.network,
                schema,
                task=obj.task,
                classes=obj.classes,
                outputs=obj.outputs,
                provenance=obj.provenance,
                dtype=obj.dtype,
            )
        raise ModelError(
            f"as_model: this model was built on a schema with another encoding (its features: "
            f"{list(obj.schema.names)[:6]}...; names, order, kinds and levels must match). Use the schema "
            "it was built on (model.schema), or rebuild / retrain the model on this one."
        )
    if isinstance(obj, nn.Module):
        return _wrap_module(obj, schema, task, classes, outputs)
    if hasattr(obj, "fit") and hasattr(obj, "get_params"):
        network, info = _convert_sklearn(obj, schema)
        return TorchModel(
            network,
            schema,
            task=info["task"],
            classes=info.get("classes", ()),
            outputs=outputs or _output_names(schema, info["n_outputs"]),
            provenance={"converted_from": type(obj).__name__},
        )
    raise ModelError(f"as_model: cannot use a {type(obj).__name__}. Supported: {SUPPORTED}.")


def _wrap_module(
    module: nn.Module,
    schema: Schema,
    task: Task | None,
    classes: Sequence[Label] | None,
    outputs: Sequence[str] | None,
) -> TorchModel:
    target = schema.target
    if task is None:
        task = "regression" if (target is not None and target.is_regression) or outputs else "classification"
    try:
        dtype = next(module.parameters()).dtype
    except StopIteration:
        dtype = DTYPE
    try:
        with torch.no_grad():
            k: int | None = int(module(torch.zeros(2, schema.width, dtype=dtype)).shape[-1])
    except Exception:
        k = None  # TorchModel's own probe reports the failure
    provenance = {"wrapped": type(module).__name__}
    if task == "regression":
        names = tuple(outputs) if outputs else _output_names(schema, k or 1)
        return TorchModel(module, schema, task=task, outputs=names, dtype=dtype, provenance=provenance)
    last = _last_layer(module)
    if isinstance(last, nn.Sigmoid | nn.Softmax):
        raise ModelError(
            f"as_model: this classifier ends in {type(last).__name__}, so it returns probabilities; actionable "
            "needs logits. Pass the network without its final layer (e.g. module[:-1] for an nn.Sequential): "
            "the probabilities are recovered exactly with softmax."
        )
    labels = tuple(classes) if classes is not None else (target.classes if target is not None else ())
    if not labels:
        raise ModelError(
            "as_model: the classes of this torch module are unknown; pass classes=[...] in the order of "
            "its output columns, or list them in the schema's [target] classes."
        )
    network = nn.Sequential(module, L.BinaryLogits()) if k == 1 and len(labels) == 2 else module
    return TorchModel(network, schema, task=task, classes=labels, dtype=dtype, provenance=provenance)


def _last_layer(module: nn.Module) -> nn.Module:
    """The final layer of nested ``nn.Sequential`` containers (the module itself otherwise)."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[-1]
    return module


def _output_names(schema: Schema, k: int) -> tuple[str, ...]:
    name = schema.target.name if schema.target is not None else "output"
    return (name,) if k == 1 else tuple(f"{name}[{i}]" for i in range(k))


# ------------------------------------------------------------------------- scikit-learn conversion
@dataclass
class _Columns:
    """An affine map from canonical columns: out[:, j] = x[:, index[j]] * scale[j] + shift[j]."""

    index: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    names: list[str]

    @classmethod
    def concat(cls, parts: Sequence[_Columns]) -> _Columns:
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), [])
        return cls(
            np.concatenate([p.index for p in parts]),
            np.concatenate([p.scale for p in parts]),
            np.concatenate([p.shift for p in parts]),
            [n for p in parts for n in p.names],
        )

    def affine(self, a: np.ndarray, b: np.ndarray) -> _Columns:
        """Follow this map with y = x * a + b per column."""
        a = np.broadcast_to(np.asarray(a, np.float64), self.scale.shape)
        b = np.broadcast_to(np.asarray(b, np.float64), self.shift.shape)
        return _Columns(self.index, self.scale * a, self.shift * a + b, self.names)

    def layer(self) -> L.ColumnMap:
        return L.ColumnMap(
            torch.as_tensor(self.index),
            torch.as_tensor(self.scale, dtype=DTYPE),
            torch.as_tensor(self.shift, dtype=DTYPE),
        )


def _convert_sklearn(obj: Any, schema: Schema) -> tuple[nn.Sequential, dict[str, Any]]:
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
    head, info = _estimator(estimator, len(columns.names))
    return nn.Sequential(columns.layer(), *head).to(DTYPE), info


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
            raise ModelError(
                f"as_model: the model was fitted on {n} unnamed columns, the schema's canonical encoding has "
                f"{schema.width} ({', '.join(canonical[:5])}, ...). Fit it on a DataFrame with those column "
                "names, or wrap it in a Pipeline with a ColumnTransformer over the raw features."
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
    return _Columns(index, np.ones(len(index)), np.zeros(len(index)), [str(n) for n in names])


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
        columns = _Columns(index, np.ones(len(index)), np.zeros(len(index)), list(features))
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
        parts.append(_Columns(np.array(index, np.int64), np.array(scale), np.array(shift), names))
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
        return columns.affine(1.0 / scale, -mean / scale)
    if isinstance(step, MinMaxScaler):
        if step.clip:
            raise ModelError(f"as_model: {where}: MinMaxScaler(clip=True) is not supported; use clip=False.")
        return columns.affine(step.scale_, step.min_)
    if isinstance(step, MaxAbsScaler):
        return columns.affine(1.0 / step.scale_, np.zeros(n))
    if isinstance(step, RobustScaler):
        center = step.center_ if step.center_ is not None else np.zeros(n)
        scale = step.scale_ if step.scale_ is not None else np.ones(n)
        return columns.affine(1.0 / scale, -center / scale)
    if isinstance(step, SimpleImputer):
        if len(step.statistics_) != n or getattr(step, "add_indicator", False):
            raise ModelError(f"as_model: {where}: SimpleImputer must keep every column and add no indicator.")
        return columns  # inputs are validated to have no missing values, so imputation is the identity
    raise ModelError(f"as_model: {where}: {type(step).__name__} is not supported. Supported: {SUPPORTED}.")


def _estimator(est: Any, width: int) -> tuple[list[nn.Module], dict[str, Any]]:
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor

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
        head = []
        for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
            head.append(_linear(w.T, b))
            if i < len(est.coefs_) - 1:
                head.append(L.ACTIVATIONS[est.activation]())
        if isinstance(est, MLPRegressor):
            if est.out_activation_ != "identity":
                raise ModelError(
                    f"as_model: MLPRegressor with output activation {est.out_activation_!r} "
                    "(loss='poisson') is not supported; use loss='squared_error'."
                )
            return head, {"task": "regression", "n_outputs": est.coefs_[-1].shape[1]}
        if est.out_activation_ == "logistic":
            if len(est.classes_) != 2:
                raise ModelError(
                    "as_model: multi-label MLPClassifier is not supported; use one label column."
                )
            head.append(L.BinaryLogits())
        return head, {
            "task": "classification",
            "classes": _labels(est.classes_),
            "n_outputs": len(est.classes_),
        }
    raise ModelError(f"as_model: {type(est).__name__} is not supported. Supported: {SUPPORTED}.")


def _linear(weight: np.ndarray, bias: np.ndarray) -> L.Linear:
    layer = L.Linear(weight.shape[1], weight.shape[0]).to(DTYPE)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.asarray(weight, np.float64)))
        layer.bias.copy_(torch.as_tensor(np.asarray(bias, np.float64)))
    return layer


def _labels(classes: np.ndarray) -> tuple[Label, ...]:
    return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)


# ------------------------------------------------------------------------------------ files
MAX_META_BYTES = 64 * 2**20  # a model.json this large is not a model file
DTYPES = {"float32": torch.float32, "float64": torch.float64}
_STORED = {torch.float32: "F32", torch.float64: "F64"}  # safetensors' names of the dtypes
# model.json, declared: key -> (the JSON type it holds, required). Values are checked in _check_meta.
META: dict[str, tuple[type, bool]] = {
    "format": (str, True),
    "task": (str, True),
    "schema": (str, True),
    "schema_hash": (str, False),
    "dtype": (str, False),
    "classes": (list, False),
    "outputs": (list, False),
    "provenance": (dict, False),
    "layers": (list, False),
    "program": (str, False),
}
_JSON: dict[type, str] = {str: "a string", list: "a list", dict: "a table"}
PROGRAM_REFUSED = (
    "it holds no 'layers'. Model files load only as data: the closed set of layers (model.json + "
    "model.safetensors). A torch.export program (.pt2) is not data: torch unpickles parts of it, so loading "
    "one can run code hidden in the file. Rebuild the network from actionable.layers (or convert it with "
    "as_model) and save it again, or keep the torch module in Python and wrap it with as_model(module, "
    "schema). Only for a file you made yourself, from Python: load_model(path, unsafe_allow_program=True)"
)


def save_model(model: TorchModel, path: str | Path) -> Path:
    """Write ``model.json`` + ``model.safetensors`` into ``path``: data only, so loading it runs no code.

    A plain ``nn.Sequential`` (nested or not) of ``nn.Linear``, ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``,
    ``nn.Identity`` and ``actionable.layers`` is written as data too. Any other network is written as a
    ``torch.export`` program (``model.pt2``)
    instead; such a file can run code when loaded, so ``load_model`` reads it only with
    ``unsafe_allow_program=True`` (from Python; never from the command line).
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "task": model.task,
        "classes": list(model.classes),
        "outputs": list(model.outputs),
        "dtype": str(model.dtype).removeprefix("torch."),
        "schema_hash": model.schema.hash,
        "schema": model.schema.to_toml(),
        "provenance": model.provenance,
    }
    data = L.as_closed(model.network)  # a plain nn.Sequential of Linear / ReLU / ... is data too
    layer_specs = L.specs(data) if data is not None else None
    if data is not None and layer_specs is not None:
        meta["layers"] = layer_specs
        state = {
            k: (v.to(model.dtype) if v.is_floating_point() else v).detach().contiguous()
            for k, v in data.state_dict().items()
        }
        save_file(state, str(folder / "model.safetensors"))
    else:
        example = torch.zeros(3, model.schema.width, dtype=model.dtype)
        try:
            batch = {0: torch.export.Dim.DYNAMIC}
            program = torch.export.export(model.network, (example,), dynamic_shapes=(batch,))
        except Exception as exc:
            raise ModelError(
                f"save_model: this torch module is not made of actionable's layers and torch.export failed "
                f"({type(exc).__name__}: {str(exc)[:200]}). Build it from actionable.layers or make it exportable."
            ) from None
        torch.export.save(program, str(folder / "model.pt2"))
        meta["program"] = "model.pt2"
    (folder / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_model(
    path: str | Path, schema: Schema | None = None, *, unsafe_allow_program: bool = False
) -> TorchModel:
    """Read a model folder written by ``save_model``; if ``schema`` is given it must match the recorded one.

    The folder is data, checked before anything is built: ``model.json`` key by key against the declared
    format (its schema is TOML text, never a path), ``model.safetensors`` tensor by tensor against the
    layers (names, dtypes, shapes; every number finite), and no file may lie outside the folder. Any
    problem is a ``ModelError`` naming the file, the key and the fix.

    ``unsafe_allow_program=True`` also loads a ``torch.export`` program (``model.pt2``). torch unpickles
    parts of such a file, so this RUNS CODE FROM THE FILE: pass it only for files you made yourself.
    """
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"load_model: path must be a folder path; got a {type(path).__name__}.")
    if schema is not None and not isinstance(schema, Schema):
        raise ConfigError(f"load_model: schema must be an actionable Schema; got {type(schema).__name__}.")
    root, meta_path = _locate(path)
    try:
        meta = _read_meta(meta_path)
        recorded = _embedded_schema(meta["schema"], meta_path)
        if schema is None:
            schema = recorded
        elif schema.hash != meta.get("schema_hash", recorded.hash):
            raise ModelError(
                f"load_model: {meta_path} was trained on a schema with another encoding (its features: "
                f"{list(recorded.names)[:6]}...; names, order, kinds and levels must match). Use the schema "
                "it records, or retrain on yours."
            )
        dtype = DTYPES[meta.get("dtype", "float64")]
        if "layers" in meta:
            network = _read_layers(root, meta_path, meta["layers"], schema.width, dtype)
        else:
            network = _read_program(root, meta_path, meta.get("program", "model.pt2"), unsafe_allow_program)
        try:
            return TorchModel(
                network,
                schema,
                task=meta["task"],
                classes=meta.get("classes", ()),
                outputs=meta.get("outputs", ()),
                provenance=meta.get("provenance", {}),
                dtype=dtype,
            )
        except ModelError as exc:
            raise ModelError(f"load_model: {meta_path}: {str(exc).removeprefix('as_model: ')}") from None
    except MemoryError:
        raise ModelError(
            f"load_model: {meta_path}: ran out of memory reading the model; it is larger than this machine "
            "can hold (or not a model file)."
        ) from None
    except RecursionError:
        raise ModelError(
            f"load_model: {meta_path}: nested too deeply to read; a model file is a flat table of layers."
        ) from None


def _locate(path: str | Path) -> tuple[Path, Path]:
    """The model folder (links resolved) and its ``model.json``, which must lie inside it."""
    given = Path(path)
    folder = given.parent if given.name == "model.json" else given
    if not (folder / "model.json").is_file():
        raise ModelError(
            f"load_model: {folder / 'model.json'} not found; give the folder written by save_model / train "
            "(or its model.json)."
        )
    try:
        root = folder.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"load_model: cannot read the folder {folder} ({exc}).") from None
    return root, _member(root, "model.json", root / "model.json", "the model file")


def _member(root: Path, name: str, meta_path: Path, what: str) -> Path:
    """``root / name`` for a bare file name whose target, links followed, is a file inside ``root``."""
    if (
        not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
        or Path(name).is_absolute()
        or Path(name).name != name
    ):
        raise ModelError(
            f"load_model: {meta_path}: {what} is {name[:200]!r}; it must be a bare file name inside the model "
            "folder (no folders, no '..', no absolute path). Put the file next to model.json and name it."
        )
    candidate = root / name
    try:
        target = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise ModelError(f"load_model: {candidate} not found next to {meta_path.name}.") from None
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"load_model: cannot read {candidate} ({exc}).") from None
    if not target.is_relative_to(root):
        raise ModelError(
            f"load_model: {candidate} is a link to {target}, outside the model folder {root}; a model "
            "folder may only hold its own files. Copy the file into the folder instead of linking it."
        )
    if not target.is_file():
        raise ModelError(f"load_model: {candidate} is not a file; {what} must be a regular file.")
    return target


def _read_meta(meta_path: Path) -> dict[str, Any]:
    """``model.json`` parsed (size bounded, no duplicate keys) and checked against ``META``."""
    too_big = (
        f"load_model: {meta_path} is larger than {MAX_META_BYTES // 2**20} MiB; a model file describes "
        "its layers in a few kilobytes (the weights are in model.safetensors)."
    )
    try:
        if meta_path.stat().st_size > MAX_META_BYTES:
            raise ModelError(too_big)
        with meta_path.open("rb") as handle:
            blob = handle.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"load_model: cannot read {meta_path} ({exc}).") from None
    if len(blob) > MAX_META_BYTES:
        raise ModelError(too_big)
    try:
        meta = json.loads(blob.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise ModelError(f"load_model: {meta_path} is not UTF-8 text ({exc}).") from None
    except ValueError as exc:  # JSONDecodeError, a repeated key, a number of over 4300 digits
        raise ModelError(f"load_model: {meta_path} is not valid JSON ({str(exc)[:200]}).") from None
    _check_meta(meta, meta_path)
    return dict(meta)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    table = dict(pairs)
    if len(table) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"key {twice[:80]!r} appears twice in one table")
    return table


def _check_meta(meta: Any, meta_path: Path) -> None:
    """``ModelError`` naming the first key of ``model.json`` that does not fit the declared format."""
    where = f"load_model: {meta_path}"
    fix = "Re-save the model with save_model (or train it again)."
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{where} is not an actionable model file (format {FORMAT!r}). {fix}")
    unknown = sorted(str(k)[:40] for k in meta if k not in META)
    if unknown:
        raise ModelError(f"{where}: unknown key(s) {unknown[:8]}; a model file holds {sorted(META)}. {fix}")
    for key, (kind, required) in META.items():
        if key not in meta:
            if required:
                raise ModelError(f"{where}: missing key {key!r}. {fix}")
        elif not isinstance(meta[key], kind):
            raise ModelError(f"{where}: key {key!r} must be {_JSON[kind]}; got {_short(meta[key])}. {fix}")
    if meta["task"] not in ("classification", "regression"):
        raise ModelError(
            f"{where}: key 'task' is {_short(meta['task'])}; use 'classification' or 'regression'."
        )
    if meta.get("dtype", "float64") not in DTYPES:
        raise ModelError(
            f"{where}: key 'dtype' is {_short(meta['dtype'])}; a model's numbers are {' or '.join(DTYPES)}."
        )
    classes, outputs = meta.get("classes", []), meta.get("outputs", [])
    for j, label in enumerate(classes):
        if not isinstance(label, str | int | float) or (isinstance(label, float) and not np.isfinite(label)):
            raise ModelError(
                f"{where}: classes[{j}] is {_short(label)}; a class label is a string, a number or a bool."
            )
    for j, name in enumerate(outputs):
        if not isinstance(name, str):
            raise ModelError(f"{where}: outputs[{j}] is {_short(name)}; an output name is a string.")
    for key, values in (("classes", classes), ("outputs", outputs)):
        if len(set(values)) != len(values):
            seen: list[Any] = []
            twice = next(v for v in values if v in seen or seen.append(v))  # type: ignore[func-returns-value]
            raise ModelError(f"{where}: key {key!r} lists {_short(twice)} twice; each must appear once.")
    if meta["task"] == "classification" and len(classes) < 2:
        raise ModelError(f"{where}: a classifier needs 'classes' listing at least two labels; got {classes}.")
    if meta["task"] == "regression" and not outputs:
        raise ModelError(f"{where}: a regression model needs 'outputs' naming each output column.")
    if "layers" in meta and "program" in meta:
        raise ModelError(f"{where}: has both 'layers' and 'program'; a model file describes one network.")
    if "layers" not in meta and "program" not in meta:
        raise ModelError(f"{where}: {PROGRAM_REFUSED}.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _embedded_schema(text: str, meta_path: Path) -> Schema:
    """The schema a model file records: TOML text, parsed as text (never opened as a path)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(
            f"load_model: {meta_path}: key 'schema' is not valid TOML ({exc}). It holds the schema's TOML "
            "text itself (a model file never points to a schema file); re-save the model with save_model."
        ) from None
    try:
        return Schema.from_dict(data, where=f"{meta_path.name}, key 'schema'")
    except SpecError as exc:
        raise ModelError(f"load_model: {meta_path}: the schema it records is invalid: {exc}") from None


def _read_layers(root: Path, meta_path: Path, specs: Any, width: int, dtype: torch.dtype) -> nn.Module:
    """The closed-set network: specs planned, weights checked against the plan, then built and filled."""
    where = f"load_model: {meta_path}"
    plan = L.plan(specs, width, where)
    weights = _member(root, "model.safetensors", meta_path, "the weights file")
    want = {
        name: (shape, "I64" if name in plan.integer else _STORED[dtype])
        for name, shape in plan.tensors.items()
    }
    unreadable = f"load_model: {weights} is not a readable safetensors file"
    try:
        with safe_open(str(weights), framework="pt") as handle:
            names = set(handle.keys())
            missing, extra = sorted(set(want) - names), sorted(names - set(want))
            if missing or extra:
                raise ModelError(
                    f"load_model: {weights} does not hold the tensors the layers in {meta_path.name} need: "
                    f"missing {missing[:6]}, unexpected {[n[:40] for n in extra[:6]]}. Re-save the model "
                    "with save_model."
                )
            for name, (shape, stored) in want.items():
                piece = handle.get_slice(name)
                got = (tuple(piece.get_shape()), piece.get_dtype())
                if got != (shape, stored):
                    raise ModelError(
                        f"load_model: {weights}: tensor {name!r} is {got[1]} of shape {got[0]}; the layers "
                        f"in {meta_path.name} need {stored} of shape {shape}. Re-save the model with save_model."
                    )
            state = {name: handle.get_tensor(name) for name in want}
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{unreadable} ({exc}). Re-save the model with save_model.") from None
    L.check_values(plan, state, where)
    network = L.build(plan.specs).to(dtype)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"load_model: the weights in {weights} do not fit the layers: {exc}") from None
    return network


def _read_program(root: Path, meta_path: Path, name: str, allowed: bool) -> nn.Module:
    """A ``torch.export`` program, only with the caller's explicit, unsafe opt-in (it can run code)."""
    program = _member(root, name, meta_path, "key 'program'")
    if not allowed:
        raise ModelError(f"load_model: {meta_path}: {PROGRAM_REFUSED}.")
    try:
        return torch.export.load(str(program)).module()
    except Exception as exc:
        raise ModelError(
            f"load_model: {program} is not a loadable torch.export program ({type(exc).__name__}: "
            f"{str(exc)[:200]})."
        ) from None
