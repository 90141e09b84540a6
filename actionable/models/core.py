"""TorchModel and as_model: one torch network from the canonical tensor to logits, whatever the user brought.

``TorchModel`` wraps a network on a schema's canonical tensor and answers ``predict`` / ``predict_proba``
like a fitted estimator, after checking that its numbers are finite and its output has one column per class
(or output). ``as_model`` wraps a torch module, re-targets a ``TorchModel`` to an edited schema of the same
encoding, or hands a fitted scikit-learn estimator (``sklearn.py``) or a raw XGBoost / LightGBM Booster
(``tree_boosters.py``) to its exact conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable.errors import ConfigError, DataError, ModelError
from actionable.models import layers as L
from actionable.models.sklearn import SUPPORTED, convert
from actionable.models.tree_boosters import convert_raw_booster
from actionable.schema import DTYPE, Label, Schema

__all__ = ["Task", "TorchModel", "as_model", "input_width"]

Task = Literal["classification", "regression"]


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
        out: torch.Tensor = self.network(x.to(self.dtype))
        return out

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
        x = torch.as_tensor(np.array(X, dtype=np.float64) if isinstance(X, np.ndarray) else X)
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
        proba: np.ndarray = torch.softmax(self(self.encode(X)), dim=-1).cpu().numpy()
        return proba

    @torch.no_grad()
    def predict(self, X: pd.DataFrame | torch.Tensor | np.ndarray) -> np.ndarray:
        """Class labels (classification) or values (regression; 1-D when there is one output)."""
        out: torch.Tensor = self(self.encode(X))
        if self.task == "classification":
            labels: np.ndarray = np.asarray(self.classes, dtype=object)[out.argmax(dim=-1).cpu().numpy()]
            return labels
        values: np.ndarray = out.cpu().numpy()
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
    encoding: Any = None,
) -> TorchModel:
    """Wrap a torch module or convert a fitted scikit-learn model into a ``TorchModel`` on ``schema``.

    A torch module's classes default to the schema target's ``classes``; a module with one output column
    and two classes is read as the logit of the second class. A raw ``xgboost.Booster`` /
    ``lightgbm.Booster`` is converted from its JSON dump (``tree_boosters.py``): its task comes from its
    objective, its classes from ``classes=`` or the schema target's ``classes``. ``encoding`` (an
    ``InputEncoding``): the module reads its own columns (scaled, one-hot in its order), not the canonical
    tensor; a ``ColumnMap`` in front of it bridges the two (``input_encoding.py``).
    """
    if not isinstance(schema, Schema):
        raise ConfigError(f"as_model: schema must be an actionable Schema; got {type(schema).__name__}.")
    if isinstance(obj, TorchModel):
        if encoding is not None:
            raise ModelError(
                "as_model: this is already a TorchModel on a schema's canonical tensor; encoding= is for the "
                "raw network (e.g. load_keras's), which reads its own columns."
            )
        return _rebound(obj, schema)
    if encoding is not None:
        if not isinstance(obj, nn.Module) or not hasattr(encoding, "prepend"):
            raise ModelError(
                "as_model: encoding= is for a torch module that reads its own input columns (e.g. from "
                "load_keras), given as an actionable InputEncoding (InputEncoding.from_records / from_file)."
            )
        obj = encoding.prepend(obj, schema)
    elif isinstance(obj, nn.Module):
        _check_reads_canonical(obj, schema)
    if isinstance(obj, nn.Module):
        return _wrap_module(obj, schema, task, classes, outputs)
    booster = convert_raw_booster(obj, schema, task=task, classes=classes)  # None unless a raw Booster
    if booster is not None or (hasattr(obj, "fit") and hasattr(obj, "get_params")):
        network, info = booster if booster is not None else convert(obj, schema)
        return TorchModel(
            network,
            schema,
            task=info["task"],
            classes=_renamed(info.get("classes", ()), classes),
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
    if isinstance(last, nn.Sigmoid) and k is not None and k > 1:
        raise ModelError(
            f"as_model: this classifier ends in Sigmoid on {k} outputs: independent probabilities (multi-label), "
            "not one distribution over classes, and no softmax of its inputs gives them back. actionable "
            "explains one class distribution: retrain it with softmax (or Dense(1, sigmoid) for two classes), "
            "or wrap the network as a regression of those probabilities (task='regression', outputs=[...])."
        )
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


def _rebound(model: TorchModel, schema: Schema) -> TorchModel:
    """A model on an equal-encoding schema (bounds, mutability, costs may differ), else a ``ModelError``."""
    if model.schema == schema:
        return model
    if model.schema.hash == schema.hash:  # same encoding: bounds, mutability, costs edited; same network
        return TorchModel(
            model.network,
            schema,
            task=model.task,
            classes=model.classes,
            outputs=model.outputs,
            provenance=model.provenance,
            dtype=model.dtype,
        )
    raise ModelError(
        f"as_model: this model was built on a schema with another encoding (its features: "
        f"{list(model.schema.names)[:6]}...; names, order, kinds and levels must match). Use the schema "
        "it was built on (model.schema), or rebuild / retrain the model on this one."
    )


def input_width(network: nn.Module) -> int | None:
    """The width a network reads where its first layer says it (a Linear, a scaler, a sequence layer of an
    ``nn.Sequential``, nested or not), else None: the registration order of other modules is not their
    order of use, so they are not guessed."""
    first = network
    while isinstance(first, nn.Sequential) and len(first):
        first = first[0]
    if isinstance(first, nn.Linear):
        return int(first.in_features)
    if isinstance(first, L.Sequence1d):
        return first.length * first.channels
    if isinstance(first, L.Standardize):
        return int(first.mean.shape[0])
    return None


def _check_reads_canonical(module: nn.Module, schema: Schema) -> None:
    """A module given without ``encoding=`` must read the schema's canonical tensor: refuse a network read
    from a Keras file (it reads that file's columns) and a width that differs, naming ``encoding=``."""
    fix = (
        "If the network reads its own columns (z-scored, min-max, one-hot in its own order, placeholders), "
        "declare them once: as_model(network, schema, encoding=InputEncoding.from_file('encoding.toml', "
        "schema)); if it really reads the canonical columns, pass encoding=InputEncoding.canonical(schema)."
    )
    if getattr(module, "reads_own_columns", False):
        raise ModelError(
            "as_model: this network was read from a Keras file, so it reads that file's input columns, not "
            f"the schema's canonical tensor. {fix}"
        )
    width = input_width(module)
    if width is not None and width != schema.width:
        raise ModelError(
            f"as_model: the network reads {width} input columns, the schema's canonical tensor has "
            f"{schema.width} ({list(schema.columns)[:5]}...). {fix}"
        )


def _last_layer(module: nn.Module) -> nn.Module:
    """The final layer of nested ``nn.Sequential`` containers (the module itself otherwise)."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[-1]
    return module


def _output_names(schema: Schema, k: int) -> tuple[str, ...]:
    name = schema.target.name if schema.target is not None else "output"
    return (name,) if k == 1 else tuple(f"{name}[{i}]" for i in range(k))


def _renamed(fitted: Sequence[Label], classes: Sequence[Label] | None) -> tuple[Label, ...]:
    """The estimator's classes, or ``classes=`` in their order (a model fitted on 0 / 1 named as the schema)."""
    if classes is None:
        return tuple(fitted)
    if len(classes) != len(fitted):
        raise ModelError(
            f"as_model: classes={list(classes)} names {len(classes)} classes, the estimator has {len(fitted)} "
            f"({list(fitted)}); give one name per class, in the estimator's order."
        )
    return tuple(classes)
