"""Losses, with PyTorch's names, arguments, defaults and numbers.

Classification (logits or log-probabilities (N, C); class targets (N,) ints):

    cross_entropy(z, t)        -w_t * log softmax(z)_t       also probability targets (N, C)
    nll_loss(logp, t)          -w_t * logp_t                  for models that end in log_softmax
    binary_cross_entropy(p, y) -w * (y log p + (1 - y) log(1 - p)),  each log clamped at -100
    binary_cross_entropy_with_logits(x, y)   the same of sigmoid(x), stable for any x
    kl_div(logq, p)            p * (log p - logq)             input is log-probabilities

Regression (input and target of one shape, d = input - target):

    mse_loss     d^2
    l1_loss      |d|
    smooth_l1    0.5 d^2 / beta  if |d| < beta,   else |d| - 0.5 beta
    huber        0.5 d^2         if |d| <= delta, else delta * (|d| - 0.5 delta)

reduction="mean" (default) averages, "sum" adds, "none" keeps one loss per element (per row
for the classification losses). With class weights, "mean" divides by the sum of the weights
of the targets that count (not by N), and targets equal to ignore_index (-100) count for
nothing, as in PyTorch. A mean over nothing (an empty batch, or every target ignored) is
nan, as in PyTorch; "sum" gives 0 there.
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import backend, ops
from ...tensor import Tensor
from ._common import _as_tensor, _check_reduction, _reduce, _same_device

# ---------------------------------------------------------------- class targets


def _targets_on_device(targets, like):
    """targets as an array on like's device (a list or number is moved; an array is not)."""
    if isinstance(targets, Tensor):
        if targets.requires_grad:
            raise ValueError(
                "the targets require gradients, but this loss does not differentiate its "
                "targets: pass targets.detach()"
            )
        return targets.data
    if isinstance(targets, (list, tuple, numbers.Number)):
        return backend.to_device(np.asarray(targets), backend.device_of(like))
    return targets if backend.is_gpu_array(targets) else np.asarray(targets)


def _class_indices(fn: str, t, n: int, c: int, ignore_index: int):
    """Check integer class targets (N,): dtype, shape, device, and (on the CPU) range."""
    if t.shape != (n,):
        raise ValueError(
            f"{fn}: input of shape ({n}, {c}) needs targets of shape ({n},), got {t.shape}"
        )
    # The range check reads the values: free on the CPU, a device sync on the GPU, so it is
    # done on the CPU only (an out-of-range index there would silently count as no class).
    if n and backend.device_of(t) == backend.CPU:
        counted = t[t != ignore_index]
        if counted.size and (counted.min() < 0 or counted.max() >= c):
            bad = int(counted.min()) if counted.min() < 0 else int(counted.max())
            raise IndexError(
                f"{fn}: target {bad} is out of range for {c} classes [0, {c}) "
                f"(and is not ignore_index={ignore_index})"
            )
    return t


def _class_weights(fn: str, weight, c: int, like):
    """The (C,) weights as an array of the input's dtype on its device, or None."""
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else weight
    if not backend.is_gpu_array(w):
        w = backend.to_device(np.asarray(w), backend.device_of(like))
    if w.shape != (c,):
        raise ValueError(f"{fn}: weight must have one entry per class, shape ({c},), got {w.shape}")
    _same_device(fn, w, like)
    return w.astype(like.dtype, copy=False)


def _target_mass(fn, targets, x, weight, ignore_index, label_smoothing):
    """(mass, denominator of "mean"): the weights a (N, C) that the loss puts on each log p.

    loss_i = -sum_c a_ic * log p_ic
    class targets:        a_ic = valid_i * w_c * ((1 - eps) * [c == t_i] + eps / C)
                          mean divides by sum_i valid_i * w_t_i
    probability targets:  a_ic = w_c * ((1 - eps) * q_ic + eps / C),  mean divides by N
    """
    n, c = x.shape
    xp = backend.xp_of(x)
    t = _targets_on_device(targets, x)
    _same_device(fn, t, x)
    w = _class_weights(fn, weight, c, x)
    if t.dtype.kind == "f" and t.shape == x.shape:  # probabilities (soft targets)
        mass = t.astype(x.dtype, copy=True)
        if label_smoothing:
            mass *= 1.0 - label_smoothing
            mass += label_smoothing / c
        if w is not None:
            mass *= w
        return mass, xp.asarray(n, dtype=x.dtype)
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: targets must be integer class indices in [0, {c}) of shape ({n},), or "
            f"probabilities of the input's shape {x.shape}; got {t.dtype} of shape {t.shape}"
        )
    t = _class_indices(fn, t, n, c, ignore_index)
    valid = t != ignore_index
    # The target column is picked by comparison (onehot) rather than by gathering rows: a few
    # elementwise passes, which on the GPU cost far less than fancy indexing and its scatter.
    onehot = (t[:, None] == xp.arange(c)) & valid[:, None]
    mass = onehot.astype(x.dtype)
    counted = valid.astype(x.dtype) if w is None else (mass * w).sum(axis=1)  # w_t_i, or 0
    if label_smoothing:
        mass *= 1.0 - label_smoothing
        mass += valid[:, None] * (label_smoothing / c)
    if w is not None:
        mass *= w
    return mass, counted.sum()


