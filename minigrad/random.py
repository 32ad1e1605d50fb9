"""The one seeded random generator behind `mg.randn`, parameter init, dropout and shuffling.

Random numbers are always drawn on the host with NumPy and then moved to the device, so a
model built with the same seed starts from the same numbers on the CPU and on the GPU.

    mg.manual_seed(0)
    state = mg.random.get_state()   # a plain dict, JSON-friendly, saved in checkpoints
    mg.random.set_state(state)      # continue the exact same stream

set_state is the state protocol's two steps in a row: check_state(state) -> prepared
(raises, changes nothing), then apply_state(prepared) (cannot fail).
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Restart the global random stream from `seed`."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    """The global NumPy generator (PCG64)."""
    return _generator


def get_state() -> dict:
    """The generator's full state as a dict of plain Python values."""
    return _generator.bit_generator.state


def check_state(state) -> np.random.Generator:
    """Check a state from get_state() and return a generator in that state, changing
    nothing; ValueError naming the problem otherwise (also for integers too large for
    the 128-bit PCG64 state, or a state nested or shaped otherwise)."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError(
            "not a minigrad random state: expected a PCG64 state dict from get_state()"
        )
    generator = np.random.default_rng()
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as exc:
        raise ValueError(f"not a PCG64 state ({type(exc).__name__}: {exc})") from None
    return generator


def apply_state(prepared: np.random.Generator) -> None:
    """Make a generator from check_state() the global one (cannot fail)."""
    global _generator
    _generator = prepared


def set_state(state: dict) -> None:
    """Restore a state returned by `get_state()` (check_state, then apply_state)."""
    apply_state(check_state(state))
