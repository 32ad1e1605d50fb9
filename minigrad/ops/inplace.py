"""In-place ops: `p -= lr * g`, `x.add_(y)`, `x.zero_()` write into the tensor's own array.

The array object stays the same (a parameter's array is cached elsewhere, e.g. by pointer
in the GPU optimizer), only its values change. minigrad does not record in-place changes
in the graph, so, as in PyTorch, they are refused on a tensor that requires gradients
while graph building is on: wrap a hand-written update in `with mg.no_grad():`.

Each change bumps the tensor's version (tensor._mark_changed); backward() raises if a
tensor changed after an op that saved it for backward.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor, _mark_changed, is_grad_enabled
from ._helpers import _check_devices, _scalar


def _prepare(op: str, t: Tensor, other=None, any_dtype: bool = False):
    """Check that `t` may be changed in place by `other`; return other as an array or number."""
    if is_grad_enabled() and (t.requires_grad or getattr(other, "requires_grad", False)):
        raise RuntimeError(
            f"{op}: in-place change of a tensor that requires grad while the graph is being "
            "recorded. minigrad does not record in-place changes, so the gradient would be "
            "silently wrong. For an update of a parameter, step outside the graph:\n"
            "    with mg.no_grad():\n"
            "        p -= lr * grads[p]\n"
            "For a new value computed from the tensor, write y = x + ... (a new tensor)"
        )
    if isinstance(other, Tensor):
        other = other.data
    other = _scalar(other)
    if isinstance(other, (list, tuple)):
        other = backend.to_device(np.asarray(other), t.device)
    if hasattr(other, "shape"):
        _check_devices(op, t.data, other)
        if not _broadcasts_to(other.shape, t.shape):
            raise ValueError(
                f"{op}: a value of shape {other.shape} cannot be written into a tensor of "
                f"shape {t.shape} (it must broadcast to it)"
            )
    kind = other.dtype.kind if hasattr(other, "dtype") else type(other).__name__
    if not any_dtype and t.dtype.kind in "biu" and kind in ("f", "float"):
        raise TypeError(
            f"{op}: a float value cannot be written into a {t.dtype} tensor in place; "
            "convert first: x = x.float()"
        )
    return other


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _done(t: Tensor) -> Tensor:
    _mark_changed(t)
    return t


def add_(t: Tensor, other, alpha=1) -> Tensor:
    """t += alpha * other, in place;  returns t."""
    other = _prepare("add_", t, other)
    t.data += other if alpha == 1 else alpha * other
    return _done(t)


def sub_(t: Tensor, other, alpha=1) -> Tensor:
    """t -= alpha * other, in place;  returns t."""
    other = _prepare("sub_", t, other)
    t.data -= other if alpha == 1 else alpha * other
    return _done(t)


def mul_(t: Tensor, other) -> Tensor:
    """t *= other, in place;  returns t."""
    other = _prepare("mul_", t, other)
    t.data *= other
    return _done(t)


def div_(t: Tensor, other) -> Tensor:
    """t /= other, in place;  returns t (floating-point tensors only)."""
    other = _prepare("div_", t, other)
    if t.dtype.kind != "f":
        raise TypeError(f"div_: true division of a {t.dtype} tensor in place; use x = x / y")
    t.data /= other
    return _done(t)


def zero_(t: Tensor) -> Tensor:
    """Every element set to 0, in place;  returns t."""
    _prepare("zero_", t)
    t.data.fill(0)
    return _done(t)


def fill_(t: Tensor, value) -> Tensor:
    """Every element set to `value`, in place;  returns t."""
    value = _prepare("fill_", t, value, any_dtype=True)
    t.data[...] = value
    return _done(t)


def copy_(t: Tensor, src) -> Tensor:
    """The values of `src` (broadcast to t's shape, cast to t's dtype) written into t."""
    t.data[...] = _prepare("copy_", t, src, any_dtype=True)  # assignment casts, as copy_
    return _done(t)
