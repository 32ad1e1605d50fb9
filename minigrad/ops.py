"""Every differentiable op: its forward on arrays and its backward rule, side by side.

Each op takes tensors (or plain numbers), computes its result on the arrays with
`xp = backend.xp_of(array)` (NumPy or CuPy: one code path for both), and returns a Tensor
that remembers a `backward(g)` closure. `g` is dloss/dout, an array shaped like the output;
the closure returns dloss/dinput for each input, shaped like that input.

Broadcasting: when `x` (shape (3, 1)) meets `y` (shape (4,)) the output has shape (3, 4).
Each element of x was used 4 times, so its gradient is the sum over the broadcast axes:
`unbroadcast(g, x.shape)` undoes the broadcast in backward.

Importing this module installs the ops as Tensor methods and operators (`a + b`, `a @ b`,
`a.sum()`), which is why `minigrad/__init__.py` imports it.
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from . import backend
from .tensor import Tensor, is_grad_enabled

# ---------------------------------------------------------------- helpers


def unbroadcast(grad, shape: tuple):
    """Sum `grad` over the axes that broadcasting added or stretched, back to `shape`.

    (2, 3, 4) -> (3, 1): sum over axis 0 (added) and axis 2 (stretched from 1).
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    stretched = tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    axes = tuple(range(extra)) + stretched
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _check_devices(op: str, *arrays) -> None:
    devices = {backend.device_of(a) for a in arrays}
    if len(devices) > 1:
        raise backend.DeviceError(
            f"{op}: inputs live on different devices ({' and '.join(sorted(devices))}); "
            "move them to one device first, e.g. with .to('gpu') or model.to('gpu')"
        )


def _as_tensor(value, like: Tensor) -> Tensor:
    """Wrap an array operand (NumPy/CuPy/list) as a constant tensor, keeping its dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)):
        value = np.asarray(value, dtype=like.dtype if like.dtype.kind == "f" else None)
    return Tensor(value)


def _normalize_axis(axis, ndim: int) -> tuple | None:
    """`axis` as a tuple of non-negative ints; out of range raises (a % ndim would hide it)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(a % ndim for a in axes)


def _expand_reduced(g, axes: tuple | None, keepdims: bool, shape: tuple):
    """Put back the axes a reduction removed, so `g` broadcasts against the input."""
    xp = backend.xp_of(g)
    g = xp.asarray(g)
    if axes is not None and not keepdims:
        g = xp.expand_dims(g, axes)
    elif axes is None and not keepdims:
        g = g.reshape((1,) * len(shape))
    return g


# ---------------------------------------------------------------- the two op shapes


def _unary(op: str, a: Tensor, forward, backward) -> Tensor:
    """forward(x, xp) -> out;  backward(g, x, out, xp) -> dloss/dx."""
    x = a.data
    xp = backend.xp_of(x)
    out = forward(x, xp)
    return Tensor._from_op(out, (a,), lambda g: (backward(g, x, out, xp),), op)


def _binary(op: str, a, b, forward, grad_a, grad_b) -> Tensor:
    """forward(x, y) -> out;  grad_a(g, x, y, out) -> dloss/dx before unbroadcasting; same for b.

    Either side may be a plain Python number: it is used as is and gets no gradient.
    """
    if not isinstance(a, Tensor):
        a = a if isinstance(a, numbers.Number) else _as_tensor(a, b)
    if not isinstance(b, Tensor):
        b = b if isinstance(b, numbers.Number) else _as_tensor(b, a)
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    if isinstance(a, Tensor) and isinstance(b, Tensor) and type(x) is not type(y):
        _check_devices(op, x, y)
    out = forward(x, y)
    parents = tuple(t for t in (a, b) if isinstance(t, Tensor))

    def backward(g):
        grads = []
        if isinstance(a, Tensor):
            grads.append(unbroadcast(grad_a(g, x, y, out), x.shape) if a.requires_grad else None)
        if isinstance(b, Tensor):
            grads.append(unbroadcast(grad_b(g, x, y, out), y.shape) if b.requires_grad else None)
        return grads

    return Tensor._from_op(out, parents, backward, op)


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
    """a / b;  d/da = g / b,  d/db = -g * a / b**2 = -g * out / b."""
    return _binary(
        "div",
        a,
        b,
        lambda x, y: x / y,
        lambda g, x, y, out: g / y,
        lambda g, x, y, out: -g * out / y,
    )


def pow(a, b) -> Tensor:
    """a ** b;  d/da = g * b * a**(b-1),  d/db = g * out * log(a)."""
    return _binary(
        "pow",
        a,
        b,
        lambda x, y: x**y,
        lambda g, x, y, out: g * y * x ** (y - 1),
        lambda g, x, y, out: g * out * backend.xp_of(out).log(x),
    )


