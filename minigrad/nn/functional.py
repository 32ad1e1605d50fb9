"""Activations, softmax and losses as functions of tensors (the layers in layers.py call these).

Shapes: N = batch size, C = number of classes. Logits are (N, C) float tensors; class targets
are (N,) integer arrays or tensors with values in [0, C).

Most functions are compositions of the differentiable ops in `minigrad.ops`, so their
backward comes for free. Three are single fused ops with a hand-written backward, because
they sit on the hot path of every training step or because the composition is unstable:

    linear(x, W, b)       y = x @ W.T + b                 dx = g @ W,  dW = g.T @ x,  db = sum(g)
    log_softmax(x)        x - logsumexp(x)                dx = g - softmax(x) * sum(g)
    cross_entropy(z, t)   -log_softmax(z)[t]              dz = (softmax(z) - onehot(t)) / N

    >>> logits = mg.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    >>> loss = F.cross_entropy(logits, [0])
    >>> loss.backward()[logits]      # softmax - onehot
    array([[-0.2037,  0.1800,  0.0237]], dtype=float32)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend, ops
from ..random import generator
from ..tensor import Tensor

__all__ = [
    "linear",
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "gelu",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "binary_cross_entropy_with_logits",
    "dropout",
    "accuracy",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- helpers


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_reduction(fn: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _same_device(fn: str, array, like) -> None:
    if backend.device_of(array) != backend.device_of(like):
        raise backend.DeviceError(
            f"{fn}: the targets are on {backend.device_of(array)} but the input is on "
            f"{backend.device_of(like)}; move them with .to(...) or load batches with "
            "DataLoader(..., device=...)"
        )


def _class_targets(fn: str, targets, logits):
    """Targets as an integer array of shape (N,) on the logits' device, checked on the CPU."""
    n, c = logits.shape
    if isinstance(targets, Tensor):
        targets = targets.data
    elif isinstance(targets, (list, tuple, numbers.Integral)):
        targets = backend.to_device(np.asarray(targets), backend.device_of(logits))
    elif not backend.is_gpu_array(targets):
        targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: targets must be integer class indices in [0, {c}), got dtype {targets.dtype}"
        )
    if targets.shape != (n,):
        raise ValueError(
            f"{fn}: logits of shape {logits.shape} need targets of shape ({n},), "
            f"got {targets.shape}"
        )
    _same_device(fn, targets, logits)
    # The range check reads the values: free on the CPU, a device sync on the GPU, so it is
    # done on the CPU only (an out-of-range index there would silently wrap around).
    if n and backend.device_of(targets) == backend.CPU:
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= c:
            bad = low if low < 0 else high
            raise IndexError(f"{fn}: target {bad} is out of range for {c} classes [0, {c})")
    return targets


# ---------------------------------------------------------------- linear


def linear(x, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ W.T + b as one op.  x (..., in), W (out, in), b (out,) -> y (..., out).

    Backward, with x and g flattened to (M, in) and (M, out):
        dx = g @ W,  dW = g.T @ x,  db = g summed over M.
    One node instead of three (transpose, matmul, add), and dx is not computed at all for
    an input that needs no gradient (the data batch).
    """
    x = _as_tensor(x)
    xd, w = x.data, weight.data
    if xd.shape[-1:] != w.shape[1:]:
        raise ValueError(
            f"linear: input of shape {xd.shape} has {xd.shape[-1] if xd.ndim else 0} features, "
            f"the weight of shape {w.shape} expects {w.shape[1]}"
        )
    if backend.device_of(xd) != backend.device_of(w):
        raise backend.DeviceError(
            f"linear: the input is on {backend.device_of(xd)} but the weight is on "
            f"{backend.device_of(w)}; move the batch or the model (model.to(...))"
        )
    x2 = xd.reshape(-1, w.shape[1])
    out = x2 @ w.T
    if bias is not None:
        out += bias.data  # in place on a fresh array: no extra temporary
    out = out.reshape(xd.shape[:-1] + (w.shape[0],))
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        g2 = g.reshape(-1, w.shape[0])
        dx = (g2 @ w).reshape(xd.shape) if x.requires_grad else None
        dw = g2.T @ x2 if weight.requires_grad else None
        if bias is None:
            return dx, dw
        return dx, dw, (g2.sum(axis=0) if bias.requires_grad else None)

    return Tensor._from_op(out, parents, backward, "linear")


# ---------------------------------------------------------------- activations


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ops.relu(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    x = _as_tensor(x)
    return ops.where(x.data > 0, x, x * negative_slope)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return ops.sigmoid(x)


_GELU_C = math.sqrt(2.0 / math.pi)


def gelu(x: Tensor) -> Tensor:
    """GELU(x) = x * Phi(x), with the tanh approximation of the normal CDF Phi:

        gelu(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))

    NumPy has no erf, so minigrad uses this form on both devices; it equals PyTorch's
    `gelu(x, approximate="tanh")` and differs from the exact erf form by less than 1e-3.
    """
    x = _as_tensor(x)
    inner = (x + 0.044715 * (x * x * x)) * _GELU_C
    return 0.5 * x * (1.0 + ops.tanh(inner))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) = x - logsumexp(x), computed stably as one op.

    The maximum is subtracted before exp, so large logits (1e4) do not overflow, and a
    logit of -inf gives log-probability -inf and gradient g there (no NaN).
    Backward: dx = g - softmax(x) * sum(g, axis).
    """
    x = _as_tensor(x)
    xd = x.data
    xp = backend.xp_of(xd)
    m = xd.max(axis=axis, keepdims=True)
    shifted = xd - m
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)

    return Tensor._from_op(out, (x,), backward, "log_softmax")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, as exp(log_softmax(x)) so it is stable too."""
    return ops.exp(log_softmax(x, axis=axis))


# ---------------------------------------------------------------- losses


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


# ---------------------------------------------------------------- regularization and metrics


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) ("inverted").

    The scaling keeps the expected value of every element unchanged, so nothing needs to
    change at evaluation time, where dropout is the identity (training=False).
    The mask is drawn on the host from `minigrad.random.generator()`: seeded, and the same on
    the CPU and the GPU.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    x = _as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # Uniform draws in float32 (float64 only for a float64 tensor): half the bytes to make,
    # and no float64 on a float32 path.
    draw = np.float64 if x.dtype == np.float64 else np.float32
    keep = generator().random(x.shape, dtype=draw) >= p
    mask = keep * np.asarray(1.0 / (1.0 - p), dtype=x.dtype)  # bool * scale: 0 or the scale
    return x * backend.to_device(mask, x.device)


def accuracy(logits, targets) -> float:
    """The fraction of rows whose largest logit is at the target class (a Python float)."""
    scores = logits.data if isinstance(logits, Tensor) else logits
    t = targets.data if isinstance(targets, Tensor) else targets
    if not backend.is_gpu_array(t):
        t = backend.to_device(np.asarray(t), backend.device_of(scores))
    if scores.shape[:1] != t.shape[:1]:
        raise ValueError(f"accuracy: {scores.shape[0]} rows of logits but {t.shape[0]} targets")
    predicted = scores.argmax(axis=-1)
    return float((predicted == t).mean())
