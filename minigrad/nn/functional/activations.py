"""Activations and softmax as functions of tensors."""

from __future__ import annotations

import math

from ... import backend, ops
from ...tensor import Tensor, is_grad_enabled
from ._common import _as_tensor
from ._erf import erf_and_gaussian


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


def _elementwise(op: str, x, forward, derivative) -> Tensor:
    """One op y = f(x) with dy/dx = derivative(x, y, xp), applied as g * dy/dx in backward."""
    x = _as_tensor(x)
    xd = x.data
    xp = backend.xp_of(xd)
    out = forward(xd, xp)
    return Tensor._from_op(out, (x,), lambda g: (g * derivative(xd, out, xp),), op)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU(x) = x * Phi(x), Phi the standard normal CDF (PyTorch's default, exact):

        Phi(x) = 0.5 * (1 + erf(x / sqrt(2)))         d/dx = Phi(x) + x * phi(x),
        phi(x) = exp(-x**2 / 2) / sqrt(2 * pi)        the normal density

    approximate="tanh" uses the tanh form of GPT-2 and BERT instead (cheaper; within 1e-3):

        gelu(x) = 0.5 * x * (1 + t),  t = tanh(sqrt(2/pi) * (x + 0.044715 * x**3))
        d/dx = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * sqrt(2/pi) * (1 + 3 * 0.044715 * x**2)

    erf comes from `_erf.py` (fdlibm's approximation on the CPU, below 1 ulp in float64).
    """
    if approximate == "tanh":
        x = _as_tensor(x)
        xd = x.data
        xp = backend.xp_of(xd)
        t = xp.tanh(_SQRT_2_OVER_PI * (xd + 0.044715 * xd * xd * xd))
        out = 0.5 * xd * (1.0 + t)

        def tanh_backward(g):
            inner_slope = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * xd * xd)
            return (g * (0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * inner_slope),)

        return Tensor._from_op(out, (x,), tanh_backward, "gelu_tanh")
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = _as_tensor(x)
    xd = x.data
    xp = backend.xp_of(xd)
    cdf, slope = erf_and_gaussian(xd * _SQRT_HALF)  # erf(x / sqrt 2), exp(-x**2 / 2)
    cdf += 1.0
    cdf *= 0.5  # Phi(x), in place on erf's fresh array
    out = xd * cdf
    if not (x.requires_grad and is_grad_enabled()):
        return Tensor(out)
    # The derivative Phi(x) + x * phi(x) is computed here, where the Gaussian exp(-x**2 / 2)
    # comes free with erf, and kept for backward (in place of x and Phi): backward is then
    # one multiply, and there is one exp per element instead of two.
    slope *= xd
    slope *= _INV_SQRT_2PI
    slope += cdf

    def backward(g):
        return (g * slope,)

    return Tensor._from_op(out, (x,), backward, "gelu")


def silu(x: Tensor) -> Tensor:
    """SiLU (swish): x * sigmoid(x);  d/dx = s * (1 + x * (1 - s)), s = sigmoid(x)."""

    def forward(x, xp):
        return x * (0.5 * xp.tanh(0.5 * x) + 0.5)  # sigmoid as tanh: cannot overflow

    def derivative(x, out, xp):
        s = 0.5 * xp.tanh(0.5 * x) + 0.5
        return s * (1.0 + x * (1.0 - s))

    return _elementwise("silu", x, forward, derivative)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """ELU: x where x > 0, else alpha * (exp(x) - 1);  d/dx = 1 where x > 0, else out + alpha."""

    def forward(x, xp):
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    def derivative(x, out, xp):
        return xp.where(x > 0, xp.ones((), dtype=out.dtype), out + alpha)

    return _elementwise("elu", x, forward, derivative)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Softplus: log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (there
    the two agree to float precision, and exp would overflow);  d/dx = sigmoid(beta * x), or 1
    above the threshold."""

    def forward(x, xp):
        bx = beta * x
        smooth = xp.log1p(xp.exp(xp.minimum(bx, threshold))) / beta
        return xp.where(bx > threshold, x, smooth)

    def derivative(x, out, xp):
        bx = beta * x
        return xp.where(bx > threshold, xp.ones((), dtype=out.dtype), 0.5 * xp.tanh(0.5 * bx) + 0.5)

    return _elementwise("softplus", x, forward, derivative)


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """log(softmax(x)) along `dim` (the last when None), stably, as one op: `ops.log_softmax`,
    also the method x.log_softmax(dim)."""
    return ops.log_softmax(x, dim, axis=axis)


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim` (the last when None): `ops.softmax`, also the method
    x.softmax(dim)."""
    return ops.softmax(x, dim, axis=axis)
