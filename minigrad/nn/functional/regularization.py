"""Dropout, and accuracy as a metric."""

from __future__ import annotations

from ...tensor import Tensor
from ._common import _as_tensor, _targets_on_device
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
    """The fraction of rows whose largest logit is at the target class (a Python float).

    logits (N, C), targets (N,) ints in [0, C). A target outside [0, C) raises an IndexError
    (it could never be predicted, so the accuracy would be silently too low); so do 0 rows
    (an accuracy over nothing is undefined). Reading the result is one device sync anyway, so
    the checks are made on the GPU too.

        >>> F.accuracy(mg.tensor([[0.1, 2.0], [3.0, 0.0]]), [1, 1])
        0.5
    """
    scores = logits.data if isinstance(logits, Tensor) else logits
    t = _targets_on_device(targets.data if isinstance(targets, Tensor) else targets, scores)
    if scores.ndim != 2:
        raise ValueError(f"accuracy: logits must have shape (N, C), got {scores.shape}")
    n, c = scores.shape
    if t.dtype.kind not in "iu":
        raise TypeError(f"accuracy: targets must be integer class indices, got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(
            f"accuracy: {n} rows of logits need targets of shape ({n},), got {t.shape}"
        )
    if n == 0:
        raise ValueError(
            "accuracy: there are no rows (N = 0); an accuracy over nothing is undefined"
        )
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= c:
        raise IndexError(
            f"accuracy: target {low if low < 0 else high} is out of range for {c} classes [0, {c})"
        )
    predicted = scores.argmax(axis=-1)
    return float((predicted == t).mean())
