"""save(): encode every object's state, then write the file atomically.

    mg.save("run/ckpt.npz", model=model, optimizers=[opt_w, opt_b], trainer=trainer,
            schedulers=[sched], loaders=[loader], extra={"note": "baseline"})

Arrays are saved from the host, so a checkpoint written on the GPU loads on the CPU and the
reverse. The file layout is in format.py, the encoding in encoding.py, the atomic write in
atomic.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from .. import random as mg_random
from .atomic import _atomic_write
from .encoding import _as_list, _default_optimizers, _encode, _host_array, _json_value, _state_of
from .format import FORMAT, FORMAT_VERSION, META_KEY, RNG_KEY, _checksum


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
