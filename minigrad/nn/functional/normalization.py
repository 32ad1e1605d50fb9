"""batch_norm and layer_norm: normalize to mean 0 and variance 1, then scale and shift.

Both compute, over some axes of x (the "statistics axes"),

    mean = mean(x),  var = mean((x - mean)**2)        (the biased variance, as PyTorch)
    x_hat = (x - mean) / sqrt(var + eps)
    y = x_hat * weight + bias

batch_norm takes the statistics over the batch (every axis but the channel axis 1), one
mean per channel; layer_norm over the last axes of each sample, one mean per sample.

Each is one op with a hand-written backward: as a composition of ops the graph would hold
six intermediate arrays and take eight passes. With gh = g * weight and n the number of
values in each statistic, the chain rule through mean and var gives

    dx = (gh - mean(gh) - x_hat * mean(gh * x_hat)) / sqrt(var + eps)
    dweight = sum(g * x_hat),   dbias = sum(g)          (over the axes the parameter is shared)

(mean(gh) is the path through `mean`, x_hat * mean(gh * x_hat) the path through `var`.)
"""

from __future__ import annotations

import math
import numbers

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor
from ._dtypes import check_same_dtype


def _mean(x, axes: tuple):
    """x.mean(axis=axes, keepdims=True); over the last axes (layer_norm's) as a matrix product.

    Why: NumPy's sum over short rows pays a fixed cost per row, more than the adds
    themselves for LayerNorm's rows of 64 features (the tiny GPT's 1,024 rows: 27 us).
    The same sums as one matrix-vector product, rows @ ones, are one BLAS call (6 us).
    """
    if axes != tuple(range(x.ndim - len(axes), x.ndim)):  # batch_norm: not the last axes
        return x.mean(axis=axes, keepdims=True)
    xp = backend.xp_of(x)
    n = math.prod(x.shape[x.ndim - len(axes) :])
    sums = backend.matmul(x.reshape(-1, n), xp.ones(n, dtype=x.dtype))
    return (sums / n).reshape(_kept(x, axes))


def _sum_rows(x, k: int):
    """x summed over all but its last k axes, as ones @ rows (one BLAS call, as in _mean)."""
    xp = backend.xp_of(x)
    shape = x.shape[x.ndim - k :]
    rows = x.reshape(-1, math.prod(shape))
    return backend.matmul(xp.ones(rows.shape[0], dtype=x.dtype), rows).reshape(shape)


def _normalize(x, axes: tuple, eps: float):
    """(x_hat, 1/sqrt(var + eps)) with the statistics over `axes` (kept as size-1 axes)."""
    xp = backend.xp_of(x)
    mean = _mean(x, axes)
    centered = x - mean
    var = _mean(centered * centered, axes)
    inv_std = 1.0 / xp.sqrt(var + eps)
    centered *= inv_std  # x_hat, in place: `centered` is not needed any more
    return centered, inv_std, mean, var


def _normalize_backward(gh, x_hat, inv_std, axes: tuple):
    """dx = (gh - mean(gh) - x_hat * mean(gh * x_hat)) * inv_std  (see the module docstring)."""
    dx = gh - _mean(gh, axes)
    dx -= x_hat * _mean(gh * x_hat, axes)
    dx *= inv_std
    return dx


def _affine(x_hat, weight, bias, shape):
    """x_hat * weight + bias with the parameters reshaped to broadcast (either may be None)."""
    y = x_hat if weight is None else x_hat * weight.data.reshape(shape)
    if bias is not None:
        y = y + bias.data.reshape(shape)
    return y


def _affine_backward(g, x_hat, weight, bias, axes):
    """(gh = g * weight, dweight, dbias); dweight/dbias summed over the axes they are shared on."""
    gh = g if weight is None else g * weight.data.reshape(_kept(x_hat, axes))
    dw = (g * x_hat).sum(axis=axes) if weight is not None and weight.requires_grad else None
    db = g.sum(axis=axes) if bias is not None and bias.requires_grad else None
    return gh, dw, db


def _kept(x, axes):
    """x's shape with the `axes` set to 1: the shape a per-feature parameter broadcasts as."""
    return tuple(1 if i in axes else n for i, n in enumerate(x.shape))


