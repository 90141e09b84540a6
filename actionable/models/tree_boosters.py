"""XGBoost and LightGBM models read from their JSON dumps (never pickles) into one exact ``TreeEnsemble``.

The scikit-learn wrappers (``XGBClassifier`` / ``XGBRegressor``, ``LGBMClassifier`` / ``LGBMRegressor``)
arrive here from ``sklearn.py`` (alone or at the end of a Pipeline); a raw ``xgboost.Booster`` /
``lightgbm.Booster`` from ``as_model`` directly, with its classes from ``classes=`` or the schema's target.
Each predicts with the trees the library's own ``predict`` uses: after early stopping, the best iteration
for the wrappers and a LightGBM Booster, every tree for a raw XGBoost Booster (``Booster.predict``'s
default; slice it with ``booster[: booster.best_iteration + 1]`` first to keep the best).
The libraries are imported only when the object is theirs, so neither is needed otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from actionable.errors import ConfigError, ModelError
from actionable.models import layers as L
from actionable.models.tree_dumps import Forest
from actionable.models.tree_lightgbm import read_lightgbm
from actionable.models.tree_xgboost import read_xgboost
from actionable.models.trees import pack
from actionable.schema import DTYPE, Label, Schema

__all__ = ["convert_booster", "convert_raw_booster"]

LIBRARIES = ("xgboost", "lightgbm")
WRAPPERS = "XGBClassifier, XGBRegressor, LGBMClassifier, LGBMRegressor, xgboost.Booster or lightgbm.Booster"


def _library(obj: Any) -> str | None:
    """``"xgboost"`` / ``"lightgbm"`` when ``obj``'s type comes from that package (nothing is imported)."""
    name = type(obj).__module__.split(".")[0]
    return name if name in LIBRARIES else None


def convert_booster(est: Any, width: int) -> tuple[list[nn.Module], dict[str, Any]] | None:
    """The layers and info of a fitted XGBoost / LightGBM model, or None when ``est`` is not one."""
    library = _library(est)
    if library is None:
        return None
    forest, classes = _read_wrapper(est, library)
    if forest.n_features != width:
        features = forest.features or []
        shown = ", ".join(features[:8]) + (", ..." if len(features) > 8 else "")
        names = f" ({shown})" if features else ""
        raise ModelError(
            f"as_model: the {type(est).__name__} was fitted on {forest.n_features} columns{names}, but its "
            f"preprocessing gives {width}. Refit it on the output of the Pipeline's preprocessing."
        )
    return _head(forest, width), _info(forest, classes, type(est).__name__)


def convert_raw_booster(
    obj: Any, schema: Schema, *, task: str | None, classes: Sequence[Label] | None
) -> tuple[nn.Sequential, dict[str, Any]] | None:
    """A raw ``xgboost.Booster`` / ``lightgbm.Booster`` on the schema's canonical columns (by its feature
    names, else in canonical order), or None when ``obj`` is not one. A Booster does not know its classes:
    they come from ``classes=`` or the schema's ``[target] classes``; its task comes from its objective."""
    library = _library(obj)
    if library is None or type(obj).__name__ != "Booster":
        return None
    forest = read_xgboost(obj) if library == "xgboost" else read_lightgbm(obj)
    own = "regression" if forest.link == "regression" else "classification"
    if task is not None and task != own:
        raise ConfigError(
            f"as_model: task = {task!r}, but this {library} Booster's objective makes it a {own} model; "
            f"leave task out or pass task={own!r}."
        )
    labels: Sequence[Label] = ()
    if own == "classification":
        labels = classes if classes is not None else (schema.target.classes if schema.target else ())
        if not labels:
            raise ModelError(
                f"as_model: a {library} Booster does not know its classes; pass classes=[...] in the order "
                "of its labels 0, 1, ... or list them in the schema's [target] classes."
            )
    columns = _columns(forest, schema)
    head = _head(forest, len(columns.index))
    info = _info(forest, labels, f"{library} Booster")
    return nn.Sequential(columns, *head).to(DTYPE), info


