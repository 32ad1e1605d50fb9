"""Conversions: to another dtype or device, and copies (`.float()`, `.to(...)`, `.clone()`).

A dtype conversion is differentiable (the gradient is converted back); a device move makes
a new leaf (the gradient does not flow between devices).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._helpers import _unary
from .elementwise import astype


def clone(a: Tensor) -> Tensor:
    """A copy with its own array, still in the graph;  d/da = g."""
    return _unary("clone", a, lambda x, xp: x.copy(), lambda g, x, out, xp: g)


def _parse_to(args, dtype, device):
    """x.to("gpu"), x.to(mg.float64), x.to("cpu", mg.float64), x.to(other_tensor)."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype, device = arg.dtype, arg.device
        elif isinstance(arg, str) and arg.split(":")[0].strip().lower() in ("cpu", "gpu", "cuda"):
            device = arg
        else:
            dtype = arg
    return (None if dtype is None else np.dtype(dtype)), device


def to(a: Tensor, *args, dtype=None, device=None) -> Tensor:
    """This tensor in another dtype and/or on another device (itself when nothing changes).

    x.to("gpu");  x.to(mg.float64);  x.to("cuda", mg.float16);  x.to(other)
    """
    dtype, device = _parse_to(args, dtype, device)
    out = a
    if dtype is not None and dtype != a.dtype:
        out = astype(out, dtype)
    if device is not None and backend.normalize_device(device) != a.device:
        out = out._to_device(backend.normalize_device(device))
    return out


def to_float(a: Tensor) -> Tensor:
    """This tensor as float32 (PyTorch's default floating dtype)."""
    return to(a, np.float32)


def to_double(a: Tensor) -> Tensor:
    """This tensor as float64."""
    return to(a, np.float64)


def to_half(a: Tensor) -> Tensor:
    """This tensor as float16."""
    return to(a, np.float16)


def to_long(a: Tensor) -> Tensor:
    """This tensor as int64 (not differentiable)."""
    return Tensor(a.data.astype(np.int64)) if a.dtype != np.int64 else a
