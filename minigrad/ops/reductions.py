"""Reductions: ops that combine the elements along some dims (sum, mean, max, var, ...),
and softmax / log_softmax, which normalize along one.

Every reduction accepts PyTorch's spelling and NumPy's: `x.sum(dim=1, keepdim=True)` is
`x.sum(axis=1, keepdims=True)`. The backward of a reduction broadcasts g back over the
reduced dims (`_expand_reduced` first puts back the dims that keepdim=False removed).
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._helpers import _expand_reduced, _input, _normalize_axis, _pick, _unary


def _reduce_args(a: Tensor, dim, keepdim, axis, keepdims) -> tuple:
    """(axes, keep) from either spelling: dim=/keepdim= (PyTorch) or axis=/keepdims= (NumPy)."""
    if axis is not None or keepdims is not None:
        dim = _pick("dim (or axis)", dim, axis, None)
        keepdim = _pick("keepdim (or keepdims)", keepdim, keepdims, False)
    return (None if dim is None else _normalize_axis(dim, a.ndim)), bool(keepdim)


def _count(shape: tuple, axes: tuple | None) -> int:
    """How many elements each output element combines."""
    return int(np.prod(shape if axes is None else [shape[i] for i in axes]))


def sum(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Sum over `dim` (all dims when None);  d/da = g broadcast back to a's shape."""
    a = a if isinstance(a, Tensor) else _input(a)
    axes, keep = _reduce_args(a, dim, keepdim, axis, keepdims)
    shape = a.shape

    def backward(g, x, out, xp):
        return xp.broadcast_to(_expand_reduced(g, axes, keep, shape), shape)

    return _unary("sum", a, lambda x, xp: xp.sum(x, axis=axes, keepdims=keep), backward)


