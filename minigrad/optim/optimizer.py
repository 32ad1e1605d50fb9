"""The optimizer base class and OptimizerState, the saved form of an optimizer.

An optimizer holds a list of parameters (leaf tensors with requires_grad=True), one state
buffer per parameter for each name in `state_names` (e.g. Adam's "exp_avg" and "exp_avg_sq",
zeros shaped like the parameter, allocated when the optimizer is made), and a step count per
parameter. `step(grads)` takes this optimizer's gradients out of the GradientStore and updates
the parameters in place:

    grads = loss.backward()
    opt_w.step(grads)          # drains the weights' gradients, leaves the biases' there
    opt_b.step(grads)          # drains the biases' gradients

A parameter belongs to one live optimizer at a time; `release()` (or dropping the optimizer)
hands it back. `state_dict()` returns an `OptimizerState`, which `load_state_dict` checks key
by key before it changes anything.

Subclasses (SGD, Adam, AdamW) write their update rule once, for one parameter, in `_update`.
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Iterable, Mapping

import numpy as np

from .. import backend
from ..checks import check_flag, check_number, check_state_keys  # noqa: F401 (re-exported)
from ..gradients import GradientStore
from ..tensor import Tensor
from . import _kernels
from ._kernels import UpdateRule

# ---------------------------------------------------------------- who owns which parameter

# parameter id -> weak reference to the optimizer that owns it. A weak reference, so that an
# optimizer nobody uses any more does not keep its parameters locked.
_owners: dict[int, weakref.ref] = {}


def _forget_owner(owner_ref: weakref.ref, ids: list[int]) -> None:
    """Hand back the parameters `ids` that `owner_ref` still owns (run by release() or GC)."""
    for key in ids:
        if _owners.get(key) is owner_ref:
            del _owners[key]


def describe_param(param: Tensor, index: int | None = None) -> str:
    """How error messages name a parameter: its name when it has one, else index, id, shape."""
    where = f"parameter {index}" if index is not None else "parameter"
    if getattr(param, "name", None):
        return f"'{param.name}' ({where}, shape={tuple(param.shape)})"
    return f"{where} (id={param.id}, shape={tuple(param.shape)})"


# ---------------------------------------------------------------- the NumPy update, in blocks

# On the CPU an update runs block by block: Adam makes about 14 passes over its arrays, and
# one block of each (parameter, gradient, two moments, scratch: 5 x 4 bytes x 32768 = 640 KB
# in float32) stays in a core's L2 cache for all of them, where whole arrays would stream
# from memory on every pass. The update is elementwise, so cutting it into blocks changes no
# result, not even in the last bit. On the 2-core dev machine (2 MB of L2 per core) 32K and
# 64K were the fastest of 4K ... 128K and whole arrays, about 1.3x faster than whole arrays.
CPU_BLOCK = 32768


def blocks(size: int) -> list[slice]:
    """range(size) cut into slices of at most CPU_BLOCK elements."""
    return [slice(start, min(start + CPU_BLOCK, size)) for start in range(0, size, CPU_BLOCK)]


# ---------------------------------------------------------------- the saved form


class OptimizerState:
    """What an optimizer needs to continue exactly where it stopped.

    optimizer_type: the class name, e.g. "Adam".
    scalars: {"step.0": 12, ..., "lr": 0.001, "beta1": 0.9, ...}; step counts are ints,
        hyperparameters floats (flags as 0.0/1.0).
    buffers: {"exp_avg.0": flat array, ...}: "<state name>.<parameter index>", each a 1-D
        host NumPy array with as many elements as the parameter.

    `to_flat()` / `from_flat()` turn it into a flat {str: ndarray} dict for `np.savez`:
        "optimizer_type" -> 0-d str array, "scalar.<name>" -> 0-d number, "buffer.<key>" -> 1-D.
    """

    __slots__ = ("optimizer_type", "scalars", "buffers")

    def __init__(self, optimizer_type: str, scalars: dict | None = None, buffers=None):
        if not isinstance(optimizer_type, str) or not optimizer_type:
            raise TypeError(f"optimizer_type must be a class name, got {optimizer_type!r}")
        self.optimizer_type = optimizer_type
        self.scalars: dict[str, float | int] = dict(scalars or {})
        self.buffers: dict[str, np.ndarray] = dict(buffers or {})

    # ------------------------------------------------------------ helpers
    def get_scalar(self, name: str):
        if name not in self.scalars:
            raise KeyError(f"no scalar {name!r} in this state (it has {sorted(self.scalars)})")
        return self.scalars[name]

    def set_scalar(self, name: str, value) -> None:
        self.scalars[name] = value

    def get_buffer(self, name: str, index: int) -> np.ndarray:
        key = f"{name}.{index}"
        if key not in self.buffers:
            raise KeyError(f"no buffer {key!r} in this state (it has {sorted(self.buffers)})")
        return self.buffers[key]

    def set_buffer(self, name: str, index: int, array) -> None:
        self.buffers[f"{name}.{index}"] = np.asarray(array).reshape(-1)

    # ------------------------------------------------------------ flat form, for files
    def to_flat(self) -> dict[str, np.ndarray]:
        flat = {"optimizer_type": np.array(self.optimizer_type)}
        for name, value in self.scalars.items():
            is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            flat[f"scalar.{name}"] = np.array(value, dtype=np.int64 if is_int else np.float64)
        for key, array in self.buffers.items():
            flat[f"buffer.{key}"] = np.asarray(array)
        return flat

    @classmethod
    def from_flat(cls, flat: Mapping) -> OptimizerState:
        """The inverse of `to_flat` (also accepts the NpzFile that np.load returns)."""
        if "optimizer_type" not in flat:
            raise ValueError(
                "not an optimizer state: the key 'optimizer_type' is missing "
                f"(keys: {sorted(flat)[:8]}...)"
            )
        kind = np.asarray(flat["optimizer_type"])
        if kind.dtype.kind != "U" or kind.ndim != 0:
            raise ValueError(f"not an optimizer state: optimizer_type is {kind!r}, not a name")
        state = cls(str(kind))
        for key in flat:
            if key == "optimizer_type":
                continue
            value = np.asarray(flat[key])
            if key.startswith("scalar."):
                if value.ndim != 0 or value.dtype.kind not in "iuf":
                    raise ValueError(f"{key!r} must be a single number, got {value!r}")
                state.scalars[key[7:]] = int(value) if value.dtype.kind in "iu" else float(value)
            elif key.startswith("buffer."):
                state.buffers[key[7:]] = value
            else:
                raise ValueError(
                    f"unexpected key {key!r} in an optimizer state: keys are 'optimizer_type', "
                    "'scalar.<name>' and 'buffer.<name>.<index>'"
                )
        return state

    def __eq__(self, other) -> bool:
        if not isinstance(other, OptimizerState):
            return NotImplemented
        return (
            self.optimizer_type == other.optimizer_type
            and self.scalars == other.scalars
            and self.buffers.keys() == other.buffers.keys()
            and all(np.array_equal(a, other.buffers[k]) for k, a in self.buffers.items())
        )

    def __repr__(self) -> str:
        return (
            f"OptimizerState({self.optimizer_type!r}, scalars={self.scalars}, "
            f"buffers={sorted(self.buffers)})"
        )


# ---------------------------------------------------------------- the base class


class Optimizer:
    """Base class: parameters, ownership, per-parameter state, and the step() protocol.

    A subclass sets `state_names` and its hyperparameters (plain Python floats) *before*
    calling `super().__init__(params, lr)`, and implements `_update(i, p, g)` (one parameter),
    `_hyperparameters()` and `_load_hyperparameters(scalars)`.

    Attributes:
        params: the parameter tensors, in the order given (their index is used in state keys).
        state: {state name: [one array per parameter, shaped and typed like it]}.
        steps: [number of updates of each parameter] (host ints; Adam's t).
    """

    state_names: tuple[str, ...] = ()
    # On the GPU: True updates every parameter in ONE kernel launch; False launches the same
    # kernel once per parameter (the simplest path to read, and the one the fused path is
    # tested against). No effect on the CPU.
    fused: bool = True

    def __init__(self, params: Iterable[Tensor], lr: float):
        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of tensors (e.g. [w, b] or model.parameters()), "
                "not a single tensor: wrap it in a list"
            )
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"params must be an iterable of tensors, got {type(params).__name__}"
            ) from None
        if not params:
            raise ValueError(
                "the optimizer got an empty list of parameters: pass at least one tensor "
                "(did a filter over model.named_parameters() match nothing?)"
            )
        seen: dict[int, int] = {}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"parameter {i} is a {type(p).__name__}, not a minigrad Tensor")
            if not p.requires_grad:
                raise ValueError(
                    f"{describe_param(p, i)} does not require gradients: "
                    "make it with requires_grad=True, or leave it out of the optimizer"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{describe_param(p, i)} is not a leaf tensor (it is the result of an op, "
                    f"'{p._op}'): an optimizer can only update leaves; use .detach() and "
                    "requires_grad=True to make a new parameter"
                )
            if p.id in seen:
                raise ValueError(
                    f"{describe_param(p, i)} appears twice in the parameter list "
                    f"(also as parameter {seen[p.id]}): pass each parameter once"
                )
            seen[p.id] = i
            _check_updatable(p, i)
        self._check_params(params)
        for i, p in enumerate(params):
            owner = _owners.get(p.id)
            owner = owner() if owner is not None else None
            if owner is not None:
                raise ValueError(
                    f"{describe_param(p, i)} already belongs to a live optimizer, {owner!r}: "
                    "a parameter can be in one optimizer at a time. Call .release() on that "
                    "optimizer (or drop every reference to it) first, or give the "
                    "optimizers disjoint parameter lists"
                )
        self._lr = check_number("lr", lr, low=0.0)
        self.params: list[Tensor] = params
        self.steps: list[int] = [0] * len(params)
        # Eager state: zeros like each parameter, on its device, in its dtype.
        self.state: dict[str, list] = {
            name: [_zeros_like(p.data) for p in params] for name in self.state_names
        }
        # One flat scratch array per (device, dtype), as long as the largest parameter or
        # one block, whichever is shorter: updates run a block at a time (see _scratch_for).
        self._scratch: dict[tuple, object] = {}
        for p in params:
            self._scratch_for(p.data)
        self._released = False
        self._pointer_tables = _kernels.PointerTables()  # GPU: the fused kernel's tables
        # The parameter arrays last fully checked (contiguous, state on their device and of
        # their shape); None forces the full check on the first step.
        self._checked_data: list = [None] * len(params)
        self._layout_version = 0
        # Ownership last: nothing above may fail after the parameters are locked.
        self._owner_ref = weakref.ref(self)
        ids = [p.id for p in params]
        for key in ids:
            _owners[key] = self._owner_ref
        self._finalizer = weakref.finalize(self, _forget_owner, self._owner_ref, ids)

    # ------------------------------------------------------------ learning rate
    @property
    def lr(self) -> float:
        """The learning rate, a plain float: changing it changes no array and compiles nothing."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_number("lr", value, low=0.0)

    def learning_rate(self) -> float:
        return self._lr

    def set_learning_rate(self, lr: float) -> None:
        self.lr = lr

    # ------------------------------------------------------------ ownership
    def release(self) -> None:
        """Hand the parameters back, so another optimizer may own them; this one stops working."""
        self._finalizer()  # runs _forget_owner once; later calls do nothing
        self._released = True

    # ------------------------------------------------------------ the step
    def step(self, grads: GradientStore) -> None:
        """Update every parameter that has a gradient in `grads`, in place.

        1. Look up this optimizer's gradients (without removing them) and check each one's
           shape, dtype and device against its parameter: any mismatch raises here, before
           the store or any parameter is changed.
        2. Take them out of the store (`grads.drain`); other gradients stay for other
           optimizers. A parameter with no gradient is skipped entirely (no weight decay,
           its step count and state do not change), as in PyTorch.
        3. Apply the update rule to each parameter.

        The drained gradient arrays belong to the optimizer from then on, and the update may
        use them as scratch space (they are overwritten): copy a gradient first if you need it.
        """
        if self._released:
            raise RuntimeError(f"{self!r} was released: make a new optimizer for its parameters")
        if not isinstance(grads, GradientStore):
            raise TypeError(
                f"step() takes the GradientStore that loss.backward() returned, "
                f"not a {type(grads).__name__}"
            )
        indices = []
        checked = self._checked_data
        for i, p in enumerate(self.params):
            g = grads.get(p)
            if g is None:
                continue
            data = p.data
            # Fast path, taken every step in steady state: the parameter's array is the one
            # fully checked before, and the gradient matches it. Anything else takes the
            # full check, which names what is wrong.
            if (
                data is not checked[i]
                or type(g) is not type(data)
                or g.shape != data.shape
                or g.dtype != data.dtype
            ):
                self._check_gradient(i, p, g)
            indices.append(i)
        if not indices:
            raise ValueError(
                f"the GradientStore holds none of this optimizer's {len(self.params)} "
                f"parameters' gradients (it holds ids {sorted(grads)}): were they already taken "
                "by a previous step(), or is this store from a loss that does not use them?"
            )
        arrays = grads.drain([self.params[i] for i in indices])
        self._sync_state(indices)
        self._apply_updates(indices, arrays)

    def _apply_updates(self, indices: list[int], grads: list) -> None:
        """Update parameters `indices` with their gradient arrays `grads` (same order).

        The reference path: one parameter at a time through `_update`. steps[i] is counted
        first, so `_update` sees the count *including* this step (Adam's t; 1 on the first).
        """
        gpu = [k for k, g in enumerate(grads) if backend.is_gpu_array(g)]
        if gpu:
            self._apply_updates_gpu([indices[k] for k in gpu], [grads[k] for k in gpu])
            if len(gpu) == len(grads):
                return
        for i, g in zip(indices, grads):
            if not backend.is_gpu_array(g):
                self.steps[i] += 1
                self._update(i, self.params[i].data, g)

    def _update(self, i: int, p, g) -> None:
        """Update parameter array `p` (index i) in place with gradient `g` (may be overwritten)."""
        raise NotImplementedError

    def _check_params(self, params: list) -> None:
        """Subclass hook: refuse parameters this optimizer cannot handle (before owning them)."""

    # ------------------------------------------------------------ the GPU path
    def _update_rule(self) -> UpdateRule:
        """The CUDA twin of `_update`, as an UpdateRule (see _kernels.py)."""
        raise NotImplementedError

    def _kernel_constants(self) -> dict[str, float]:
        """The update rule's constant hyperparameters, by name (its prologue derives the
        per-step numbers from them, t and lr on the device; see _kernels.py)."""
        raise NotImplementedError

    def _apply_updates_gpu(self, indices: list[int], grads: list) -> None:
        """The same update as `_update`, by CUDA kernels and with no host round trip.

        Parameters are grouped by dtype and step count (the bias corrections depend on it;
        in normal training every parameter has the same count, so there is one group) and
        each group is updated by one fused launch, or one launch per parameter when
        `self.fused` is False. Hyperparameters are kernel arguments: nothing recompiles. The
        per-step numbers are computed on the device (_kernels.step_scalars), so that a step
        captured into a CUDA graph takes the next step count and the current lr each replay.
        """
        rule = self._update_rule()
        groups: dict[tuple, list[int]] = {}
        for position, i in enumerate(indices):
            self.steps[i] += 1
            groups.setdefault((self.params[i].data.dtype, self.steps[i]), []).append(position)
        for (_, step), positions in groups.items():
            members = tuple(indices[k] for k in positions)
            arrays = {"p": [self.params[i].data for i in members]}
            for name in self.state_names:
                arrays[name] = [self.state[name][i] for i in members]
            arrays["g"] = [grads[k] for k in positions]
            constants = self._kernel_constants()
            scalars = _kernels.step_scalars(rule, constants, step, self.lr, self, members)
            if self.fused:
                # The parameter and state arrays of `members` stay the same objects until
                # _layout_version changes, so only the gradients' pointers are looked at.
                layout = (self._layout_version, members)
                _kernels.launch_fused(rule, arrays, scalars, self._pointer_tables, layout)
            else:
                for j in range(len(members)):
                    one = {role: arrays[role][j] for role in rule.arrays}
                    _kernels.launch_per_parameter(rule, one, scalars)

    # ------------------------------------------------------------ checks and housekeeping
    def _check_gradient(self, i: int, p: Tensor, g) -> None:
        what = describe_param(p, i)
        _check_updatable(p, i)
        if not hasattr(g, "shape") or not hasattr(g, "dtype"):
            raise TypeError(f"the gradient of {what} is a {type(g).__name__}, not an array")
        if type(g) is not type(p.data):
            if backend.device_of(g) != p.device:
                raise backend.DeviceError(
                    f"the gradient of {what} is on {backend.device_of(g)} but the parameter is "
                    f"on {p.device}: move them to one device"
                )
            raise TypeError(
                f"the gradient of {what} is a {type(g).__name__}, the parameter's data is a "
                f"{type(p.data).__name__}: a gradient must be an array of the same kind"
            )
        if g.shape != p.shape:
            raise ValueError(
                f"the gradient of {what} has shape {tuple(g.shape)}, the parameter has shape "
                f"{tuple(p.shape)}"
            )
        if g.dtype != p.dtype:
            raise TypeError(
                f"the gradient of {what} has dtype {g.dtype}, the parameter has dtype {p.dtype}"
            )
        for name in self.state_names:
            if self.state[name][i].shape != p.shape:
                raise ValueError(
                    f"{what} changed shape since the optimizer was made (its {name} has shape "
                    f"{tuple(self.state[name][i].shape)}): make a new optimizer"
                )

    def _sync_state(self, indices: list[int]) -> None:
        """Move state buffers to where their parameter now lives (after model.to("gpu")).

        Only parameters whose array object changed since the last step need a look; the
        array is then remembered as checked (see the fast path in step()).
        """
        for i in indices:
            p = self.params[i].data
            if p is self._checked_data[i]:
                continue
            self._checked_data[i] = p
            self._layout_version += 1  # arrays replaced: the GPU pointer tables are stale
            for name in self.state_names:
                buf = self.state[name][i]
                if type(buf) is not type(p):
                    buf = backend.to_device(buf, backend.device_of(p))
                if buf.dtype != p.dtype:
                    buf = buf.astype(p.dtype)
                self.state[name][i] = buf

    def _scratch_for(self, p):
        """A flat scratch array for the blocks of `p`: on p's device, in p's dtype, with
        min(p.size, CPU_BLOCK) elements or more (slice it to each block's length)."""
        key = (backend.device_of(p), np.dtype(p.dtype))
        needed = min(p.size, CPU_BLOCK)
        scratch = self._scratch.get(key)
        if scratch is None or scratch.size < needed:
            size = min(max(q.data.size for q in self.params), CPU_BLOCK)
            scratch = backend.xp_of(p).empty(max(size, needed), dtype=p.dtype)
            self._scratch[key] = scratch
        return scratch

    # ------------------------------------------------------------ saving and loading
    def _hyperparameters(self) -> dict[str, float]:
        """The hyperparameters as numbers, for the state (flags as 0.0/1.0)."""
        return {"lr": self._lr}

    def _load_hyperparameters(self, scalars: Mapping) -> dict:
        """Check the hyperparameters in `scalars`; return {attribute: value} to assign.

        Raises (changing nothing) when a value is bad or a structural option (one that decides
        which buffers exist, such as amsgrad) differs from this optimizer's.
        """
        return {"_lr": check_number("lr", scalars["lr"], low=0.0)}

    def state_dict(self) -> OptimizerState:
        """Step counts, hyperparameters and state buffers (as host NumPy copies)."""
        state = OptimizerState(type(self).__name__)
        for i, count in enumerate(self.steps):
            state.scalars[f"step.{i}"] = int(count)
        state.scalars.update(self._hyperparameters())
        for name in self.state_names:
            for i, buf in enumerate(self.state[name]):
                host = backend.to_numpy(buf).reshape(-1)
                state.buffers[f"{name}.{i}"] = np.array(host, copy=True)
        return state

    def load_state_dict(self, state: OptimizerState | Mapping) -> None:
        """Continue from `state` (from state_dict(), or its to_flat() form).

        Checks the optimizer type, every key, each step count, each hyperparameter, and each
        buffer's size and dtype; the first mismatch raises an error naming it, and nothing is
        changed. Hyperparameters (lr, betas, ...) are restored from the state, as in PyTorch.
        Buffers are copied to each parameter's device.
        """
        if isinstance(state, Mapping):
            state = OptimizerState.from_flat(state)
        if not isinstance(state, OptimizerState):
            raise TypeError(
                f"load_state_dict() takes an OptimizerState (from state_dict()), "
                f"not a {type(state).__name__}"
            )
        mine = type(self).__name__
        if state.optimizer_type != mine:
            raise ValueError(
                f"the state was saved by {state.optimizer_type} and cannot be loaded into {mine}"
            )
        n = len(self.params)
        hyper_keys = list(self._hyperparameters())
        for key in hyper_keys:
            if key not in state.scalars:
                raise ValueError(f"the state is missing the hyperparameter {key!r}")
        assignments = self._load_hyperparameters(state.scalars)

        expected_scalars = [f"step.{i}" for i in range(n)] + hyper_keys
        _check_keys("scalar", expected_scalars, state.scalars, n)
        expected_buffers = [f"{name}.{i}" for name in self.state_names for i in range(n)]
        _check_keys("buffer", expected_buffers, state.buffers, n)

        steps = []
        for i in range(n):
            count = state.scalars[f"step.{i}"]
            ok = isinstance(count, numbers.Real) and not isinstance(count, bool)
            if not ok or not float(count).is_integer() or count < 0:
                raise ValueError(f"'step.{i}' must be a whole number >= 0, got {count!r}")
            steps.append(int(count))

        hosts = {}
        for name in self.state_names:
            for i, p in enumerate(self.params):
                key = f"{name}.{i}"
                buf = state.buffers[key]
                if not hasattr(buf, "dtype") or not hasattr(buf, "size"):
                    raise TypeError(f"buffer {key!r} is a {type(buf).__name__}, not an array")
                if buf.size != p.size:
                    raise ValueError(
                        f"buffer {key!r} has {buf.size} elements, but {describe_param(p, i)} "
                        f"has {p.size}: was the state saved for a different model?"
                    )
                if buf.dtype != p.dtype:
                    raise ValueError(
                        f"buffer {key!r} has dtype {buf.dtype}, but {describe_param(p, i)} "
                        f"has dtype {p.dtype}"
                    )
                hosts[key] = backend.to_numpy(buf)

        # Everything checked: build the new buffers, then commit (no partial loads).
        new_state = {
            name: [
                backend.to_device(
                    np.array(hosts[f"{name}.{i}"], copy=True).reshape(p.shape), p.device
                )
                for i, p in enumerate(self.params)
            ]
            for name in self.state_names
        }
        for attribute, value in assignments.items():
            setattr(self, attribute, value)
        self.steps = steps
        self.state = new_state
        self._checked_data = [None] * len(self.params)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v:g}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({_count(self.params)}, {hyper})"


