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

Four promises, and how each is kept:

- Safe to open a file from anyone: np.load(..., allow_pickle=False) never runs code, and
  every entry must be a plain number, bool or str array. Nothing else is accepted.
- Never half-written: the file is written to a temporary file in the same directory,
  flushed and fsync'ed, then renamed over the target in one step (os.replace).
- Damage is noticed: meta.json holds a SHA-256 over every array's name, dtype, shape and bytes.
- All or nothing: every part of the file is checked against the live objects first; only
  then is anything loaded (and should a load still fail, what was loaded is put back).

Everything is duck-typed (objects with state_dict()/load_state_dict()), so this file needs
only backend and random below it. Arrays are saved from the host, so a checkpoint written
on the GPU loads on the CPU and the reverse: each array goes to its parameter's device.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import tempfile
import types
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
FORMAT_VERSION = 1
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
        "checksum": "sha256:" + _checksum(arrays),
    }
    arrays[META_KEY] = np.array(json.dumps(meta))
    path = Path(path)
    _atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))
    return path


def _atomic_write(path: Path, write) -> None:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over
    `path` in one step. On any error (or Ctrl-C) the temporary file is removed and `path`
    is left as it was."""
    directory = path.parent if str(path.parent) else Path(".")
    # Same directory: os.replace is atomic only within one file system.
    tmp = tempfile.NamedTemporaryFile(
        dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with tmp:
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

    Raises CorruptCheckpointError for a damaged file or one that is no checkpoint, and
    CheckpointError naming the key when the file does not fit the objects. In both cases
    no object has changed.
    """
    path = Path(path)
    meta, arrays = _read_verified(path)
    contents = meta["contents"]
    optimizers = _as_list(_default_optimizers(optimizers, trainer), "optimizers")
    schedulers = _as_list(schedulers, "schedulers")
    loaders = _as_list(loaders, "loaders")
    _check_counts(path, contents, model, optimizers, trainer, schedulers, loaders)
    json_keys = set(meta["json_keys"])

    # 1. Check every part against its live object; collect (what, object, new, old) to apply.
    # The model first: "saved from another model" is the likeliest problem and the clearest.
    parts: list[tuple[str, object, object, object]] = []
    if model is not None:
        new, old = _check_model(path, model, _section(arrays, "model", json_keys))
        parts.append(("model", model, new, old))
    for k, opt in enumerate(optimizers):
        new, old = _check_optimizer(path, k, opt, _section(arrays, f"optim.{k}", json_keys))
        parts.insert(k, (f"optimizers[{k}]", opt, new, old))  # applied first, see below
    for k, sched in enumerate(schedulers):
        state = _section(arrays, f"sched.{k}", json_keys)
        owners = [*optimizers, getattr(sched, "optimizer", None)]
        stand_ins = {
            id(o): types.SimpleNamespace(lr=getattr(o, "lr", 0.0)) for o in owners if o is not None
        }
        # A scheduler's load sets its optimizer's lr: the trial copy gets stand-in optimizers.
        _trial_load(path, f"sched.{k}", copy.deepcopy(sched, stand_ins), state)
        parts.append((f"schedulers[{k}]", sched, state, sched.state_dict()))
    if trainer is not None:
        state = _section(arrays, "trainer", json_keys)
        # Trainer and DataLoader loads assign new values (never mutate shared ones), so a
        # shallow copy takes the trial without copying data, parameters or optimizers.
        _trial_load(path, "trainer", copy.copy(trainer), state)
        parts.append(("trainer", trainer, state, trainer.state_dict()))
    for k, loader in enumerate(loaders):
        state = _section(arrays, f"loader.{k}", json_keys)
        _trial_load(path, f"loader.{k}", copy.copy(loader), state)
        parts.append((f"loaders[{k}]", loader, state, loader.state_dict()))
    if rng and contents["rng"]:
        state = json.loads(str(arrays[RNG_KEY]))
        _check_rng_state(path, state)
        parts.append(("the random generator", _RandomState(), state, mg_random.get_state()))

    # 2. Everything fits: apply. Optimizers first: their value checks (lr >= 0, ...) are
    # the only ones not tried on a copy, and the schedulers must set the final lr.
    done = []
    for what, obj, new, old in parts:
        try:
            obj.load_state_dict(new)
        except Exception as exc:
            # A check the trial could not run failed: put back what was loaded (all or nothing).
            for earlier, previous in reversed(done):
                earlier.load_state_dict(previous)
            raise CheckpointError(
                f"{path}: {what} refused its state ({exc}); nothing was changed"
            ) from exc
        done.append((obj, old))
    return _info(path, meta)


def read_info(path) -> dict:
    """Check a checkpoint file (integrity, format, checksum) and return its info, loading
    nothing: {"path", "format_version", "minigrad_version", "created", "dtype", "extra",
    "contents"}."""
    path = Path(path)
    meta, _ = _read_verified(path)
    return _info(path, meta)


