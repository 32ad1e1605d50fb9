"""Indexing: picking elements by position (a[index], gather) or by a mask (masked_fill).

The backward of picking is putting back: g goes to the positions it was read from, and
is *added* there, so that a position read twice receives both gradients (a scatter-add).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._helpers import _check_devices, _input, _normalize_axis, _unary
from .elementwise import where


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


def gather(a, dim: int, index) -> Tensor:
    """Values picked along `dim` by an integer index tensor of the same number of dims:

        out[i][j] = a[index[i][j]][j]   (dim=0)      out[i][j] = a[i][index[i][j]]   (dim=1)

    out has index's shape. d/da = zeros with g scatter-added back at the picked positions.

        >>> mg.tensor([[1.0, 2.0], [3.0, 4.0]]).gather(1, mg.tensor([[1], [0]]))  # [[2.], [3.]]
    """
    a = _input(a)
    if isinstance(index, Tensor):
        index = index.data
    elif not backend.is_gpu_array(index):
        index = backend.to_device(np.asarray(index), a.device)
    if index.dtype.kind not in "iu":
        raise TypeError(f"gather: index must hold integers, got dtype {index.dtype}")
    if index.ndim != a.ndim:
        raise ValueError(
            f"gather: index has {index.ndim} dims but the input has {a.ndim}; they must match"
        )
    _check_devices("gather", a.data, index)
    (ax,) = _normalize_axis(dim, a.ndim) or (None,)
    for d, (n, m) in enumerate(zip(index.shape, a.shape)):
        if d != ax and n > m:
            raise ValueError(
                f"gather: index of shape {index.shape} is larger than the input {a.shape} "
                f"in dim {d}"
            )
    xp = backend.xp_of(a.data)
    if ax is None:  # 0-d
        return _unary("gather", a, lambda x, xp: x.copy(), lambda g, x, out, xp: g)
    # Every output element's full position in `a`: index along dim, its own place elsewhere.
    positions = tuple(
        index if d == ax else xp.arange(n).reshape([-1 if i == d else 1 for i in range(a.ndim)])
        for d, n in enumerate(index.shape)
    )

    def backward(g, x, out, xp):
        grad = xp.zeros_like(x)
        backend.scatter_add(grad, positions, g)
        return grad

    return _unary("gather", a, lambda x, xp: x[positions], backward)


def masked_fill(a, mask, value) -> Tensor:
    """`value` where `mask` is True, a elsewhere (mask broadcasts against a);
    d/da = g where the mask is False, else 0."""
    a = _input(a)
    mask = mask.data if isinstance(mask, Tensor) else mask
    if getattr(mask, "dtype", None) is None or mask.dtype.kind != "b":
        raise TypeError("masked_fill: mask must be a bool tensor, e.g. x > 0")
    return where(mask, value, a)
