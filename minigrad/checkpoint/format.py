"""The file format: what is stored under which key, meta.json, and the checksum.

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

Damage is noticed: meta.json holds a SHA-256 over every array's name, dtype, shape and
bytes, and over meta.json itself (all but the checksum field). save() computes it from the
arrays (_checksum); the reader computes the same from the file, a block at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .. import __version__
from .errors import CheckpointError, CorruptCheckpointError, _corrupt

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

# A checkpoint has at most this many members (so a count in meta.json's contents is below it).
_MAX_ENTRIES = 100_000


def _contiguous(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


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


def _parse_meta(path: Path, text: str) -> dict:
    def bad(why: str) -> CorruptCheckpointError:
        return _corrupt(path, why)

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
