"""Dropout masks from a counter-based generator, written twice: NumPy and CUDA, bit-identical.

Each dropout call draws ONE 53-bit seed from the global generator (`minigrad.random`, so
mg.manual_seed and checkpoints cover it) and makes the mask from (seed, element index) alone:

    z_i  = splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15)      (integer arithmetic mod 2**64)
    u_i  = (z_i >> 40) * 2**-24                                 (24 random bits: exact in
                                                                  float32 and float64)
    mask = 1 / (1 - p)  where u_i >= p,  else 0

Integer operations and one exact comparison: the CPU and the GPU give the same mask to the
bit, and the GPU makes it on the device (no host-to-device copy of a mask). Inside a CUDA
graph the seed is read from device memory, and before each replay the host draws the next
seed from the generator, as an eager step would (see minigrad/cuda/graphs.py): every replay
gets a new mask, the same one the eager step would have drawn.
"""

from __future__ import annotations

import numpy as np

from ... import backend
from ...random import generator

_GAMMA = 0x9E3779B97F4A7C15
_SEED_BITS = 53  # a seed travels as a float64 into a captured kernel: exact below 2**53


def _splitmix64(z):
    """The splitmix64 finalizer on a uint64 array (wraps mod 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def mask_numpy(shape, p: float, seed: int, dtype) -> np.ndarray:
    """The mask on the host: 1/(1-p) where kept, 0 where dropped, in `dtype`."""
    index = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _splitmix64(np.uint64(seed) + index * np.uint64(_GAMMA))
    u = (z >> np.uint64(40)).astype(np.float64) * 2.0**-24
    scale = np.asarray(1.0 / (1.0 - p), dtype=dtype)
    return ((u >= p) * scale).astype(dtype, copy=False).reshape(shape)


# The same, one element per thread. `seed` is a float64 holding an integer below 2**53.
_MASK_CUDA = r"""
const unsigned long long gamma = 0x9E3779B97F4A7C15ull;
unsigned long long z = (unsigned long long)seed + (unsigned long long)(i + 1) * gamma;
z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
z = z ^ (z >> 31);
const double u = (double)(z >> 40) * 5.9604644775390625e-08;  // 2**-24
mask = u >= p ? (T)scale : (T)0;
"""
_kernels: dict = {}


def _mask_kernel(from_memory: bool):
    kernel = _kernels.get(from_memory)
    if kernel is None:
        cupy = backend.cupy_module()
        seed = "raw float64 seeds" if from_memory else "float64 seed"
        body = ("const double seed = seeds[0];\n" if from_memory else "") + _MASK_CUDA
        kernel = _kernels[from_memory] = cupy.ElementwiseKernel(
            f"{seed}, float64 p, float64 scale",
            "T mask",
            body,
            name="minigrad_dropout_mask",
        )
    return kernel


def dropout_mask(shape, p: float, dtype, device: str):
    """The mask of one dropout call on `device`, from a seed drawn from the global generator."""
    seed = int(generator().integers(0, 2**_SEED_BITS))
    if device != backend.GPU:
        return mask_numpy(shape, p, seed, dtype)
    cupy = backend.cupy_module()
    mask = cupy.empty(shape, dtype=dtype)
    scale = float(np.asarray(1.0 / (1.0 - p), dtype=dtype))  # rounded as mask_numpy rounds it
    if cupy.cuda.get_current_stream().is_capturing():
        from ...optim import _kernels as optim_kernels

        slot = optim_kernels.captured_host_values((seed,), _next_seed)
        _mask_kernel(True)(slot, p, scale, mask)
    else:
        _mask_kernel(False)(float(seed), p, scale, mask)
    return mask


def _next_seed() -> tuple:
    """What a replay draws where the eager step would draw its seed."""
    return (int(generator().integers(0, 2**_SEED_BITS)),)
