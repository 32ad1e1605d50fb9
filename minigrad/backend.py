"""The NumPy/CuPy switch: which array library holds an array, and moving arrays between devices.

minigrad keeps one code path for both devices. Every op asks for the array module of its
inputs and calls it, as DeZero does:

    xp = backend.xp_of(array)      # numpy for a host array, cupy for a device array
    out = xp.exp(array)

CuPy is imported lazily, the first time the GPU is asked for, so `import minigrad` works on a
machine without CuPy or without a GPU.

Devices are named "cpu" and "gpu" ("cuda" is accepted as another name for "gpu").
The default device starts as the environment variable MINIGRAD_DEVICE, or "cpu".
"""

from __future__ import annotations

import os
import sys

import numpy as np

CPU = "cpu"
GPU = "gpu"
_ALIASES = {"cpu": CPU, "gpu": GPU, "cuda": GPU}


class DeviceError(RuntimeError):
    """The GPU was asked for and cannot be used, or arrays on different devices were mixed."""


def normalize_device(device: str) -> str:
    """Return "cpu" or "gpu" for a device name ("cuda" and "cuda:0" mean "gpu")."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'gpu', got {device!r}")
    name = device.strip().lower()
    if name.startswith("cuda:") and name[5:] == "0":
        name = "cuda"
    if name not in _ALIASES:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'gpu' (or 'cuda')")
    return _ALIASES[name]


# ---------------------------------------------------------------- CuPy, imported on first use
_cupy = None
_cupy_error: str | None = None


def _import_cupy():
    """Import CuPy once and check that a CUDA device is there; remember why if not."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        _cupy_error = (
            f"CuPy is not installed or failed to import ({exc}). Install the wheel for "
            "your CUDA version: pip install 'minigrad[gpu]' (CUDA 12) "
            "or 'minigrad[gpu-cuda13]' (CUDA 13)"
        )
        return None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        _cupy_error = f"CuPy is installed but no CUDA device could be opened ({exc})"
        return None
    if count == 0:
        _cupy_error = "CuPy is installed but this machine has no CUDA device"
        return None
    _cupy = cupy
    return _cupy


def gpu_available() -> bool:
    """True when CuPy imports and a CUDA device is present."""
    return _import_cupy() is not None


def cupy_module():
    """The cupy module; raises DeviceError saying why when the GPU cannot be used."""
    cupy = _import_cupy()
    if cupy is None:
        raise DeviceError(f"the GPU was requested but cannot be used: {_cupy_error}")
    return cupy


# ---------------------------------------------------------------- default device
def _device_from_environment() -> str:
    value = os.environ.get("MINIGRAD_DEVICE", "") or CPU
    try:
        return normalize_device(value)
    except ValueError:
        # Name the variable: the traceback of a failed `import minigrad` does not show it.
        raise ValueError(
            f"environment variable MINIGRAD_DEVICE={value!r} is not a device: "
            "set it to 'cpu' or 'gpu' (or 'cuda'), or unset it"
        ) from None


_default_device = _device_from_environment()


def set_default_device(device: str) -> None:
    """Make new tensors live on `device` ("cpu" or "gpu") unless they say otherwise."""
    global _default_device
    device = normalize_device(device)
    if device == GPU:
        cupy_module()  # fail now, with the reason, rather than at the first tensor
    _default_device = device


def get_default_device() -> str:
    return _default_device


def resolve_device(device: str | None) -> str:
    """`device` normalized, or the default device when it is None."""
    return _default_device if device is None else normalize_device(device)


# ---------------------------------------------------------------- which module holds an array
def is_gpu_array(array) -> bool:
    # Only ask CuPy if it was already imported: a CuPy array cannot exist otherwise.
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def device_of(array) -> str:
    """ "gpu" for a CuPy array, "cpu" for anything else (NumPy arrays and scalars)."""
    return GPU if type(array) is not np.ndarray and is_gpu_array(array) else CPU


def xp_of(array):
    """The array module (numpy or cupy) that holds `array`."""
    if type(array) is np.ndarray:
        return np
    return sys.modules["cupy"] if is_gpu_array(array) else np


def xp_for(device: str):
    """The array module for a device name."""
    return cupy_module() if normalize_device(device) == GPU else np


# ---------------------------------------------------------------- transfers
def to_device(array, device: str):
    """`array` on `device`; returns the same object when it is already there (no copy)."""
    device = normalize_device(device)
    if device == GPU:
        cupy = cupy_module()
        return array if isinstance(array, cupy.ndarray) else cupy.asarray(array)
    return to_numpy(array)


def to_numpy(array) -> np.ndarray:
    """A NumPy array with the values of `array`, copying from the GPU when needed."""
    if is_gpu_array(array):
        return array.get()
    return np.asarray(array)


def scatter_add(target, index, values) -> None:
    """target[index] += values in place, counting an index that repeats once per occurrence.

    (Plain `target[index] += values` would add only once for a repeated index.)
    """
    add = xp_of(target).add
    if hasattr(add, "at"):  # NumPy, and CuPy since v13, where cupyx.scatter_add is deprecated
        add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def add_rows(target, ids, rows) -> None:
    """target[ids[i]] += rows[i] for every i, in place; a repeated id gets all of its rows.

    target (V, D), ids (N,) integers, rows (N, D): the backward of an embedding lookup.
    On the CPU the ids are sorted, so that the rows of one id sit side by side, and
    np.add.reduceat sums every run of equal ids in one call (5x faster than np.add.at on the
    tiny GPT's 1,024 tokens; the same sums up to the order of the additions). On the GPU a
    scatter with atomic adds: its work does not depend on the values, so it needs no read
    back to the host and can be recorded in a CUDA graph (the sort's run boundaries would).
    """
    if ids.size == 0:
        return
    if is_gpu_array(target):
        scatter_add(target, ids, rows)
        return
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1  # where each run begins
    starts = np.concatenate([np.zeros(1, dtype=starts.dtype), starts])
    target[sorted_ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)


def matmul(a, b):
    """a @ b for two arrays on one device: every matrix product in minigrad goes through here.

    On the GPU it goes to cuBLAS through a handle minigrad owns (minigrad/cuda/cublas.py):
    CuPy refuses its own cuBLAS calls while a stream is being captured into a CUDA graph, and
    one code path for eager steps and captured ones keeps their results bit for bit equal.
    """
    if type(a) is np.ndarray or not is_gpu_array(a):
        return np.matmul(a, b)
    global _gpu_matmul
    if _gpu_matmul is None:
        from .cuda import cublas  # imported on first use: it needs CuPy

        _gpu_matmul = cublas.matmul
    return _gpu_matmul(a, b)


_gpu_matmul = None  # minigrad.cuda.cublas.matmul, once a GPU array was multiplied
