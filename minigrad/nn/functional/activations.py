"""Activations and softmax as functions of tensors."""

from __future__ import annotations

import math

from ... import ops
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


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """log(softmax(x)) along `dim` (the last when None), stably, as one op: `ops.log_softmax`,
    also the method x.log_softmax(dim)."""
    return ops.log_softmax(x, dim, axis=axis)


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim` (the last when None): `ops.softmax`, also the method
    x.softmax(dim)."""
    return ops.softmax(x, dim, axis=axis)
