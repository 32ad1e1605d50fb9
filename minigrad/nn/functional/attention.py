"""scaled_dot_product_attention: each query position takes a weighted average of the values,
weighted by how well its query matches every key. Written from ops: two batched matrix
products, whose backward comes from theirs, and a masked softmax, an op of its own here
(`_masked_softmax`, its backward beside it).

    q (..., L, E),  k (..., S, E),  v (..., S, Ev)       L queries, S keys/values
    scores  = q @ k.mT * scale            (..., L, S)     scale = 1 / sqrt(E) by default
    scores  = scores masked               bool mask: False -> -inf (that key takes no part)
                                          float mask: added to the scores
    weights = softmax(scores, dim=-1)     each row sums to 1
    out     = weights @ v                 (..., L, Ev)

is_causal=True masks every key after the query's own position (position i sees 0..i): what a
language model needs, so that a token is predicted from the tokens before it only.

    >>> q = k = v = mg.randn(2, 4, 10, 16)      # (batch, heads, positions, head dim)
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
    (2, 4, 10, 16)
"""

from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor
from ._dtypes import check_same_dtype
from .regularization import dropout


def _attend(q: Tensor, k: Tensor, v: Tensor, keep, bias, dropout_p: float, scale: float):
    """(out, weights) of softmax(q @ k.mT * scale + bias, masked to `keep`) @ v.

    keep: a bool array (True = takes part) or None; bias: a float array or Tensor, or None.
    """
    scores = q @ k.mT
    if bias is not None:  # a float mask (maybe a Tensor that wants its gradient): as ops
        scores, scale = scores * scale + bias, 1.0
    weights = _masked_softmax(scores, scale, keep)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ v, weights


def _masked_softmax(scores: Tensor, scale: float, keep) -> Tensor:
    """softmax(scores * scale) over the last axis, where `keep` is False -> weight 0. One op.

        s = scores * scale, -inf where masked     w = exp(s - max(s)) / sum(exp(s - max(s)))
        backward: d scores = scale * w * (g - sum(g * w))     (sums over the last axis)

    Why one op and not scale, where and softmax from ops: this runs on every (query, key)
    pair of every head, and as one op it is a few in-place passes over one array with one
    node in the graph, instead of six arrays and six nodes (measured 2x faster on the
    tiny GPT's attention). The derivative is the softmax Jacobian diag(w) - w w^T applied
    to g, which never needs the (S, S) Jacobian itself.
    """
    x = scores.data
    xp = backend.xp_of(x)
    # NumPy's reductions over short rows (32 keys) pay a fixed cost per row, more than the
    # work. So the sums over the keys are a product with a column of ones (one BLAS call,
    # 4x faster), and the maxima are taken over the first axis of a copy with the keys first
    # (S elementwise passes over long rows: the copy and the max 3x faster than w.max(-1)).
    ones = xp.ones((x.shape[-1], 1), dtype=x.dtype)
    w = x * scale  # a fresh array: every step below works in place on it
    if keep is not None:
        xp.copyto(w, -math.inf, where=~keep)  # exp(-inf) = 0: a masked key gets no weight
    keys_first = xp.ascontiguousarray(xp.moveaxis(w, -1, 0))
    w -= keys_first.max(axis=0)[..., None]  # the largest is exp(0) = 1: no overflow
    xp.exp(w, out=w)
    w /= backend.matmul(w, ones)  # each row by its sum; a fully masked row: 0/0 = NaN

    def backward(g):
        grad = g * w
        grad -= w * backend.matmul(grad, ones)  # w * g - w * sum(g * w)
        grad *= scale
        return (grad,)

    return Tensor._from_op(w, (scores,), backward, "softmax")


def _causal_mask(length: int, source_length: int, like):
    """(L, S) bool, True on and below the diagonal: query i sees keys 0..i (as torch.tril)."""
    xp = backend.xp_of(like)
    return xp.tril(xp.ones((length, source_length), dtype=bool))


def _mask_array(fn: str, mask, like: Tensor):
    """The mask as an array on `like`'s device (a Tensor's array, a list, a NumPy array)."""
    array = mask.data if isinstance(mask, Tensor) else mask
    if not hasattr(array, "dtype"):
        array = np.asarray(array)
    if backend.device_of(array) != like.device:
        raise backend.DeviceError(
            f"{fn}: attn_mask is on {backend.device_of(array)} but the inputs are on "
            f"{like.device}; move it with .to(...)"
        )
    return array


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(query @ key.mT * scale + mask) @ value, with PyTorch's arguments and masks.

    attn_mask: broadcastable to (..., L, S); bool: True = takes part (PyTorch's meaning),
        float: added to the scores (use -inf to exclude). Not together with is_causal.
    dropout_p: dropout on the attention weights (pass 0.0 in evaluation, as in PyTorch).
    scale: defaults to 1 / sqrt(E), E = query.shape[-1].
    A query whose every key is masked gets NaN, as in PyTorch's reference.
    """
    query, key, value = _as_tensor(query), _as_tensor(key), _as_tensor(value)
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError("scaled_dot_product_attention: q, k and v need shape (..., L or S, E)")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: query {query.shape} and key {key.shape} must "
            f"share the last axis, key and value {value.shape} the number of positions"
        )
    check_same_dtype("scaled_dot_product_attention", query, key=key, value=value)
    if is_causal and attn_mask is not None:
        raise ValueError(
            "scaled_dot_product_attention: give attn_mask or is_causal=True, not both "
            "(as in PyTorch); combine them into one mask yourself if you need both"
        )
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(
            f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}"
        )
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    keep = bias = None
    if is_causal:
        keep = _causal_mask(query.shape[-2], key.shape[-2], query.data)
    elif attn_mask is not None:
        mask = _mask_array("scaled_dot_product_attention", attn_mask, query)
        if mask.dtype == bool:
            keep = mask
        else:
            bias = attn_mask if isinstance(attn_mask, Tensor) else mask.astype(query.dtype)
    out, _ = _attend(query, key, value, keep, bias, dropout_p, scale)
    return out