def _info(path: Path, meta: dict) -> dict:
    keep = ("format_version", "minigrad_version", "created", "dtype", "extra", "contents")
    return {"path": path, **{key: meta[key] for key in keep}}


def _read_verified(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, {key: array}) from a file that passed every integrity and format check."""

    def corrupt(why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{path} is not a usable minigrad checkpoint: {why}")

    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise corrupt(
                "it holds pickled Python objects, which could run code when opened; "
                "minigrad checkpoints never contain pickles, so it is refused"
            ) from None
        raise corrupt(f"it is truncated or corrupt ({exc})") from None
    except EOFError:
        raise corrupt("the file is empty or truncated") from None
    except Exception as exc:  # BadZipFile, OSError, or whatever a damaged header raises
        raise corrupt(f"it is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise corrupt("it holds a single .npy array, not a zip of arrays written by mg.save")
    with npz:
        try:
            for info in npz.zip.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    # mg.save stores; a compressed member could unpack to any size.
                    raise corrupt(f"member {info.filename!r} is compressed; mg.save never does")
            if META_KEY not in npz.files:
                names = ", ".join(sorted(npz.files)[:5])
                raise corrupt(f"it has no {META_KEY!r} entry (it holds: {names or 'nothing'})")
            meta = _parse_meta(path, _read_member(npz, META_KEY, corrupt))
            listed, present = set(meta["keys"]), set(npz.files) - {META_KEY}
            missing = sorted(listed - present)
            if missing:
                raise corrupt(f"the entry {missing[0]!r} listed in {META_KEY} is missing")
            unknown = sorted(present - listed)
            if unknown:
                raise CheckpointError(
                    f"{path}: unknown key {unknown[0]!r}: it is not listed in {META_KEY}"
                )
            arrays = {key: _read_member(npz, key, corrupt) for key in sorted(listed)}
        except CheckpointError:
            raise
        except Exception as exc:  # BadZipFile (bad CRC), EOFError, or a mangled .npy header
            raise corrupt(f"it is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if "sha256:" + _checksum(arrays) != meta["checksum"]:
        raise corrupt(
            "the checksum over its arrays does not match the one in meta.json: the file was "
            "damaged or edited after it was written"
        )
    for key in sorted(arrays):
        if _KEY.match(key) is None:
            raise CheckpointError(
                f"{path}: unknown key {key!r}: keys are model.<name>, optim.<k>.<key>, "
                "sched.<k>.<key>, trainer.<key>, loader.<k>.<key> and rng.minigrad"
            )
    for key in meta["json_keys"]:
        value = arrays.get(key)
        if value is None or value.dtype.kind != "U" or value.ndim != 0:
            raise CheckpointError(f"{path}: {key!r} is listed as JSON but is not a 0-d str array")
        try:
            json.loads(str(value))
        except ValueError:
            raise CheckpointError(f"{path}: {key!r} does not hold valid JSON") from None
    _check_contents(path, meta["contents"], arrays)
    return meta, arrays


def _read_member(npz, key: str, corrupt) -> np.ndarray:
    _check_header(npz, key, corrupt)
    try:
        value = npz[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickle" in str(exc):
            raise corrupt(f"{key!r} holds Python objects (a pickled array), refused") from None
        raise
    if not isinstance(value, np.ndarray):
        raise corrupt(f"{key!r} is not a NumPy array (a member that is no .npy file)")
    if value.dtype.kind not in _PLAIN_KINDS or value.dtype.fields is not None:
        raise corrupt(f"{key!r} has dtype {value.dtype}; entries must be numbers, bools or text")
    return value


def _check_header(npz, key: str, corrupt) -> None:
    """Read an entry's .npy header only: no Python objects, and exactly as many bytes as
    its dtype and shape need. (So a forged header cannot make np.load allocate any size:
    the memory used stays bounded by the file's size.)"""
    try:
        info = npz.zip.getinfo(f"{key}.npy")
    except KeyError:
        raise corrupt(f"{key!r} is not a NumPy array (a member that is no .npy file)") from None
    with npz.zip.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise corrupt(f"{key!r} is a .npy file of version {version}; np.savez writes 1.0")
        header_size = f.tell()
    if dtype.hasobject:
        raise corrupt(f"{key!r} holds Python objects (a pickled array), refused")
    needed = math.prod(shape) * dtype.itemsize
    if info.file_size - header_size != needed:
        raise corrupt(
            f"{key!r}: its header says {dtype} of shape {shape} ({needed} bytes), but the entry "
            f"holds {info.file_size - header_size} bytes"
        )


def _parse_meta(path: Path, value: np.ndarray) -> dict:
    def bad(why: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{path} is not a usable minigrad checkpoint: {why}")

    if value.dtype.kind != "U" or value.ndim != 0:
        raise bad(f"{META_KEY!r} must be a 0-d str array of JSON, got {value.dtype} {value.shape}")
    try:
        meta = json.loads(str(value))
    except ValueError as exc:
        raise bad(f"{META_KEY!r} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"{META_KEY!r} does not say format {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        # Intact but not readable here: a plain CheckpointError, so resume does not skip it.
        raise CheckpointError(
            f"{path}: format version {version!r}; this minigrad ({__version__}) reads "
            f"format version {FORMAT_VERSION}"
        )
    fields = {
        "minigrad_version": str,
        "created": str,
        "extra": dict,
        "contents": dict,
        "keys": list,
        "json_keys": list,
        "checksum": str,
    }
    for name, kind in fields.items():
        if not isinstance(meta.get(name), kind):
            raise bad(f"{META_KEY!r} has no {name!r} ({kind.__name__})")
    if not all(isinstance(k, str) for k in meta["keys"] + meta["json_keys"]):
        raise bad(f"{META_KEY!r}: 'keys' and 'json_keys' must be lists of names")
    contents = meta["contents"]
    for name, kind in (("model", bool), ("trainer", bool), ("rng", bool)):
        if not isinstance(contents.get(name), kind):
            raise bad(f"{META_KEY!r}: contents.{name} must be true or false")
    for name in ("optimizers", "schedulers", "loaders"):
        count = contents.get(name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise bad(f"{META_KEY!r}: contents.{name} must be a count")
    meta.setdefault("dtype", None)
    return meta


def _check_contents(path: Path, contents: dict, arrays: dict) -> None:
    """Every key belongs to a part that meta.json says is there."""
    for key in arrays:
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
    if contents["rng"] and RNG_KEY not in arrays:
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


def _section(arrays: dict, prefix: str, json_keys: set) -> dict:
    """The entries under "<prefix>.", with the prefix cut off and JSON decoded."""
    cut = len(prefix) + 1
    return {
        key[cut:]: json.loads(str(value)) if key in json_keys else value
        for key, value in arrays.items()
        if key.startswith(prefix + ".")
    }


def _check_model(path: Path, model, entries: dict) -> tuple[dict, dict]:
    """(entries to load, the model's current state): names, shapes and dtypes must match."""
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
        if not isinstance(got, np.ndarray):
            raise CheckpointError(f"{path}: 'model.{name}' must be an array, got JSON")
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
    return entries, current


def _check_optimizer(path: Path, k: int, opt, entries: dict) -> tuple[dict, object]:
    """(entries to load, the optimizer's current state): the same keys, each with the dtype
    and shape of the optimizer's own state (its type, step counts, hyperparameters, and
    one buffer per parameter and state name)."""
    current = _state_of(opt, f"optimizers[{k}]")
    flat = current.to_flat() if hasattr(current, "to_flat") else current
    saved_type = entries.get("optimizer_type")
    if "optimizer_type" in flat and saved_type is not None:
        mine, theirs = str(flat["optimizer_type"]), str(saved_type)
        if mine != theirs:
            raise CheckpointError(
                f"{path}: 'optim.{k}.optimizer_type' is {theirs}, but optimizers[{k}] is a {mine}"
            )
    for key, value in flat.items():
        if key not in entries:
            raise CheckpointError(
                f"{path}: 'optim.{k}.{key}' is missing: was the checkpoint saved from an "
                "optimizer with other parameters or options (momentum, amsgrad)?"
            )
        if not _is_array(value):
            continue
        want, got = _host_array(value, f"optim.{k}.{key}"), entries[key]
        if not isinstance(got, np.ndarray):
            raise CheckpointError(f"{path}: 'optim.{k}.{key}' must be an array, got JSON")
        same_text = want.dtype.kind == got.dtype.kind == "U"  # '<U4' and '<U5' are both text
        if got.shape != want.shape or (got.dtype != want.dtype and not same_text):
            raise CheckpointError(
                f"{path}: 'optim.{k}.{key}': optimizers[{k}] expects {want.dtype} of shape "
                f"{want.shape}, the checkpoint holds {got.dtype} of shape {got.shape}"
            )
    extra = sorted(set(entries) - set(flat))
    if extra:
        raise CheckpointError(
            f"{path}: unexpected key 'optim.{k}.{extra[0]}': optimizers[{k}] has no such "
            "state (was it saved from an optimizer with other parameters or options?)"
        )
    return entries, current


def _trial_load(path: Path, prefix: str, trial, state: dict) -> None:
    """Load `state` into a throwaway copy, to run the object's own checks first."""
    try:
        trial.load_state_dict(state)
    except Exception as exc:
        raise CheckpointError(f"{path}: '{prefix}' does not fit: {exc}") from None


def _check_rng_state(path: Path, state) -> None:
    try:
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError("expected a PCG64 state")
        np.random.PCG64().state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: {RNG_KEY!r} is not a generator state ({exc})") from None


class _RandomState:
    """minigrad.random behind the same load_state_dict() as the other parts."""

    def load_state_dict(self, state: dict) -> None:
        mg_random.set_state(state)


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


def _checksum(arrays: Mapping) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every array, in sorted name order."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        if key == META_KEY:
            continue
        array = _contiguous(arrays[key])
        header = f"{key}\0{array.dtype.str}\0{array.shape}\0{array.nbytes}\0"
        digest.update(header.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


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
