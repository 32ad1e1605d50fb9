"""The two errors a checkpoint raises: every refusal is one of them.

CheckpointError: the file is fine but cannot be used here (another model, another format
version). CorruptCheckpointError, a kind of CheckpointError: the file itself is damaged or
malformed, so fit(resume=True) skips it and takes an older one.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: not ours, a format this minigrad does not read, or
    state that does not fit the objects it is loaded into. The message names the key."""


class CorruptCheckpointError(CheckpointError):
    """The file is damaged or is no checkpoint at all: truncated, bytes changed, pickled
    data, a plain zip. (fit(resume=True) skips such files and takes an older one.)"""


def _corrupt(path, why: str) -> CorruptCheckpointError:
    """The refusal of a damaged or malformed file, worded the same wherever it is noticed."""
    return CorruptCheckpointError(f"{path} is not a usable minigrad checkpoint: {why}")
