"""Why the model decided: input gradients, gradient x input, Integrated Gradients, DeepLift, coefficients;
TreeSHAP for tree ensembles (``tree_shap.py``), which the gradient methods refuse.

Every method runs all rows (and all integration steps) through one batched forward/backward pass and
reports values per raw feature, one-hot blocks summed back to their category feature. Methods that
explain ``f(x) - f(baseline)`` report their completeness delta.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from actionable.action_checks import sample_states
from actionable.baselines import resolve_baseline, resolve_scale, standard_deviations, training_mean
from actionable.deeplift import AFFINE, deeplift, flat_layers
from actionable.errors import ConfigError, ModelError, did_you_mean
from actionable.explained import explained_output, explained_rows, in_place, per_raw_feature, wrap_model
from actionable.models import TorchModel
from actionable.models import layers as L
from actionable.models.trees import tree_layer
from actionable.relu_paths import relu_chain
from actionable.results import Attribution
from actionable.schema import DTYPE, Schema
from actionable.tree_shap import explain_trees
from actionable.validation import whole

__all__ = [
    "CHUNK",
    "METHODS",
    "PROBES",
    "RULES",
    "STEPS",
    "Method",
    "as_differentiable",
    "attribute",
    "per_raw_feature",
    "quadrature",
    "standard_deviations",
    "training_mean",
]


Method = Literal["gradient", "gradient_x_input", "integrated_gradients", "deeplift", "coefficients", "shap"]
METHODS: tuple[str, ...] = (
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "deeplift",
    "coefficients",
    "shap",
)
RULES: tuple[str, ...] = (
    "gausslegendre",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
)
# rows x steps per forward/backward pass: bounds memory; 4x smaller than 1 << 14 was 1.5x faster (measured)
CHUNK = 1 << 12


STEPS = whole(1, 10**5)  # Integrated Gradients quadrature points (the batch is rows x steps)


def attribute(
    model: Any,
    X: pd.DataFrame | torch.Tensor | np.ndarray,
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
    """Attributions of one model output for each row of ``X`` (raw frame, or canonical array).

    ``method``: ``gradient`` (signed input gradient), ``gradient_x_input``, ``integrated_gradients``,
    ``deeplift`` (rescale rule; exact completeness on ReLU networks) or ``coefficients`` (the exact
    decomposition coef x (x - baseline) of an affine model); ``shap`` for a tree ensemble (TreeSHAP,
    ``actionable.tree_shap.explain_trees``), which the gradient methods refuse.
    ``target``: the output explained: a class label (default: the schema's favourable class), an output
    name (regression) or an output index. ``output``: a class's ``logit`` or its ``probability``.
    ``baseline`` (integrated_gradients, deeplift, coefficients): None or "zeros" (zeros in the canonical
    encoding), "mean" (the mean of ``X``), or raw rows (a DataFrame / Series) or canonical rows (an
    array): one row, or one per row of ``X``. For the training mean pass ``training_mean(schema, train)``.
    ``steps`` and ``rule``: the Integrated Gradients quadrature (Captum's rules; see ``quadrature``).
    ``scale`` (gradient only): per-feature standard deviations (``standard_deviations``), so values are
    the change of the output per standard deviation, as in the blog.
    An explained output that is constant (the same value and zero gradient on the rows, their baseline
    and points spread over the schema's bounds) is a ``ConfigError``, never all-zero attributions.

    On a linear logit ``income - 2 * debt`` from a zero baseline, Integrated Gradients gives each
    feature its term, and the terms add up to the logit (``delta`` is 0):

    >>> import pandas as pd, torch
    >>> from actionable import Feature, Schema, Target, as_model
    >>> schema = Schema(
    ...     (Feature("income", "real", (0, 10)), Feature("debt", "real", (0, 10))),
    ...     Target("approved", favourable=1, classes=(0, 1)),
    ... )
    >>> net = torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1.0, -2.0]])), net.bias.zero_()
    >>> result = attribute(as_model(net, schema), pd.DataFrame({"income": [3.0], "debt": [1.0]}))
    >>> result.values.round(6).tolist(), result.target
    ([[3.0, -2.0]], '1 (logit)')
    """
    steps = _check_options(method, steps, rule, output, scale, baseline)
    if method == "shap":
        return explain_trees(model, X, schema=schema, target=target, output=output, baseline=baseline)
    net = as_differentiable(model, schema)
    s = net.schema
    if output == "probability" and net.task != "classification":
        raise ConfigError("attribute: output='probability' needs a classifier; this model is a regression.")
    if output == "probability" and method == "coefficients":
        raise ConfigError("attribute: coefficients explain a linear output; use output='logit'.")
    x, good, errors = explained_rows(net, X)
    index, label = explained_output(net, target)
    inputs = len(X) if isinstance(X, pd.DataFrame) else None
    x0, described = resolve_baseline(s, x, baseline, method, good, inputs)
    probability = output == "probability"
    net = net if probability else _log_odds_of_one_logit(net)

    def f(z: torch.Tensor) -> torch.Tensor:
        out = net(z)
        return torch.softmax(out, dim=-1)[:, index] if probability else out[:, index]

    explained = f"{label} ({output})" if net.task == "classification" else label
    if good:
        values, prediction, reference = _explain(net, f, method, x, x0, steps, rule, index, probability)
        prediction, reference = _ends(f, method, x, x0, prediction, reference)
        _refuse_constant(f, s, x, x0, values, prediction, explained)
    else:  # no row fits the schema: every row is an error, nothing to compute
        values, prediction, reference = x, x[:, 0], x[:, 0]
    per_feature = per_raw_feature(s, values)
    delta = per_feature.sum(1) - (prediction - reference)
    if scale is not None:
        per_feature = per_feature * resolve_scale(s, scale)
    labels = tuple(X.index) if isinstance(X, pd.DataFrame) else tuple(range(len(x)))
    placed = functools.partial(in_place, good=good, n=len(labels))
    return Attribution(
        values=placed(per_feature),
        features=s.names,
        method=method,
        rows=labels,
        baseline=described,
        delta=placed(delta),
        target=explained,
        prediction=placed(prediction),
        reference=placed(reference),
        unit=("per sd" if scale is not None else "per unit") if method == "gradient" else "output",
        errors={labels[i]: m for i, m in errors.items()},
        protected=tuple(f.name for f in s.features if f.protected),  # marked among the reasons
    )


def _ends(
    f: Callable[[torch.Tensor], torch.Tensor],
    method: str,
    x: torch.Tensor,
    x0: torch.Tensor,
    prediction: torch.Tensor | None,
    reference: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f(baseline) per row, computed where the method did not give them (NaN reference for
    ``gradient``, which has no baseline)."""
    n = len(x)
    with torch.no_grad():
        if prediction is None:  # integrated gradients: f(x) and f(x0) in one pass
            both = f(torch.cat([x, x0])).to(DTYPE)
            return both[:n], both[n:]
        if reference is None:
            reference = torch.full((n,), math.nan, dtype=DTYPE) if method == "gradient" else f(x0).to(DTYPE)
    return prediction, reference