def neg(a: Tensor) -> Tensor:
    """-a;  d/da = -g."""
    return _unary("neg", a, lambda x, xp: -x, lambda g, x, out, xp: -g)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product as numpy.matmul: 1-D (vectors), 2-D, and batched with broadcasting.

    (..., m, k) @ (..., k, n) -> (..., m, n);  d/da = g @ b^T,  d/db = a^T @ g.
    A 1-D operand is treated as a row (left) or column (right) whose extra axis is dropped.
    """
    a, b = _as_tensor(a, b), _as_tensor(b, a)
    x, y = a.data, b.data
    _check_devices("matmul", x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("matmul: both operands need at least one dimension; use * for scalars")
    x2 = x[None, :] if x.ndim == 1 else x  # (k,) -> (1, k)
    y2 = y[:, None] if y.ndim == 1 else y  # (k,) -> (k, 1)
    if x2.shape[-1] != y2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {x.shape} and {y.shape} do not match "
            f"(inner dimensions {x2.shape[-1]} and {y2.shape[-2]} differ)"
        )
    xp = backend.xp_of(x)
    out = backend.matmul(x, y)

    def backward(g):
        # Put back the axes a 1-D operand dropped; the column's first, so that the 0-d g of
        # vector @ vector becomes (1,) and then (1, 1).
        g2 = g
        if y.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        if x.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        dx = dy = None
        if a.requires_grad:
            dx = unbroadcast(backend.matmul(g2, xp.swapaxes(y2, -1, -2)), x2.shape).reshape(x.shape)
        if b.requires_grad:
            dy = unbroadcast(backend.matmul(xp.swapaxes(x2, -1, -2), g2), y2.shape).reshape(y.shape)
        return dx, dy

    return Tensor._from_op(out, (a, b), backward, "matmul")


# ---------------------------------------------------------------- elementwise functions


def exp(a: Tensor) -> Tensor:
    """e**a;  d/da = g * out."""
    return _unary("exp", a, lambda x, xp: xp.exp(x), lambda g, x, out, xp: g * out)


def log(a: Tensor) -> Tensor:
    """Natural log;  d/da = g / a."""
    return _unary("log", a, lambda x, xp: xp.log(x), lambda g, x, out, xp: g / x)


def sqrt(a: Tensor) -> Tensor:
    """Square root;  d/da = g / (2 * out)."""
    return _unary("sqrt", a, lambda x, xp: xp.sqrt(x), lambda g, x, out, xp: g / (2 * out))


def tanh(a: Tensor) -> Tensor:
    """tanh;  d/da = g * (1 - out**2)."""
    return _unary("tanh", a, lambda x, xp: xp.tanh(x), lambda g, x, out, xp: g * (1 - out * out))


def sigmoid(a: Tensor) -> Tensor:
    """1 / (1 + e**-a), computed as 0.5 * tanh(a / 2) + 0.5, which cannot overflow;
    d/da = g * out * (1 - out)."""
    return _unary(
        "sigmoid",
        a,
        lambda x, xp: 0.5 * xp.tanh(0.5 * x) + 0.5,
        lambda g, x, out, xp: g * out * (1 - out),
    )


def relu(a: Tensor) -> Tensor:
    """max(a, 0);  d/da = g where a > 0, else 0.

    The mask a > 0 is made in forward, while `a` is still in cache, and kept for backward:
    backward then reads one byte per element instead of a's four, long after `a` has left
    the cache (on the CPU this is memory traffic a training step waits for).
    """
    x = a.data
    out = backend.xp_of(x).maximum(x, 0)
    if not (a.requires_grad and is_grad_enabled()):
        return Tensor(out)
    positive = x > 0
    return Tensor._from_op(out, (a,), lambda g: (g * positive,), "relu")


def abs(a: Tensor) -> Tensor:
    """|a|;  d/da = g * sign(a) (0 at a = 0)."""
    return _unary("abs", a, lambda x, xp: xp.abs(x), lambda g, x, out, xp: g * xp.sign(x))


def astype(a: Tensor, dtype) -> Tensor:
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


def clip(a: Tensor, min=None, max=None) -> Tensor:
    """Values limited to [min, max] (either may be None);  d/da = g inside the range, else 0."""
    if min is None and max is None:
        raise ValueError("clip: give min, max, or both")

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


# ---------------------------------------------------------------- reductions


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over `axis` (all axes when None);  d/da = g broadcast back to a's shape."""
    axes = _normalize_axis(axis, a.ndim)
    shape = a.shape

    def backward(g, x, out, xp):
        return xp.broadcast_to(_expand_reduced(g, axes, keepdims, shape), shape)

    return _unary("sum", a, lambda x, xp: xp.sum(x, axis=axes, keepdims=keepdims), backward)


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over `axis`;  d/da = g / n broadcast back, n the number of averaged elements."""
    axes = _normalize_axis(axis, a.ndim)
    shape = a.shape
    count = a.size if axes is None else int(np.prod([shape[i] for i in axes]))

    def backward(g, x, out, xp):
        return xp.broadcast_to(_expand_reduced(g, axes, keepdims, shape) / count, shape)

    return _unary("mean", a, lambda x, xp: xp.mean(x, axis=axes, keepdims=keepdims), backward)


def _extreme(op: str, a: Tensor, axis, keepdims: bool) -> Tensor:
    """max or min over `axis`; the gradient is shared evenly among the tied extreme elements."""
    axes = _normalize_axis(axis, a.ndim)
    shape = a.shape

    def forward(x, xp):
        return getattr(xp, op)(x, axis=axes, keepdims=keepdims)

    def backward(g, x, out, xp):
        out_kept = _expand_reduced(out, axes, keepdims, shape)
        chosen = (x == out_kept).astype(g.dtype)
        chosen /= chosen.sum(axis=axes, keepdims=True)
        return chosen * _expand_reduced(g, axes, keepdims, shape)

    return _unary(op, a, forward, backward)


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Largest value over `axis`; ties share the gradient evenly."""
    return _extreme("max", a, axis, keepdims)