def mean(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Mean over `dim`;  d/da = g / n broadcast back, n the number of averaged elements."""
    a = a if isinstance(a, Tensor) else _input(a)
    axes, keep = _reduce_args(a, dim, keepdim, axis, keepdims)
    shape = a.shape
    count = _count(shape, axes)

    def backward(g, x, out, xp):
        return xp.broadcast_to(_expand_reduced(g, axes, keep, shape) / count, shape)

    return _unary("mean", a, lambda x, xp: xp.mean(x, axis=axes, keepdims=keep), backward)


def var(
    a, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None
) -> Tensor:
    """Variance: sum((a - mean)**2) / (n - correction) over `dim`, as PyTorch.

    correction=1 by default (Bessel's correction, the unbiased estimate; NumPy's default is
    ddof=0); unbiased=False means correction=0. d/da = g * 2 * (a - mean) / (n - correction)
    (the mean's own dependence on a adds nothing: the deviations sum to zero).
    """
    a = _input(a)
    axes, keep = _reduce_args(a, dim, keepdim, axis, keepdims)
    if unbiased is not None and correction is not None:
        raise TypeError("var/std: give correction= or unbiased=, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    shape = a.shape
    divisor = builtins.max(_count(shape, axes) - correction, 0)  # 0: inf or nan, as PyTorch

    def forward(x, xp):
        deviation = x - xp.mean(x, axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.sum(deviation * deviation, axis=axes, keepdims=keep) / divisor

    def backward(g, x, out, xp):
        deviation = x - xp.mean(x, axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _expand_reduced(g, axes, keep, shape) * (2 / divisor) * deviation

    return _unary("var", a, forward, backward)


def std(
    a, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None
) -> Tensor:
    """Standard deviation: sqrt(var(...)) with the same arguments (correction=1 by default)."""
    from .elementwise import sqrt

    v = var(a, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)
    return sqrt(v)


def prod(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Product over `dim` (all elements when None);  d/da_i = g * (product of the others).

    "The others" is computed as (product of those before i) * (product of those after i),
    two exclusive running products, so a zero in the input gives the right gradient
    (g * out / a would divide by it).
    """
    a = _input(a)
    axes, keep = _reduce_args(a, dim, keepdim, axis, keepdims)
    if axes is not None and len(axes) > 1:
        raise TypeError("prod takes one dim (as PyTorch); call it once per dim")
    shape = a.shape

    def backward(g, x, out, xp):
        # Along axis 0 of a view whose first axis is the reduced one (all of x, flattened,
        # when dim is None).
        if axes is None or not axes:
            line = x.reshape(-1)
        else:
            line = xp.moveaxis(x, axes[0], 0)
        before = _exclusive_cumprod(line, xp)
        after = xp.flip(_exclusive_cumprod(xp.flip(line, 0), xp), 0)
        others = before * after
        if axes is None or not axes:
            others = others.reshape(shape)
        else:
            others = xp.moveaxis(others, 0, axes[0])
        return _expand_reduced(g, axes, keep, shape) * others

    return _unary("prod", a, lambda x, xp: xp.prod(x, axis=axes, keepdims=keep), backward)


def _exclusive_cumprod(line, xp):
    """[1, x0, x0*x1, ...] along axis 0: the product of the elements before each one."""
    if line.shape[0] == 0:
        return line
    return xp.concatenate([xp.ones_like(line[:1]), xp.cumprod(line[:-1], axis=0)], axis=0)


def cumsum(a, dim=None, *, axis=None) -> Tensor:
    """Running sum along `dim`: out_i = a_0 + ... + a_i.

    d/da_j = sum of g_i over i >= j: a running sum of g from the end (flip, cumsum, flip).
    """
    a = _input(a)
    dim = _pick("dim (or axis)", dim, axis, None)
    if dim is None:
        raise TypeError("cumsum needs dim (as PyTorch): x.cumsum(dim=0)")
    (ax,) = _normalize_axis(dim, a.ndim) or (None,)

    def forward(x, xp):
        return xp.cumsum(x, axis=ax).reshape(x.shape).astype(x.dtype, copy=False)

    def backward(g, x, out, xp):
        if ax is None:  # 0-d
            return g
        return xp.flip(xp.cumsum(xp.flip(g, ax), axis=ax), ax)

    return _unary("cumsum", a, forward, backward)


# ---------------------------------------------------------------- max and min

# What x.max(dim) returns, as PyTorch's torch.return_types.max: `values, indices = x.max(1)`.
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _extreme_all(op: str, a: Tensor, axes, keep: bool) -> Tensor:
    """max or min over `axes`; the gradient is shared evenly among the tied extreme elements
    (PyTorch's amax/amin, and its max()/min() without a dim)."""
    shape = a.shape

    def forward(x, xp):
        return getattr(xp, op)(x, axis=axes, keepdims=keep)

    def backward(g, x, out, xp):
        out_kept = _expand_reduced(out, axes, keep, shape)
        chosen = (x == out_kept).astype(g.dtype)
        chosen /= chosen.sum(axis=axes, keepdims=True)
        return chosen * _expand_reduced(g, axes, keep, shape)

    return _unary("a" + op, a, forward, backward)


def _extreme_dim(op: str, a: Tensor, dim, keep: bool):
    """(values, indices) of the max or min along one dim; the gradient goes to the element
    at `indices` (the first extreme one), as PyTorch's max(dim) does."""
    (ax,) = _normalize_axis(dim, a.ndim) or (None,)
    xp = backend.xp_of(a.data)
    if ax is None:  # 0-d: the value itself, index 0
        index = xp.zeros((), dtype=np.int64)
        return a * 1, Tensor(index)
    index = getattr(xp, "arg" + op)(a.data, axis=ax)
    index_kept = xp.expand_dims(index, ax)
    shape = a.shape

    def forward(x, xp):
        out = xp.take_along_axis(x, index_kept, axis=ax)
        return out if keep else xp.squeeze(out, ax)

    def backward(g, x, out, xp):
        positions = xp.arange(shape[ax]).reshape([-1 if i == ax else 1 for i in range(len(shape))])
        g_kept = g if keep else xp.expand_dims(g, ax)
        return xp.where(positions == index_kept, g_kept, xp.zeros((), dtype=g.dtype))

    values = _unary(op, a, forward, backward)
    return values, Tensor(index_kept if keep else index)


def _max_or_min(op: str, result, a, dim, keepdim, axis, keepdims):
    from .elementwise import maximum, minimum

    a = _input(a)
    if isinstance(dim, Tensor):  # x.max(other): PyTorch's elementwise form
        return (maximum if op == "max" else minimum)(a, dim)
    dim = _pick("dim (or axis)", dim, axis, None)
    keep = bool(_pick("keepdim (or keepdims)", keepdim, keepdims, False))
    if dim is None:
        return _extreme_all(op, a, None, keep)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(
            f"{op}(dim) takes one dim, got {dim!r}; for several use a{op}(dim=(...)), "
            "which returns only the values"
        )
    return result(*_extreme_dim(op, a, dim, keep))


def max(a, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """The largest value: `x.max()` -> a tensor (ties share the gradient evenly);
    `x.max(dim)` -> (values, indices) as PyTorch, the gradient going to `indices`.

        >>> values, indices = mg.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1)
        >>> values, indices            # tensor([5., 7.]), tensor([1, 0])
    """
    return _max_or_min("max", MaxResult, a, dim, keepdim, axis, keepdims)


def min(a, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """The smallest value: `x.min()` -> a tensor; `x.min(dim)` -> (values, indices)."""
    return _max_or_min("min", MinResult, a, dim, keepdim, axis, keepdims)


def amax(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Largest value over `dim` (one or several, all when None), only the values;
    ties share the gradient evenly (PyTorch's amax)."""
    a = _input(a)
    return _extreme_all("max", a, *_reduce_args(a, dim, keepdim, axis, keepdims))


def amin(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Smallest value over `dim`, only the values; ties share the gradient evenly."""
    a = _input(a)
    return _extreme_all("min", a, *_reduce_args(a, dim, keepdim, axis, keepdims))


def _arg(op: str, a, dim, keepdim, axis, keepdims) -> Tensor:
    a = _input(a)
    dim = _pick("dim (or axis)", dim, axis, None)
    keep = bool(_pick("keepdim (or keepdims)", keepdim, keepdims, False))
    xp = backend.xp_of(a.data)
    if dim is None:  # the index into the flattened tensor
        index = getattr(xp, op)(a.data.reshape(-1))
        return Tensor(index.reshape((1,) * a.ndim) if keep else index.reshape(()))
    (ax,) = _normalize_axis(dim, a.ndim) or (None,)
    if ax is None:
        return Tensor(xp.zeros((), dtype=np.int64))
    index = getattr(xp, op)(a.data, axis=ax)
    return Tensor((xp.expand_dims(index, ax) if keep else index).astype(np.int64, copy=False))


def argmax(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Index of the largest value along `dim` (of the flattened tensor when None); int64,
    not differentiable. The first one wins on ties."""
    return _arg("argmax", a, dim, keepdim, axis, keepdims)


def argmin(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """Index of the smallest value along `dim`; int64, not differentiable."""
    return _arg("argmin", a, dim, keepdim, axis, keepdims)


# ---------------------------------------------------------------- logsumexp and softmax


def logsumexp(a, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
    """log(sum(exp(a))) over `dim`, computed stably as m + log(sum(exp(a - m))), m = max(a).

    d/da = g * exp(a - out) = g * softmax(a).
    """
    a = _input(a)
    axes, keep = _reduce_args(a, dim, keepdim, axis, keepdims)
    shape = a.shape

    def forward(x, xp):
        m = xp.max(x, axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), dtype=x.dtype))
        s = xp.sum(xp.exp(x - m), axis=axes, keepdims=True)
        # An all -inf row sums to 0 and its logsumexp is -inf; log(1) there instead of log(0)
        # gives that without NumPy's divide-by-zero warning.
        empty = s == 0
        out = xp.where(empty, -xp.inf, xp.log(xp.where(empty, 1, s)) + m)
        if keep:
            return out
        return out.reshape(()) if axes is None else xp.squeeze(out, axes)

    def backward(g, x, out, xp):
        out_kept = _expand_reduced(out, axes, keep, shape)
        # All -inf rows: exp(-inf - 0) = 0 rather than exp(-inf - -inf) = nan.
        out_kept = xp.where(out_kept == -xp.inf, 0, out_kept)
        return _expand_reduced(g, axes, keep, shape) * xp.exp(x - out_kept)

    return _unary("logsumexp", a, forward, backward)


def log_softmax(a, dim=None, *, axis=None) -> Tensor:
    """log(softmax(a)) = a - logsumexp(a) along `dim` (the last when None), as one op.

    The maximum is subtracted before exp, so large logits (1e4) do not overflow, and a
    logit of -inf gives log-probability -inf and gradient g there (no NaN).
    Backward: d/da = g - softmax(a) * sum(g, dim).
    """
    a = _input(a)
    (ax,) = _normalize_axis(_pick("dim (or axis)", dim, axis, -1), a.ndim) or (None,)

    def forward(x, xp):
        if x.size == 0 or ax is None:  # nothing to normalize, or a 0-d tensor: log(1) = 0
            return x - x
        shifted = x - x.max(axis=ax, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=ax, keepdims=True))

    def backward(g, x, out, xp):
        if ax is None:
            return g * 0
        return g - xp.exp(out) * g.sum(axis=ax, keepdims=True)

    return _unary("log_softmax", a, forward, backward)


def softmax(a, dim=None, *, axis=None) -> Tensor:
    """exp(a) / sum(exp(a)) along `dim` (the last when None), as exp(log_softmax(a)),
    so it is stable too.

        >>> mg.tensor([1.0, 2.0, 3.0]).softmax(dim=0)   # [0.0900, 0.2447, 0.6652]
    """
    from .elementwise import exp

    return exp(log_softmax(a, dim, axis=axis))
