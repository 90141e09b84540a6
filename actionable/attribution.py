"""Why the model decided: input gradients, gradient x input, Integrated Gradients, DeepLift, coefficients.

Every method runs all rows (and all integration steps) through one batched forward/backward pass and
reports values per raw feature, one-hot blocks summed back to their category feature. Methods that
explain ``f(x) - f(baseline)`` report their completeness delta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable import layers as L
from actionable.errors import ConfigError, DataError, ModelError, did_you_mean
from actionable.goals import resolve_goal
from actionable.models import TorchModel, as_model
from actionable.results import Attribution
from actionable.schema import DTYPE, Schema

Method = Literal["gradient", "gradient_x_input", "integrated_gradients", "deeplift", "coefficients"]
METHODS: tuple[str, ...] = (
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "deeplift",
    "coefficients",
)
RULES: tuple[str, ...] = (
    "gausslegendre",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
)
NONLINEAR = (L.ReLU, L.Sigmoid, L.Tanh, nn.ReLU, nn.Sigmoid, nn.Tanh)
AFFINE = (L.Linear, L.Standardize, L.ColumnMap, L.Identity, L.BinaryLogits, nn.Linear, nn.Identity)


def attribute(
    model: Any,
    X: pd.DataFrame | torch.Tensor,
    method: Method = "integrated_gradients",
    *,
    schema: Schema | None = None,
    target: Any = None,
    output: Literal["logit", "probability"] = "logit",
    baseline: Any = None,
    steps: int = 64,
    rule: str = "gausslegendre",
    scale: pd.Series | Sequence[float] | None = None,
) -> Attribution:
    """Attributions of one model output for each row of ``X``.

    ``target``: the output explained: a class label (default: the favourable class) or an output index.
    ``output``: explain the class's logit or its probability (classifiers only).
    ``baseline``: None (zeros in the canonical encoding), "mean" (the mean of ``X``), a one-row frame, or
    a frame with one row per row of ``X``. Pass a training frame's mean row for the training mean.
    ``scale``: per-feature standard deviations; gradients are then reported per standard deviation.
    """
    torch_model = _model(model, schema)
    if method not in METHODS:
        raise ConfigError(
            f"attribute: method {method!r} is not known; choose one of {list(METHODS)}."
            + did_you_mean(method, METHODS)
        )
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"attribute: steps must be a whole number >= 1; got {steps!r}.")
    if rule not in RULES:
        raise ConfigError(f"attribute: rule {rule!r} is not known; choose one of {list(RULES)}.")
    if output not in ("logit", "probability"):
        raise ConfigError(f"attribute: output {output!r}; use 'logit' or 'probability'.")
    s = torch_model.schema
    x = torch_model.encode(X).to(DTYPE)
    x0 = _baseline(s, x, baseline)
    index = _target(torch_model, target)
    probability = output == "probability" and torch_model.task == "classification"

    def f(z: torch.Tensor) -> torch.Tensor:
        out = torch_model(z)
        return torch.softmax(out, dim=-1)[:, index] if probability else out[:, index]

    if method == "gradient":
        values = _gradient(f, x)
    elif method == "gradient_x_input":
        values = _gradient(f, x) * x
    elif method == "integrated_gradients":
        values = _integrated_gradients(f, x, x0, steps, rule)
    elif method == "deeplift":
        values = _deeplift(torch_model, x, x0, index, probability)
    else:
        values = _coefficients(torch_model, f, x, x0)
    with torch.no_grad():
        reference = x0 if method != "gradient_x_input" else torch.zeros_like(x)
        explained = f(x) - f(reference)
    delta = (
        values.sum(1) - explained if method != "gradient" else torch.full((len(x),), math.nan, dtype=DTYPE)
    )
    per_feature = _per_feature(s, values)
    if scale is not None:
        if method != "gradient":
            raise ConfigError("attribute: scale (per standard deviation) applies to method='gradient' only.")
        per_feature = per_feature * _scale(s, scale)
    index_labels = list(X.index) if isinstance(X, pd.DataFrame) else list(range(len(x)))
    return Attribution(
        values=per_feature.detach().numpy(),
        features=s.names,
        method=method,
        rows=tuple(index_labels),
        baseline=s.decode(x0[:1]).iloc[0].to_dict() if baseline is not None else "zeros",
        delta=delta.detach().numpy(),
        target=str(torch_model.classes[index] if torch_model.classes else torch_model.outputs[index]),
    )


def _model(model: Any, schema: Schema | None) -> TorchModel:
    if isinstance(model, TorchModel):
        return model
    if schema is None:
        raise ConfigError("attribute: pass schema= to use a model that is not an actionable TorchModel.")
    return as_model(model, schema)


def _target(model: TorchModel, target: Any) -> int:
    if (
        isinstance(target, int)
        and not isinstance(target, bool)
        and 0 <= target < model.n_outputs
        and (target not in model.classes)
    ):
        return target
    if target is None and model.task == "regression":
        return 0
    return resolve_goal(model, None if target is None else {"class": target}).index


def _baseline(schema: Schema, x: torch.Tensor, baseline: Any) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ConfigError(f"attribute: baseline {baseline!r}; use None, 'mean', or a frame of raw rows.")
        return x.mean(0, keepdim=True).expand_as(x)
    if isinstance(baseline, pd.Series):
        baseline = baseline.to_frame().T
    if not isinstance(baseline, pd.DataFrame | torch.Tensor | np.ndarray):
        raise ConfigError(
            f"attribute: baseline of type {type(baseline).__name__}; give a DataFrame of raw rows."
        )
    if isinstance(baseline, pd.DataFrame):
        missing = [n for n in schema.names if n not in baseline.columns]
        if missing:
            raise DataError(
                f"attribute: the baseline lacks columns {missing}; give rows with the schema's features."
            )
        b = schema.encode(baseline)
    else:
        b = torch.as_tensor(np.asarray(baseline, dtype=np.float64)).reshape(-1, schema.width)
    if len(b) == 1:
        return b.expand_as(x)
    if len(b) != len(x):
        raise DataError(
            f"attribute: the baseline has {len(b)} rows; give 1 row or one per input row ({len(x)})."
        )
    return b


def _gradient(f: Any, x: torch.Tensor) -> torch.Tensor:
    point = x.detach().clone().requires_grad_(True)
    out = f(point)
    if not out.requires_grad:
        raise ModelError(
            "attribute: the model's output does not depend differentiably on its input; "
            "gradient methods need a differentiable model (a gradient-free path is planned)."
        )
    (grad,) = torch.autograd.grad(out.sum(), point)
    return grad


def _alphas(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Integration points in [0, 1] and their weights (the same rules as Captum's)."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return torch.as_tensor((nodes + 1) / 2), torch.as_tensor(weights / 2)
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ConfigError("attribute: riemann_trapezoid needs steps >= 2.")
        sizes = torch.full((steps,), 1 / (steps - 1), dtype=DTYPE)
        sizes[0] = sizes[-1] = 1 / (2 * (steps - 1))
        return torch.linspace(0, 1, steps, dtype=DTYPE), sizes
    start = {"riemann_left": 0.0, "riemann_right": 1 / steps, "riemann_middle": 1 / (2 * steps)}[rule]
    return start + torch.arange(steps, dtype=DTYPE) / steps, torch.full((steps,), 1 / steps, dtype=DTYPE)


def _integrated_gradients(f: Any, x: torch.Tensor, x0: torch.Tensor, steps: int, rule: str) -> torch.Tensor:
    """All rows x steps in one batch: sum_k w_k grad f(x0 + a_k (x - x0)) * (x - x0)."""
    alphas, weights = _alphas(steps, rule)
    n, d = x.shape
    path = (x0[None] + alphas[:, None, None] * (x - x0)[None]).reshape(steps * n, d)
    grads = _gradient(f, path).reshape(steps, n, d)
    return (weights[:, None, None] * grads).sum(0) * (x - x0)


class _Rescale(torch.autograd.Function):
    """Forward: the nonlinearity's output; backward: DeepLift's rescale multiplier instead of the derivative."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, out: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(multiplier)
        return out.detach().clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (multiplier,) = ctx.saved_tensors
        return grad * multiplier, None, None


