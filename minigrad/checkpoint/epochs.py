"""A directory of checkpoints, one per epoch: what fit(checkpoint_dir=...) keeps.

    save_epoch("run", 3, model=model, trainer=trainer)   # run/epoch-000003.npz
    load_latest("run", model=model, trainer=trainer)     # the newest good one, or None

A damaged newest file is skipped for an older one; a killed save's temporary is swept.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from .atomic import _remove_stale_temporaries
from .errors import CorruptCheckpointError
from .loading import load
from .saving import save

_EPOCH_FILE = re.compile(r"^epoch-(\d+)\.npz$")


def epoch_checkpoints(directory) -> list[Path]:
    """The files epoch-<n>.npz in `directory`, oldest epoch first ([] if there is none)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _EPOCH_FILE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match[1]), entry))
    return [entry for _, entry in sorted(found)]


def save_epoch(directory, epoch: int, keep_last: int | None = 3, **objects) -> Path:
    """save() to directory/epoch-<epoch>.npz, then delete all but the newest `keep_last`
    epoch files (None keeps every one). Deletes only after the new file is complete."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = save(directory / f"epoch-{epoch:06d}.npz", **objects)
    # A save killed mid-write left a temporary of *its* epoch file, which no later save of
    # this run writes again: sweep those of every epoch file.
    _remove_stale_temporaries(path, targets=_EPOCH_FILE.pattern[1:-1])
    if keep_last is not None:
        for old in epoch_checkpoints(directory)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def load_latest(directory, **objects) -> dict | None:
    """load() the newest good epoch file in `directory` into `objects`; its info, or None
    when there is none. A damaged file is skipped with a warning (an older one is taken);
    a file that is intact but does not fit the objects raises, as training the wrong model
    from scratch over its checkpoints would be worse."""
    for path in reversed(epoch_checkpoints(directory)):
        try:
            return load(path, **objects)
        except CorruptCheckpointError as exc:
            warnings.warn(f"skipping a damaged checkpoint: {exc}", RuntimeWarning, stacklevel=2)
    return None
