"""load(): verify the file, check every part, then apply every part.

    info = mg.load("run/ckpt.npz", model=model, optimizers=[opt_w, opt_b], trainer=trainer,
                   schedulers=[sched], loaders=[loader])
    info["extra"]              # {'note': 'baseline'}

All or nothing: every part is checked with its object's check_state_dict(state), which
changes nothing, and only then applied with apply_state_dict(prepared), which cannot fail.
There is nothing to roll back. Each array goes to its parameter's device.
"""

from __future__ import annotations

from pathlib import Path

from .encoding import _as_list, _default_optimizers
from .format import RNG_KEY
from .parts import (
    _check_counts,
    _check_loadable,
    _check_part,
    _GlobalGenerator,
    _model_state,
    _optimizer_state,
)
from .reader import _VerifiedFile


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