def batch_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization of (N, C) or (N, C, *) with one mean and variance per channel C.

    training=True: normalize with this batch's statistics, and, when running_mean and
        running_var are given, update them in place (they are buffers, not parameters):
            running_mean = (1 - momentum) * running_mean + momentum * mean
            running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)
        (the running variance takes the unbiased estimate, the normalization the biased one,
        as in PyTorch; n = N * H * W values per channel).
    training=False: normalize with running_mean and running_var; y is then a fixed affine
        function of x, and dx = g * weight / sqrt(running_var + eps).
    weight, bias: (C,) or None.
    """
    input = _as_tensor(input)
    x = input.data
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, *), got shape {x.shape}")
    check_same_dtype("batch_norm", x, weight=weight, bias=bias)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = _kept(x, axes)
    parents = tuple(t for t in (input, weight, bias) if t is not None)

    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm: training=False needs running_mean and running_var "
                "(or pass training=True to use the batch's own statistics)"
            )
        inv_std = 1.0 / backend.xp_of(x).sqrt(running_var.data.reshape(shape) + eps)
        x_hat = (x - running_mean.data.reshape(shape)) * inv_std
        out = _affine(x_hat, weight, bias, shape)

        def eval_backward(g):
            gh, dw, db = _affine_backward(g, x_hat, weight, bias, axes)
            return _grads(input, gh * inv_std, weight, dw, bias, db)

        return Tensor._from_op(out, parents, eval_backward, "batch_norm")

    n = x.size // x.shape[1]
    if n <= 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input of "
            f"shape {x.shape} (as PyTorch: the variance of one value is undefined)"
        )
    x_hat, inv_std, mean, var = _normalize(x, axes, eps)
    if running_mean is not None:
        running_mean.data *= 1.0 - momentum
        running_mean.data += momentum * mean.reshape(-1)
    if running_var is not None:
        running_var.data *= 1.0 - momentum
        running_var.data += (momentum * n / (n - 1)) * var.reshape(-1)
    out = _affine(x_hat, weight, bias, shape)

    def backward(g):
        gh, dw, db = _affine_backward(g, x_hat, weight, bias, axes)
        dx = _normalize_backward(gh, x_hat, inv_std, axes) if input.requires_grad else None
        return _grads(input, dx, weight, dw, bias, db)

    return Tensor._from_op(out, parents, backward, "batch_norm")


def _grads(input, dx, weight, dw, bias, db) -> list:
    """The gradients in the order of the op's parents (input, then weight and bias if given)."""
    grads = [dx]
    if weight is not None:
        grads.append(dw)
    if bias is not None:
        grads.append(db)
    return grads


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the last len(normalized_shape) axes of each sample.

    input (*, *normalized_shape); weight, bias: normalized_shape or None. The statistics
    are per sample (no running averages: training and evaluation compute the same).

        >>> F.layer_norm(mg.randn(4, 10, 32), (32,)).shape      # each of the 40 rows normalized
        (4, 10, 32)
    """
    input = _as_tensor(input)
    x = input.data
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.shape[x.ndim - k :] != normalized_shape or x.ndim < k:
        raise ValueError(
            f"layer_norm: the input's last axes {x.shape[max(x.ndim - k, 0) :]} must equal "
            f"normalized_shape {normalized_shape} (input shape {x.shape})"
        )
    check_same_dtype("layer_norm", x, weight=weight, bias=bias)
    axes = tuple(range(x.ndim - k, x.ndim))  # statistics axes: the normalized ones
    x_hat, inv_std, _, _ = _normalize(x, axes, eps)
    y = x_hat if weight is None else x_hat * weight.data
    if bias is not None:
        y = y + bias.data
    parents = tuple(t for t in (input, weight, bias) if t is not None)

    def backward(g):
        gh = g if weight is None else g * weight.data
        dx = _normalize_backward(gh, x_hat, inv_std, axes) if input.requires_grad else None
        dw = _sum_rows(g * x_hat, k) if weight is not None and weight.requires_grad else None
        db = _sum_rows(g, k) if bias is not None and bias.requires_grad else None
        return _grads(input, dx, weight, dw, bias, db)

    return Tensor._from_op(y, parents, backward, "layer_norm")
