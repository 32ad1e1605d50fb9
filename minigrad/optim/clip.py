"""Gradient clipping, in place in the GradientStore: by the global norm, or by value.

    norm  = (sum over every gradient g of sum |g|^p) ^ (1/p)     (max |g| for p = inf)
    scale = min(1, max_norm / (norm + 1e-6))
    g    <- g * scale         for every gradient

The norm and the scale stay on the gradients' device as 0-d arrays: on the GPU nothing is
copied to the host, so the training loop never waits for the GPU here (unless the
non-finite check is on, which has to read the norm; see error_if_nonfinite).

Clipping changes every gradient or none: each array is checked (device, writable) before
the first one is changed.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..checks import check_number
from ..gradients import GradientStore
from ..tensor import Tensor


def _gradients(fn: str, grads, params) -> list:
    """The gradient arrays to clip (of `params`, or all), checked before any is changed."""
    if not isinstance(grads, GradientStore):
        raise TypeError(
            f"{fn} takes the GradientStore from loss.backward(), not a {type(grads).__name__}"
        )
    if params is None:
        arrays = list(grads.values())
    else:
        arrays = [g for g in (grads.get(p) for p in params) if g is not None]
    devices = {backend.device_of(g) for g in arrays}
    if len(devices) > 1:
        raise backend.DeviceError(
            f"{fn}: the gradients live on different devices ({' and '.join(sorted(devices))}); "
            "clip each device's gradients separately"
        )
    for g in arrays:
        if not getattr(g.flags, "writeable", True):  # NumPy only: CuPy arrays are writable
            raise ValueError(
                f"{fn}: a gradient of shape {g.shape} is a read-only array, so it cannot be "
                "clipped in place (no gradient was changed): give the store a writable copy, "
                "e.g. grads[p] = grads[p].copy()"
            )
    return arrays


def _norm_type(norm_type) -> float:
    norm_type = check_number("norm_type", norm_type, low=0.0) if norm_type != math.inf else math.inf
    if norm_type == 0:
        raise ValueError("norm_type must be > 0 (a p-norm with p > 0, or math.inf for the max)")
    return norm_type


def clip_grad_norm(
    grads: GradientStore,
    max_norm: float,
    norm_type: float = 2.0,
    params=None,
    error_if_nonfinite: bool = True,
) -> Tensor:
    """Scale the gradients in `grads` (of `params`, or all) so their global p-norm <= max_norm.

    norm_type: p of the norm (2.0 by default; math.inf for the largest |g|), as in PyTorch's
    clip_grad_norm_. Returns the norm before clipping, as a 0-d tensor on the gradients'
    device. Parameters without a gradient in the store are skipped.

    error_if_nonfinite=True (default; PyTorch's default is False): a NaN or infinite norm
    raises, and no gradient is changed. This check reads the norm on the host, one GPU sync
    per call; pass False to keep the GPU path sync-free (a non-finite norm then makes every
    gradient NaN, as in PyTorch).

        >>> grads = loss.backward()
        >>> norm = clip_grad_norm(grads, max_norm=1.0)
        >>> opt.step(grads)
    """
    max_norm = check_number("max_norm", max_norm, low=0.0)
    if max_norm == 0:
        raise ValueError("max_norm must be > 0 (0 would erase every gradient)")
    p = _norm_type(norm_type)
    arrays = _gradients("clip_grad_norm", grads, params)
    if not arrays:
        return Tensor(np.zeros((), dtype=np.float32))  # nothing to clip: the norm is 0

    xp = backend.xp_of(arrays[0])
    total = None
    for g in arrays:
        flat = g.reshape(-1)
        if p == 2:
            part = backend.matmul(flat, flat)  # sum(g * g), no temporary; capturable on the GPU
        elif p == math.inf:
            part = xp.abs(flat).max() if flat.size else xp.zeros((), dtype=g.dtype)
        else:
            part = (xp.abs(flat) ** p).sum()
        if total is None:
            total = part
        else:
            total = xp.maximum(total, part) if p == math.inf else total + part
    total = xp.asarray(total)
    norm = total if p == math.inf else xp.sqrt(total) if p == 2 else total ** (1.0 / p)

    if error_if_nonfinite and not math.isfinite(float(norm)):
        raise RuntimeError(
            f"the total norm of the gradients is {float(norm)}, not finite, so clipping "
            "cannot help: look for a NaN or overflow in the loss (no gradient was changed). "
            "Pass error_if_nonfinite=False to skip this check (and its GPU sync)."
        )
    scale = xp.minimum(1.0, max_norm / (norm + 1e-6))
    for g in arrays:
        xp.multiply(g, scale.astype(g.dtype, copy=False), out=g)
    return Tensor(norm)


def clip_grad_value(grads: GradientStore, clip_value: float, params=None) -> None:
    """Clamp every gradient in `grads` (of `params`, or all) to [-clip_value, clip_value].

    g <- min(max(g, -clip_value), clip_value), elementwise and in place, as PyTorch's
    clip_grad_value_. Unlike clip_grad_norm it changes the direction of the gradient.
    """
    clip_value = check_number("clip_value", clip_value, low=0.0)
    for g in _gradients("clip_grad_value", grads, params):
        xp = backend.xp_of(g)
        xp.clip(g, -clip_value, clip_value, out=g)
