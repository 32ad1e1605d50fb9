"""Checkpoints: one .npz file that holds everything a run needs to continue exactly.

    mg.save("run/ckpt.npz", model=model, optimizers=[opt_w, opt_b], trainer=trainer,
            schedulers=[sched], loaders=[loader], extra={"note": "baseline"})
    # ... a crash; a new process builds the same objects again, then:
    info = mg.load("run/ckpt.npz", model=model, optimizers=[opt_w, opt_b], trainer=trainer,
                   schedulers=[sched], loaders=[loader])
    info["extra"]              # {'note': 'baseline'}

The file is a zip of .npy arrays, as np.savez writes it, with namespaced keys:

    meta.json          0-d str array: JSON {format, format_version, minigrad_version, created,
                       dtype, extra, contents, keys, json_keys, checksum}
    model.<name>       the model's state_dict()               "model.0.weight"
    optim.<k>.<key>    optimizer k's OptimizerState.to_flat() "optim.0.buffer.exp_avg.1"
    sched.<k>.<key>    scheduler k's state_dict()             "sched.0.last_epoch"
    trainer.<key>      the trainer's state_dict()             "trainer.history"
    loader.<k>.<key>   data loader k's state_dict()           "loader.0.rng"
    rng.minigrad       minigrad.random.get_state(): dropout, init and default loader seeds

A state value that is not an array (a history of dicts, a generator state with 128-bit
integers) is stored as JSON text in a 0-d str array; meta.json lists those keys.

Five promises, and how each is kept:

- Safe to open a file from anyone: no pickle is ever read, every entry must be a plain
  number, bool or str array, and reading is bounded: members must be stored (not
  compressed) and may not overlap, arrays are hashed a block at a time, and an array is
  read only after its header matched the live object's (its dtype and shape), so a crafted
  file cannot make a reader use more memory than the model's and optimizers' own arrays.
- Never half-written: the file is written to a temporary file in the same directory,
  flushed and fsync'ed, then renamed over the target in one step (os.replace). What a
  killed save leaves behind, the next save to the same file removes.
- Damage is noticed: meta.json holds a SHA-256 over every array's name, dtype, shape and
  bytes, and over meta.json itself (all but the checksum field).
- Nonsense is refused: NaN or infinite weights and buffers, negative second moments, keys
  an object does not have, JSON nested too deep or with numbers too large to use. Every
  refusal is a CheckpointError (CorruptCheckpointError for a damaged or malformed file).
- All or nothing: load() checks every part with its object's check_state_dict(state),
  which changes nothing, and only then applies every part with apply_state_dict(prepared),
  which cannot fail. There is nothing to roll back.

Everything is duck-typed (objects with state_dict() and the state protocol), so this file
needs only backend and random below it. Arrays are saved from the host, so a checkpoint
written on the GPU loads on the CPU and the reverse: each array goes to its parameter's
device.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__, backend
from . import random as mg_random

__all__ = [
    "CheckpointError",
    "CorruptCheckpointError",
    "save",
    "load",
    "read_info",
    "export_safetensors",
    "epoch_checkpoints",
    "save_epoch",
    "load_latest",
    "FORMAT_VERSION",
]

FORMAT = "minigrad-checkpoint"
FORMAT_VERSION = 2  # 2: the checksum covers meta.json too
META_KEY = "meta.json"
RNG_KEY = "rng.minigrad"
# bool, signed and unsigned ints, floats, complex, unicode text: arrays np.load can read
# without pickle and that carry no Python objects.
_PLAIN_KINDS = "biufcU"
_KEY = re.compile(
    r"^(?:model\.(?P<model>.+)"
    r"|(?P<ns>optim|sched|loader)\.(?P<k>\d+)\.(?P<key>.+)"
    r"|trainer\.(?P<trainer>.+)"
    r"|rng\.minigrad)$"
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: not ours, a format this minigrad does not read, or
    state that does not fit the objects it is loaded into. The message names the key."""


class CorruptCheckpointError(CheckpointError):
    """The file is damaged or is no checkpoint at all: truncated, bytes changed, pickled
    data, a plain zip. (fit(resume=True) skips such files and takes an older one.)"""


# ---------------------------------------------------------------- saving