def min(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Smallest value over `axis`; ties share the gradient evenly."""
    return _extreme("min", a, axis, keepdims)


def logsumexp(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(a))) over `axis`, computed stably as m + log(sum(exp(a - m))), m = max(a).

    d/da = g * exp(a - out) = g * softmax(a).
    """
    axes = _normalize_axis(axis, a.ndim)
    shape = a.shape

    def forward(x, xp):
        m = xp.max(x, axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), dtype=x.dtype))
        s = xp.sum(xp.exp(x - m), axis=axes, keepdims=True)
        # An all -inf row sums to 0 and its logsumexp is -inf; log(1) there instead of log(0)
        # gives that without NumPy's divide-by-zero warning.
        empty = s == 0
        out = xp.where(empty, -xp.inf, xp.log(xp.where(empty, 1, s)) + m)
        return out if keepdims else (out.reshape(()) if axes is None else xp.squeeze(out, axes))

    def backward(g, x, out, xp):
        out_kept = _expand_reduced(out, axes, keepdims, shape)
        # All -inf rows: exp(-inf - 0) = 0 rather than exp(-inf - -inf) = nan.
        out_kept = xp.where(out_kept == -xp.inf, 0, out_kept)
        return _expand_reduced(g, axes, keepdims, shape) * xp.exp(x - out_kept)

    return _unary("logsumexp", a, forward, backward)


# ---------------------------------------------------------------- shape ops


