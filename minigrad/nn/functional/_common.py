"""Helpers shared by the functional modules: targets, reductions, device checks."""

from __future__ import annotations

import numbers

import numpy as np

from ... import backend
from ...tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


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
