"""Pointwise losses: one loss per element, with PyTorch's names, arguments and numbers.

Regression (input and target of one shape, d = input - target):

    mse_loss       d^2
    l1_loss        |d|
    smooth_l1      0.5 d^2 / beta  if |d| < beta,   else |d| - 0.5 beta
    huber          0.5 d^2         if |d| <= delta, else delta * (|d| - 0.5 delta)

Probabilities:

    binary_cross_entropy(p, y)               -w * (y log p + (1 - y) log(1 - p)), logs >= -100
    binary_cross_entropy_with_logits(x, y)   the same of sigmoid(x), stable for any x
    kl_div(logq, p)                          p * (log p - logq), input log-probabilities

reduction="mean" (default) averages over every element, "sum" adds, "none" keeps them all.
The target must have the input's shape: broadcasting a loss is almost always a bug.
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import backend, ops
from ...tensor import Tensor
from ._common import _as_tensor, _check_reduction, _reduce, _same_device, _targets_on_device

# ---------------------------------------------------------------- probabilities


def _same_shape_target(fn: str, x, target):
    """The target array on x's device, of x's shape and dtype (no silent broadcasting)."""
    y = _targets_on_device(target, x)
    if y.shape != x.shape:
        raise ValueError(
            f"{fn}: input shape {x.shape} and target shape {y.shape} differ; broadcasting here "
            "is usually a bug (e.g. (N, 1) against (N,)): reshape one of them"
        )
    _same_device(fn, y, x)
    return y.astype(x.dtype, copy=False)


def _reduce_array(losses, reduction: str):
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


# PyTorch's clamp of p * (1 - p) in the gradient: 1e-12 as a float32 constant (its C++ source
# declares it float), so 9.9999999600e-13, kept to give the same numbers at p = 0 and 1.
_BCE_EPSILON = float(np.float32(1e-12))


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities p in [0, 1] against targets y in [0, 1].

        loss = -w * (y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))
        dloss/dp = w * (p - y) / max(p * (1 - p), 1e-12)

    The clamps are PyTorch's: p = 0 or 1 gives a large finite loss, not inf. Prefer
    binary_cross_entropy_with_logits on raw scores: it never needs a clamp.
    """
    _check_reduction("binary_cross_entropy", reduction)
    probs = _as_tensor(input)
    p = probs.data
    xp = backend.xp_of(p)
    y = _same_shape_target("binary_cross_entropy", p, target)
    w = None if weight is None else _same_shape_weight("binary_cross_entropy", weight, p)
    # The range check reads the values: on the CPU only (a GPU sync otherwise).
    if p.size and backend.device_of(p) == backend.CPU and not ((p >= 0) & (p <= 1)).all():
        raise ValueError(
            "binary_cross_entropy: every input must be a probability in [0, 1]; for raw "
            "scores use binary_cross_entropy_with_logits"
        )
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped next
        log_p = xp.maximum(xp.log(p), -100.0)
        log_1mp = xp.maximum(xp.log1p(-p), -100.0)
    losses = -(y * log_p + (1 - y) * log_1mp)
    if w is not None:
        losses *= w
    n = p.size

    def backward(g):
        grad = (p - y) / xp.maximum(p * (1 - p), _BCE_EPSILON)
        if w is not None:
            grad *= w
        return (grad * (g / n if reduction == "mean" else g),)

    return Tensor._from_op(_reduce_array(losses, reduction), (probs,), backward, "bce")


def _same_shape_weight(fn: str, weight, x):
    """A weight that broadcasts to x's shape (PyTorch repeats it), on x's device and dtype."""
    w = weight.data if isinstance(weight, Tensor) else weight
    if not backend.is_gpu_array(w):
        w = backend.to_device(np.asarray(w), backend.device_of(x))
    _same_device(fn, w, x)
    try:
        return backend.xp_of(w).broadcast_to(w.astype(x.dtype, copy=False), x.shape)
    except ValueError:
        raise ValueError(
            f"{fn}: weight of shape {w.shape} does not broadcast to {x.shape}"
        ) from None


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

    def backward(g):
        scale = g / n if reduction == "mean" else g
        dx = (0.5 * xp.tanh(0.5 * x) + 0.5 - y) * scale if logits.requires_grad else None
        dy = -x * scale if target_tensor.requires_grad else None
        return dx, dy

    return Tensor._from_op(_reduce_array(losses, reduction), (logits, target_tensor), backward,
                           "bce_with_logits")  # fmt: skip