def _layers(model: TorchModel) -> list[nn.Module]:
    network = model.network
    modules = list(network) if isinstance(network, nn.Sequential) else [network]
    flat: list[nn.Module] = []
    for m in modules:
        flat += list(m) if isinstance(m, nn.Sequential) else [m]
    return flat


def _deeplift(
    model: TorchModel, x: torch.Tensor, x0: torch.Tensor, index: int, probability: bool
) -> torch.Tensor:
    """DeepLift with the rescale rule on a sequential network (exact completeness on ReLU networks)."""
    layers = _layers(model)
    for m in layers:
        if not isinstance(m, NONLINEAR + AFFINE):
            raise ModelError(
                f"attribute: deeplift does not support the layer {type(m).__name__}; supported "
                "layers are Linear, ReLU, Sigmoid, Tanh and the scalers. Use integrated_gradients."
            )
    h = x.detach().clone().requires_grad_(True)
    start = h
    h0 = x0.detach()
    for m in layers:
        if isinstance(m, NONLINEAR):
            out, out0 = m(h), m(h0)
            dh = h.detach() - h0
            with torch.enable_grad():
                probe = h.detach().clone().requires_grad_(True)
                (slope,) = torch.autograd.grad(m(probe).sum(), probe)
            multiplier = torch.where(
                dh.abs() > 1e-10, (out.detach() - out0) / torch.where(dh == 0, 1.0, dh), slope
            )
            h, h0 = _Rescale.apply(h, out, multiplier), out0.detach()
        else:
            h, h0 = m(h), m(h0).detach()
    if probability:
        p, p0 = torch.softmax(h, -1)[:, index], torch.softmax(h0, -1)[:, index]
        dz = h.detach() - h0
        (grad,) = torch.autograd.grad(
            h, start, grad_outputs=_softmax_multipliers(h.detach(), h0, dz, p, p0, index)
        )
    else:
        (grad,) = torch.autograd.grad(h[:, index].sum(), start)
    return grad * (x - x0)


