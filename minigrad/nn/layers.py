"""Layers: Modules that hold parameters (Linear) or apply a function (activations, Dropout).

model = nn.Sequential(
    nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
    nn.Linear(128, 10),
)
logits = model(x)        # x (N, 64) -> logits (N, 10)
model[0].weight.shape    # (128, 64): (out_features, in_features), as in PyTorch
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = [
    "Linear",
    "Sequential",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "SiLU",
    "ELU",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "Flatten",
    "Identity",
]


class Linear(Module):
    """y = x @ W.T + b.   x (..., in_features) -> y (..., out_features).

    weight: (out_features, in_features), bias: (out_features,). Initialized as PyTorch does:
    W ~ kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) and b ~ U(-1/sqrt(in),
    1/sqrt(in)), drawn on the host from the seeded generator (weight first, then bias), so a
    model built after `mg.manual_seed(s)` is the same on every device.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype=np.float32,
        device: str | None = None,
    ):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(
                f"Linear needs positive sizes, got in_features={in_features}, "
                f"out_features={out_features}"
            )
        self.in_features, self.out_features = int(in_features), int(out_features)
        device = backend.resolve_device(device)
        # Initialize on the host, then move once: the same numbers on the CPU and the GPU.
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if bias:
            self.bias = Parameter(np.empty((out_features,), dtype=dtype))
            bound = 1.0 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None
        self.to(device)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Sequential(Module):
    """Modules applied one after another: Sequential(a, b, c)(x) = c(b(a(x))).

    Indexable like a list: model[0], model[-1], model[1:] (a new Sequential of the same
    layers), len(model), iteration. Children are named "0", "1", ...
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        try:
            return layers[index]
        except IndexError:
            raise IndexError(
                f"index {index} is out of range for a Sequential of {len(layers)} modules"
            ) from None


class ReLU(Module):
    """max(x, 0).

    inplace=True is accepted, as PyTorch code writes it, and changes nothing: minigrad's
    activations always return a new tensor (the same values; PyTorch's in-place form only
    saves memory). The same holds for LeakyReLU, ELU, SiLU and Dropout.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.inplace = bool(inplace)  # accepted, changes nothing (see ReLU)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class GELU(Module):
    """x * Phi(x), Phi the normal CDF (exact, via erf, as PyTorch's default);
    approximate="tanh" for the tanh form (see `functional.gelu`)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) (also called swish)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)  # accepted, changes nothing (see ReLU)

    def forward(self, x):
        return F.silu(x)


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = float(alpha)
        self.inplace = bool(inplace)  # accepted, changes nothing (see ReLU)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above `threshold` (a smooth ReLU)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class _SoftmaxBase(Module):
    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is None:
            # PyTorch guesses an axis (with a deprecation warning); minigrad asks.
            raise ValueError(
                f"{type(self).__name__}: give the axis, e.g. nn.{type(self).__name__}(dim=-1) "
                "for the last one (PyTorch's implicit choice is deprecated)"
            )
        self.dim = int(dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """exp(x) / sum(exp(x)) along `dim`: each slice becomes a probability distribution."""

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(_SoftmaxBase):
    """log(softmax(x)) along `dim`, computed stably."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Dropout(Module):
    """Inverted dropout with probability p, active only in training mode (`model.train()`).

    In eval mode (`model.eval()`) it passes its input through unchanged.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)  # accepted, changes nothing (see ReLU)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Merge the axes start_dim..end_dim into one: (N, 1, 8, 8) -> (N, 64) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        if x.ndim == 0:
            return x.reshape(1)  # PyTorch: flattening a scalar gives shape (1,)
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        merged = int(np.prod(x.shape[start : end + 1]))
        shape = x.shape[:start] + (merged,) + x.shape[end + 1 :]
        return x.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. for an optional layer)."""

    def forward(self, x):
        return x