def kl_div(input: Tensor, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence KL(p || q) with input = log q (log-probabilities).

        pointwise = p * (log p - log q)        (0 where p = 0)
        log_target=True: target holds log p:   pointwise = exp(log p) * (log p - log q)
        dloss/dlog q = -p

    reduction: "batchmean" = sum / N is the true KL per sample; "mean" divides by every
    element (PyTorch's default, kept for equal numbers); "sum"; "none".
    """
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(
            f"kl_div: reduction must be 'batchmean', 'mean', 'sum' or 'none', got {reduction!r}"
        )
    log_q = _as_tensor(input)
    x = log_q.data
    xp = backend.xp_of(x)
    y = _same_shape_target("kl_div", x, target)
    if log_target:
        p = xp.exp(y)
        pointwise = p * (y - x)
    else:
        p = y
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0: masked by the where
            y_log_y = xp.where(y > 0, y * xp.log(y), xp.zeros((), dtype=y.dtype))  # xlogy
        pointwise = y_log_y - y * x
    if reduction == "batchmean":
        divide = x.shape[0] if x.ndim else 1
        out = pointwise.sum() / divide
    else:
        divide = x.size
        out = _reduce_array(pointwise, reduction)

    def backward(g):
        if reduction in ("mean", "batchmean"):
            g = g / divide
        return (-p * g,)

    return Tensor._from_op(out, (log_q,), backward, "kl_div")


# ---------------------------------------------------------------- regression


def _check_same_shape(fn: str, input: Tensor, target) -> None:
    target_shape = tuple(getattr(target, "shape", np.shape(target)))
    if target_shape != input.shape:
        raise ValueError(
            f"{fn}: input shape {input.shape} and target shape {target_shape} differ; "
            "broadcasting here is usually a bug (e.g. (N, 1) against (N,)): reshape one of them"
        )


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)**2); shapes must match (no broadcasting)."""
    _check_reduction("mse_loss", reduction)
    input = _as_tensor(input)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error: mean(|input - target|);  d/dinput = sign(input - target)."""
    _check_reduction("l1_loss", reduction)
    input = _as_tensor(input)
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Squared near 0, absolute far away: 0.5 d^2 / beta if |d| < beta, else |d| - 0.5 beta.

    The two pieces meet with equal value and slope at |d| = beta; beta = 0 is l1_loss.
    """
    _check_reduction("smooth_l1_loss", reduction)
    if not (isinstance(beta, numbers.Real) and beta >= 0):
        raise ValueError(f"smooth_l1_loss: beta must be a number >= 0, got {beta!r}")
    input = _as_tensor(input)
    _check_same_shape("smooth_l1_loss", input, target)
    if beta == 0:
        return l1_loss(input, target, reduction)
    d = input - target
    size = d.abs()
    small = size.data < beta
    return _reduce(ops.where(small, d * d * (0.5 / beta), size - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 if |d| <= delta, else delta * (|d| - 0.5 delta): smooth_l1 times delta.

    The gradient is d near 0 and delta * sign(d) far away: large errors pull with a
    bounded force, so outliers do not dominate.
    """
    _check_reduction("huber_loss", reduction)
    if not (isinstance(delta, numbers.Real) and delta > 0):
        raise ValueError(f"huber_loss: delta must be a number > 0, got {delta!r}")
    input = _as_tensor(input)
    _check_same_shape("huber_loss", input, target)
    d = input - target
    size = d.abs()
    small = size.data <= delta
    return _reduce(ops.where(small, d * d * 0.5, (size - 0.5 * delta) * delta), reduction)
