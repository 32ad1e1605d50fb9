"""Dropout, and accuracy as a metric."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor
from .dropout_mask import dropout_mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) ("inverted").

    The scaling keeps the expected value of every element unchanged, so nothing needs to
    change at evaluation time, where dropout is the identity (training=False).
    The mask comes from one seed drawn from `minigrad.random.generator()` and a counter-based
    hash of each element's index (dropout_mask.py): seeded, the same on the CPU and the GPU,
    made where the tensor lives, and a new one at each replay of a CUDA graph.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    x = _as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return x * dropout_mask(x.shape, p, x.dtype, x.device)  # 0 or 1 / (1 - p)


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
