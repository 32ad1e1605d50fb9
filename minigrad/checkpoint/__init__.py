"""Checkpoints: one .npz file that holds everything a run needs to continue exactly.

    mg.save("run/ckpt.npz", model=model, optimizers=[opt_w, opt_b], trainer=trainer,
            schedulers=[sched], loaders=[loader], extra={"note": "baseline"})
    # ... a crash; a new process builds the same objects again, then:
    info = mg.load("run/ckpt.npz", model=model, optimizers=[opt_w, opt_b], trainer=trainer,
                   schedulers=[sched], loaders=[loader])
    info["extra"]              # {'note': 'baseline'}

save = encode every object's state + write the file atomically; load = verify the file,
check every part, apply every part. The file is a zip of .npy arrays under namespaced
keys ("model.0.weight", "optim.0.buffer.exp_avg.1", "trainer.history") plus meta.json.

Five promises, and the file that keeps each:

- Safe to open a file from anyone (reader.py): no pickle is ever read, every entry must be
  a plain number, bool or str array, and reading is bounded: members must be stored (not
  compressed) and may not overlap, arrays are hashed a block at a time, and an array is
  read only after its header matched the live object's (its dtype and shape), so a crafted
  file cannot make a reader use more memory than the model's and optimizers' own arrays.
- Never half-written (atomic.py): the file is written to a temporary file in the same
  directory, flushed and fsync'ed, then renamed over the target in one step (os.replace).
  What a killed save leaves behind, the next save to the same file removes.
- Damage is noticed (format.py): meta.json holds a SHA-256 over every array's name, dtype,
  shape and bytes, and over meta.json itself (all but the checksum field).
- Nonsense is refused (parts.py): NaN or infinite weights and buffers, negative second
  moments, keys an object does not have, JSON nested too deep or with numbers too large to
  use. Every refusal is a CheckpointError (CorruptCheckpointError for a damaged or
  malformed file; errors.py).
- All or nothing (loading.py): load() checks every part with its object's
  check_state_dict(state), which changes nothing, and only then applies every part with
  apply_state_dict(prepared), which cannot fail. There is nothing to roll back.

The files, in reading order: saving.py and loading.py (the idea), format.py (layout, keys,
meta.json, checksum), encoding.py (each object's state as arrays and JSON), atomic.py,
reader.py, parts.py, epochs.py (a directory of epoch files: save_epoch, load_latest),
export.py (export_safetensors).

Everything is duck-typed (objects with state_dict() and the state protocol), so this
package needs only backend and random below it. Arrays are saved from the host, so a
checkpoint written on the GPU loads on the CPU and the reverse: each array goes to its
parameter's device.
"""

from .epochs import epoch_checkpoints, load_latest, save_epoch
from .errors import CheckpointError, CorruptCheckpointError
from .export import export_safetensors
from .format import FORMAT_VERSION, _checksum
from .loading import load, read_info
from .saving import save

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
