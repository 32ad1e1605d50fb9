"""Classification losses: cross_entropy and nll_loss, with PyTorch's arguments and numbers.

Logits or log-probabilities (N, C); targets are class indices (N,) ints in [0, C), or for
cross_entropy also probabilities (N, C):

    cross_entropy(z, t)    -w_t * log softmax(z)_t
    nll_loss(logp, t)      -w_t * logp_t                 for models that end in log_softmax

weight (C,) scales each class; a target equal to ignore_index (-100) counts for nothing;
label_smoothing eps trains against (1 - eps) * onehot + eps / C. reduction="mean" (default)
divides by the sum of the weights of the targets that count (N without weights or ignored
targets), "sum" adds, "none" keeps one loss per row. A mean over nothing (an empty batch,
or every target ignored) is nan with a zero gradient, as in PyTorch; "sum" gives 0 there.

The pointwise losses (mse, l1, huber, binary cross-entropy, kl_div) are in pointwise_losses.py.
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor, _check_reduction, _same_device, _targets_on_device


def cross_entropy(
    input: Tensor,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits (N, C), as one fused op.

    With p = softmax(z) and the target distribution a_i (onehot(t_i) for a class index,
    smoothed to (1 - eps) * onehot(t_i) + eps / C, scaled by the class weights):

        loss_i = -sum_c a_ic * log p_ic
        dloss_i / dz_i = p_i * sum_c a_ic - a_i       (= p_i - onehot(t_i) without options)

    Equal to PyTorch's F.cross_entropy with the same arguments.

        >>> F.cross_entropy(mg.tensor([[2.0, 0.5, -1.0]]), [0])      # -log softmax(z)_0
        Tensor(0.2413)
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logits = _as_tensor(input)
    x = logits.data
    _check_2d("cross_entropy", x, "logits")
    t = _targets_on_device(target, x)
    _same_device("cross_entropy", t, x)
    soft = t.dtype.kind == "f" and t.shape == x.shape  # probabilities
    if not soft:
        valid = _class_indices("cross_entropy", t, x.shape, ignore_index)
    w = _class_weights("cross_entropy", weight, x)

    xp = backend.xp_of(x)
    logp = x - x.max(axis=1, keepdims=True)  # largest logit becomes 0: exp cannot overflow
    probs = xp.exp(logp)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    logp -= xp.log(total)  # in place: the shifted logits are not needed any more

    if not soft and w is None:  # every classifier's case: the fast path
        return _onehot_loss(logits, logp, probs, t, valid, label_smoothing, reduction)
    if soft:
        mass, denominator = _soft_mass(t, w, label_smoothing)
    else:
        mass, denominator = _class_mass(t, valid, w, label_smoothing, x)
    return _mass_loss(
        "cross_entropy", logits, logp, mass, denominator, reduction,
        lambda: probs * mass.sum(axis=1, keepdims=True) - mass,
    )  # fmt: skip


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
    _same_device("nll_loss", t, x)
    if t.dtype.kind == "f":
        raise TypeError(
            "nll_loss: targets must be class indices; for probabilities use "
            "cross_entropy(logits, probabilities)"
        )
    valid = _class_indices("nll_loss", t, x.shape, ignore_index)
    w = _class_weights("nll_loss", weight, x)
    mass, denominator = _class_mass(t, valid, w, 0.0, x)
    return _mass_loss("nll_loss", log_probs, x, mass, denominator, reduction, lambda: -mass)


# ---------------------------------------------------------------- the fast path


def _onehot_loss(logits, logp, probs, t, valid, eps: float, reduction: str) -> Tensor:
    """Class indices, no weights: pick each row's target column by comparison.

    The comparison t == arange(C) (a bool onehot) and a `where` are a few elementwise passes,
    which on the GPU cost far less than fancy indexing and its scatter in backward. `where`,
    not a product, so that a -inf logit outside the target column gives 0, not 0 * -inf.
    valid is None when every target counts (known on the CPU), else a bool (N,) mask.
    """
    xp = backend.xp_of(logp)
    n, c = logp.shape
    onehot = t[:, None] == xp.arange(c)
    if valid is not None:
        onehot &= valid[:, None]  # an ignore_index inside [0, C) would match a column
    zero = xp.zeros((), dtype=logp.dtype)
    count = n if valid is None else valid.sum()  # the rows that count
    picked = xp.where(onehot, logp, zero)  # log p_i,t_i; 0 elsewhere
    if reduction == "none":
        out = -picked.sum(axis=1)
        if eps:
            rows = logp.sum(axis=1) if valid is None else xp.where(valid, logp.sum(axis=1), zero)
            out = (1.0 - eps) * out - (eps / c) * rows
    else:
        # Summed over the whole batch at once: one reduction instead of one per row, then
        # another (each reduction is a separate kernel launch on the GPU).
        out = picked.sum()
        if eps:
            every = logp.sum() if valid is None else xp.where(valid, logp.sum(axis=1), zero).sum()
            out = (1.0 - eps) * out + (eps / c) * every
        if reduction == "sum":
            out *= -1.0
        elif isinstance(count, int) and count > 0:
            out *= -1.0 / count
        else:
            # count is a device integer here (GPU, or rows ignored): divide in the loss's
            # dtype, since float32 / int64 would promote the loss to float64.
            with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = nan, as PyTorch
                out = -out / xp.asarray(count, dtype=out.dtype)

    def backward(g):
        # p - a with a = (1 - eps) * onehot + eps / C; a new array, as backward may run again
        if eps:
            grad = probs - onehot.astype(probs.dtype) * (1.0 - eps)
            grad -= eps / c
        else:
            grad = probs - onehot  # the bool onehot counts as 0.0 and 1.0
        if valid is not None:
            grad *= valid[:, None]  # an ignored row has no loss and no gradient
        if reduction == "mean":
            grad *= g / _nonzero(count)
        elif reduction == "sum":
            grad *= g
        else:
            grad *= g[:, None]
        return (grad,)

    return Tensor._from_op(out, (logits,), backward, "cross_entropy")


# ---------------------------------------------------------------- weights and probabilities


def _class_mass(t, valid, w, eps: float, x):
    """(a, mean's denominator) for class indices: a_ic = valid_i * w_c * ((1 - eps) *
    [c == t_i] + eps / C), and the denominator sum_i valid_i * w_t_i."""
    xp = backend.xp_of(x)
    c = x.shape[1]
    onehot = t[:, None] == xp.arange(c)
    if valid is not None:
        onehot &= valid[:, None]
    mass = onehot.astype(x.dtype)
    counted = mass.sum(axis=1) if w is None else (mass * w).sum(axis=1)  # w_t_i, or 0
    if eps:
        mass *= 1.0 - eps
        mass += (eps / c) if valid is None else valid[:, None] * (eps / c)
    if w is not None:
        mass *= w
    return mass, counted.sum()


def _soft_mass(q, w, eps: float):
    """(a, mean's denominator) for probabilities: a = w * ((1 - eps) * q + eps / C), N."""
    mass = q.astype(q.dtype, copy=True)
    if eps:
        mass *= 1.0 - eps
        mass += eps / q.shape[1]
    if w is not None:
        mass = mass.astype(w.dtype, copy=False) * w
    return mass, q.shape[0]


def _mass_loss(name, inputs, logp, mass, denominator, reduction, grad_of_mass_loss):
    """The op -sum_c mass * logp (per row, summed, or averaged over `denominator`)."""
    xp = backend.xp_of(logp)
    mass = mass.astype(logp.dtype, copy=False)
    # `where`, not a product alone: a -inf log-probability with no mass gives 0, not nan.
    with np.errstate(invalid="ignore"):
        picked = xp.where(mass != 0, mass * logp, xp.zeros((), dtype=logp.dtype))
    if reduction == "none":
        out = -picked.sum(axis=1)
    else:
        out = -picked.sum()
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = nan, as PyTorch
                out = out / denominator

    def backward(g):
        grad = grad_of_mass_loss().astype(logp.dtype, copy=False)  # a new (N, C) array
        if reduction == "mean":
            grad *= g / _nonzero(denominator)  # over nothing, no row has mass: gradient 0
        elif reduction == "sum":
            grad *= g
        else:
            grad *= g[:, None]
        return (grad,)

    return Tensor._from_op(out, (inputs,), backward, name)


def _nonzero(denominator):
    """The denominator, or 1 where it is 0 (then every gradient it divides is 0 anyway)."""
    if isinstance(denominator, numbers.Number):
        return denominator or 1
    xp = backend.xp_of(denominator)
    return xp.where(denominator == 0, xp.ones((), dtype=denominator.dtype), denominator)


# ---------------------------------------------------------------- checks


def _check_2d(fn: str, x, what: str) -> None:
    if x.ndim != 2:
        raise ValueError(
            f"{fn}: {what} must have shape (N, C), got {x.shape}; reshape first, "
            "e.g. logits.reshape(-1, C) and targets.reshape(-1)"
        )


def _class_indices(fn: str, t, shape: tuple, ignore_index: int):
    """Check class targets (N,): dtype, shape, and (on the CPU) range.

    Returns the rows that count: None when every row counts (known on the CPU), else a bool
    (N,) mask, t != ignore_index. On the GPU reading the values would cost a device sync,
    so the range is not checked there and the mask is always made.
    """
    n, c = shape
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: targets must be integer class indices in [0, {c}) of shape ({n},), or "
            f"probabilities of the input's shape {shape}; got {t.dtype} of shape {t.shape}"
        )
    if t.shape != (n,):
        raise ValueError(
            f"{fn}: input of shape {shape} needs targets of shape ({n},), got {t.shape}"
        )
    if backend.device_of(t) != backend.CPU:
        return t != ignore_index
    if n == 0:
        return None
    low, high = int(t.min()), int(t.max())
    ignored = None
    if low <= ignore_index <= high:  # only then can a target be ignore_index
        ignored = t == ignore_index
        if ignored.all():
            return ~ignored
        if ignored.any():
            counted = t[~ignored]
            low, high = int(counted.min()), int(counted.max())
        else:
            ignored = None
    if low < 0 or high >= c:
        raise IndexError(
            f"{fn}: target {low if low < 0 else high} is out of range for {c} classes "
            f"[0, {c}) (and is not ignore_index={ignore_index})"
        )
    return None if ignored is None else ~ignored


def _class_weights(fn: str, weight, x):
    """The (C,) weights as an array of the input's dtype on its device, or None."""
    if weight is None:
        return None
    c = x.shape[1]
    w = weight.data if isinstance(weight, Tensor) else weight
    if not backend.is_gpu_array(w):
        w = backend.to_device(np.asarray(w), backend.device_of(x))
    if w.shape != (c,):
        raise ValueError(f"{fn}: weight must have one entry per class, shape ({c},), got {w.shape}")
    _same_device(fn, w, x)
    return w.astype(x.dtype, copy=False)
