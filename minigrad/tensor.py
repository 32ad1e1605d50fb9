"""Tensor: an array plus the record of how it was made, and `backward()` over that record.

A Tensor wraps a NumPy or CuPy array (`.data`). When an op runs on tensors that require
gradients, its result remembers its inputs (`_parents`) and a closure (`_backward`) that maps
the gradient of the result to the gradients of the inputs (the chain rule, one op at a time).
`loss.backward()` walks that graph from the loss back to the leaves and returns a
`GradientStore` holding dloss/dleaf for every leaf tensor with `requires_grad=True`.

The ops themselves (`+`, `@`, `exp`, `sum`, ...) live in `ops.py`, one floor up, which
installs them as Tensor methods when it is imported.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import backend
from .gradients import GradientStore
from .random import generator

_next_id = itertools.count()  # stable ids for every tensor: the GradientStore's keys
_grad_enabled = True


class no_grad:
    """Context manager (and decorator) that turns graph building off, e.g. for evaluation."""

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
        return wrapped


def is_grad_enabled() -> bool:
    return _grad_enabled


class Tensor:
    """An n-dimensional array on the CPU (NumPy) or GPU (CuPy) that can record its history.

    Attributes:
        data: the array (numpy.ndarray or cupy.ndarray).
        requires_grad: whether backward() computes a gradient for it.
        id: a process-wide integer, the key of its gradient in a GradientStore.
        name: an optional label, used in error messages and graph drawings.
    """

    __slots__ = (
        "data",
        "requires_grad",
        "id",
        "name",
        "_parents",
        "_backward",
        "_op",
        "__weakref__",
    )

    # Makes `numpy_array + tensor` call Tensor.__radd__ instead of NumPy building an object
    # array of tensors: NumPy's operators step aside for a type that sets this to None.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if type(data) is not np.ndarray and not backend.is_gpu_array(data):
            data = np.asarray(data)  # NumPy ufuncs on 0-d arrays return scalars: keep arrays
        if requires_grad and data.dtype.kind != "f":
            raise ValueError(
                f"only floating-point tensors can require gradients, got dtype {data.dtype}"
            )
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.id = next(_next_id)
        self.name = name
        self._parents: tuple[Tensor, ...] = ()
        self._backward = None  # grad of output -> tuple of grads of parents (None if not needed)
        self._op = ""

    @classmethod
    def _from_op(cls, data, parents: tuple, backward, op: str) -> Tensor:
        """The result of an op: records parents and backward rule when a gradient is needed."""
        out = cls(data)
        if _grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
            out._op = op
        return out

    # ------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all() on .numpy()"
            )
        return bool(self.data)

    def __repr__(self) -> str:
        values = np.array2string(backend.to_numpy(self.data), precision=4, separator=", ")
        extras = [f"dtype={self.dtype}"]
        if self.device != backend.CPU:
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"tensor({values}, {', '.join(extras)})"

    # ------------------------------------------------------------ leaving the graph
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU; the array itself on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self) -> float | int | bool:
        """The single value of a one-element tensor as a Python number (syncs with the GPU)."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def detach(self) -> Tensor:
        """A tensor sharing the same array, cut off from the graph (no gradient flows back)."""
        return Tensor(self.data)

    def to(self, device: str) -> Tensor:
        """A copy of this tensor on `device` (not differentiable across the move)."""
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    # ------------------------------------------------------------ backward
    def backward(self, grad=None) -> GradientStore:
        """Gradients of this tensor with respect to every leaf that requires them.

        For a scalar loss `grad` defaults to 1. For a non-scalar tensor pass `grad`, an array
        of the tensor's shape: the result is then the vector-Jacobian product grad^T dself/dleaf.
        The graph is kept, so calling backward() again returns the same gradients.
        """
        xp = backend.xp_of(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element tensor, this one has "
                    f"shape {self.shape}; pass grad= of that shape, or reduce first (e.g. .sum())"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if backend.device_of(grad) != self.device:
                raise backend.DeviceError(
                    f"backward(): the gradient is on {backend.device_of(grad)} but the tensor "
                    f"is on {self.device}"
                )
            grad = xp.array(grad, dtype=self.dtype)  # a copy: the store must own its arrays
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): grad has shape {grad.shape}, the tensor has shape {self.shape}"
                )
        store = GradientStore()
        if not self.requires_grad:
            return store

        grads = {self.id: grad}  # gradients flowing into each node, summed over its users
        store_arrays: set[int] = set()
        for node in reversed(self._topological_order()):
            g = grads.pop(node.id, None)
            if node._backward is None:  # a leaf
                store[node.id] = _own_gradient(g, node, store_arrays)
                continue
            if g is None:
                continue
            for parent, parent_grad in zip(node._parents, node._backward(g)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                previous = grads.get(parent.id)
                # A tensor used twice gets the sum of both contributions (never in place:
                # a backward rule may hand the same array to several parents).
                grads[parent.id] = parent_grad if previous is None else previous + parent_grad
        return store

    def _topological_order(self) -> list[Tensor]:
        """Every node that needs a gradient, each after all of its parents (no recursion).

        An explicit stack instead of recursion, so that graphs 10,000 ops deep work.
        """
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if node.id in visited:
                continue
            visited.add(node.id)
            stack.append((node, True))
            for parent in node._parents:
                if parent.requires_grad and parent.id not in visited:
                    stack.append((parent, False))
        return order


def _own_gradient(grad, leaf: Tensor, seen: set[int]):
    """The gradient of a leaf as an array that no other store entry shares.

    Backward rules may return read-only broadcast views, or one array for two inputs
    (a + b); the store copies those, so that changing one gradient in place is safe.
    """
    xp = backend.xp_of(leaf.data)
    if grad is None:
        return xp.zeros_like(leaf.data)
    grad = xp.asarray(grad)
    if grad.shape != leaf.shape:
        grad = grad.reshape(leaf.shape)
    if grad.dtype != leaf.dtype or not grad.flags.owndata or id(grad) in seen:
        grad = grad.astype(leaf.dtype, copy=True)
    seen.add(id(grad))
    return grad


# ---------------------------------------------------------------- constructors
def _default_dtype(array) -> np.dtype:
    """float -> float32, integer -> int64, bool stays bool: the framework's defaults."""
    kind = array.dtype.kind
    if kind == "f":
        return np.dtype(np.float32)
    if kind in "iu":
        return np.dtype(np.int64)
    if kind == "b":
        return np.dtype(np.bool_)
    raise TypeError(f"cannot make a tensor from data of dtype {array.dtype}")


def tensor(data, requires_grad: bool = False, dtype=None, device: str | None = None, name=None):
    """A new leaf tensor holding a copy of `data` (a number, nested list, or array).

    Float data becomes float32 unless `dtype` says otherwise; integer data becomes int64.
    `device` is "cpu" or "gpu"; by default a CuPy array stays on the GPU and anything else
    goes to the default device (see `mg.set_default_device`).

        >>> x = mg.tensor([[1.0, 2.0]], requires_grad=True)
        >>> x.shape, x.dtype
        ((1, 2), dtype('float32'))
    """
    if isinstance(data, Tensor):
        data = data.data
    if device is None and backend.is_gpu_array(data):
        device = backend.GPU
    device = backend.resolve_device(device)
    host = backend.to_numpy(data) if backend.is_gpu_array(data) else np.asarray(data)
    dtype = _default_dtype(host) if dtype is None else np.dtype(dtype)
    array = np.array(host, dtype=dtype)  # always a copy
    return Tensor(backend.to_device(array, device), requires_grad=requires_grad, name=name)


def _filled(fill, shape, dtype, device, requires_grad):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    xp = backend.xp_for(backend.resolve_device(device))
    array = xp.full(shape, fill, dtype=np.float32 if dtype is None else dtype)
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: `mg.zeros(2, 3)` or `mg.zeros((2, 3))`; float32 by default."""
    return _filled(0, shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones: `mg.ones(2, 3)` or `mg.ones((2, 3))`; float32 by default."""
    return _filled(1, shape, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(fill_value, (shape,), dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the seeded generator (`mg.manual_seed`); float32 by default."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    values = generator().standard_normal(shape).astype(dtype or np.float32)
    return tensor(values, requires_grad=requires_grad, dtype=values.dtype, device=device)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the seeded generator; float32 by default."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    values = generator().random(shape).astype(dtype or np.float32)
    return tensor(values, requires_grad=requires_grad, dtype=values.dtype, device=device)


def arange(start, stop=None, step=1, dtype=None, device=None) -> Tensor:
    """Evenly spaced values as in numpy.arange; int64 for integer arguments, else float32."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    return tensor(values, dtype=dtype, device=device)
