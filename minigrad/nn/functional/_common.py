"""Helpers shared by the functional modules: targets, reductions, device checks."""

from __future__ import annotations

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


def _targets_on_device(targets, like):
    """targets as an array on like's device: a list, a number or a host (NumPy) array is
    copied there, as mg.tensor would; a GPU array given with CPU logits is left for
    _same_device to refuse (moving device data back to the host is never silent)."""
    if isinstance(targets, Tensor):
        if targets.requires_grad:
            raise ValueError(
                "the targets require gradients, but this loss does not differentiate its "
                "targets: pass targets.detach()"
            )
        return targets.data
    if backend.is_gpu_array(targets):
        return targets
    return backend.to_device(np.asarray(targets), backend.device_of(like))
