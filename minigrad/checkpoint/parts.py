"""Checking every part of a checkpoint against the live object it is loaded into.

    state = _model_state(file, model)                 # names, dtypes, shapes, finite values
    obj, prepared = _check_part(file, "model", model, state)   # model.check_state_dict(state)

Each part is read only after its keys, dtypes and shapes matched the live object's, then
handed to the object's check_state_dict(state), which changes nothing. Nonsense is refused
here: NaN or infinite weights and buffers, negative second moments, keys an object does not
have, JSON nested too deep or with numbers too large to use.
"""

from __future__ import annotations

import numpy as np

from .. import random as mg_random
from .encoding import _host_array, _is_array, _state_of
from .errors import CheckpointError
from .format import RNG_KEY
from .reader import _VerifiedFile


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
