"""Parameter initialization: fill a tensor in place with numbers scaled to its fan-in/fan-out.

Why scale at all: a layer y = W x sums `fan_in` products, so with W ~ U(-b, b) the variance of
y grows like fan_in * b**2 / 3 * Var(x). Choosing b so that this stays near Var(x) keeps the
signal from exploding or vanishing as it passes through many layers.

    Kaiming (He et al. 2015), for ReLU-like layers:  std = gain / sqrt(fan_mode)
        uniform bound = gain * sqrt(3 / fan_mode),    gain = sqrt(2 / (1 + a**2))
    Xavier (Glorot & Bengio 2010), for tanh/sigmoid: std = gain * sqrt(2 / (fan_in + fan_out))
        uniform bound = gain * sqrt(6 / (fan_in + fan_out))

For a weight of shape (out, in) (as in `Linear`), fan_in = in and fan_out = out.

Every number is drawn on the host from `minigrad.random.generator()` and then copied into the
tensor's array (NumPy or CuPy), so the same seed gives the same model on the CPU and the GPU.
The functions end in `_` because they change the tensor in place (same object, same id):

    >>> w = nn.Parameter(np.empty((128, 64), dtype=np.float32))
    >>> nn.init.kaiming_uniform_(w, nonlinearity="relu")   # U(-sqrt(6/64), sqrt(6/64))
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..random import generator
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "fan_in_and_fan_out",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps the variance steady through `nonlinearity` (PyTorch's values).

    linear/sigmoid: 1,  tanh: 5/3,  relu: sqrt(2),  leaky_relu(a): sqrt(2 / (1 + a**2)).
    """
    if nonlinearity in ("linear", "identity", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "gelu":
        return math.sqrt(2.0)  # GELU behaves like ReLU for the purpose of scale
    raise ValueError(
        f"unknown nonlinearity {nonlinearity!r}: use linear, sigmoid, tanh, relu, leaky_relu "
        "or gelu"
    )


def fan_in_and_fan_out(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape` = (out, in, *kernel): in*k and out*k."""
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}"
        )
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def _fill_(tensor: Tensor, values: np.ndarray) -> Tensor:
    """Copy host `values` into the tensor's array, in place (keeps its dtype and device)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init functions fill a minigrad Tensor, got {type(tensor).__name__}")
    values = np.asarray(values, dtype=tensor.dtype)  # draw in float64, store in its dtype
    tensor.data[...] = backend.to_device(values, tensor.device)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples from U(a, b)."""
    return _fill_(tensor, generator().uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples from N(mean, std**2)."""
    return _fill_(tensor, generator().normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with `value` (draws no random numbers)."""
    return _fill_(tensor, np.full(tensor.shape, value))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def _fan(tensor: Tensor, mode: str) -> int:
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    `Linear` uses a = sqrt(5) (PyTorch's default), which gives bound = 1 / sqrt(fan_in).
    """
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """N(0, std**2) with std = gain / sqrt(fan)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