def save(
    path,
    model=None,
    optimizers=None,
    trainer=None,
    schedulers=(),
    loaders=(),
    extra: dict | None = None,
    rng: bool = True,
) -> Path:
    """Write one checkpoint file atomically; returns its path.

    model: a Module (its state_dict()); optimizers: a list (default: trainer.optimizers);
    trainer, schedulers, loaders: anything with state_dict(); extra: your own JSON-able
    metadata; rng: also save minigrad's random generator (so dropout continues identically).

        mg.save("ckpt.npz", model=model, optimizers=[opt], trainer=trainer, extra={"lr": 3e-4})

    The previous file at `path` stays intact until the new one is complete on disk.
    """
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a dict of JSON values, got {type(extra).__name__}")
    optimizers = _as_list(_default_optimizers(optimizers, trainer), "optimizers")
    schedulers = _as_list(schedulers, "schedulers")
    loaders = _as_list(loaders, "loaders")
    arrays: dict[str, np.ndarray] = {}
    json_keys: list[str] = []
    dtypes: list[str] = []
    if model is not None:
        for name, value in _state_of(model, "model").items():
            host = _host_array(value, f"model.{name}")
            arrays[f"model.{name}"] = host
            if str(host.dtype) not in dtypes:
                dtypes.append(str(host.dtype))
    for k, opt in enumerate(optimizers):
        _encode(f"optim.{k}", _state_of(opt, f"optimizers[{k}]"), arrays, json_keys)
    for k, sched in enumerate(schedulers):
        _encode(f"sched.{k}", _state_of(sched, f"schedulers[{k}]"), arrays, json_keys)
    if trainer is not None:
        _encode("trainer", _state_of(trainer, "trainer"), arrays, json_keys)
    for k, loader in enumerate(loaders):
        _encode(f"loader.{k}", _state_of(loader, f"loaders[{k}]"), arrays, json_keys)
    if rng:
        arrays[RNG_KEY] = np.array(json.dumps(mg_random.get_state()))
        json_keys.append(RNG_KEY)

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minigrad_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dtype": ",".join(dtypes) if dtypes else None,
        "extra": _json_value(dict(extra or {}), "extra"),
        "contents": {
            "model": model is not None,
            "optimizers": len(optimizers),
            "schedulers": len(schedulers),
            "trainer": trainer is not None,
            "loaders": len(loaders),
            "rng": bool(rng),
        },
        "keys": sorted(arrays),
        "json_keys": sorted(json_keys),
    }
    meta["checksum"] = _checksum(arrays, meta)
    arrays[META_KEY] = np.array(json.dumps(meta))
    path = Path(path)
    _atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))
    return path


