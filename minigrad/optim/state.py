"""An optimizer's saved form (OptimizerState) and the checks a state passes before it is loaded.

Loading is two steps, the same on every stateful object in minigrad:

    prepared = opt.check_state_dict(state)   # every check; may raise; changes nothing
    opt.apply_state_dict(prepared)           # assignments only; cannot fail

`prepare_state` below is the first step for every optimizer: it checks the optimizer type,
every key, every step count, the hyperparameters (through the optimizer's own
`_check_hyperparameters`) and every buffer, and builds the new buffers on each parameter's
device. What it returns, a `PreparedOptimizerState`, only needs to be assigned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..checks import check_array, check_count, check_state_keys

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


def describe_param(param, index: int | None = None) -> str:
    """How error messages name a parameter: its name when it has one, else index, id, shape."""
    where = f"parameter {index}" if index is not None else "parameter"
    if getattr(param, "name", None):
        return f"'{param.name}' ({where}, shape={tuple(param.shape)})"
    return f"{where} (id={param.id}, shape={tuple(param.shape)})"


# ---------------------------------------------------------------- check, then apply


@dataclass(frozen=True)
class PreparedOptimizerState:
    """A state that passed every check for one optimizer: apply_state_dict only assigns it.

    hyperparameters: {attribute: value}, e.g. {"_lr": 0.01, "betas": (0.9, 0.999)}
    steps: the step count of each parameter
    buffers: {state name: [one array per parameter, shaped like it, on its device]}
    """

    optimizer_id: int
    hyperparameters: dict
    steps: list
    buffers: dict


def prepare_state(optimizer, state) -> PreparedOptimizerState:
    """Check `state` (an OptimizerState, or its to_flat() form) against `optimizer`.

    Raises naming the first problem; changes nothing. Hyperparameters (lr, betas, ...) come
    from the state, as in PyTorch; structural options (those that decide which buffers
    exist, e.g. amsgrad) must match the optimizer's.
    """
    if isinstance(state, Mapping):
        state = OptimizerState.from_flat(state)
    if not isinstance(state, OptimizerState):
        raise TypeError(
            f"load_state_dict() takes an OptimizerState (from state_dict()), "
            f"not a {type(state).__name__}"
        )
    mine = type(optimizer).__name__
    if state.optimizer_type != mine:
        raise ValueError(
            f"the state was saved by {state.optimizer_type} and cannot be loaded into {mine}"
        )
    params = optimizer.params
    n = len(params)
    hint = (
        f" (this {mine} has {n} parameter{'s' if n != 1 else ''}; was the state saved from an "
        "optimizer with other parameters or options?)"
    )
    hyper_keys = list(optimizer._hyperparameters())
    step_keys = [f"step.{i}" for i in range(n)]
    check_state_keys(f"the {mine}", set(hyper_keys + step_keys), state.scalars, hint=hint)
    hyperparameters = optimizer._check_hyperparameters(state.scalars)
    steps = [check_count(f"'step.{i}'", state.scalars[f"step.{i}"]) for i in range(n)]

    buffer_keys = {f"{name}.{i}" for name in optimizer.state_names for i in range(n)}
    check_state_keys(f"the {mine}", buffer_keys, state.buffers, hint=hint)
    buffers = {}
    for name in optimizer.state_names:
        arrays = []
        for i, p in enumerate(params):
            key = f"{name}.{i}"
            host = _checked_buffer(key, state.buffers[key], p, i)
            optimizer._check_buffer(name, key, host)
            # A new array on the parameter's device: the state's own array is never shared.
            arrays.append(backend.to_device(np.array(host, copy=True).reshape(p.shape), p.device))
        buffers[name] = arrays
    return PreparedOptimizerState(id(optimizer), hyperparameters, steps, buffers)


def _checked_buffer(key: str, buf, p, i: int) -> np.ndarray:
    """The buffer as a host array with the parameter's size and dtype, all finite."""
    if not hasattr(buf, "dtype") or not hasattr(buf, "size"):
        raise TypeError(f"buffer {key!r} is a {type(buf).__name__}, not an array")
    if buf.size != p.size:
        raise ValueError(
            f"buffer {key!r} has {buf.size} elements, but {describe_param(p, i)} "
            f"has {p.size}: was the state saved for a different model?"
        )
    if buf.dtype != p.dtype:
        raise ValueError(
            f"buffer {key!r} has dtype {buf.dtype}, but {describe_param(p, i)} has dtype {p.dtype}"
        )
    host = backend.to_numpy(buf)
    check_array(f"buffer {key!r}", host)
    return host
