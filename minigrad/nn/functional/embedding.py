"""embedding: a lookup table of vectors, indexed by integer ids (tokens, characters, classes).

    out = weight[input]         input (*) ints in [0, V),  weight (V, D)  ->  out (*, D)

Backward: each looked-up row receives the gradient of every place it was used, summed:

    dweight = zeros (V, D);  dweight[input[i]] += g[i]  for every position i   (a scatter-add)

Added, not assigned: an id that appears twice in the batch (a common letter) gets both
gradients, every occurrence counted (the backward sorts the ids and sums each run of equal
ids). The row of padding_idx gets no gradient (it stays what it is, usually zeros, as in
PyTorch).
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import backend
from ...tensor import Tensor


def _ids(fn: str, input, weight):
    """The ids as an integer array on the weight's device, range-checked on the CPU."""
    ids = input.data if isinstance(input, Tensor) else input
    if isinstance(ids, (list, tuple, numbers.Integral)):
        ids = backend.to_device(np.asarray(ids), backend.device_of(weight.data))
    elif not backend.is_gpu_array(ids):
        ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{fn}: the input must hold integer ids, got dtype {ids.dtype}")
    if backend.device_of(ids) != backend.device_of(weight.data):
        raise backend.DeviceError(
            f"{fn}: the ids are on {backend.device_of(ids)} but the weight is on "
            f"{backend.device_of(weight.data)}; move them with .to(...)"
        )
    v = weight.shape[0]
    # Reading the values is free on the CPU, a device sync on the GPU: checked on the CPU only.
    if ids.size and backend.device_of(ids) == backend.CPU:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= v:
            raise IndexError(f"{fn}: id {low if low < 0 else high} is out of range [0, {v})")
    return ids


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` (V, D) picked by the integer ids in `input` (any shape) -> (*, D).

    >>> table = mg.randn(27, 8, requires_grad=True)
    >>> F.embedding([[1, 2], [2, 0]], table).shape
    (2, 2, 8)
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    ids = _ids("embedding", input, weight)
    w = weight.data
    xp = backend.xp_of(w)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += w.shape[0]
    out = xp.take(w, ids, axis=0)

    def backward(g):
        dw = xp.zeros_like(w)
        # dW[id] = the sum of the gradient rows of every position that looked id up
        backend.add_rows(dw, ids.reshape(-1), g.reshape(-1, w.shape[1]))
        if padding_idx is not None:
            dw[padding_idx] = 0
        return (dw,)

    return Tensor._from_op(out, (weight,), backward, "embedding")