PROBES = 1 << 14  # points spread over the schema's bounds on which a seemingly constant output is re-checked


def _refuse_constant(
    f: Callable[[torch.Tensor], torch.Tensor],
    schema: Schema,
    x: torch.Tensor,
    x0: torch.Tensor,
    values: torch.Tensor,
    prediction: torch.Tensor,
    name: str,
) -> None:
    """``ConfigError`` when the explained output is a constant function of the input, so every attribution
    is 0 and says nothing (a favourable logit the model never moves, zero weights).

    Constant means: every attribution is exactly 0, every row has the same prediction, and the gradient is
    exactly 0 with the same value at every row, every baseline row and ``PROBES`` seeded points spread over
    the schema's bounds (checked in chunks, stopping at the first point that differs). Zero attributions of
    an output that does vary are kept: one row explained against itself (``baseline="mean"`` of one row),
    rows in a flat region of a ReLU network that is not flat everywhere."""
    if bool((values != 0).any()) or bool((prediction != prediction[0]).any()):
        return
    value = prediction[0].detach()
    spread = sample_states(schema, PROBES, torch.Generator().manual_seed(0))
    for probes in (torch.cat([x, x0]), *torch.split(spread, PROBES // 4)):
        grad, out = _gradient(f, probes.to(x.dtype), fresh=True, with_output=True)
        if bool((grad != 0).any()) or bool((out != value).any()):
            return
    raise ConfigError(
        f"attribute: the explained output {name} is {float(value):g} for every input (zero gradient and the "
        f"same value on the {len(x)} row(s), their baseline and {PROBES} points spread over the schema's "
        "bounds), so every attribution would be 0. Explain an output that depends on the input: target= "
        "another class or output, or output='probability'; or check the model (are its weights 0?)."
    )


def _check_options(method: str, steps: Any, rule: str, output: str, scale: Any, baseline: Any) -> int:
    """``ConfigError`` for an unknown method, rule or output, or an option the method does not take;
    the checked number of steps."""
    if method not in METHODS:
        raise ConfigError(
            f"attribute: method {method!r} is not known; choose one of {list(METHODS)}."
            + did_you_mean(method, METHODS)
        )
    steps = STEPS.check("attribute", "steps", steps)
    if rule not in RULES:
        raise ConfigError(
            f"attribute: rule {rule!r} is not known; choose one of {list(RULES)}." + did_you_mean(rule, RULES)
        )
    if output not in ("logit", "probability"):
        raise ConfigError(f"attribute: output {output!r} is not known; use 'logit' or 'probability'.")
    if scale is not None and method != "gradient":
        raise ConfigError(
            f"attribute: scale (per standard deviation) applies to method='gradient' only; got method={method!r}, "
            "whose values are already in the output's units."
        )
    if baseline is not None and method in ("gradient", "gradient_x_input"):
        raise ConfigError(
            f"attribute: method {method!r} takes no baseline; use integrated_gradients, deeplift or coefficients."
        )
    return int(steps)


def _explain(
    net: TorchModel,
    f: Callable[[torch.Tensor], torch.Tensor],
    method: str,
    x: torch.Tensor,
    x0: torch.Tensor,
    steps: int,
    rule: str,
    index: int,
    probability: bool,
) -> tuple[torch.Tensor, Any, Any]:
    """One method's attributions per canonical column, with f(x) and f(x0) where the method gave them."""
    prediction: Any = None
    reference: Any = None
    if method == "integrated_gradients":
        values = _integrated_gradients(net, x, x0, int(steps), rule, index, probability)
    elif method == "deeplift":
        values, prediction, reference = deeplift(net, x, x0, index, probability)
    else:
        if method == "coefficients":
            _check_affine(net)
        grad, prediction = _gradient(f, x, with_output=True)
        values = grad if method == "gradient" else grad * (x if method == "gradient_x_input" else x - x0)
    return values, prediction, reference


def as_differentiable(model: Any, schema: Schema | None, where: str = "attribute") -> TorchModel:
    """The ``TorchModel`` behind ``model``; ``ConfigError`` for a tree ensemble, whose gradient is 0 almost
    everywhere (it is piecewise constant), pointing to TreeSHAP."""
    net = wrap_model(model, schema, where)
    if tree_layer(net.network) is not None:
        raise ConfigError(
            f"{where}: this model is a tree ensemble, piecewise constant, so its gradient is 0 wherever it "
            "is defined and gradient methods (gradient, gradient_x_input, integrated_gradients, deeplift, "
            "coefficients, adversarial advising) would explain nothing. Use method 'shap': "
            'attribute(model, X, "shap") (TreeSHAP through the shap library).'
        )
    return net


def quadrature(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Integration points in [0, 1] and their weights.

    Gauss-Legendre and the left / right / middle Riemann rules match Captum's points and weights;
    ``riemann_trapezoid`` is the composite trapezoid rule (weights sum to one), whereas Captum's
    weights are (steps - 1) / steps times these.
    """
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return torch.as_tensor((nodes + 1) / 2), torch.as_tensor(weights / 2)
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ConfigError("attribute: rule 'riemann_trapezoid' needs steps >= 2.")
        sizes = torch.full((steps,), 1 / (steps - 1), dtype=DTYPE)
        sizes[0] = sizes[-1] = 1 / (2 * (steps - 1))
        return torch.linspace(0, 1, steps, dtype=DTYPE), sizes
    start = {"riemann_left": 0.0, "riemann_right": 1 / steps, "riemann_middle": 1 / (2 * steps)}[rule]
    return start + torch.arange(steps, dtype=DTYPE) / steps, torch.full((steps,), 1 / steps, dtype=DTYPE)


def _gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    fresh: bool = False,
    with_output: bool = False,
) -> Any:
    """d f / d x for every row in one backward pass (f's rows are independent).

    ``fresh``: ``x`` is a temporary the caller does not keep, so it is used in place rather than copied.
    ``with_output``: also return f(x) (detached), saving the caller a forward pass.
    """
    point = (x.detach() if fresh else x.detach().clone()).requires_grad_(True)
    with torch.enable_grad():
        out = f(point)
        if not out.requires_grad:
            raise ModelError(
                "attribute: the model's output does not depend differentiably on its input (no gradient "
                "flows back); gradient methods need a differentiable model. A gradient-free path "
                "(occlusion / sampling) is planned but not available yet."
            )
        (grad,) = torch.autograd.grad(out.sum(), point, allow_unused=True)
    if grad is None:
        raise ModelError("attribute: the model's output does not depend on its input; nothing to attribute.")
    return (grad, out.detach().to(DTYPE)) if with_output else grad


def _integrated_gradients(
    model: TorchModel, x: torch.Tensor, x0: torch.Tensor, steps: int, rule: str, index: int, probability: bool
) -> torch.Tensor:
    """sum_k w_k grad f(x0 + a_k (x - x0)) * (x - x0), all rows x steps in one pass (chunks of rows).

    The network's leading affine layers (scalers, the first Linear) map the straight path to a straight
    path, so they run once per row rather than once per step: the path is walked in their output space
    and the step-weighted gradient is pulled back through them once (exact, and several times faster).
    """
    alphas, weights = quadrature(steps, rule)
    prefix, rest = _affine_prefix(model)
    xs, x0s = x.to(model.dtype), x0.to(model.dtype)
    alphas, weights = alphas.to(model.dtype), weights.to(model.dtype)
    with torch.no_grad():
        h, h0 = prefix(xs), prefix(x0s)

    def f(z: torch.Tensor) -> torch.Tensor:
        out = rest(z)
        return torch.softmax(out, dim=-1)[:, index] if probability else out[:, index]

    chain = None if probability else relu_chain(flat_layers(rest), index, model.dtype)
    n, d = h.shape
    diff = h - h0
    chunk = max(1, CHUNK // steps)
    parts: list[torch.Tensor] = []
    buffers: dict[str, torch.Tensor] = {}
    for start in range(0, n, chunk):
        hs, ds = h0[start : start + chunk], diff[start : start + chunk]
        if chain is not None:
            parts.append(chain.weighted_gradient(hs, ds, alphas, weights, buffers))
            continue
        path = (hs[None] + alphas[:, None, None] * ds[None]).reshape(-1, d)
        grads = _gradient(f, path, fresh=True).reshape(steps, len(hs), d)
        parts.append(torch.einsum("k,knd->nd", weights, grads))
    summed = torch.cat(parts)
    point = xs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = prefix(point)
        pulled = torch.autograd.grad(out, point, grad_outputs=summed)[0] if out.requires_grad else summed
    return pulled.to(x.dtype) * (x - x0)


def _affine_prefix(model: TorchModel) -> tuple[nn.Module, nn.Module]:
    """The network split after its leading affine layers (row-wise: scalers, Linear, Identity)."""
    layers = flat_layers(model.network)
    k = 0
    while k < len(layers) and isinstance(layers[k], AFFINE) and not isinstance(layers[k], L.BinaryLogits):
        k += 1
    if k == len(layers):  # a linear model: keep the last layer in the walked part
        k -= 1
    return nn.Sequential(*layers[:k]), nn.Sequential(*layers[k:])


def _log_odds_of_one_logit(model: TorchModel) -> TorchModel:
    """A binary model of one logit z (logits [0, z]) explained as log-odds: [-z, z], so the first class's
    logit is not the constant 0 (a favourable first class, e.g. 0 = "no churn"); the second is unchanged."""
    layers = flat_layers(model.network)
    if model.task != "classification" or not layers or not isinstance(layers[-1], L.BinaryLogits):
        return model
    flip = nn.Linear(2, 2, bias=False).to(model.dtype)
    with torch.no_grad():
        flip.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=model.dtype))
    flip.requires_grad_(False)
    return TorchModel(
        nn.Sequential(model.network, flip),
        model.schema,
        task="classification",
        classes=model.classes,
        provenance=model.provenance,
        dtype=model.dtype,
    )


def _check_affine(model: TorchModel) -> None:
    for i, m in enumerate(flat_layers(model.network)):
        if not isinstance(m, AFFINE):
            raise ModelError(
                f"attribute: 'coefficients' needs a linear model; layer {i} is a {type(m).__name__}. "
                "Use 'integrated_gradients' or 'deeplift'."
            )
