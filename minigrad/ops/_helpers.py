"""What every op family shares: the two op shapes, broadcasting, axes, type promotion.

`_unary` and `_binary` are the skeleton of almost every op: compute the forward on arrays
with `xp = backend.xp_of(array)` (NumPy or CuPy: one code path), and return a Tensor that
remembers a `backward(g)` closure. `g` is dloss/dout, shaped like the output; the closure
returns dloss/dinput for each input, shaped like that input.

Broadcasting: when `x` (shape (3, 1)) meets `y` (shape (4,)) the output has shape (3, 4).
Each element of x was used 4 times, so its gradient is the sum over the broadcast axes:
`unbroadcast(g, x.shape)` undoes the broadcast in backward.

Type promotion follows PyTorch: a number (Python, NumPy scalar, 0-d array) never widens a
tensor's dtype (float32 * 2.0 stays float32); tensors of different dtypes meet at the wider
one (float32 + float64 -> float64), except that a 0-d tensor does not widen a tensor with
dimensions of the same kind (see `_promote`).
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor, tensor

# ---------------------------------------------------------------- broadcasting and devices


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


# ---------------------------------------------------------------- operands


def _as_tensor(value, like: Tensor) -> Tensor:
    """Wrap an array operand (NumPy/CuPy/list) as a constant tensor, keeping its dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)):
        value = np.asarray(value, dtype=like.dtype if like.dtype.kind == "f" else None)
    return Tensor(value)


