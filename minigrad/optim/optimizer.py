"""The optimizer base class: parameters, who owns them, the step() protocol, saving.

An optimizer holds a list of parameters (leaf tensors with requires_grad=True), one state
buffer per parameter for each name in `state_names` (e.g. Adam's "exp_avg" and "exp_avg_sq",
zeros shaped like the parameter, allocated when the optimizer is made), and a step count per
parameter. `step(grads)` takes this optimizer's gradients out of the GradientStore and updates
the parameters in place:

    grads = loss.backward()
    opt_w.step(grads)          # drains the weights' gradients, leaves the biases' there
    opt_b.step(grads)          # drains the biases' gradients

A parameter is updated by one optimizer at a time, the newest: making a new optimizer over a
parameter takes it over (a move), and the optimizer it was taken from refuses to step. So
re-running `opt = Adam(model.parameters())` in a notebook just works, and two optimizers
never update one parameter.

`state_dict()` returns an `OptimizerState` (see state.py); loading is check, then apply:
`check_state_dict(state)` checks everything and changes nothing, `apply_state_dict(prepared)`
assigns and cannot fail, `load_state_dict(state)` is the two in a row.

Subclasses (SGD, Adam, AdamW) write their update rule once, for one block of one parameter,
in `_update_block`, and its CUDA twin in `_update_rule`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping

import numpy as np

from .. import backend
from ..checks import check_flag, check_number, check_state_keys  # noqa: F401 (re-exported)
from ..gradients import GradientStore
from ..tensor import Tensor
from . import _kernels
from ._kernels import UpdateRule
from .state import OptimizerState, PreparedOptimizerState, describe_param, prepare_state

__all__ = ["Optimizer", "OptimizerState", "describe_param", "blocks", "CPU_BLOCK"]

# ---------------------------------------------------------------- who owns which parameter

# parameter id -> weak reference to the optimizer that owns it. A weak reference, so that an
# optimizer nobody uses any more is simply forgotten.
_owners: dict[int, weakref.ref] = {}


def _forget_owner(owner_ref: weakref.ref, ids: list[int]) -> None:
    """Hand back the parameters `ids` that `owner_ref` still owns (run by release() or GC)."""
    for key in ids:
        if _owners.get(key) is owner_ref:
            del _owners[key]


# ---------------------------------------------------------------- the NumPy update, in blocks

# On the CPU an update runs block by block: Adam makes about 14 passes over its arrays, and
# one block of each (parameter, gradient, two moments, scratch: 5 x 4 bytes x 32768 = 640 KB
# in float32) fits in a core's L2 cache for all of them, where whole arrays would stream
# from memory on every pass. The update is elementwise, so cutting it into blocks changes no
# result, not even in the last bit. The size was chosen by measurement (benchmarks/README.md).
CPU_BLOCK = 32768


def blocks(size: int) -> list[slice]:
    """range(size) cut into slices of at most CPU_BLOCK elements."""
    return [slice(start, min(start + CPU_BLOCK, size)) for start in range(0, size, CPU_BLOCK)]


def compute_dtype(dtype) -> np.dtype:
    """The type an update computes in: float32 for float16 and float32, float64 for float64.

    The CUDA kernels do the same (their compute type C, see _kernels.py): float16 has too
    few bits for the moments' arithmetic (1 - beta2 = 0.001 times a small g * g underflows),
    so it is only the storage type.
    """
    dtype = np.dtype(dtype)
    return _COMPUTE_DTYPES.get(dtype, dtype)


_COMPUTE_DTYPES = {np.dtype(np.float16): np.dtype(np.float32)}


# ---------------------------------------------------------------- the base class


class Optimizer:
    """Base class: parameters, ownership, per-parameter state, and the step() protocol.

    A subclass sets `state_names` and its hyperparameters (plain Python floats) *before*
    calling `super().__init__(params, lr)`, and implements `_update_options(i)` and
    `_update_block(arrays, scratch, options)` (the NumPy rule), `_update_rule()` and
    `_kernel_scalars(step)` (its CUDA twin), `_hyperparameters()` and
    `_check_hyperparameters(scalars)` (saving and loading).

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
        params = _checked_params(params)
        self._check_params(params)
        self._lr = check_number("lr", lr, low=0.0)
        self.params: list[Tensor] = params
        self.steps: list[int] = [0] * len(params)
        # Eager state: zeros like each parameter, on its device, in its dtype.
        self.state: dict[str, list] = {
            name: [_zeros_like(p.data) for p in params] for name in self.state_names
        }
        # One flat scratch array per (device, compute dtype), as long as the largest parameter
        # or one block, whichever is shorter: updates run a block at a time (see _update).
        self._scratch: dict[tuple, object] = {}
        for p in params:
            self._scratch_for(p.data)
        # float16 on the CPU: float32 copies of one block of each array (see _update).
        self._wide: dict[str, np.ndarray] = {}
        self._released = False
        self._taken_over: str | None = None  # why step() refuses, once a newer one took over
        self._pointer_tables = _kernels.PointerTables()  # GPU: the fused kernel's tables
        # The parameter arrays last fully checked (contiguous, state on their device and of
        # their shape); None forces the full check on the first step.
        self._checked_data: list = [None] * len(params)
        self._layout_version = 0
        self._take_ownership()  # last: nothing above may fail after the move

    # ------------------------------------------------------------ ownership
    def _take_ownership(self) -> None:
        """Own every parameter; an optimizer that owned some of them stops stepping."""
        self._owner_ref = weakref.ref(self)
        previous: dict[int, tuple[Optimizer, list[Tensor]]] = {}
        for p in self.params:
            ref = _owners.get(p.id)
            owner = ref() if ref is not None else None
            if owner is not None and owner is not self:
                previous.setdefault(id(owner), (owner, []))[1].append(p)
            _owners[p.id] = self._owner_ref
        for owner, taken in previous.values():
            owner._hand_over(taken, self)
        ids = [p.id for p in self.params]
        self._finalizer = weakref.finalize(self, _forget_owner, self._owner_ref, ids)

    def _hand_over(self, taken: list[Tensor], newer: Optimizer) -> None:
        """`newer` took the parameters `taken` from this optimizer: refuse to step from now."""
        index = {p.id: i for i, p in enumerate(self.params)}
        names = ", ".join(describe_param(p, index[p.id]) for p in taken)
        self._taken_over = (
            f"{self!r} no longer owns {names}: {newer!r}, made later, took "
            f"{'it' if len(taken) == 1 else 'them'} over (a parameter is updated by one "
            "optimizer, the newest). Step the newer optimizer; to keep this one, make it again"
        )

    def release(self) -> None:
        """Hand the parameters back and stop working (dropping the optimizer does the same)."""
        self._finalizer()  # runs _forget_owner once; later calls do nothing
        self._released = True

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

    # ------------------------------------------------------------ what minigrad does not need
    @property
    def zero_grad(self):
        raise AttributeError(
            "minigrad optimizers have no zero_grad(), and need none: gradients are values "
            "that loss.backward() returns, not fields that add up on the parameters, and "
            "step() takes (drains) its own out of the store. Write: opt.step(loss.backward())"
        )

    @property
    def grad(self):
        raise AttributeError(
            "minigrad has no .grad fields: loss.backward() returns the gradients as a "
            "GradientStore (grads[p] is p's gradient); write: opt.step(loss.backward())"
        )

    # ------------------------------------------------------------ the step
    def step(self, grads: GradientStore) -> None:
        """Update every parameter that has a gradient in `grads`, in place.

        1. Look up this optimizer's gradients (without removing them) and check each one
           against its parameter (shape, dtype, device, both writable): any problem with
           any parameter raises here, before the store, any count or any parameter changes.
        2. Take them out of the store (`grads.drain`); other gradients stay for other
           optimizers. A parameter with no gradient is skipped entirely (no weight decay,
           its step count and state do not change), as in PyTorch.
        3. Apply the update rule to each parameter.

        The drained gradient arrays belong to the optimizer from then on, and the update may
        use them as scratch space (they are overwritten): copy a gradient first if you need it.
        """
        self._apply_step(grads, self._check_step(grads))

    def _check_step(self, grads: GradientStore) -> list[int]:
        """Step 1 of step(): the indices of the parameters with a gradient in `grads`, each
        checked; raises naming the first problem and changes nothing. (The Trainer checks
        every optimizer this way before it steps any.)"""
        if self._released:
            raise RuntimeError(f"{self!r} was released: make a new optimizer for its parameters")
        if self._taken_over is not None:
            raise RuntimeError(self._taken_over)
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
                or not _writable(data)
                or not _writable(g)
                or not g.flags.c_contiguous
            ):
                self._check_gradient(i, p, g)
            indices.append(i)
        if not indices:
            raise ValueError(
                f"the GradientStore holds none of this optimizer's {len(self.params)} "
                f"parameters' gradients (it holds ids {sorted(grads)}): were they already taken "
                "by a previous step(), or is this store from a loss that does not use them?"
            )
        return indices

    def _apply_step(self, grads: GradientStore, indices: list[int]) -> None:
        """Steps 2 and 3 of step(), for the parameters `indices` that _check_step returned."""
        arrays = grads.drain([self.params[i] for i in indices])
        # The kernels read a gradient through its base pointer, in C order.
        arrays = [g if g.flags.c_contiguous else backend.xp_of(g).ascontiguousarray(g)
                  for g in arrays]  # fmt: skip
        self._sync_state(indices)
        self._apply_updates(indices, arrays)

    def _apply_updates(self, indices: list[int], grads: list) -> None:
        """Update parameters `indices` with their gradient arrays `grads` (same order).

        The reference path: one parameter at a time through `_update`. steps[i] is counted
        first, so the update sees the count *including* this step (Adam's t; 1 on the first).
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
        """Update parameter array `p` (index i) in place with gradient `g`, on the CPU.

        The arrays are cut into blocks of CPU_BLOCK elements (see `blocks`), and the
        subclass's `_update_block` runs on each. float16 is computed in float32 and stored
        as float16, as the CUDA kernel does: each block is widened into float32 copies,
        updated there, and rounded back once, so both paths give the same bits.
        """
        flat = {"p": p.reshape(-1), "g": g.reshape(-1)}
        for name in self.state_names:
            flat[name] = self.state[name][i].reshape(-1)
        options = self._update_options(i)
        scratch = self._scratch_for(p)
        widen = p.dtype in _COMPUTE_DTYPES
        if not widen and p.size <= CPU_BLOCK:  # one block: the whole arrays
            self._update_block(flat, scratch[: p.size], options)
            return
        for b in blocks(p.size):
            n = b.stop - b.start
            block = {role: array[b] for role, array in flat.items()}
            if not widen:
                self._update_block(block, scratch[:n], options)
                continue
            wide = {role: self._wide_block(role, n) for role in block}
            for role, array in block.items():
                np.copyto(wide[role], array)  # float16 -> float32 is exact
            self._update_block(wide, scratch[:n], options)
            for role, array in block.items():
                if role != "g":  # round to nearest even, as the kernel's (T) conversion
                    np.copyto(array, wide[role], casting="same_kind")

    def _update_options(self, i: int) -> dict:
        """The keyword arguments of the NumPy update rule for parameter i at its step count."""
        raise NotImplementedError

    def _update_block(self, arrays: dict, scratch, options: dict) -> None:
        """The NumPy update rule on one block: arrays maps "p", "g" and each state name to a
        1-D view (updated in place; "g" may be overwritten), scratch is as long as they are."""
        raise NotImplementedError

    def _check_params(self, params: list) -> None:
        """Subclass hook: refuse parameters this optimizer cannot handle (before owning them)."""

    # ------------------------------------------------------------ the GPU path
    def _update_rule(self) -> UpdateRule:
        """The CUDA twin of `_update`, as an UpdateRule (see _kernels.py)."""
        raise NotImplementedError

    def _kernel_scalars(self, step: int) -> dict[str, float]:
        """The update rule's float arguments for parameters whose step count is `step`."""
        raise NotImplementedError

    def _apply_updates_gpu(self, indices: list[int], grads: list) -> None:
        """The same update as `_update`, by CUDA kernels and with no host round trip.

        Parameters are grouped by dtype and step count (the bias corrections depend on it;
        in normal training every parameter has the same count, so there is one group) and
        each group is updated by one fused launch, or one launch per parameter when
        `self.fused` is False. Hyperparameters are kernel arguments: nothing recompiles.
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
            scalars = self._kernel_scalars(step)
            if _kernels.capturing():
                # Recorded into a CUDA graph: the kernels read these numbers from the device,
                # where each replay finds those of its own step (see _kernels.py).
                scalars = _kernels.captured_scalars(rule, scalars, self, members, step)
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
        if not _writable(g):
            raise ValueError(
                f"the gradient of {what} is read-only: step() uses the drained gradients as "
                "scratch space; put a writable copy in the store (grads[p] = g.copy())"
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
        """A flat scratch array for the blocks of `p`: on p's device, in its compute dtype,
        with min(p.size, CPU_BLOCK) elements or more (slice it to each block's length)."""
        key = (backend.device_of(p), compute_dtype(p.dtype))
        needed = min(p.size, CPU_BLOCK)
        scratch = self._scratch.get(key)
        if scratch is None or scratch.size < needed:
            size = min(max(q.data.size for q in self.params), CPU_BLOCK)
            scratch = backend.xp_of(p).empty(max(size, needed), dtype=key[1])
            self._scratch[key] = scratch
        return scratch

    def _wide_block(self, role: str, n: int) -> np.ndarray:
        """n elements of a float32 host array kept for `role` (float16 updates, see _update)."""
        array = self._wide.get(role)
        if array is None or array.size < n:
            array = self._wide[role] = np.empty(CPU_BLOCK, dtype=np.float32)
        return array[:n]

    # ------------------------------------------------------------ saving and loading
    def _hyperparameters(self) -> dict[str, float]:
        """The hyperparameters as numbers, for the state (flags as 0.0/1.0)."""
        return {"lr": self._lr}

    def _check_hyperparameters(self, scalars: Mapping) -> dict:
        """Check the hyperparameters in `scalars`; return {attribute: value} to assign.

        Raises (changing nothing) when a value is bad or a structural option (one that decides
        which buffers exist, such as amsgrad) differs from this optimizer's.
        """
        return {"_lr": check_number("lr", scalars["lr"], low=0.0)}

    def _check_buffer(self, name: str, key: str, host: np.ndarray) -> None:
        """Subclass hook: refuse a saved buffer the update rule cannot continue from."""

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

    def check_state_dict(self, state: OptimizerState | Mapping) -> PreparedOptimizerState:
        """Check `state` (from state_dict(), or its to_flat() form) and return it prepared for
        apply_state_dict: buffers already on each parameter's device. Changes nothing.

        Checks the optimizer type, every key, each step count, each hyperparameter, and each
        buffer's size, dtype and values; the first problem raises an error naming it.
        Hyperparameters (lr, betas, ...) are taken from the state, as in PyTorch.
        """
        return prepare_state(self, state)

    def apply_state_dict(self, prepared: PreparedOptimizerState) -> None:
        """Continue from a state that check_state_dict() prepared for this optimizer: only
        assignments, so it cannot fail halfway."""
        if not isinstance(prepared, PreparedOptimizerState) or prepared.optimizer_id != id(self):
            raise TypeError(
                "apply_state_dict() takes what this optimizer's check_state_dict() returned; "
                "to load a state_dict() use load_state_dict()"
            )
        for attribute, value in prepared.hyperparameters.items():
            setattr(self, attribute, value)
        self.steps = list(prepared.steps)
        self.state = {name: list(arrays) for name, arrays in prepared.buffers.items()}
        self._checked_data = [None] * len(self.params)

    def load_state_dict(self, state: OptimizerState | Mapping) -> None:
        """check_state_dict(state), then apply_state_dict: all or nothing."""
        self.apply_state_dict(self.check_state_dict(state))

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v:g}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({_count(self.params)}, {hyper})"


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
    if not _writable(data):
        raise ValueError(f"{describe_param(p, i)} is read-only: it cannot be updated in place")


def _checked_params(params) -> list[Tensor]:
    """The parameter list as a list, each one an updatable leaf, each once; or a clear error."""
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
    return params


def _writable(array) -> bool:
    """NumPy arrays can be read-only; CuPy arrays are always writable (no such flag)."""
    return getattr(array.flags, "writeable", True)


def _count(params: list) -> str:
    return f"{len(params)} parameter{'s' if len(params) != 1 else ''}"


def _zeros_like(array):
    """C-contiguous zeros shaped and typed like `array`, on its device."""
    return backend.xp_of(array).zeros(array.shape, dtype=array.dtype)
