"""Activations and softmax as functions of tensors."""

from __future__ import annotations

import math

from ... import backend, ops
from ...tensor import Tensor
from ._common import _as_tensor


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ops.relu(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    x = _as_tensor(x)
    return ops.where(x.data > 0, x, x * negative_slope)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return ops.sigmoid(x)


_GELU_C = math.sqrt(2.0 / math.pi)


def gelu(x: Tensor) -> Tensor:
    """GELU(x) = x * Phi(x), with the tanh approximation of the normal CDF Phi:

        gelu(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))

    NumPy has no erf, so minigrad uses this form on both devices; it equals PyTorch's
    `gelu(x, approximate="tanh")` and differs from the exact erf form by less than 1e-3.
    """
    x = _as_tensor(x)
    inner = (x + 0.044715 * (x * x * x)) * _GELU_C
    return 0.5 * x * (1.0 + ops.tanh(inner))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) = x - logsumexp(x), computed stably as one op.

    The maximum is subtracted before exp, so large logits (1e4) do not overflow, and a
    logit of -inf gives log-probability -inf and gradient g there (no NaN).
    Backward: dx = g - softmax(x) * sum(g, axis).
    """
    x = _as_tensor(x)
    xd = x.data
    xp = backend.xp_of(xd)
    m = xd.max(axis=axis, keepdims=True)
    shifted = xd - m
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)

    return Tensor._from_op(out, (x,), backward, "log_softmax")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, as exp(log_softmax(x)) so it is stable too."""
    return ops.exp(log_softmax(x, axis=axis))