def _input(value) -> Tensor:
    """The tensor argument of a one-input op: `mg.exp(2.0)` works as `mg.exp(mg.tensor(2.0))`."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (numbers.Number, list, tuple)):
        return tensor(value)  # float32 / int64 defaults, as mg.tensor
    if isinstance(value, np.ndarray) or backend.is_gpu_array(value):
        return Tensor(value)
    raise TypeError(
        f"expected a Tensor, a number or an array, got {type(value).__name__}; "
        "wrap it with mg.tensor(...)"
    )


def _scalar(value):
    """A NumPy scalar or 0-d array as a Python number, so that it cannot widen the dtype.

    NumPy 2 (NEP 50) lets `float32_array * np.float64(2)` become float64; PyTorch keeps
    float32 for any scalar. Python numbers are "weak" in NumPy too, so converting is enough.
    """
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def _promote(a: Tensor, b: Tensor) -> np.dtype:
    """The result dtype of an elementwise op on two tensors of different dtypes (PyTorch's).

    Kinds rank bool < integer < float, and a higher kind wins outright (float32 + int64 ->
    float32, where NumPy says float64). Within one kind the wider dtype wins. A tensor with
    dimensions meeting a 0-d tensor: the 0-d one decides only if its kind is higher (int64
    [1, 2] + float64 0.5 -> float64, but float32 [1, 2] + float64 0.5 -> float32).
    """
    rank_a, rank_b = _KIND_RANK[a.dtype.kind], _KIND_RANK[b.dtype.kind]
    if (a.ndim == 0) != (b.ndim == 0):
        dims, zero = (a, b) if b.ndim == 0 else (b, a)
        return (
            zero.dtype if _KIND_RANK[zero.dtype.kind] > _KIND_RANK[dims.dtype.kind] else dims.dtype
        )
    if rank_a != rank_b:
        return a.dtype if rank_a > rank_b else b.dtype
    return np.promote_types(a.dtype, b.dtype)


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _number_dtype(t: Tensor, number) -> np.dtype | None:
    """The dtype t must be cast to before meeting a Python number, or None if it stays.

    An integer or bool tensor meeting a float becomes float32 (PyTorch's default dtype;
    NumPy would pick float64); a bool tensor meeting an int becomes int64.
    """
    kind = t.dtype.kind
    if kind == "f" or isinstance(number, bool):
        return None
    if isinstance(number, float):
        return np.dtype(np.float32)
    if kind == "b" and isinstance(number, numbers.Integral):
        return np.dtype(np.int64)
    return None


# ---------------------------------------------------------------- axes


def _pick(name: str, torch_value, numpy_value, default):
    """One value from PyTorch's spelling (dim=, keepdim=) or NumPy's (axis=, keepdims=)."""
    if numpy_value is None:
        return default if torch_value is None else torch_value
    if torch_value is not None:
        raise TypeError(f"give {name} once: PyTorch's and NumPy's spellings mean the same")
    return numpy_value


def _normalize_axis(axis, ndim: int) -> tuple | None:
    """`axis` as a tuple of non-negative ints; out of range raises (a % ndim would hide it).

    A 0-d tensor accepts dim 0 or -1 (as PyTorch), which names no axis: ().
    """
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for a in axes:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"dims must be integers, got {a!r}")
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise IndexError(f"dim {a} is out of range for a tensor with {ndim} dimensions")
    if ndim == 0:
        return ()
    axes = tuple(int(a) % ndim for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"dims {axis} name an axis twice")
    return axes


def _expand_reduced(g, axes: tuple | None, keepdims: bool, shape: tuple):
    """Put back the axes a reduction removed, so `g` broadcasts against the input."""
    xp = backend.xp_of(g)
    g = xp.asarray(g)
    if axes is not None and not keepdims:
        g = xp.expand_dims(g, axes)
    elif axes is None and not keepdims:
        g = g.reshape((1,) * len(shape))
    return g


def _shape_args(shape) -> tuple:
    """`f(2, 3)` and `f((2, 3))` both mean the shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


# ---------------------------------------------------------------- the two op shapes


def _unary(op: str, a, forward, backward) -> Tensor:
    """forward(x, xp) -> out;  backward(g, x, out, xp) -> dloss/dx."""
    if not isinstance(a, Tensor):
        a = _input(a)
    x = a.data
    xp = backend.xp_of(x)
    out = forward(x, xp)
    return Tensor._from_op(out, (a,), lambda g: (backward(g, x, out, xp),), op)


def _binary(op: str, a, b, forward, grad_a, grad_b) -> Tensor:
    """forward(x, y) -> out;  grad_a(g, x, y, out) -> dloss/dx before unbroadcasting; same for b.

    Either side may be a number: it is used as is (it never widens the dtype) and gets no
    gradient. Two tensors of different dtypes meet at the promoted dtype (`_promote`).
    """
    if not isinstance(a, Tensor):
        a = _operand(a, b)
    if not isinstance(b, Tensor):
        b = _operand(b, a)
    a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
    if a_is and b_is:
        x, y = a.data, b.data
        if x.dtype is not y.dtype and x.dtype != y.dtype:  # `is` first: the cheap common case
            a, b = _cast_pair(a, b)
            x, y = a.data, b.data
        if type(x) is not type(y):
            _check_devices(op, x, y)
    else:
        if not (a_is or b_is):
            a, a_is = _input(a), True  # two numbers: mg.add(2, 3)
        if (a.data if a_is else b.data).dtype.kind != "f":
            a, b = _cast_for_number(a, b)  # an integer tensor meets a float: float32, as PyTorch
        x = a.data if a_is else a
        y = b.data if b_is else b
    out = forward(x, y)
    parents = tuple(t for t in (a, b) if isinstance(t, Tensor))

    def backward(g):
        grads = []
        if a_is:
            grads.append(unbroadcast(grad_a(g, x, y, out), x.shape) if a.requires_grad else None)
        if b_is:
            grads.append(unbroadcast(grad_b(g, x, y, out), y.shape) if b.requires_grad else None)
        return grads

    return Tensor._from_op(out, parents, backward, op)


def _operand(value, other):
    """A non-tensor operand: numbers stay numbers (weak dtype), arrays become tensors."""
    if type(value) in (float, int):  # the common case, first
        return value
    value = _scalar(value)  # np.float64 is a float subclass, but NumPy lets it widen
    if isinstance(value, numbers.Number):
        return value
    return _as_tensor(value, other) if isinstance(other, Tensor) else _input(value)


def _cast_pair(a: Tensor, b: Tensor):
    from .elementwise import astype  # differentiable cast: the gradient returns in a's dtype

    dtype = _promote(a, b)
    a = a if a.dtype == dtype else astype(a, dtype)
    return a, (b if b.dtype == dtype else astype(b, dtype))


def _cast_for_number(a, b):
    from .elementwise import astype

    t, number = (a, b) if isinstance(a, Tensor) else (b, a)
    dtype = _number_dtype(t, number)
    if dtype is None:
        return a, b
    t = astype(t, dtype)
    return (t, b) if isinstance(a, Tensor) else (a, t)
