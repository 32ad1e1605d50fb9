"""The one seeded random generator behind `mg.randn`, parameter init, dropout and shuffling.

Random numbers are always drawn on the host with NumPy and then moved to the device, so a
model built with the same seed starts from the same numbers on the CPU and on the GPU.

    mg.manual_seed(0)
    state = mg.random.get_state()   # a plain dict, JSON-friendly, saved in checkpoints
    mg.random.set_state(state)      # continue the exact same stream
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


def set_state(state: dict) -> None:
    """Restore a state returned by `get_state()`."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError(
            "not a minigrad random state: expected a PCG64 state dict from get_state()"
        )
    generator = np.random.default_rng()
    generator.bit_generator.state = state
    global _generator
    _generator = generator