def _atomic_write(path: Path, write) -> None:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over
    `path` in one step. On any error (or Ctrl-C) the temporary file is removed and `path`
    is left as it was. A process killed mid-write cannot remove its temporary file: the
    next save to the same `path` does (_remove_stale_temporaries)."""
    directory = path.parent if str(path.parent) else Path(".")
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
    directory = path.parent if str(path.parent) else Path(".")
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


# ---------------------------------------------------------------- loading


def load(
    path,
    model=None,
    optimizers=None,
    trainer=None,
    schedulers=(),
    loaders=(),
    rng: bool = True,
) -> dict:
    """Check a checkpoint completely, then load it into the objects given; returns its info.

    Pass the objects built the same way as when saving (optimizers default to
    trainer.optimizers). Parts of the file you do not pass an object for are checked but
    not loaded; rng=True restores minigrad's random generator when the file holds it.

        info = mg.load("ckpt.npz", model=model, optimizers=[opt], trainer=trainer)
        info["extra"], info["created"], info["minigrad_version"]

    Three steps: verify the file (layout, checksum), check every part against its object
    (obj.check_state_dict(state) -> prepared, which changes nothing), then apply every part
    (obj.apply_state_dict(prepared), which cannot fail). So there is nothing to roll back.
    Raises CorruptCheckpointError for a damaged or malformed file, and CheckpointError
    naming the key when the file does not fit the objects. In both cases no object changed.
    """
    path = Path(path)
    optimizers = _as_list(_default_optimizers(optimizers, trainer), "optimizers")
    schedulers = _as_list(schedulers, "schedulers")
    loaders = _as_list(loaders, "loaders")
    _check_loadable(model, "model")
    _check_loadable(trainer, "trainer")
    for what, objects in (("optimizers", optimizers), ("schedulers", schedulers),
                          ("loaders", loaders)):  # fmt: skip
        for i, obj in enumerate(objects):
            _check_loadable(obj, f"{what}[{i}]")
    with _VerifiedFile(path) as file:
        _check_counts(path, file.meta["contents"], model, optimizers, trainer, schedulers,
                      loaders)  # fmt: skip
        # 1. Check every part; nothing changes. The model first: "saved from another model"
        # is the likeliest problem and the clearest message.
        checked: list[tuple[object, object]] = []  # (object, its prepared state)
        if model is not None:
            checked.append(_check_part(file, "model", model, _model_state(file, model)))
        for k, opt in enumerate(optimizers):
            state = _optimizer_state(file, k, opt)
            # Applied before the model and the schedulers: a scheduler sets the final lr.
            checked.insert(k, _check_part(file, f"optim.{k}", opt, state))
        for k, sched in enumerate(schedulers):
            checked.append(_check_part(file, f"sched.{k}", sched, file.section(f"sched.{k}")))
        if trainer is not None:
            checked.append(_check_part(file, "trainer", trainer, file.section("trainer")))
        for k, loader in enumerate(loaders):
            state = file.section(f"loader.{k}")
            checked.append(_check_part(file, f"loader.{k}", loader, state))
        if rng and file.meta["contents"]["rng"]:
            checked.append(_check_part(file, RNG_KEY, _GlobalGenerator(file), file.json(RNG_KEY)))
    # 2. Everything fits: apply it (apply_state_dict cannot fail, so nothing is half-done).
    for obj, prepared in checked:
        obj.apply_state_dict(prepared)
    return _info(path, file.meta)


def read_info(path) -> dict:
    """Check a checkpoint file (layout, format, checksum) and return its info, loading
    nothing: {"path", "format_version", "minigrad_version", "created", "dtype", "extra",
    "contents"}. Reads the arrays a block at a time: memory stays small for any file."""
    path = Path(path)
    with _VerifiedFile(path) as file:
        return _info(path, file.meta)


def _info(path: Path, meta: dict) -> dict:
    keep = ("format_version", "minigrad_version", "created", "dtype", "extra", "contents")
    return {"path": path, **{key: meta[key] for key in keep}}


# ---------------------------------------------------------------- reading a file safely

# A crafted file must not make the reader use more memory than the live objects' own arrays
# need. Entries that are not checked against a live array (meta.json, JSON state) are capped.
_MAX_SMALL_ENTRY = 64 << 20  # bytes of meta.json or of one JSON / non-model state entry
_MAX_ENTRIES = 100_000
_BLOCK = 1 << 20  # bytes hashed at a time
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"


class _Entry:
    """One .npy member of the zip: its dtype and shape (from its header, checked against
    its size), and where its data starts inside the member."""

    def __init__(self, info: zipfile.ZipInfo, dtype: np.dtype, shape: tuple, data_offset: int):
        self.info, self.dtype, self.shape, self.data_offset = info, dtype, shape, data_offset
        self.nbytes = info.file_size - data_offset


class _VerifiedFile:
    """An open checkpoint that passed every check that needs no live object:

    1. the bytes: a zip (not a pickle, not text), members stored (not compressed), none
       overlapping another or reaching past the end, so no member is read twice and nothing
       unpacks to more than the file holds (no zip bomb);
    2. every member: a .npy of plain numbers or text, exactly as long as its header says;
    3. meta.json: our format and version, every field of the right type, every listed key
       present and no other;
    4. the checksum over every array *and* meta.json, computed a block at a time.

    The arrays themselves are read only later, one by one (array(), json(), section()),
    after the caller compared their dtype and shape with the live object's."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint file at {path}")
        self.zip = self._open_zip()
        try:
            self._verify()
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self) -> _VerifiedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.zip.close()

    def corrupt(self, why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{self.path} is not a usable minigrad checkpoint: {why}")

    # -- step 1: the container

    def _open_zip(self) -> zipfile.ZipFile:
        with open(self.path, "rb") as f:
            head = f.read(8)
        if not head:
            raise self.corrupt("the file is empty or truncated")
        if head.startswith(_NPY_MAGIC):
            raise self.corrupt(
                "it holds a single .npy array, not a zip of arrays written by mg.save"
            )
        if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2-5
            raise self.corrupt(
                "it holds pickled Python objects, which could run code when opened; "
                "minigrad checkpoints never contain pickles, so it is refused"
            )
        if not head.startswith(_ZIP_MAGIC):
            looks = "text" if all(32 <= b < 127 or b in b"\t\n\r" for b in head) else "data"
            raise self.corrupt(
                f"it is not a zip of arrays written by mg.save: it starts with {head!r}, which "
                f"looks like {looks}"
            )
        try:
            return zipfile.ZipFile(self.path)
        except Exception as exc:  # BadZipFile, OSError, or whatever a damaged directory raises
            raise self.corrupt(
                f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
            ) from None

    def _check_layout(self) -> None:
        """Stored members that neither overlap nor reach past the end of the file."""
        infos = self.zip.infolist()
        if len(infos) > _MAX_ENTRIES:
            raise self.corrupt(
                f"it has {len(infos)} members; a checkpoint has at most {_MAX_ENTRIES}"
            )
        size = self.path.stat().st_size
        spans = []
        with open(self.path, "rb") as f:
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    # mg.save stores; a compressed member could unpack to any size.
                    raise self.corrupt(
                        f"member {info.filename!r} is compressed; mg.save never does"
                    )
                if info.flag_bits & 0x1:
                    raise self.corrupt(f"member {info.filename!r} is encrypted")
                if info.compress_size != info.file_size:
                    raise self.corrupt(f"member {info.filename!r} declares two different sizes")
                f.seek(info.header_offset)
                local = f.read(30)  # the local file header, before the name and extra field
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    raise self.corrupt(f"member {info.filename!r} has no local header")
                name_length = int.from_bytes(local[26:28], "little")
                extra_length = int.from_bytes(local[28:30], "little")
                start = info.header_offset
                end = start + 30 + name_length + extra_length + info.compress_size
                if end > size:
                    raise self.corrupt(
                        f"member {info.filename!r} reaches past the end of the file "
                        f"({end} > {size} bytes): truncated or crafted"
                    )
                spans.append((start, end, info.filename))
        spans.sort()
        for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
            if start < end:
                # A zip whose members share bytes reads the same bytes many times: a few
                # megabytes could unpack to gigabytes. np.savez never writes one.
                raise self.corrupt(f"members {first!r} and {second!r} overlap")

    # -- step 2: every member's header

    def _read_entries(self) -> dict[str, _Entry]:
        names = self.zip.namelist()
        if f"{META_KEY}.npy" not in names:
            listed = ", ".join(sorted(names)[:5])
            raise self.corrupt(f"it has no {META_KEY!r} entry (it holds: {listed or 'nothing'})")
        entries = {}
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise self.corrupt(f"member {info.filename!r} is not a .npy array")
            key = info.filename[: -len(".npy")]
            if key in entries:
                raise self.corrupt(f"the entry {key!r} is there twice")
            entries[key] = self._read_header(key, info)
        return entries

    def _read_header(self, key: str, info: zipfile.ZipInfo) -> _Entry:
        """An entry's .npy header only: no Python objects, C order, and exactly as many
        bytes as its dtype and shape need. (So a forged header cannot make anyone allocate
        more than the member holds.)"""
        with self.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise self.corrupt(
                    f"{key!r} is a .npy file of version {version}; np.savez writes 1.0"
                )
            data_offset = f.tell()
        if dtype.hasobject:
            raise self.corrupt(f"{key!r} holds Python objects (a pickled array), refused")
        if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype:
            raise self.corrupt(f"{key!r} has dtype {dtype}; entries must be numbers, bools or text")
        if fortran_order:
            raise self.corrupt(f"{key!r} is stored in Fortran order; mg.save writes C order")
        needed = math.prod(shape) * dtype.itemsize
        if info.file_size - data_offset != needed:
            raise self.corrupt(
                f"{key!r}: its header says {dtype} of shape {shape} ({needed} bytes), but the "
                f"entry holds {info.file_size - data_offset} bytes"
            )
        return _Entry(info, dtype, tuple(shape), data_offset)

    # -- steps 3 and 4: meta.json and the checksum

    def _verify(self) -> None:
        try:
            self._check_layout()
            self.entries = self._read_entries()
            self.meta = _parse_meta(self.path, self._meta_text())
            self.keys = sorted(set(self.entries) - {META_KEY})
            listed = set(self.meta["keys"])
            missing = sorted(listed - set(self.keys))
            if missing:
                raise self.corrupt(f"the entry {missing[0]!r} listed in {META_KEY} is missing")
            unknown = sorted(set(self.keys) - listed)
            if unknown:
                raise CheckpointError(
                    f"{self.path}: unknown key {unknown[0]!r}: it is not listed in {META_KEY}"
                )
            checksum = self._checksum()
        except CheckpointError:
            raise
        except Exception as exc:  # BadZipFile (bad CRC), EOFError, or a mangled .npy header
            raise self.corrupt(
                f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
            ) from None
        if checksum != self.meta["checksum"]:
            raise self.corrupt(
                "the checksum over its arrays and meta.json does not match the one in meta.json: "
                "the file was damaged or edited after it was written"
            )
        for key in self.keys:
            if _KEY.match(key) is None:
                raise CheckpointError(
                    f"{self.path}: unknown key {key!r}: keys are model.<name>, optim.<k>.<key>, "
                    "sched.<k>.<key>, trainer.<key>, loader.<k>.<key> and rng.minigrad"
                )
        for key in self.meta["json_keys"]:
            entry = self.entries.get(key)
            if entry is None or entry.dtype.kind != "U" or entry.shape != ():
                raise CheckpointError(
                    f"{self.path}: {key!r} is listed as JSON but is not a 0-d str array"
                )
        _check_contents(self.path, self.meta["contents"], self.keys)

    def _meta_text(self) -> str:
        entry = self.entries[META_KEY]
        if entry.dtype.kind != "U" or entry.shape != ():
            raise self.corrupt(
                f"{META_KEY!r} must be a 0-d str array of JSON, got {entry.dtype} {entry.shape}"
            )
        return str(self.small_array(META_KEY))

    def _checksum(self) -> str:
        """The checksum as _checksum() computes it at save time, from the file a block at a
        time (the data of a C-order .npy member is exactly array.tobytes())."""
        digest = hashlib.sha256()
        for key in self.keys:
            entry = self.entries[key]
            digest.update(_array_header(key, entry.dtype, entry.shape, entry.nbytes))
            with self.zip.open(entry.info) as f:
                f.read(entry.data_offset)
                while block := f.read(_BLOCK):  # reading to the end checks the zip's CRC
                    digest.update(block)
        digest.update(_meta_bytes(self.meta))
        return "sha256:" + digest.hexdigest()

    # -- reading arrays, after their headers were checked

    def _read(self, key: str, entry: _Entry, capped: bool = True) -> np.ndarray:
        limit = _MAX_SMALL_ENTRY
        if capped and entry.nbytes > limit:
            raise self.corrupt(
                f"{key!r} holds {entry.nbytes} bytes; a state entry that is not one of the "
                f"model's or optimizers' arrays holds at most {limit}"
            )
        array = np.empty(entry.shape, entry.dtype)
        try:
            with self.zip.open(entry.info) as f:
                f.read(entry.data_offset)
                if array.size:
                    got = f.readinto(array.reshape(-1).view(np.uint8))
                    if got != entry.nbytes:
                        raise EOFError(f"{got} of {entry.nbytes} bytes")
        except Exception as exc:  # the file changed since it was verified, or a bad read
            raise self.corrupt(f"{key!r} could not be read ({type(exc).__name__}: {exc})") from None
        return array

    def array(self, key: str) -> np.ndarray:
        """An entry whose dtype and shape the caller checked against a live array."""
        return self._read(key, self.entries[key], capped=False)

    def small_array(self, key: str) -> np.ndarray:
        """An entry not checked against a live array: at most _MAX_SMALL_ENTRY bytes."""
        return self._read(key, self.entries[key])

    def json(self, key: str):
        """A JSON entry, decoded; malformed JSON (too deep, huge numbers) is corrupt."""
        text = str(self.small_array(key))
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise self.corrupt(
                f"{key!r} does not hold valid JSON ({type(exc).__name__}: {exc})"
            ) from None

    def section(self, prefix: str) -> dict:
        """The entries under "<prefix>.", with the prefix cut off and JSON decoded."""
        cut, json_keys = len(prefix) + 1, set(self.meta["json_keys"])
        return {
            key[cut:]: self.json(key) if key in json_keys else self.small_array(key)
            for key in self.keys
            if key.startswith(prefix + ".")
        }

    def headers(self, prefix: str) -> dict[str, _Entry]:
        cut = len(prefix) + 1
        return {key[cut:]: self.entries[key] for key in self.keys if key.startswith(prefix + ".")}


def _parse_meta(path: Path, text: str) -> dict:
    def bad(why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{path} is not a usable minigrad checkpoint: {why}")

    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise bad(f"{META_KEY!r} is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"{META_KEY!r} does not say format {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        # Intact but not readable here: a plain CheckpointError, so resume does not skip it.
        why = (
            " (version 1 files have no checksum over meta.json: load them with the minigrad "
            "that wrote them and save again)"
            if version == 1
            else ""
        )
        raise CheckpointError(
            f"{path}: format version {version!r}; this minigrad ({__version__}) reads "
            f"format version {FORMAT_VERSION}{why}"
        )
    fields = {
        "format": str,
        "format_version": int,
        "minigrad_version": str,
        "created": str,
        "dtype": (str, type(None)),
        "extra": dict,
        "contents": dict,
        "keys": list,
        "json_keys": list,
        "checksum": str,
    }
    for name, kind in fields.items():
        if name not in meta or not isinstance(meta[name], kind):
            raise bad(f"{META_KEY!r} has no {name!r} of the right type")
    unknown = sorted(set(meta) - set(fields))
    if unknown:
        raise bad(f"{META_KEY!r} has an unknown field {unknown[0]!r}")
    if not all(isinstance(k, str) for k in meta["keys"] + meta["json_keys"]):
        raise bad(f"{META_KEY!r}: 'keys' and 'json_keys' must be lists of names")
    contents = meta["contents"]
    expected = {"model", "trainer", "rng", "optimizers", "schedulers", "loaders"}
    if set(contents) != expected:
        raise bad(f"{META_KEY!r}: contents must name exactly {', '.join(sorted(expected))}")
    for name in ("model", "trainer", "rng"):
        if not isinstance(contents[name], bool):
            raise bad(f"{META_KEY!r}: contents.{name} must be true or false")
    for name in ("optimizers", "schedulers", "loaders"):
        count = contents[name]
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < _MAX_ENTRIES:
            raise bad(f"{META_KEY!r}: contents.{name} must be a count")
    return meta


def _check_contents(path: Path, contents: dict, keys: list) -> None:
    """Every key belongs to a part that meta.json says is there."""
    for key in keys:
        match = _KEY.match(key)
        if match["model"] is not None and not contents["model"]:
            raise CheckpointError(f"{path}: {key!r} is there, but contents says no model")
        if match["trainer"] is not None and not contents["trainer"]:
            raise CheckpointError(f"{path}: {key!r} is there, but contents says no trainer")
        if match["ns"] is not None:
            plural = {"optim": "optimizers", "sched": "schedulers", "loader": "loaders"}
            name = plural[match["ns"]]
            if int(match["k"]) >= contents[name]:
                raise CheckpointError(
                    f"{path}: {key!r} is there, but contents says {contents[name]} {name}"
                )
    if contents["rng"] and RNG_KEY not in keys:
        raise CheckpointError(f"{path}: contents says rng, but {RNG_KEY!r} is missing")


def _check_counts(path, contents, model, optimizers, trainer, schedulers, loaders) -> None:
    """What the caller passed must be in the file (parts not passed are left alone)."""
    if model is not None and not contents["model"]:
        raise CheckpointError(f"{path}: a model was passed, but the checkpoint holds none")
    if trainer is not None and not contents["trainer"]:
        raise CheckpointError(f"{path}: a trainer was passed, but the checkpoint holds none")
    for name, given in (("optimizers", optimizers), ("schedulers", schedulers),
                        ("loaders", loaders)):  # fmt: skip
        if given and len(given) != contents[name]:
            raise CheckpointError(
                f"{path}: the checkpoint holds {contents[name]} {name}, {len(given)} were "
                f"passed: pass all of them, in the order they were saved"
            )


# ---------------------------------------------------------------- checking the parts


def _model_state(file: _VerifiedFile, model) -> dict:
    """The model's entries, read only after their names, shapes and dtypes matched the
    model's own arrays (so reading them needs no more memory than the model itself);
    weights and buffers must be finite."""
    path, entries = file.path, file.headers("model")
    current = _state_of(model, "model")
    for name, value in current.items():
        want = _host_array(value, f"model.{name}")
        if name not in entries:
            have = ", ".join(list(entries)[:4]) or "none"
            raise CheckpointError(
                f"{path}: 'model.{name}' is missing: the model has {name} ({want.dtype}, "
                f"shape {want.shape}); the checkpoint's model entries are {have}... "
                "was it saved from a different model?"
            )
        got = entries[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"{path}: 'model.{name}': the model expects {want.dtype} of shape "
                f"{want.shape}, the checkpoint holds {got.dtype} of shape {got.shape}"
            )
    extra = [name for name in entries if name not in current]
    if extra:
        raise CheckpointError(
            f"{path}: unexpected key 'model.{extra[0]}': the model has no parameter "
            f"{extra[0]!r} (it has {', '.join(list(current)[:4])}...)"
        )
    state = {name: file.array(f"model.{name}") for name in current}
    for name, array in state.items():
        _check_finite(file, f"model.{name}", array)
    return state


def _optimizer_state(file: _VerifiedFile, k: int, opt) -> dict:
    """Optimizer k's flat state (OptimizerState.to_flat() form): the same keys as the live
    optimizer's, each array with its dtype and shape, read after that check; buffers finite,
    second-moment buffers (exp_avg_sq, max_exp_avg_sq) >= 0."""
    path, prefix = file.path, f"optim.{k}"
    current = _state_of(opt, f"optimizers[{k}]")
    flat = current.to_flat() if hasattr(current, "to_flat") else current
    entries = file.headers(prefix)
    if "optimizer_type" in flat and "optimizer_type" in entries:
        mine = str(flat["optimizer_type"])
        theirs = str(file.small_array(f"{prefix}.optimizer_type"))
        if mine != theirs:
            raise CheckpointError(
                f"{path}: '{prefix}.optimizer_type' is {theirs}, but optimizers[{k}] is a {mine}"
            )
    for key, value in flat.items():
        if key not in entries:
            raise CheckpointError(
                f"{path}: '{prefix}.{key}' is missing: was the checkpoint saved from an "
                "optimizer with other parameters or options (momentum, amsgrad)?"
            )
        if not _is_array(value):
            continue
        want, got = _host_array(value, f"{prefix}.{key}"), entries[key]
        same_text = want.dtype.kind == got.dtype.kind == "U"  # '<U4' and '<U5' are both text
        if got.shape != want.shape or (got.dtype != want.dtype and not same_text):
            raise CheckpointError(
                f"{path}: '{prefix}.{key}': optimizers[{k}] expects {want.dtype} of shape "
                f"{want.shape}, the checkpoint holds {got.dtype} of shape {got.shape}"
            )
    extra = sorted(set(entries) - set(flat))
    if extra:
        raise CheckpointError(
            f"{path}: unexpected key '{prefix}.{extra[0]}': optimizers[{k}] has no such "
            "state (was it saved from an optimizer with other parameters or options?)"
        )
    state = {}
    for key, value in flat.items():
        full = f"{prefix}.{key}"
        if full in file.meta["json_keys"]:
            state[key] = file.json(full)
        elif _is_array(value) and entries[key].dtype.kind != "U":
            state[key] = file.array(full)  # its shape was checked: as large as the live one
        else:
            state[key] = file.small_array(full)
        if key.startswith("buffer.") and isinstance(state[key], np.ndarray):
            _check_finite(file, full, state[key])
            if key.startswith(("buffer.exp_avg_sq.", "buffer.max_exp_avg_sq.")):
                if state[key].dtype.kind == "f" and (state[key] < 0).any():
                    raise file.corrupt(
                        f"{full!r} has negative values: a mean of squared gradients is >= 0"
                    )
    return state


def _check_finite(file: _VerifiedFile, key: str, array: np.ndarray) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise file.corrupt(
            f"{key!r} holds {bad} NaN or infinite values: the run that saved it had diverged; "
            "load an earlier checkpoint"
        )


def _check_loadable(obj, what: str) -> None:
    """load() needs the state protocol on every object it loads into (None: not loaded)."""
    if obj is None:
        return
    missing = [m for m in ("check_state_dict", "apply_state_dict") if not hasattr(obj, m)]
    if missing:
        raise TypeError(
            f"{what} is a {type(obj).__name__}, which has no {' and no '.join(missing)}: "
            "mg.load checks every part before it changes any, so each object needs "
            "check_state_dict(state) -> prepared (raises, changes nothing) and "
            "apply_state_dict(prepared) (cannot fail)"
        )


def _check_part(file: _VerifiedFile, prefix: str, obj, state) -> tuple[object, object]:
    """(obj, obj.check_state_dict(state)), a refusal named after the part."""
    try:
        return obj, obj.check_state_dict(state)
    except CheckpointError:
        raise
    except (RecursionError, OverflowError, MemoryError) as exc:
        # Values no minigrad writes (nested thousands deep, integers of hundreds of digits).
        raise file.corrupt(f"'{prefix}' is malformed ({type(exc).__name__}: {exc})") from None
    except Exception as exc:
        raise CheckpointError(f"{file.path}: '{prefix}' does not fit: {exc}") from None


class _GlobalGenerator:
    """minigrad.random's global generator behind the state protocol of the other parts.
    Its state fits any run, so a state it refuses is a malformed file."""

    def __init__(self, file: _VerifiedFile):
        self.file = file

    def check_state_dict(self, state):
        try:
            return mg_random.check_state(state)
        except ValueError as exc:
            raise self.file.corrupt(f"{RNG_KEY!r} is not a generator state ({exc})") from None

    def apply_state_dict(self, prepared) -> None:
        mg_random.apply_state(prepared)


# ---------------------------------------------------------------- encoding helpers


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


def _contiguous(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


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


def _checksum(arrays: Mapping, meta: Mapping) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every array, in sorted name order, then
    over meta.json without its checksum field (so an edited "extra", "created" or "dtype"
    is noticed as surely as an edited weight)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        if key == META_KEY:
            continue
        array = _contiguous(arrays[key])
        digest.update(_array_header(key, array.dtype, array.shape, array.nbytes))
        digest.update(array.tobytes())
    digest.update(_meta_bytes(meta))
    return "sha256:" + digest.hexdigest()


def _array_header(key: str, dtype: np.dtype, shape: tuple, nbytes: int) -> bytes:
    return f"{key}\0{dtype.str}\0{tuple(shape)}\0{nbytes}\0".encode()


def _meta_bytes(meta: Mapping) -> bytes:
    """meta.json without "checksum", as canonical JSON (sorted keys, no spaces)."""
    rest = {key: value for key, value in meta.items() if key != "checksum"}
    return b"meta.json\0" + json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------- a directory of epochs

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


# ---------------------------------------------------------------- safetensors


def export_safetensors(path, model, metadata: dict | None = None) -> Path:
    """Write the model's weights as a .safetensors file with PyTorch's names ("0.weight").

    A torch.nn.Sequential of the same layers loads it:
        mg.export_safetensors("mlp.safetensors", model)
        torch_model.load_state_dict(safetensors.torch.load_file("mlp.safetensors"))

    Needs the safetensors package (pip install safetensors). Written atomically, like save().
    """
    try:
        from safetensors.numpy import save as safetensors_save
    except ImportError:
        raise ImportError(
            "export_safetensors needs the safetensors package: pip install safetensors"
        ) from None
    tensors = {name: _host_array(value, name) for name, value in _state_of(model, "model").items()}
    info = {"format": "pt", "minigrad_version": __version__}  # "pt": what torch loaders expect
    for key, value in (metadata or {}).items():
        info[str(key)] = str(value)
    data = safetensors_save(tensors, metadata=info)
    path = Path(path)
    _atomic_write(path, lambda f: f.write(data))
    return path
