"""Integrated Gradients' step-weighted gradient sum through a ReLU network, with its backward by hand.

For the common case (after the leading affine layers: ReLU, Linear, ReLU, ..., ReLU, then affine layers
to the logits) the gradient at each path point is a chain of masked matrix products: the last ReLU's mask
times a constant vector (the affine tail's gradient), then ``@ W * mask`` per layer. Written out, it runs
in work arrays reused across a batch's chunks, without autograd's graph and fresh temporaries, which on
the rows x steps batch cost more than the matrix products (1.5-2x, measured). The kernels are the ones
autograd runs (ReLU's ``threshold_backward``, a Linear's ``@ W``), so the values equal the autograd
path's (tested). Any other layer, or probabilities (a softmax at the end), takes the autograd path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from actionable.models import layers as L
from actionable.models.core import input_width

__all__ = ["ReluChain", "relu_chain"]

RELUS = (nn.ReLU, L.ReLU)
LINEARS = (nn.Linear, L.Linear)
AFFINE_TAIL = (nn.Linear, L.Linear, nn.Identity, L.Identity, L.Standardize, L.ColumnMap, L.BinaryLogits)


@dataclass(frozen=True)
class ReluChain:
    """``ReLU, linears[0], ReLU, ..., linears[-1], ReLU``, then an affine tail whose gradient is ``tail``."""

    linears: tuple[nn.Linear, ...]
    tail: torch.Tensor  # d output[:, index] / d (last ReLU's output): one vector for every row

    def weighted_gradient(
        self,
        h0: torch.Tensor,
        diff: torch.Tensor,
        alphas: torch.Tensor,
        weights: torch.Tensor,
        buffers: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``sum_k weights[k] * d f / d h`` at ``h = h0 + alphas[k] * diff``, one row per row of h0.

        ``buffers``: work arrays kept between calls on chunks of one batch (filled here), so each chunk
        reuses memory already mapped instead of asking the allocator, and the OS, for fresh pages.
        """
        steps, (n, d) = len(alphas), h0.shape
        rows = steps * n
        work = {} if buffers is None else buffers

        def buffer(name: str, width: int, dtype: torch.dtype = h0.dtype) -> torch.Tensor:
            held = work.get(name)
            if held is None or held.shape[0] < rows or held.shape[1] != width or held.dtype != dtype:
                held = work[name] = torch.empty(rows, width, dtype=dtype)
            return held[:rows]

        with torch.no_grad():
            a = buffer("in", d)
            torch.addcmul(h0[None], alphas[:, None, None], diff[None], out=a.view(steps, n, d))
            outputs = []  # each ReLU's output, kept for its derivative (> 0), as autograd keeps it
            for i, linear in enumerate(self.linears):
                outputs.append(a.clamp_min_(0))
                z = buffer(f"out{i}", linear.out_features)
                weight = linear.weight.detach()
                if linear.bias is None:
                    torch.mm(a, weight.T, out=z)
                else:
                    torch.addmm(linear.bias.detach(), a, weight.T, out=z)
                a = z
            g = _relu_backward(self.tail.expand_as(a), a, buffer("last", a.shape[1]))
            for i, linear in reversed(list(enumerate(self.linears))):
                back = torch.mm(g, linear.weight.detach(), out=buffer(f"back{i}", linear.in_features))
                g = _relu_backward(back, outputs[i], back)
            return (weights @ g.view(steps, n * d)).view(n, d)


def _relu_backward(grad: torch.Tensor, value: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad`` where ``value > 0``, else 0, into ``out``: the kernel autograd runs for ReLU's derivative
    (one fused pass; a bool mask and a multiply take five times as long, measured)."""
    result: torch.Tensor = torch.ops.aten.threshold_backward.grad_input(grad, value, 0, grad_input=out)
    return result


def relu_chain(layers: Sequence[nn.Module], index: int, dtype: torch.dtype) -> ReluChain | None:
    """The network after its affine prefix as a ``ReluChain`` for output ``index``, or None if it is not one.

    Layer types are matched exactly (a subclass may compute something else); the tail's gradient is read
    off autograd once, on one row, since an affine map's gradient is the same at every input.
    """
    relus = [i for i, m in enumerate(layers) if type(m) in RELUS]
    if not relus or relus[0] != 0:
        return None
    last = relus[-1]
    middle, tail = layers[:last], layers[last + 1 :]
    if any(type(m) not in (RELUS if i % 2 == 0 else LINEARS) for i, m in enumerate(middle)):
        return None
    if len(middle) % 2 or not tail or any(type(m) not in AFFINE_TAIL for m in tail):
        return None
    linears = tuple(m for m in middle[1::2] if isinstance(m, nn.Linear))
    width = linears[-1].out_features if linears else input_width(nn.Sequential(*tail))
    if width is None:
        return None
    point = torch.zeros(1, width, dtype=dtype, requires_grad=True)
    with torch.enable_grad():
        out = nn.Sequential(*tail)(point)
        if out.ndim != 2 or not 0 <= index < out.shape[1]:
            return None
        (vector,) = torch.autograd.grad(out[0, index], point)
    return ReluChain(linears, vector[0].detach())
