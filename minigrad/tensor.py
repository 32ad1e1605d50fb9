"""Tensor: an array plus the record of how it was made, and `backward()` over that record.

A Tensor wraps a NumPy or CuPy array (`.data`). When an op runs on tensors that require
gradients, its result remembers its inputs (`_parents`) and a closure (`_backward`) that maps
the gradient of the result to the gradients of the inputs (the chain rule, one op at a time).
`loss.backward()` walks that graph from the loss back to the leaves and returns a
`GradientStore` holding dloss/dleaf for every leaf tensor with `requires_grad=True`.

The ops themselves (`+`, `@`, `exp`, `sum`, ...) live in the `ops/` package, one floor up,
which installs them as Tensor methods when it is imported.
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from . import backend
from .gradients import GradientStore
from .random import generator

# Stable ids for every tensor, the GradientStore's keys. They count up, so an id is also a
# clock: a tensor with a larger id was made later.
_next_id = itertools.count()
_grad_enabled = True
# In-place changes (x += 1, x.zero_(), ...) read the same clock: a changed tensor keeps the
# time of its latest change in `_version`, and `_last_change` is the latest of all. An op's
# input changed after the op ran has _version > the op's result id; backward() looks for
# that only when _last_change > that id, one integer comparison per node otherwise.
_last_change = -1


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


class set_grad_enabled:
    """Turn graph building on or off: `mg.set_grad_enabled(False)` at once, or as a context
    manager (`with mg.set_grad_enabled(is_training): ...`) that restores the previous mode."""

    def __init__(self, mode: bool):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous


def _mark_changed(t: Tensor) -> None:
    """Record that t's values were changed in place, and when (checked by backward)."""
    global _last_change
    _last_change = t._version = next(_next_id)


class _Size(int):
    """The element count (NumPy's `x.size`) that is also PyTorch's `x.size(dim=None)`:
    `x.size` is 24, `x.size()` is (2, 3, 4), `x.size(1)` is 3."""

    def __new__(cls, count: int, shape: tuple):
        out = super().__new__(cls, count)
        out._shape = shape
        return out

    def __call__(self, dim: int | None = None):
        if dim is None:
            return self._shape
        if not -len(self._shape) <= dim < len(self._shape):
            raise IndexError(f"size({dim}): dim out of range for shape {self._shape}")
        return self._shape[dim]


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
        "_version",  # when it was last changed in place; unset if never
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
    def size(self) -> _Size:
        """The number of elements as an int (NumPy's `size`); called, the shape (PyTorch's
        `size()`): `x.size() == x.shape`, `x.size(0) == x.shape[0]`."""
        return _Size(self.data.size, self.data.shape)

    def numel(self) -> int:
        """The number of elements (PyTorch's name)."""
        return int(self.data.size)

    @property
    def grad(self):
        raise AttributeError(
            "minigrad tensors have no .grad: gradients are values. backward() returns them:\n"
            "    grads = loss.backward()      # a GradientStore\n"
            "    grads[w]                     # dloss/dw, an array shaped like w\n"
            "so there is nothing to accumulate and nothing to zero between steps "
            "(no zero_grad); pass the store to opt.step(grads)"
        )

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

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t): the values of a CPU tensor (a GPU tensor says to call .numpy())."""
        if backend.is_gpu_array(self.data):
            raise TypeError(
                "this tensor is on the GPU; NumPy cannot read it directly. Call t.numpy() "
                "(or t.cpu().numpy()) to copy it to the host"
            )
        if copy:
            return self.data.astype(dtype or self.data.dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

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

    def tolist(self):
        """The values as (nested) Python lists of numbers (syncs with the GPU)."""
        return backend.to_numpy(self.data).tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the same array, cut off from the graph (no gradient flows back)."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Turn gradient tracking of this leaf on (or off), in place; returns the tensor."""
        if not self.is_leaf:
            raise RuntimeError(
                "requires_grad_() works on leaves only; this tensor was made by "
                f"'{self._op}'. Use .detach().requires_grad_() for a new leaf"
            )
        if requires_grad and self.data.dtype.kind != "f":
            raise ValueError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def _to_device(self, device: str) -> Tensor:
        """A copy of this tensor on `device` (not differentiable across the move)."""
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def cpu(self) -> Tensor:
        """This tensor on the CPU (itself when it is there already)."""
        return self if self.device == backend.CPU else self._to_device(backend.CPU)

    def cuda(self) -> Tensor:
        """This tensor on the GPU (itself when it is there already)."""
        return self if self.device == backend.GPU else self._to_device(backend.GPU)

    # ------------------------------------------------------------ backward
    def backward(self, grad=None) -> GradientStore:
        """Gradients of this tensor with respect to every leaf that requires them.

        For a scalar loss `grad` defaults to 1. For a non-scalar tensor pass `grad`, an array
        of the tensor's shape: the result is then the vector-Jacobian product grad^T dself/dleaf.
        A plain number is the same value everywhere (on the tensor's device).
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
            if isinstance(grad, numbers.Number) and not isinstance(grad, bool):
                grad = xp.full(self.shape, grad, dtype=self.dtype)
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
        last_change = _last_change
        for node in reversed(self._topological_order()):
            g = grads.pop(node.id, None)
            if node._backward is None:  # a leaf
                store[node.id] = _own_gradient(g, node, store_arrays)
                continue
            if g is None:
                continue
            if last_change > node.id:  # something changed in place after this op ran
                _check_unchanged(node)
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


def _check_unchanged(node: Tensor) -> None:
    """Raise if an input (or the result) of a recorded op was changed in place after the op:
    its backward would read the new values and compute a wrong gradient."""
    for t in (node, *node._parents):
        if getattr(t, "_version", -1) > node.id:
            what = "its result" if t is node else f"its input {t.name or f'of shape {t.shape}'}"
            raise RuntimeError(
                f"backward(): {what} was changed in place (+=, add_, zero_, ...) after "
                f"'{node._op}' used it, so the gradient would be computed from the wrong "
                "values. Change a copy instead (y = x + 1, or x.clone()), or run the "
                "in-place change after backward()"
            )


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
    """Evenly spaced values as in numpy.arange; int64 for integer arguments, else float32.

    Made directly on the device (no host array copied over), so it can run inside a step
    that is captured as a CUDA graph.
    """
    xp = backend.xp_for(backend.resolve_device(device))
    values = xp.arange(start, stop, step) if stop is not None else xp.arange(start)
    if dtype is None:
        dtype = _default_dtype(values)
    return Tensor(values.astype(dtype, copy=False))


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares `array`'s memory and keeps its dtype (PyTorch's from_numpy):
    changing one changes the other. `mg.tensor(array)` copies instead (and makes float32)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


# dtype names as PyTorch spells them: mg.tensor(x, dtype=mg.float64), x.to(mg.float16)
float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
