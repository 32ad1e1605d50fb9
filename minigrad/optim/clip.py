"""Gradient clipping by the global norm, in place in the GradientStore.

    norm  = sqrt(sum over every gradient g of sum(g * g))
    scale = min(1, max_norm / (norm + 1e-6))
    g    <- g * scale         for every gradient

The norm and the scale stay on the gradients' device as 0-d arrays: on the GPU nothing is
copied to the host, so the training loop never waits for the GPU here (unless the
non-finite check is on, which has to read the norm; see error_if_nonfinite).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..gradients import GradientStore
from ..tensor import Tensor
from .optimizer import check_number


def clip_grad_norm(
    grads: GradientStore,
    max_norm: float,
    params=None,
    error_if_nonfinite: bool = True,
) -> Tensor:
    """Scale the gradients in `grads` (of `params`, or all) so their global 2-norm <= max_norm.

    Returns the norm before clipping, as a 0-d tensor on the gradients' device.
    Parameters without a gradient in the store are skipped.

    error_if_nonfinite=True (default): a NaN or infinite norm raises, and no gradient is
    changed. This check reads the norm on the host, one GPU sync per call; pass False to keep
    the GPU path sync-free (a non-finite norm then makes every gradient NaN, as in PyTorch).

        >>> grads = loss.backward()
        >>> norm = clip_grad_norm(grads, max_norm=1.0)
        >>> opt.step(grads)
    """
    if not isinstance(grads, GradientStore):
        raise TypeError(
            f"clip_grad_norm takes the GradientStore from loss.backward(), "
            f"not a {type(grads).__name__}"
        )
    max_norm = check_number("max_norm", max_norm, low=0.0)
    if max_norm == 0:
        raise ValueError("max_norm must be > 0 (0 would erase every gradient)")
    if params is None:
        arrays = list(grads.values())
    else:
        arrays = [g for g in (grads.get(p) for p in params) if g is not None]
    if not arrays:
        return Tensor(np.zeros((), dtype=np.float32))  # nothing to clip: the norm is 0

    devices = {backend.device_of(g) for g in arrays}
    if len(devices) > 1:
        raise backend.DeviceError(
            "clip_grad_norm: the gradients live on different devices "
            f"({' and '.join(sorted(devices))}); clip each device's gradients separately"
        )
    xp = backend.xp_of(arrays[0])
    # sum(g * g) as a dot product of the flat gradient with itself: no temporary array.
    total = None
    for g in arrays:
        flat = g.reshape(-1)
        square = backend.matmul(flat, flat)  # capturable on the GPU (cupy.dot is not)
        total = square if total is None else total + square
    norm = xp.sqrt(xp.asarray(total))

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
