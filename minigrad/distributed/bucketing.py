"""Buckets: many gradients travel as a few flat arrays, one collective per bucket.

One all-reduce per parameter would pay NCCL's fixed cost (launch, synchronization, a few
microseconds each) hundreds of times per step; one all-reduce of everything would need one
huge extra buffer. PyTorch's DistributedDataParallel packs gradients into buckets of about
25 MB, and so does minigrad:

    plan = plan_buckets([g.shape for g in grads], [g.dtype for g in grads], cap_bytes=25 << 20)
    for bucket in plan:
        flat = pack(bucket, grads)        # one flat array: [g_i.ravel() for i in the bucket]
        ...all-reduce flat...
        unpack(bucket, flat, grads)       # each g_i[...] = its slice of flat, in place

A bucket holds one dtype (a collective carries one type). Arrays fill buckets in the order
given, a new bucket starting when the next array would pass the cap; an array larger than
the cap gets a bucket of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import backend

DEFAULT_CAP_BYTES = 25 * 1024 * 1024  # PyTorch DDP's bucket_cap_mb=25


@dataclass(frozen=True)
class Bucket:
    """Which arrays share one flat buffer, and where each one sits in it."""

    dtype: np.dtype
    members: tuple[int, ...]  # positions in the list of arrays
    offsets: tuple[int, ...]  # start of each member in the flat buffer (in elements)
    sizes: tuple[int, ...]  # number of elements of each member

    @property
    def numel(self) -> int:
        return self.offsets[-1] + self.sizes[-1] if self.members else 0


def plan_buckets(shapes, dtypes, cap_bytes: int = DEFAULT_CAP_BYTES) -> list[Bucket]:
    """Group arrays (given by shapes and dtypes, in order) into buckets of one dtype, each
    at most `cap_bytes` unless a single array is larger."""
    if cap_bytes <= 0:
        raise ValueError(f"the bucket size must be > 0 bytes, got {cap_bytes}")
    open_buckets: dict[np.dtype, list[tuple[int, int]]] = {}  # dtype -> [(index, numel)]
    used: dict[np.dtype, int] = {}  # bytes in each open bucket
    done: list[tuple[np.dtype, list[tuple[int, int]]]] = []
    for index, (shape, dtype) in enumerate(zip(shapes, dtypes, strict=True)):
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        current = open_buckets.setdefault(dtype, [])
        if current and used[dtype] + nbytes > cap_bytes:
            done.append((dtype, current))
            current = open_buckets[dtype] = []
        if not current:
            used[dtype] = 0
        current.append((index, math.prod(shape)))
        used[dtype] += nbytes
    done.extend((dtype, members) for dtype, members in open_buckets.items() if members)
    return [_bucket(dtype, members) for dtype, members in done]


def _bucket(dtype: np.dtype, members: list[tuple[int, int]]) -> Bucket:
    offsets, start = [], 0
    for _, numel in members:
        offsets.append(start)
        start += numel
    return Bucket(
        dtype=dtype,
        members=tuple(i for i, _ in members),
        offsets=tuple(offsets),
        sizes=tuple(n for _, n in members),
    )


def pack(bucket: Bucket, arrays) -> object:
    """A flat array (on the arrays' device) holding the bucket's arrays one after another.

    An array alone in its bucket (one larger than the cap) is not copied: its flat view is
    the buffer, so the collective works on the gradient itself and unpack has nothing to do.
    """
    if len(bucket.members) == 1:
        only = arrays[bucket.members[0]]
        if only.flags.c_contiguous and only.dtype == bucket.dtype:
            return only.reshape(-1)
    parts = [arrays[i].reshape(-1) for i in bucket.members]
    xp = backend.xp_of(parts[0])
    return xp.concatenate(parts).astype(bucket.dtype, copy=False)


def unpack(bucket: Bucket, flat, arrays) -> None:
    """Copy each slice of `flat` back into its array, in place (the arrays keep their identity,
    so whoever holds them, a GradientStore or a Parameter, sees the new values)."""
    for i, start, numel in zip(bucket.members, bucket.offsets, bucket.sizes):
        piece = flat[start : start + numel]
        if _address(piece) != _address(arrays[i]):  # else it is the array itself (see pack)
            arrays[i][...] = piece.reshape(arrays[i].shape)


def _address(array) -> int:
    """Where the array's first element lives (device or host memory)."""
    return array.data.ptr if backend.is_gpu_array(array) else array.ctypes.data
