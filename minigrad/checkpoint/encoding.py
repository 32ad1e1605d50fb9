"""Encoding each object's state for the file: arrays as host arrays, everything else as JSON.

    _encode("optim.0", opt.state_dict(), arrays, json_keys)
    # arrays["optim.0.buffer.exp_avg.0"]: a NumPy array (copied from the GPU if need be)
    # arrays["optim.0.param_groups"]:     a 0-d str array of JSON, listed in json_keys

Everything is duck-typed: an object is saved through its state_dict(), so this file knows
no Module or optimizer. Only plain number, bool and str arrays and JSON values go in, so
the file never needs pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from .. import backend
from .format import _PLAIN_KINDS, _contiguous


def _default_optimizers(optimizers, trainer):
    if optimizers is None:
        return list(getattr(trainer, "optimizers", ()))
    return optimizers


def _as_list(value, what: str) -> list:
    """A list of stateful objects; one object on its own is accepted too."""
    if value is None:
        return []
    items = [value] if hasattr(value, "state_dict") else value
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            f"{what} must be a list of objects with state_dict(), got {type(value).__name__}"
        ) from None
    for i, item in enumerate(items):
        if not (hasattr(item, "state_dict") and hasattr(item, "load_state_dict")):
            raise TypeError(
                f"{what}[{i}] is a {type(item).__name__}, which has no "
                "state_dict()/load_state_dict() to save or restore"
            )
    return items


def _state_of(obj, what: str):
    if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
        raise TypeError(
            f"{what} is a {type(obj).__name__}, which has no state_dict()/load_state_dict()"
        )
    state = obj.state_dict()
    if not (isinstance(state, Mapping) or hasattr(state, "to_flat")):
        raise TypeError(
            f"{what}.state_dict() returned a {type(state).__name__}, not a dict of state"
        )
    return state


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or backend.is_gpu_array(value)


def _host_array(value, key: str) -> np.ndarray:
    if not _is_array(value):
        raise TypeError(f"{key} is a {type(value).__name__}, not an array")
    host = _contiguous(backend.to_numpy(value))
    if host.dtype.kind not in _PLAIN_KINDS or host.dtype.fields is not None:
        raise TypeError(f"{key} has dtype {host.dtype}: a checkpoint holds number, bool and str")
    return host


def _encode(prefix: str, state, arrays: dict, json_keys: list) -> None:
    """Put one object's state into `arrays` under "<prefix>.": arrays as arrays, anything
    else as JSON text (so it never needs pickle)."""
    if hasattr(state, "to_flat"):
        state = state.to_flat()
    for name, value in state.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{prefix}: state keys must be non-empty strings, got {name!r}")
        key = f"{prefix}.{name}"
        if _is_array(value):
            arrays[key] = _host_array(value, key)
        else:
            arrays[key] = np.array(json.dumps(_json_value(value, key)))
            json_keys.append(key)


def _json_value(value, key: str):
    """`value` itself if JSON can hold it (NumPy scalars become Python numbers)."""
    try:
        return json.loads(json.dumps(value, default=_numpy_scalar))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{key} holds a value that is neither an array nor JSON ({exc}): a checkpoint "
            "stores arrays and JSON values only, never pickles"
        ) from None


def _numpy_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
