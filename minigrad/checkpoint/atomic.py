"""Atomic writes: a file is either the old one or the complete new one, never half of it.

    _atomic_write(Path("run/ckpt.npz"), lambda f: np.savez(f, **arrays))

The bytes go to a temporary file in the same directory, are flushed and fsync'ed, then the
temporary is renamed over the target in one step (os.replace). What a killed save leaves
behind, the next save to the same file removes (_remove_stale_temporaries).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def _atomic_write(path: Path, write) -> None:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over
    `path` in one step. On any error (or Ctrl-C) the temporary file is removed and `path`
    is left as it was. A process killed mid-write cannot remove its temporary file: the
    next save to the same `path` does (_remove_stale_temporaries)."""
    directory = _folder_of(path)
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise FileNotFoundError(
            f"cannot save {path}: the folder {directory} {what} "
            "(create it first, e.g. os.makedirs(folder, exist_ok=True))"
        )
    _remove_stale_temporaries(path)
    # Same directory: os.replace is atomic only within one file system.
    tmp = tempfile.NamedTemporaryFile(
        dir=directory, prefix=f".{path.name}.", suffix=_TMP_SUFFIX, delete=False
    )
    try:
        with tmp:
            _lock(tmp)  # held until closed: tells other savers this file is being written
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp.name, _file_mode(path))
        os.replace(tmp.name, path)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _folder_of(path: Path) -> Path:
    """The folder `path` is in, where its temporary files go."""
    return path.parent if str(path.parent) else Path(".")


# The temporary files of a save to "dir/ckpt.npz" are "dir/.ckpt.npz.<8 random chars>.tmp".
_TMP_SUFFIX = ".tmp"
_STALE_AFTER_S = 60.0  # a temporary file younger than this is never touched


def _lock(file) -> bool:
    """Take an exclusive lock on an open file without waiting; False if another process
    holds it. The system drops the lock when its process dies, however it dies."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; only the age check is left
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _remove_stale_temporaries(path: Path, targets: str | None = None) -> None:
    """Delete what killed saves to `path` left behind, carefully: only names our own
    temporary files have for this very target (or for any target whose name matches the
    regular expression `targets`, in path's folder), only regular files, only ones older
    than a minute, and only when no live process holds the lock a saver keeps while writing."""
    directory = _folder_of(path)
    target = targets if targets is not None else re.escape(path.name)
    ours = re.compile(r"\." + f"(?:{target})" + r"\.[a-z0-9_]{8}" + re.escape(_TMP_SUFFIX))
    now = datetime.now(timezone.utc).timestamp()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not ours.fullmatch(name):
            continue
        candidate = directory / name
        try:
            info = candidate.lstat()
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < _STALE_AFTER_S:
                continue  # a link, a folder, or a save that may still be starting
            with open(candidate, "rb") as f:
                if _lock(f):  # nobody is writing it: its saver was killed
                    candidate.unlink()
        except OSError:
            continue  # gone already, or not ours to delete: leave it


def _file_mode(path: Path) -> int:
    """The mode a plain open() would give (temporary files are private, 0o600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open a directory, so skip."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
