"""The shared argument and state checks: numbers, flags, counts and the keys of a state.

Every stateful object (optimizers, schedulers, the Trainer, data loaders, checkpoints) checks
what it is given with these few functions, so that a bad value is refused the same way, with
a message that names the value and says what it must be, before anything changes.

    lr = check_number("lr", lr, low=0.0)                 # a finite float, or a clear error
    steps = check_count("step_size", steps, low=1)       # an int (not a bool) >= low
    flag = check_flag("amsgrad", amsgrad)                # True/False (or 0/1 as stored)
    check_state_keys("the StepLR", {"type", "last_epoch"}, state)
    check_array("buffer 'exp_avg_sq.0'", v, low=0.0)       # finite (and >= low) everywhere
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np


def check_number(name: str, value, *, low=None, high=None, high_open=False) -> float:
    """`value` as a float, or a ValueError/TypeError saying what `name` must be."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_count(name: str, value, low: int = 0) -> int:
    """`value` as an int >= low; bools, floats and strings are refused (1.0 is not a count)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_flag(name: str, value) -> bool:
    """A bool option given as a bool or as the number 0/1 (as it is stored in a state)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Real) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_state_keys(owner: str, expected: set, state: Mapping, hint: str = "") -> None:
    """Raise a ValueError naming the first key of `expected` that `state` lacks, or the
    first key it has that is not expected. `owner` names the state, e.g. "the StepLR";
    `hint`, when given, is appended to the message (what probably went wrong)."""
    for key in sorted(expected, key=str):
        if key not in state:
            raise ValueError(f"{owner} state is missing {key!r}{hint}")
    extra = sorted(set(state) - set(expected), key=str)
    if extra:
        raise ValueError(f"{owner} state has an unexpected key {extra[0]!r}{hint}")


def check_array(name: str, array: np.ndarray, *, low=None) -> None:
    """Raise a ValueError when a host float array holds NaN or +-inf, or a value below `low`.

    A state with such values would load without complaint and then poison every later step.
    """
    if array.dtype.kind not in "fc" or array.size == 0:
        return
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.flatnonzero(~finite.reshape(-1))[0])
        value = array.reshape(-1)[index]
        raise ValueError(f"{name} holds {value} at element {index}: every value must be finite")
    if low is not None and array.min() < low:
        index = int(np.argmin(array.reshape(-1)))
        value = array.reshape(-1)[index]
        raise ValueError(f"{name} holds {value} at element {index}: every value must be >= {low}")
