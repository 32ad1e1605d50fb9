"""Linear algebra: the matrix product. Every product on arrays goes through
`backend.matmul(a, b)`, the one seam where the GPU path can use its own cuBLAS calls."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from ._helpers import _as_tensor, _check_devices, unbroadcast


def check_same_dtype(op: str, x, w, names=("input", "other")) -> None:
    """Two operands of a matrix product must share a dtype (as in PyTorch): a float64 batch
    meeting float32 weights is an error, not a silent float64 computation (twice the memory,
    several times slower, and no longer the model's dtype)."""
    if x.dtype != w.dtype:
        method = {"float32": ".float()", "float64": ".double()", "float16": ".half()"}
        to = method.get(str(w.dtype), f".to({str(w.dtype)!r})")
        raise TypeError(
            f"{op}: the {names[0]} is {x.dtype} but the {names[1]} is {w.dtype}; they must "
            f"match (minigrad, as PyTorch, does not promote here). Convert the {names[0]}: "
            f"x{to}; from a NumPy array, mg.tensor(array) makes float32"
        )


def matmul(a, b) -> Tensor:
    """Matrix product as numpy.matmul: 1-D (vectors), 2-D, and batched with broadcasting.

    (..., m, k) @ (..., k, n) -> (..., m, n);  d/da = g @ b^T,  d/db = a^T @ g.
    A 1-D operand is treated as a row (left) or column (right) whose extra axis is dropped.
    Both operands must have one dtype (as PyTorch): float64 @ float32 raises.
    """
    a, b = _as_tensor(a, b), _as_tensor(b, a)
    x, y = a.data, b.data
    _check_devices("matmul", x, y)
    if x.dtype != y.dtype:
        check_same_dtype("matmul", x, y, ("left operand", "right operand"))
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
