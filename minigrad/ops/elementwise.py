"""Elementwise ops: arithmetic, functions of one value, comparisons, where.

Each output element depends on the input elements at the same position (after
broadcasting), so each backward is a product of g with the local derivative.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor, is_grad_enabled
from ._helpers import _as_tensor, _binary, _check_devices, _input, _scalar, _unary

# ---------------------------------------------------------------- arithmetic


def add(a, b) -> Tensor:
    """a + b;  d/da = g,  d/db = g."""
    return _binary("add", a, b, lambda x, y: x + y, lambda g, *_: g, lambda g, *_: g)


def sub(a, b) -> Tensor:
    """a - b;  d/da = g,  d/db = -g."""
    return _binary("sub", a, b, lambda x, y: x - y, lambda g, *_: g, lambda g, *_: -g)


def mul(a, b) -> Tensor:
    """a * b;  d/da = g * b,  d/db = g * a."""
    return _binary(
        "mul", a, b, lambda x, y: x * y, lambda g, x, y, _: g * y, lambda g, x, y, _: g * x
    )


def div(a, b) -> Tensor:
    """a / b;  d/da = g / b,  d/db = -g * a / b**2 = -g * out / b.

    True division of integers gives float32, as in PyTorch (NumPy would give float64).
    """
    if _is_integral(a) and _is_integral(b):
        a = astype(_input(a), np.float32)
    return _binary(
        "div",
        a,
        b,
        lambda x, y: x / y,
        lambda g, x, y, out: g / y,
        lambda g, x, y, out: -g * out / y,
    )


def _is_integral(value) -> bool:
    if isinstance(value, Tensor):
        return value.dtype.kind in "biu"
    return isinstance(value, (numbers.Integral, np.integer))


def _pow_grad_base(g, x, y, out):
    """d/da = g * b * a**(b-1), and 0 where b == 0 (PyTorch's value: a**0 is constant 1;
    the formula would give 0 * 0**-1 = nan at a = 0)."""
    if isinstance(y, numbers.Number):
        return g * 0 if y == 0 else g * y * x ** (y - 1)
    xp = backend.xp_of(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where(y == 0, 0, g * y * x ** (y - 1)).astype(out.dtype, copy=False)


def _pow_grad_exponent(g, x, y, out):
    """d/db = g * out * log(a), and 0 where a == 0 and b >= 0 (PyTorch's value: there
    out = 0**b is 0 or 1 and log(0) = -inf would turn 0 * -inf into nan)."""
    xp = backend.xp_of(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = g * out * xp.log(x)
    return xp.where((x == 0) & (y >= 0), 0, grad).astype(out.dtype, copy=False)


def pow(a, b) -> Tensor:
    """a ** b;  d/da = g * b * a**(b-1),  d/db = g * out * log(a) (0 where a = 0, b >= 0)."""
    return _binary("pow", a, b, lambda x, y: x**y, _pow_grad_base, _pow_grad_exponent)


def neg(a) -> Tensor:
    """-a;  d/da = -g."""
    return _unary("neg", a, lambda x, xp: -x, lambda g, x, out, xp: -g)


# ---------------------------------------------------------------- functions of one value


def exp(a) -> Tensor:
    """e**a;  d/da = g * out.  `mg.exp(2.0)` works too (a 0-d float32 tensor)."""
    return _unary("exp", a, lambda x, xp: xp.exp(x), lambda g, x, out, xp: g * out)


def log(a) -> Tensor:
    """Natural log;  d/da = g / a."""
    return _unary("log", a, lambda x, xp: xp.log(x), lambda g, x, out, xp: g / x)


def sqrt(a) -> Tensor:
    """Square root;  d/da = g / (2 * out)."""
    return _unary("sqrt", a, lambda x, xp: xp.sqrt(x), lambda g, x, out, xp: g / (2 * out))


def sin(a) -> Tensor:
    """sin;  d/da = g * cos(a)."""
    return _unary("sin", a, lambda x, xp: xp.sin(x), lambda g, x, out, xp: g * xp.cos(x))


def cos(a) -> Tensor:
    """cos;  d/da = -g * sin(a)."""
    return _unary("cos", a, lambda x, xp: xp.cos(x), lambda g, x, out, xp: -g * xp.sin(x))


def tanh(a) -> Tensor:
    """tanh;  d/da = g * (1 - out**2)."""
    return _unary("tanh", a, lambda x, xp: xp.tanh(x), lambda g, x, out, xp: g * (1 - out * out))


def sigmoid(a) -> Tensor:
    """1 / (1 + e**-a), computed as 0.5 * tanh(a / 2) + 0.5, which cannot overflow;
    d/da = g * out * (1 - out)."""
    return _unary(
        "sigmoid",
        a,
        lambda x, xp: 0.5 * xp.tanh(0.5 * x) + 0.5,
        lambda g, x, out, xp: g * out * (1 - out),
    )


def relu(a) -> Tensor:
    """max(a, 0);  d/da = g where a > 0, else 0.

    The mask a > 0 is made in forward, while `a` is still in cache, and kept for backward:
    backward then reads one byte per element instead of a's four, long after `a` has left
    the cache (on the CPU this is memory traffic a training step waits for).
    """
    if not isinstance(a, Tensor):
        a = _input(a)
    x = a.data
    out = backend.xp_of(x).maximum(x, 0)
    if not (a.requires_grad and is_grad_enabled()):
        return Tensor(out)
    positive = x > 0
    return Tensor._from_op(out, (a,), lambda g: (g * positive,), "relu")


def abs(a) -> Tensor:
    """|a|;  d/da = g * sign(a) (0 at a = 0)."""
    return _unary("abs", a, lambda x, xp: xp.abs(x), lambda g, x, out, xp: g * xp.sign(x))


def astype(a, dtype) -> Tensor:
    """The values converted to `dtype`; the gradient is converted back."""
    dtype = np.dtype(dtype)
    return _unary(
        "astype", a, lambda x, xp: x.astype(dtype), lambda g, x, out, xp: g.astype(x.dtype)
    )


def _tie_share(winner, tie, g):
    """Gradient share for maximum/minimum: all of g to the winner, half each on a tie."""
    xp = backend.xp_of(g)
    return xp.where(winner, g, xp.where(tie, g * 0.5, xp.zeros((), dtype=g.dtype)))


def maximum(a, b) -> Tensor:
    """Elementwise max; the gradient goes to the larger input (split evenly on ties)."""
    return _binary(
        "maximum",
        a,
        b,
        lambda x, y: backend.xp_of(x if hasattr(x, "shape") else y).maximum(x, y),
        lambda g, x, y, out: _tie_share(x > y, x == y, g),
        lambda g, x, y, out: _tie_share(y > x, x == y, g),
    )


def minimum(a, b) -> Tensor:
    """Elementwise min; the gradient goes to the smaller input (split evenly on ties)."""
    return _binary(
        "minimum",
        a,
        b,
        lambda x, y: backend.xp_of(x if hasattr(x, "shape") else y).minimum(x, y),
        lambda g, x, y, out: _tie_share(x < y, x == y, g),
        lambda g, x, y, out: _tie_share(y < x, x == y, g),
    )


def clip(a, min=None, max=None) -> Tensor:
    """Values limited to [min, max] (either may be None);  d/da = g inside the range, else 0.

    PyTorch calls it clamp (`x.clamp(min=0.0)`); both names are the same op.
    """
    if min is None and max is None:
        raise ValueError("clip/clamp: give min, max, or both")
    min, max = _scalar(min), _scalar(max)  # a NumPy scalar bound must not widen float32

    def forward(x, xp):
        return xp.clip(x, min, max)

    def backward(g, x, out, xp):
        inside = xp.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        return g * inside

    return _unary("clip", a, forward, backward)


clamp = clip


def where(condition, a, b) -> Tensor:
    """Elementwise `a if condition else b`; condition gets no gradient.

    d/da = g where condition, else 0;  d/db = g where not condition, else 0.
    """
    cond = condition.data if isinstance(condition, Tensor) else condition
    a = a if isinstance(a, (Tensor, numbers.Number)) else _as_tensor(a, b)
    b = b if isinstance(b, (Tensor, numbers.Number)) else _as_tensor(b, a)
    tensors = [t.data for t in (a, b) if isinstance(t, Tensor)]
    if hasattr(cond, "shape"):
        _check_devices("where", cond, *tensors)
    else:
        _check_devices("where", *tensors)
    xp = backend.xp_of(tensors[0] if tensors else cond)

    def zero(g):
        return xp.zeros((), dtype=g.dtype)

    return _binary(
        "where",
        a,
        b,
        lambda x, y: xp.where(cond, x, y),
        lambda g, x, y, out: xp.where(cond, g, zero(g)),
        lambda g, x, y, out: xp.where(cond, zero(g), g),
    )


# ---------------------------------------------------------------- comparisons (no gradient)


def _compare(name: str):
    def compare(a, b) -> Tensor:
        x = a.data if isinstance(a, Tensor) else _scalar(a)
        y = b.data if isinstance(b, Tensor) else _scalar(b)
        if hasattr(x, "shape") and hasattr(y, "shape"):
            _check_devices(name, x, y)
        return Tensor(getattr(backend.xp_of(x if hasattr(x, "shape") else y), name)(x, y))

    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a bool tensor; not differentiable."
    return compare


less, less_equal, greater, greater_equal, equal, not_equal = (
    _compare(n) for n in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")
)