def reshape(a: Tensor, *shape) -> Tensor:
    """The same values in a new shape (-1 allowed once);  d/da = g reshaped back."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return _unary(
        "reshape", a, lambda x, xp: x.reshape(shape), lambda g, x, out, xp: g.reshape(x.shape)
    )


def permute(a: Tensor, *dims) -> Tensor:
    """The axes reordered: out.shape[i] = a.shape[dims[i]] (PyTorch's permute);
    d/da = g permuted back by the inverse order.

        >>> mg.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
    """
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    if len(dims) != a.ndim:
        raise ValueError(
            f"permute: a tensor with {a.ndim} dimensions needs {a.ndim} dims, got {dims}; "
            "to swap just two axes use transpose(dim0, dim1)"
        )
    # Negative dims made non-negative first: argsort of (0, -1, -2) is not the inverse.
    dims = _normalize_axis(dims, a.ndim)
    if len(set(dims)) != len(dims):
        raise ValueError(f"permute: dims {dims} repeat an axis; each axis must appear once")
    inverse = tuple(int(i) for i in np.argsort(dims))
    return _unary(
        "permute",
        a,
        lambda x, xp: xp.transpose(x, dims),
        lambda g, x, out, xp: xp.transpose(g, inverse),
    )


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Axes dim0 and dim1 swapped (PyTorch's meaning, not NumPy's); d/da = g swapped back.

    >>> mg.zeros(2, 3).transpose(0, 1).shape      # (3, 2); x.T and x.mT say the same
    """
    # A 0-d tensor has one "axis" to name (0 or -1), as in PyTorch.
    d0, d1 = _normalize_axis((dim0, dim1), builtins.max(a.ndim, 1))
    dims = list(range(a.ndim))
    if not dims:
        return permute(a)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(a, dims)


def _transpose_method(self: Tensor, *dims) -> Tensor:
    if len(dims) != 2:
        raise TypeError(
            f"transpose takes two dims, as in PyTorch: x.transpose(dim0, dim1) swaps them "
            f"(got {dims}); to reorder every axis use x.permute(*dims)"
        )
    return transpose(self, *dims)


def _T(self: Tensor) -> Tensor:
    """x.T: the axes reversed (for a matrix, its transpose), as in PyTorch."""
    return permute(self, tuple(reversed(range(self.ndim))))


def _mT(self: Tensor) -> Tensor:
    """x.mT: the last two axes swapped (a batch of matrices, each transposed)."""
    if self.ndim < 2:
        raise ValueError(f"x.mT needs at least 2 dimensions, got a tensor of shape {self.shape}")
    return transpose(self, -2, -1)


def getitem(a: Tensor, index) -> Tensor:
    """a[index] with slices, integers and integer arrays.

    d/da = zeros with g added at the indexed positions. Added, not assigned: an index that
    appears twice (a[[0, 0]]) receives both gradients (a scatter-add).
    """
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [i for i in parts if hasattr(i, "shape") or isinstance(i, list)]
    for i in arrays:
        if hasattr(i, "shape"):
            _check_devices("indexing", a.data, i)

    def backward(g, x, out, xp):
        grad = xp.zeros_like(x)
        if arrays:
            backend.scatter_add(grad, index, g)
        else:
            grad[index] = g  # slices and integers never hit one element twice
        return grad

    return _unary("getitem", a, lambda x, xp: x[index], backward)


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis;  each input gets its slice of g."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    arrays = [t.data for t in tensors]
    _check_devices("concatenate", *arrays)
    xp = backend.xp_of(arrays[0])
    out = xp.concatenate(arrays, axis=axis)
    boundaries = np.cumsum([x.shape[axis] for x in arrays])[:-1].tolist()

    def backward(g):
        return xp.split(g, boundaries, axis=axis)

    return Tensor._from_op(out, tuple(tensors), backward, "concatenate")


def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis;  each input gets its slice of g."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    arrays = [t.data for t in tensors]
    _check_devices("stack", *arrays)
    xp = backend.xp_of(arrays[0])
    out = xp.stack(arrays, axis=axis)

    def backward(g):
        return [xp.take(g, i, axis=axis) for i in range(len(tensors))]

    return Tensor._from_op(out, tuple(tensors), backward, "stack")


# ---------------------------------------------------------------- comparisons (no gradient)


def _compare(name: str):
    def compare(a, b) -> Tensor:
        x = a.data if isinstance(a, Tensor) else a
        y = b.data if isinstance(b, Tensor) else b
        if hasattr(x, "shape") and hasattr(y, "shape"):
            _check_devices(name, x, y)
        return Tensor(getattr(backend.xp_of(x if hasattr(x, "shape") else y), name)(x, y))

    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a bool tensor; not differentiable."
    return compare


less, less_equal, greater, greater_equal, equal, not_equal = (
    _compare(n) for n in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")
)


# ---------------------------------------------------------------- Tensor methods and operators


def _install_tensor_methods() -> None:
    methods = {
        "__add__": add,
        "__radd__": lambda self, other: add(other, self),
        "__sub__": sub,
        "__rsub__": lambda self, other: sub(other, self),
        "__mul__": mul,
        "__rmul__": lambda self, other: mul(other, self),
        "__truediv__": div,
        "__rtruediv__": lambda self, other: div(other, self),
        "__pow__": pow,
        "__rpow__": lambda self, other: pow(other, self),
        "__matmul__": matmul,
        "__rmatmul__": lambda self, other: matmul(other, self),
        "__neg__": neg,
        "__getitem__": getitem,
        "__lt__": less,
        "__le__": less_equal,
        "__gt__": greater,
        "__ge__": greater_equal,
        "__eq__": equal,
        "__ne__": not_equal,
        "exp": exp,
        "log": log,
        "sqrt": sqrt,
        "tanh": tanh,
        "sigmoid": sigmoid,
        "relu": relu,
        "abs": abs,
        "astype": astype,
        "clip": clip,
        "sum": sum,
        "mean": mean,
        "max": max,
        "min": min,
        "logsumexp": logsumexp,
        "reshape": reshape,
        "transpose": _transpose_method,
        "permute": permute,
        "matmul": matmul,
        "T": property(_T),
        "mT": property(_mT),
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.__hash__ = object.__hash__  # defining __eq__ must not make tensors unhashable


_install_tensor_methods()