def _mass_loss(name, inputs, logp, mass, denominator, reduction, grad_of_mass_loss):
    """The op -sum_c mass * logp (per row, summed, or averaged over `denominator`)."""
    xp = backend.xp_of(logp)
    # `where`, not a product alone: a -inf log-probability with no mass gives 0, not nan.
    with np.errstate(invalid="ignore"):
        picked = xp.where(mass != 0, mass * logp, xp.zeros((), dtype=logp.dtype))
    if reduction == "none":
        out = -picked.sum(axis=1)
    else:
        out = -picked.sum()  # one reduction over the whole batch (one launch on the GPU)
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = nan, as PyTorch
                out = out / denominator

    def backward(g):
        grad = grad_of_mass_loss()  # a new (N, C) array: d(-sum mass * logp) / d input
        if reduction == "mean":
            # Over nothing (denominator 0), no row has mass: the gradient is 0, as PyTorch's.
            safe = xp.where(denominator == 0, xp.ones((), dtype=grad.dtype), denominator)
            grad *= g / safe
        elif reduction == "sum":
            grad *= g
        else:
            grad *= g[:, None]
        return (grad,)

    return Tensor._from_op(out, (inputs,), backward, name)


def _check_2d(fn: str, x, what: str):
    if x.ndim != 2:
        raise ValueError(
            f"{fn}: {what} must have shape (N, C), got {x.shape}; reshape first, "
            "e.g. logits.reshape(-1, C) and targets.reshape(-1)"
        )


def cross_entropy(
    input: Tensor,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy, as one fused op: input logits (N, C).

    target: class indices (N,) ints in [0, C) (or ignore_index), or probabilities (N, C).
    With p = softmax(z), eps = label_smoothing and a the target mass (see _target_mass;
    without weights a_i = (1 - eps) * onehot(t_i) + eps / C, the smoothed target):

        loss_i = -sum_c a_ic * log p_ic
        dloss_i / dz_i = p_i * sum_c a_ic - a_i            (= p_i - onehot(t_i) without options)

    weight (C,) scales each class; reduction "mean" divides by sum_i w_t_i over the targets
    that count (by N for probability targets). Equal to PyTorch's F.cross_entropy.

        >>> F.cross_entropy(mg.tensor([[2.0, 0.5, -1.0]]), [0])      # -log softmax(z)_0
        Tensor(0.2413)
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logits = _as_tensor(input)
    x = logits.data
    _check_2d("cross_entropy", x, "logits")
    xp = backend.xp_of(x)
    mass, denominator = _target_mass(
        "cross_entropy", target, x, weight, ignore_index, label_smoothing
    )

    logp = x - x.max(axis=1, keepdims=True)  # largest logit becomes 0: exp cannot overflow
    probs = xp.exp(logp)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    logp -= xp.log(total)  # in place: the shifted logits are not needed any more

    def grad_of_mass_loss():
        return probs * mass.sum(axis=1, keepdims=True) - mass

    return _mass_loss(
        "cross_entropy", logits, logp, mass, denominator, reduction, grad_of_mass_loss
    )


def nll_loss(
    input: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood -w_t * logp[i, t_i] of log-probabilities (N, C).

    cross_entropy(z, t) equals nll_loss(log_softmax(z), t); this form is for models whose
    last layer already returns log-probabilities. dloss_i / dlogp_i = -w_t_i * onehot(t_i).
    weight, ignore_index and the "mean" denominator are as in cross_entropy.
    """
    _check_reduction("nll_loss", reduction)
    log_probs = _as_tensor(input)
    x = log_probs.data
    _check_2d("nll_loss", x, "log_probs")
    t = _targets_on_device(target, x)
    if getattr(t, "dtype", None) is not None and t.dtype.kind == "f":
        raise TypeError("nll_loss: targets must be class indices; for probabilities use "
                        "cross_entropy(logits, probabilities)")  # fmt: skip
    mass, denominator = _target_mass("nll_loss", t, x, weight, ignore_index, 0.0)
    return _mass_loss("nll_loss", log_probs, x, mass, denominator, reduction, lambda: -mass)


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