def _softmax_multipliers(
    z: torch.Tensor, z0: torch.Tensor, dz: torch.Tensor, p: torch.Tensor, p0: torch.Tensor, index: int
) -> torch.Tensor:
    """Rescale through the final softmax: spread (p - p0) over the logits in proportion to the gradient."""
    point = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.softmax(point, -1)[:, index].sum(), point)
    linear = (g * dz).sum(1, keepdim=True)
    ratio = torch.where(
        linear.abs() > 1e-12, (p.detach() - p0.detach())[:, None] / linear, torch.ones_like(linear)
    )
    return g * ratio


def _coefficients(model: TorchModel, f: Any, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    for m in _layers(model):
        if not isinstance(m, AFFINE):
            raise ModelError(
                f"attribute: 'coefficients' needs a linear model; this one has a {type(m).__name__} "
                "layer. Use 'gradient' or 'integrated_gradients'."
            )
    return _gradient(f, x) * (x - x0)


def _per_feature(schema: Schema, values: torch.Tensor) -> torch.Tensor:
    """Canonical columns -> raw features (one-hot blocks summed)."""
    return torch.stack([values[:, schema.slice(name)].sum(1) for name in schema.names], dim=1)


def _scale(schema: Schema, scale: pd.Series | Sequence[float]) -> torch.Tensor:
    if isinstance(scale, pd.Series):
        missing = [n for n in schema.names if n not in scale.index]
        if missing:
            raise DataError(f"attribute: scale lacks features {missing}.")
        values = [float(scale[n]) for n in schema.names]
    else:
        values = [float(v) for v in scale]
        if len(values) != len(schema):
            raise DataError(f"attribute: scale has {len(values)} values for {len(schema)} features.")
    return torch.as_tensor(values, dtype=DTYPE)