def _read_wrapper(est: Any, library: str) -> tuple[Forest, Sequence[Label]]:
    """The forest of a fitted scikit-learn wrapper and its classes (empty for a regressor)."""
    from sklearn.base import is_classifier

    if library == "xgboost":
        import xgboost

        if not isinstance(est, xgboost.XGBModel):
            raise ModelError(f"as_model: {type(est).__name__} is not supported here; supported: {WRAPPERS}.")
        missing = est.missing
        if not (isinstance(missing, float) and math.isnan(missing)):
            raise ModelError(
                f"as_model: this {type(est).__name__} reads {missing!r} as missing (missing={missing!r}); "
                "supported: missing=numpy.nan (the default). Refit with missing=numpy.nan."
            )
        booster = est.get_booster()
        best = booster.attr("best_iteration")  # the wrapper's predict stops there after early stopping
        forest = read_xgboost(booster, iterations=None if best is None else int(best) + 1)
    else:
        import lightgbm

        if not isinstance(est, lightgbm.LGBMModel):
            raise ModelError(f"as_model: {type(est).__name__} is not supported here; supported: {WRAPPERS}.")
        forest = read_lightgbm(est.booster_)
    classifier = is_classifier(est)
    if classifier != (forest.link != "regression"):
        kind = "classifier" if classifier else "regressor"
        raise ModelError(
            f"as_model: this {type(est).__name__} is a {kind} with a {forest.link} objective; use a "
            f"{'classification' if classifier else 'regression'} objective."
        )
    if not classifier:
        return forest, ()
    return forest, tuple(c.item() if isinstance(c, np.generic) else c for c in est.classes_)


def _head(forest: Forest, width: int) -> list[nn.Module]:
    """The ensemble (and the binary head) that turns the model's input columns into logits / values."""
    ensemble = pack(forest.trees, forest.base.tolist(), inputs=width, float32=forest.float32)
    return [ensemble, L.BinaryLogits()] if forest.link == "binary" else [ensemble]


def _info(forest: Forest, classes: Sequence[Label], what: str) -> dict[str, Any]:
    if forest.link == "regression":
        return {"task": "regression", "n_outputs": forest.n_outputs}
    k = 2 if forest.link == "binary" else forest.n_outputs
    if len(classes) != k:
        raise ModelError(
            f"as_model: this {what} predicts {k} classes, but {len(classes)} are given "
            f"({list(classes)}); pass classes=[...] with {k} labels in the order of its outputs."
        )
    return {"task": "classification", "classes": tuple(classes), "n_outputs": k}


def _columns(forest: Forest, schema: Schema) -> L.ColumnMap:
    """The canonical columns a raw Booster reads: by its feature names, else all of them in order."""
    canonical = list(schema.columns)
    if forest.features is None:
        if forest.n_features != schema.width:
            raise ModelError(
                f"as_model: the {forest.library} Booster was fitted on {forest.n_features} unnamed columns, "
                f"the schema's canonical encoding has {schema.width} ({', '.join(canonical)}). Fit it on a "
                "DataFrame with those column names (one-hot columns named 'feature=level')."
            )
        index = np.arange(schema.width)
    else:
        position = {c: i for i, c in enumerate(canonical)}
        unknown = [n for n in forest.features if n not in position]
        if unknown:
            unread = [c for c in canonical if c not in forest.features]
            raise ModelError(
                f"as_model: the {forest.library} Booster's columns {unknown[:8]} are not in the schema's "
                f"canonical columns; the schema's columns it does not read: {unread[:8]}. Fit it on a "
                "DataFrame with the schema's canonical column names (one-hot columns named 'feature=level')."
            )
        index = np.array([position[n] for n in forest.features], np.int64)
    n = len(index)
    return L.ColumnMap(torch.as_tensor(index), torch.ones(n, dtype=DTYPE), torch.zeros(n, dtype=DTYPE))