def _check_keys(kind: str, expected: list[str], given: Mapping, n: int) -> None:
    """Raise naming the first key that is missing from `given` or should not be there."""
    for key in expected:
        if key not in given:
            raise ValueError(
                f"the state has no {kind} {key!r} (this optimizer has {n} parameters); "
                "was it saved from an optimizer with other parameters or options?"
            )
    extra = sorted(set(given) - set(expected))
    if extra:
        raise ValueError(
            f"the state has an unexpected {kind} {extra[0]!r} (this optimizer has {n} "
            "parameters); was it saved from an optimizer with other parameters or options?"
        )


def _check_updatable(p: Tensor, i: int) -> None:
    """The update writes through a flat view of p.data: it must be contiguous and writable."""
    data = p.data
    if data.dtype.kind != "f":
        raise TypeError(f"{describe_param(p, i)} has dtype {data.dtype}, not floating point")
    if not data.flags.c_contiguous:
        raise ValueError(
            f"{describe_param(p, i)} is not C-contiguous (a transposed or sliced view?): the "
            "optimizer updates it through a flat view; make its data with ascontiguousarray"
        )
    if not getattr(data.flags, "writeable", True):
        raise ValueError(f"{describe_param(p, i)} is read-only: it cannot be updated in place")


def _count(params: list) -> str:
    return f"{len(params)} parameter{'s' if len(params) != 1 else ''}"


def _zeros_like(array):
    """C-contiguous zeros shaped and typed like `array`, on its device."""
    return backend.xp_of(array).zeros(array.shape, dtype=array.dtype)
