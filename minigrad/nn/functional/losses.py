"""Losses: cross-entropy, negative log-likelihood, mean squared error, binary cross-entropy."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor, _check_reduction, _class_targets, _reduce, _same_device


def cross_entropy(
    logits: Tensor, targets, reduction: str = "mean", label_smoothing: float = 0.0
) -> Tensor:
    """Softmax cross-entropy with integer class targets, as one fused op.

    logits (N, C), targets (N,) ints in [0, C). With p = softmax(logits), eps = label_smoothing
    and q = (1 - eps) * onehot(t) + eps / C the smoothed target distribution:

        loss_i = -sum_c q_ic * log p_ic = (1 - eps) * (-log p_i,t_i) + eps * mean_c(-log p_ic)
        dloss_i / dlogits_i = p_i - q_i

    reduction "mean" averages over N (the gradient is then (p - q) / N), "sum" adds, "none"
    returns the (N,) losses. Equal to PyTorch's F.cross_entropy with the same arguments.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logits = _as_tensor(logits)
    x = logits.data
    if x.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must have shape (N, C), got {x.shape}; "
            "reshape first, e.g. logits.reshape(-1, C)"
        )
    t = _class_targets("cross_entropy", targets, x)
    n, c = x.shape
    xp = backend.xp_of(x)

    logp = x - x.max(axis=1, keepdims=True)  # largest logit becomes 0: exp cannot overflow
    probs = xp.exp(logp)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    logp -= xp.log(total)  # in place: the shifted logits are not needed any more
    # The target column is picked by comparison (onehot) rather than by gathering
    # logp[rows, t]: a few elementwise passes, which on the GPU cost far less than fancy
    # indexing and its scatter in backward. `where`, not a product, so that a -inf logit
    # outside the target column gives 0, not 0 * -inf = nan.
    onehot = t[:, None] == xp.arange(c)
    picked = xp.where(onehot, logp, xp.zeros((), dtype=x.dtype))  # log p_i,t_i; 0 elsewhere
    if reduction == "none":
        out = -picked.sum(axis=1)
        if label_smoothing:
            out = (1.0 - label_smoothing) * out - (label_smoothing / c) * logp.sum(axis=1)
    else:
        # Summed over the whole batch at once: one reduction instead of one per row, then
        # another (each reduction is a separate kernel launch on the GPU).
        out = picked.sum()
        if label_smoothing:
            out = (1.0 - label_smoothing) * out + (label_smoothing / c) * logp.sum()
        out *= -1.0 / n if reduction == "mean" else -1.0

    def backward(g):
        # p - q with q = (1 - eps) * onehot + eps / C; a new array, as backward may run again
        if label_smoothing:
            grad = probs - onehot.astype(x.dtype) * (1.0 - label_smoothing)
            grad -= label_smoothing / c
        else:
            grad = probs - onehot  # the bool onehot counts as 0.0 and 1.0
        if reduction == "mean":
            grad *= g / n
        elif reduction == "sum":
            grad *= g
        else:
            grad *= g[:, None]
        return (grad,)

    return Tensor._from_op(out, (logits,), backward, "cross_entropy")


def nll_loss(log_probs: Tensor, targets, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -log_probs[i, t_i], for log-probabilities (N, C).

    cross_entropy(z, t) equals nll_loss(log_softmax(z), t); this form is for models whose
    last layer already returns log-probabilities.
    """
    _check_reduction("nll_loss", reduction)
    log_probs = _as_tensor(log_probs)
    if log_probs.ndim != 2:
        raise ValueError(f"nll_loss: log_probs must have shape (N, C), got {log_probs.shape}")
    t = _class_targets("nll_loss", targets, log_probs.data)
    rows = backend.xp_of(log_probs.data).arange(log_probs.shape[0])
    return _reduce(-log_probs[rows, t], reduction)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)**2); shapes must match (no broadcasting)."""
    _check_reduction("mse_loss", reduction)
    input = _as_tensor(input)
    target_shape = getattr(target, "shape", np.shape(target))
    if tuple(target_shape) != input.shape:
        raise ValueError(
            f"mse_loss: input shape {input.shape} and target shape {tuple(target_shape)} differ; "
            "broadcasting here is usually a bug (e.g. (N, 1) against (N,)): reshape one of them"
        )
    diff = input - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy_with_logits(logits: Tensor, targets, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], as one stable op.

    loss = -(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))
         = max(x, 0) - x * y + log(1 + exp(-|x|))      (never exp of a large number)
    dloss/dx = sigmoid(x) - y,   dloss/dy = -x
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    logits = _as_tensor(logits)
    x = logits.data
    xp = backend.xp_of(x)
    if isinstance(targets, Tensor):
        target_tensor = targets
    else:
        host = targets if backend.is_gpu_array(targets) else np.asarray(targets)
        target_tensor = Tensor(backend.to_device(host, backend.device_of(x)))
    y = target_tensor.data
    if y.shape != x.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: logits shape {x.shape} and targets shape "
            f"{y.shape} differ"
        )
    _same_device("binary_cross_entropy_with_logits", y, x)
    y = y.astype(x.dtype, copy=False)
    losses = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))
    n = x.size
    out = losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses

    def backward(g):
        scale = g / n if reduction == "mean" else g
        dx = (0.5 * xp.tanh(0.5 * x) + 0.5 - y) * scale if logits.requires_grad else None
        dy = -x * scale if target_tensor.requires_grad else None
        return dx, dy

    return Tensor._from_op(out, (logits, target_tensor), backward, "bce_with_logits")
