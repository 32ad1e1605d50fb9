"""linear(x, W, b) = x @ W.T + b as one fused op."""

from __future__ import annotations

from ... import backend
from ...ops import check_same_dtype
from ...tensor import Tensor
from ._common import _as_tensor


def linear(x, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ W.T + b as one op.  x (..., in), W (out, in), b (out,) -> y (..., out).

    Backward, with x and g flattened to (M, in) and (M, out):
        dx = g @ W,  dW = g.T @ x,  db = g summed over M.
    One node instead of three (transpose, matmul, add), and dx is not computed at all for
    an input that needs no gradient (the data batch).
    x must have W's dtype: a float64 batch for a float32 model raises (convert with
    x.float()) instead of computing silently in float64, as PyTorch.
    """
    x = _as_tensor(x)
    xd, w = x.data, weight.data
    if xd.shape[-1:] != w.shape[1:]:
        raise ValueError(
            f"linear: input of shape {xd.shape} has {xd.shape[-1] if xd.ndim else 0} features, "
            f"the weight of shape {w.shape} expects {w.shape[1]}"
        )
    if xd.dtype != w.dtype:
        check_same_dtype("linear", xd, w, ("input", "weight"))
    if backend.device_of(xd) != backend.device_of(w):
        raise backend.DeviceError(
            f"linear: the input is on {backend.device_of(xd)} but the weight is on "
            f"{backend.device_of(w)}; move the batch or the model (model.to(...))"
        )
    x2 = xd.reshape(-1, w.shape[1])
    out = backend.matmul(x2, w.T)
    if bias is not None:
        out += bias.data  # in place on a fresh array: no extra temporary
    out = out.reshape(xd.shape[:-1] + (w.shape[0],))
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        g2 = g.reshape(-1, w.shape[0])
        dx = backend.matmul(g2, w).reshape(xd.shape) if x.requires_grad else None
        dw = backend.matmul(g2.T, x2) if weight.requires_grad else None
        if bias is None:
            return dx, dw
        return dx, dw, (g2.sum(axis=0) if bias.requires_grad else None)

    return Tensor._from_op(out, parents, backward, "linear")
