"""Checkpoints: exact resume in a new process, crash safety, every bad file refused with the
live objects unchanged, fit(checkpoint_dir, resume), GPU <-> CPU, safetensors export."""

import ast
import importlib
import inspect
import io
import json
import os
import pickle
import pkgutil
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, checkpoint, nn, optim
from minigrad.checkpoint import CheckpointError, CorruptCheckpointError
from minigrad.data import DataLoader
from minigrad.nn import functional as F

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# ---------------------------------------------------------------- a small run to checkpoint


def make_run(kind="adamw", seed=0, device="cpu", hidden=16, dtype=np.float32, sched="step"):
    """A small MLP with dropout, optimizers, a scheduler, a Trainer and a shuffling loader.

    The data never depends on `seed`; the initial weights and the loader's seed do, so a
    run made with another seed only matches after a checkpoint is loaded into it.
    """
    mg.manual_seed(seed)
    data = np.random.default_rng(7)
    x = data.standard_normal((40, 6)).astype(np.float32)
    y = data.integers(0, 3, 40)
    model = nn.Sequential(
        nn.Linear(6, hidden, dtype=dtype, device=device),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(hidden, 3, dtype=dtype, device=device),
    )
    named = list(model.named_parameters())
    weights = [p for n, p in named if n.endswith("weight")]
    biases = [p for n, p in named if n.endswith("bias")]
    if kind == "sgd":
        opts = [optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=1e-3)]  # fmt: skip
    elif kind == "adam":
        opts = [optim.Adam(model.parameters(), lr=1e-2, amsgrad=True, weight_decay=1e-3)]
    elif kind == "adam_plain":
        opts = [optim.Adam(model.parameters(), lr=1e-2)]
    elif kind == "adamw":
        opts = [optim.AdamW(weights, lr=1e-2, weight_decay=1e-2),
                optim.AdamW(biases, lr=1e-2, weight_decay=0.0)]  # fmt: skip
    else:
        raise ValueError(kind)
    if sched == "step":
        schedulers = [optim.StepLR(opts[0], step_size=3, gamma=0.5)]
    else:
        schedulers = [optim.ExponentialLR(opts[0], gamma=0.9)]
    trainer = optim.Trainer(*opts, grad_clip=1.0)
    loader = DataLoader(x, y, batch_size=16, shuffle=True, device=device)  # seeded by mg.random
    return types.SimpleNamespace(
        model=model, optimizers=opts, schedulers=schedulers, trainer=trainer, loader=loader
    )


def objects(run) -> dict:
    return {
        "model": run.model,
        "optimizers": run.optimizers,
        "trainer": run.trainer,
        "schedulers": run.schedulers,
        "loaders": [run.loader],
    }


def train_epochs(run, epochs: int) -> None:
    for _ in range(epochs):
        for xb, yb in run.loader:
            run.trainer.train_step(
                lambda xb=xb, yb=yb: F.cross_entropy(run.model(xb), yb), batch_size=len(yb)
            )
            for sched in run.schedulers:
                sched.step()
        run.trainer.epoch_avg_loss()


def state_of(run) -> dict:
    """Everything a checkpoint restores, as host values, to compare bit for bit."""
    return {
        "model": dict(run.model.state_dict()),
        "optimizers": [opt.state_dict().to_flat() for opt in run.optimizers],
        "lr": [opt.lr for opt in run.optimizers],
        "schedulers": [s.state_dict() for s in run.schedulers],
        "trainer": run.trainer.state_dict(),
        "loader": run.loader.state_dict(),
        "rng": mg.random.get_state(),
    }


def assert_identical(a, b, where="state"):
    """Equal bit for bit: arrays by dtype, shape and bytes; everything else by ==."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {a.keys()} != {b.keys()}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        b = np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def saved_arrays(path) -> dict:
    """The raw entries of a checkpoint file (meta.json's creation time left out)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(str(arrays.pop("meta.json")))
    meta.pop("created"), meta.pop("checksum")
    return {"arrays": arrays, "meta": meta}


# ---------------------------------------------------------------- the child process


def child(argv):
    """Run in a fresh Python process by `run_child` (see the tests below)."""
    mode, kind, source, out = argv
    run = make_run(kind, seed=123)  # other weights and loader seed: the checkpoint must win
    if mode == "resume":
        checkpoint.load(source, **objects(run))
        train_epochs(run, 2)
    elif mode == "fit":
        fit(run, source, epochs=4)
    checkpoint.save(out, **objects(run))


def run_child(*argv):
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_checkpoint as t; "
    code += "t.child(sys.argv[1:])"
    env = dict(os.environ, MINIGRAD_DEVICE="cpu", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def fit(run, directory, epochs, **kwargs):
    def step_schedulers(record):
        for sched in run.schedulers:
            sched.step()

    return run.trainer.fit(
        run.model,
        run.loader,
        epochs=epochs,
        loss_fn=F.cross_entropy,
        on_epoch_end=step_schedulers,
        checkpoint_dir=directory,
        keep_last=2,
        schedulers=run.schedulers,
        progress=False,
        **kwargs,
    )


# ---------------------------------------------------------------- exact resume


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_resume_in_a_new_process_is_bit_for_bit(kind, tmp_path):
    """2 epochs, save, load into fresh objects in a new process, 2 more epochs == 4 epochs."""
    full = make_run(kind)
    train_epochs(full, 4)
    checkpoint.save(tmp_path / "full.npz", **objects(full))

    first = make_run(kind)
    train_epochs(first, 2)
    checkpoint.save(tmp_path / "half.npz", **objects(first))
    run_child("resume", kind, tmp_path / "half.npz", tmp_path / "resumed.npz")

    expected, got = saved_arrays(tmp_path / "full.npz"), saved_arrays(tmp_path / "resumed.npz")
    assert_identical(expected["arrays"], got["arrays"], "checkpoint")
    assert expected["meta"] == got["meta"]
    assert json.loads(str(got["arrays"]["trainer.epoch"])) == 4


def test_load_restores_every_part_in_process(tmp_path):
    saved = make_run("adam")
    train_epochs(saved, 1)
    before = state_of(saved)
    path = checkpoint.save(tmp_path / "c.npz", **objects(saved), extra={"note": "unit"})
    fresh = make_run("adam", seed=5)
    info = checkpoint.load(path, **objects(fresh))
    assert_identical(before, state_of(fresh))
    assert info["extra"] == {"note": "unit"}
    assert info["format_version"] == checkpoint.FORMAT_VERSION
    assert info["minigrad_version"] == mg.__version__
    assert info["dtype"] == "float32"
    assert info["contents"] == {"model": True, "optimizers": 1, "schedulers": 1,
                                "trainer": True, "loaders": 1, "rng": True}  # fmt: skip


def test_what_the_file_holds(tmp_path):
    run = make_run("adamw")
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", **objects(run), extra={"lr": 0.01})
    with zipfile.ZipFile(path) as zf:  # a plain, uncompressed zip of .npy files
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert all(i.filename.endswith(".npy") for i in zf.infolist())
    arrays = saved_arrays(path)["arrays"]
    assert "model.0.weight" in arrays and arrays["model.0.weight"].dtype == np.float32
    assert str(arrays["optim.1.optimizer_type"]) == "AdamW"
    assert arrays["optim.0.buffer.exp_avg.0"].shape == (16 * 6,)
    assert json.loads(str(arrays["sched.0.type"])) == "StepLR"
    assert json.loads(str(arrays["trainer.epoch"])) == 1
    assert json.loads(str(arrays["rng.minigrad"])) == mg.random.get_state()
    assert all(a.dtype.kind in "biufU" for a in arrays.values())
    assert checkpoint.read_info(path)["extra"] == {"lr": 0.01}


def test_partial_loads_and_options(tmp_path):
    run = make_run("sgd")
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", model=run.model, trainer=run.trainer)
    # optimizers default to the trainer's; one optimizer need not be in a list
    assert checkpoint.read_info(path)["contents"]["optimizers"] == 1
    other = make_run("sgd", seed=4)
    rng_before = mg.random.get_state()
    checkpoint.load(path, model=other.model, rng=False)  # weights only, e.g. for inference
    assert_identical(dict(run.model.state_dict()), dict(other.model.state_dict()))
    assert mg.random.get_state() == rng_before
    assert other.trainer.epoch == 0
    checkpoint.load(path, optimizers=other.optimizers[0])
    assert_identical(run.optimizers[0].state_dict().to_flat(),
                     other.optimizers[0].state_dict().to_flat())  # fmt: skip


def test_a_checkpoint_saved_mid_epoch_resumes_bit_for_bit(tmp_path):
    """Saved after batch 2 of epoch 2 (3 batches an epoch), loaded into new objects: the
    rest of epoch 2 and epoch 3 give exactly what the uninterrupted run gave."""
    full = make_run("adamw")
    train_epochs(full, 3)
    first = make_run("adamw")
    train_epochs(first, 1)
    batches = iter(first.loader)  # 2 batches of epoch 2, then a save in the middle of it
    for _ in range(2):
        xb, yb = next(batches)
        first.trainer.train_step(
            lambda xb=xb, yb=yb: F.cross_entropy(first.model(xb), yb), batch_size=len(yb)
        )
        for sched in first.schedulers:
            sched.step()
    checkpoint.save(tmp_path / "mid.npz", **objects(first))
    resumed = make_run("adamw", seed=5)
    checkpoint.load(tmp_path / "mid.npz", **objects(resumed))
    assert resumed.loader.state_dict()["next_batch"] == 2
    train_epochs(resumed, 2)  # the last batch of epoch 2, then epoch 3
    assert_identical(state_of(full), state_of(resumed))


def test_a_nested_scheduler_round_trips(tmp_path):
    run = make_run("adam")
    run.schedulers = [optim.LinearWarmup(optim.CosineAnnealingLR(run.optimizers[0], T_max=9), 2)]
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", **objects(run))
    other = make_run("adam", seed=1)
    other.schedulers = [optim.LinearWarmup(optim.CosineAnnealingLR(other.optimizers[0], 5), 3)]
    checkpoint.load(path, **objects(other))
    assert_identical(state_of(run), state_of(other))
    assert other.schedulers[0].after.T_max == 9
    plain = make_run("adam", seed=1)
    plain.schedulers = [optim.LinearWarmup(plain.optimizers[0], warmup_steps=2)]
    refused(path, plain, CheckpointError, "'sched.0' does not fit: .*what follows the warmup")


# ---------------------------------------------------------------- never half-written


def first_and_second(tmp_path):
    """A checkpoint of epoch 1 on disk, and the run trained on to epoch 2."""
    run = make_run("adam")
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", **objects(run))
    first = saved_arrays(path)
    train_epochs(run, 1)
    return run, path, first


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_an_exception_mid_save_leaves_the_previous_file(tmp_path, monkeypatch, error):
    run, path, first = first_and_second(tmp_path)
    real_savez = np.savez

    def savez_that_dies(file, *args, **kwargs):
        buffer = io.BytesIO()
        real_savez(buffer, *args, **kwargs)
        file.write(buffer.getvalue()[: buffer.tell() // 2])  # half the zip, then the crash
        raise error

    monkeypatch.setattr(np, "savez", savez_that_dies)
    with pytest.raises(type(error)):
        checkpoint.save(path, **objects(run))
    monkeypatch.undo()
    assert_identical(first, saved_arrays(path))
    checkpoint.load(path, **objects(make_run("adam", seed=9)))
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]  # the temporary file was removed


def test_a_failing_fsync_leaves_the_previous_file(tmp_path, monkeypatch):
    run, path, first = first_and_second(tmp_path)

    def fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="I/O error"):
        checkpoint.save(path, **objects(run))
    monkeypatch.undo()
    assert_identical(first, saved_arrays(path))
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_a_process_killed_mid_save_leaves_the_previous_file(tmp_path):
    run, path, first = first_and_second(tmp_path)
    del run
    code = f"""
import io, os, sys
sys.path.insert(0, {str(TESTS)!r})
import numpy as np
import test_checkpoint as t
from minigrad import checkpoint
run = t.make_run("adam")
t.train_epochs(run, 2)
real_savez = np.savez
def savez_then_die(file, *args, **kwargs):
    buffer = io.BytesIO()
    real_savez(buffer, *args, **kwargs)
    file.write(buffer.getvalue()[:1000])
    file.flush()
    os._exit(3)  # no cleanup, no exception handlers: as if the power went off
np.savez = savez_then_die
checkpoint.save({str(path)!r}, **t.objects(run))
"""
    env = dict(os.environ, MINIGRAD_DEVICE="cpu", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    leftovers = sorted(os.listdir(tmp_path))
    assert "c.npz" in leftovers and len(leftovers) == 2  # a stray .c.npz.*.tmp, and ours
    assert_identical(first, saved_arrays(path))
    checkpoint.load(path, **objects(make_run("adam", seed=9)))


def test_a_value_that_is_not_json_is_refused_before_writing(tmp_path):
    run = make_run("adam")
    train_epochs(run, 1)
    run.trainer.history.append({"epoch": 1, "train_loss": 0.5})
    with pytest.raises(TypeError, match="extra"):
        checkpoint.save(tmp_path / "c.npz", **objects(run), extra={"when": object()})
    with pytest.raises(TypeError, match="extra must be a dict"):
        checkpoint.save(tmp_path / "c.npz", **objects(run), extra=[1, 2])
    run.trainer.history[0]["weights"] = object()  # validate() may return anything
    with pytest.raises(TypeError, match="trainer.history"):
        checkpoint.save(tmp_path / "c.npz", **objects(run))
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="no state_dict"):
        checkpoint.save(tmp_path / "c.npz", model=run.model, schedulers=[object()])


# ---------------------------------------------------------------- bad files change nothing


@pytest.fixture
def good(tmp_path):
    """(path of a good epoch-1 checkpoint, a live run with other values to load it into)."""
    run = make_run("adam")
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "good.npz", **objects(run))
    live = make_run("adam", seed=3)
    train_epochs(live, 2)
    return path, live


def refused(path, live, error=CheckpointError, match=None, **kwargs):
    """load() must raise `error` (matching `match`) and leave every live object as it was."""
    before = state_of(live)
    with pytest.raises(error, match=match) as info:
        checkpoint.load(path, **{**objects(live), **kwargs})
    assert_identical(before, state_of(live))
    return info.value


def rewrite(source, target, change=None, fix_checksum=True, savez=None):
    """Write a copy of a checkpoint through np.savez after change(arrays, meta)."""
    with np.load(source, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(str(arrays.pop("meta.json")))
    if change is not None:
        change(arrays, meta)
    if fix_checksum:
        meta["checksum"] = checkpoint._checksum(arrays, meta)
    arrays["meta.json"] = np.array(json.dumps(meta))
    with open(target, "wb") as f:
        (savez or np.savez)(f, **arrays)
    return target


def test_a_good_file_loads(good):
    path, live = good
    checkpoint.load(path, **objects(live))
    assert live.trainer.epoch == 1


@pytest.mark.parametrize("cut", [0.5, 0.99, 30, 1])
def test_a_truncated_file_is_refused(good, tmp_path, cut):
    path, live = good
    data = path.read_bytes()
    keep = int(len(data) * cut) if isinstance(cut, float) else len(data) - cut
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[:keep])
    refused(bad, live, CorruptCheckpointError, "truncated or corrupt")


def test_an_empty_file_is_refused(good, tmp_path):
    path, live = good
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(tmp_path / "empty.npz", live, CorruptCheckpointError, "empty or truncated")


def member_data_offsets(path):
    """(name, offset of the first byte after its local header, size) for each zip member."""
    out = []
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            start = info.header_offset
            name_len = int.from_bytes(data[start + 26 : start + 28], "little")
            extra_len = int.from_bytes(data[start + 28 : start + 30], "little")
            out.append((info.filename, start + 30 + name_len + extra_len, info.file_size))
    return out


def test_a_flipped_byte_in_any_array_is_refused(good, tmp_path):
    path, live = good
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    for name, offset, size in member_data_offsets(path):
        for position in (offset + size // 2, offset + size - 1):  # the middle, the last byte
            flipped = bytearray(data)
            flipped[position] ^= 0x10
            bad.write_bytes(bytes(flipped))
            error = refused(bad, live, CorruptCheckpointError)
            assert str(bad) in str(error), name


def test_a_flipped_byte_anywhere_is_refused_or_harmless(good, tmp_path):
    """A flip in zip bookkeeping that nothing reads (a timestamp) may pass: then the arrays
    are intact, and the load gives exactly the saved state."""
    path, live = good
    data = path.read_bytes()
    expected = make_run("adam", seed=11)
    checkpoint.load(path, **objects(expected))
    expected = state_of(expected)
    bad = tmp_path / "bad.npz"
    for position in range(0, len(data), max(1, len(data) // 97)):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        target = make_run("adam", seed=12)
        try:
            checkpoint.load(bad, **objects(target))
        except CheckpointError:
            continue
        assert_identical(expected, state_of(target), f"byte {position}")


def test_a_pickle_is_refused_and_never_unpickled(good, tmp_path):
    path, live = good

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    (tmp_path / "evil.npz").write_bytes(pickle.dumps(Boom()))
    refused(tmp_path / "evil.npz", live, CorruptCheckpointError, "pickled Python objects")
    assert not (tmp_path / "owned").exists()


def test_an_object_array_inside_is_refused(good, tmp_path):
    path, live = good

    def objects_inside(arrays, meta):
        arrays["model.0.bias"] = np.array([{"payload": 1}] * 16, dtype=object)

    bad = rewrite(path, tmp_path / "bad.npz", objects_inside, fix_checksum=False,
                  savez=lambda f, **a: np.savez(f, allow_pickle=True, **a))  # fmt: skip
    refused(bad, live, CorruptCheckpointError, "'model.0.bias' holds Python objects")


def npy_with_header(header: str, data: bytes) -> bytes:
    """A .npy file's bytes with a header text of our choosing (padded as NumPy pads it)."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


@pytest.mark.parametrize(
    "header, message",
    [
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (10**12,), }", "truncated or"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", "header says"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (16,\x00 }", "truncated or corrupt"),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (16,), }", "holds Python objects"),
    ],
)
def test_a_forged_npy_header_is_refused_before_reading_data(good, tmp_path, header, message):
    """A valid zip (good CRCs) whose entry lies about its size or type: np.load would
    allocate what the header asks for; the header is checked against the entry first."""
    path, live = good
    bad = tmp_path / "bad.npz"
    with np.load(path) as npz, zipfile.ZipFile(bad, "w") as out:
        for key in npz.files:
            buffer = io.BytesIO()
            np.save(buffer, npz[key])
            raw = buffer.getvalue()
            if key == "model.0.bias":
                raw = npy_with_header(header, raw[-64:])
            out.writestr(key + ".npy", raw)
    refused(bad, live, CorruptCheckpointError, message)


def test_a_plain_zip_is_refused(good, tmp_path):
    path, live = good
    with zipfile.ZipFile(tmp_path / "notes.npz", "w") as zf:
        zf.writestr("notes.txt", "not a checkpoint")
    refused(tmp_path / "notes.npz", live, CorruptCheckpointError, "no 'meta.json' entry")
    np.savez(tmp_path / "arrays.npz", w=np.zeros(3))  # an .npz, but not ours
    refused(tmp_path / "arrays.npz", live, CorruptCheckpointError, "no 'meta.json' entry")
    np.save(tmp_path / "one.npy", np.zeros(3))
    refused(tmp_path / "one.npy", live, CorruptCheckpointError, "single .npy array")


def test_a_compressed_file_is_refused(good, tmp_path):
    path, live = good
    bad = rewrite(path, tmp_path / "bad.npz", savez=np.savez_compressed)
    refused(bad, live, CorruptCheckpointError, "is compressed")


def test_an_edited_array_fails_the_checksum(good, tmp_path):
    path, live = good

    def edit(arrays, meta):
        arrays["model.0.weight"] = arrays["model.0.weight"] + np.float32(1e-3)

    bad = rewrite(path, tmp_path / "bad.npz", edit, fix_checksum=False)
    refused(bad, live, CorruptCheckpointError, "checksum")


def test_a_missing_entry_is_refused(good, tmp_path):
    path, live = good
    bad = rewrite(path, tmp_path / "bad.npz", lambda a, m: a.pop("optim.0.scalar.lr"),
                  fix_checksum=False)  # fmt: skip
    refused(bad, live, CorruptCheckpointError, "'optim.0.scalar.lr' listed in meta.json")


def test_another_format_version_is_refused(good, tmp_path):
    path, live = good
    bad = rewrite(path, tmp_path / "bad.npz", lambda a, m: m.update(format_version=99))
    error = refused(bad, live, CheckpointError, "format version 99")
    assert not isinstance(error, CorruptCheckpointError)  # intact: resume must not skip it
    # Version 1 checksums left meta.json out: such a file cannot prove its meta is intact.
    old = rewrite(path, tmp_path / "old.npz", lambda a, m: m.update(format_version=1))
    refused(old, live, CheckpointError, "format version 1; .*no checksum over meta.json")


@pytest.mark.parametrize("listed", [True, False])
def test_an_unknown_key_is_refused(good, tmp_path, listed):
    path, live = good

    def add(arrays, meta):
        arrays["evil.payload"] = np.zeros(3)
        if listed:
            meta["keys"] = sorted([*meta["keys"], "evil.payload"])

    bad = rewrite(path, tmp_path / "bad.npz", add)
    refused(bad, live, CheckpointError, "unknown key 'evil.payload'")


def test_a_checkpoint_of_another_model_is_refused(good, tmp_path):
    path, _ = good
    wider = make_run("adam", hidden=32)
    error = refused(path, wider, CheckpointError, "'model.0.weight'")
    assert "(32, 6)" in str(error) and "(16, 6)" in str(error)
    deeper = make_run("adam")
    deeper.model.append(nn.Linear(3, 3))
    deeper.optimizers = [optim.SGD(deeper.model[4].parameters(), lr=0.1)]
    refused(path, deeper, CheckpointError, "'model.4.weight' is missing", optimizers=[],
            schedulers=[], trainer=None)  # fmt: skip
    wide64 = make_run("adam", dtype=np.float64)
    refused(path, wide64, CheckpointError, "expects float64 of shape \\(16, 6\\)")


def test_an_optimizer_that_does_not_match_is_refused(good):
    path, _ = good
    sgd = make_run("sgd")
    refused(path, sgd, CheckpointError, "'optim.0.optimizer_type' is Adam, but optimizers\\[0\\]")
    plain = make_run("adam_plain")  # no amsgrad: no max_exp_avg_sq buffers
    refused(path, plain, CheckpointError, "unexpected key 'optim.0.buffer.max_exp_avg_sq.0'")
    two = make_run("adamw")
    refused(path, two, CheckpointError, "holds 1 optimizers, 2 were passed")


def test_a_bad_scheduler_part_changes_nothing_else(good):
    path, _ = good
    live = make_run("adam", seed=3, sched="exponential")  # the file holds a StepLR state
    train_epochs(live, 1)
    refused(path, live, CheckpointError, "'sched.0' does not fit: .*StepLR")


def test_a_part_that_is_not_in_the_file_is_refused(good, tmp_path):
    path, live = good
    only_model = checkpoint.save(tmp_path / "model.npz", model=make_run("adam").model)
    refused(only_model, live, CheckpointError, "a trainer was passed, but the checkpoint holds")


def test_a_value_refused_by_an_optimizer_changes_nothing(tmp_path):
    """Values only the optimizer itself checks (lr < 0) are refused in the check step,
    before any part is applied: there is nothing to put back."""
    run = make_run("adamw")
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", **objects(run))

    def negative_lr(arrays, meta):
        arrays["optim.1.scalar.lr"] = np.array(-1.0)

    bad = rewrite(path, tmp_path / "bad.npz", negative_lr)
    live = make_run("adamw", seed=2)
    train_epochs(live, 2)
    refused(bad, live, CheckpointError, "'optim.1' does not fit: lr must be >= 0")


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        checkpoint.load(tmp_path / "nope.npz")


# ---------------------------------------------------------------- fit(checkpoint_dir, resume)


def test_fit_saves_each_epoch_and_keeps_the_last(tmp_path):
    run = make_run("adam")
    history = fit(run, tmp_path, epochs=3)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    files = checkpoint.epoch_checkpoints(tmp_path)
    assert [f.name for f in files] == ["epoch-000002.npz", "epoch-000003.npz"]
    info = checkpoint.read_info(files[-1])
    assert info["extra"] == {"epoch": 3} and info["contents"]["loaders"] == 1
    assert sorted(os.listdir(tmp_path)) == [f.name for f in files]  # no temporary files


def test_fit_resumes_after_a_crash_in_a_new_process_bit_for_bit(tmp_path):
    full = make_run("adamw")
    fit(full, tmp_path / "full", epochs=4)
    checkpoint.save(tmp_path / "full.npz", **objects(full))

    crashed = make_run("adamw")
    steps = []

    def loss_that_crashes(logits, y):
        steps.append(1)
        if len(steps) == 8:  # in epoch 3 (3 batches an epoch)
            raise RuntimeError("the machine went down")
        return F.cross_entropy(logits, y)

    with pytest.raises(RuntimeError, match="went down"):
        crashed.trainer.fit(crashed.model, crashed.loader, epochs=4, loss_fn=loss_that_crashes,
                            on_epoch_end=lambda r: [s.step() for s in crashed.schedulers],
                            checkpoint_dir=tmp_path / "run", keep_last=2,
                            schedulers=crashed.schedulers, progress=False)  # fmt: skip
    names = [f.name for f in checkpoint.epoch_checkpoints(tmp_path / "run")]
    assert names == ["epoch-000001.npz", "epoch-000002.npz"]

    run_child("fit", "adamw", tmp_path / "run", tmp_path / "resumed.npz")
    expected, got = saved_arrays(tmp_path / "full.npz"), saved_arrays(tmp_path / "resumed.npz")
    assert_identical(expected["arrays"], got["arrays"], "checkpoint")
    history = json.loads(str(got["arrays"]["trainer.history"]))
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]


def test_fit_run_again_after_it_finished_trains_no_more(tmp_path):
    run = make_run("sgd")
    fit(run, tmp_path, epochs=2)
    done = state_of(run)
    again = make_run("sgd", seed=8)
    history = fit(again, tmp_path, epochs=2)
    assert len(history) == 2
    assert_identical(done, state_of(again))
    fresh = make_run("sgd", seed=8)
    fit(fresh, tmp_path, epochs=1, resume=False)  # starts over, saving epoch 1 again
    assert fresh.trainer.epoch == 1


def test_fit_skips_a_damaged_newest_checkpoint(tmp_path):
    run = make_run("adam")
    fit(run, tmp_path, epochs=2)
    newest = checkpoint.epoch_checkpoints(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    resumed = make_run("adam", seed=6)
    with pytest.warns(RuntimeWarning, match="skipping a damaged checkpoint"):
        checkpoint.load_latest(tmp_path, **objects(resumed))
    assert resumed.trainer.epoch == 1


def test_fit_refuses_to_resume_another_model(tmp_path):
    fit(make_run("adam"), tmp_path, epochs=1)
    other = make_run("adam", hidden=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not skipped as damaged: raised
        with pytest.raises(CheckpointError, match="'model.0.weight'"):
            fit(other, tmp_path, epochs=2)
    assert other.trainer.epoch == 0
    assert len(checkpoint.epoch_checkpoints(tmp_path)) == 1


def test_fit_checkpoint_arguments_are_checked(tmp_path):
    run = make_run("adam")
    with pytest.raises(ValueError, match="keep_last"):
        run.trainer.fit(run.model, run.loader, epochs=1, loss_fn=F.cross_entropy,
                        checkpoint_dir=tmp_path, keep_last=0)  # fmt: skip

    with pytest.raises(TypeError, match="schedulers\\[0\\]"):
        run.trainer.fit(run.model, run.loader, epochs=1, loss_fn=F.cross_entropy,
                        checkpoint_dir=tmp_path, schedulers=[run.optimizers[0].lr])  # fmt: skip

    def step(xb, yb):
        return F.cross_entropy(run.model(xb), yb)

    with pytest.raises(TypeError, match="state_dict"):
        run.trainer.fit(step, run.loader, epochs=1, checkpoint_dir=tmp_path)
    assert run.trainer.epoch == 0


def imports_of(module, top_level_only=False):
    """(module, names) of every import: `from .. import backend` is ("..", ["backend"]),
    `import copy` is ("copy", [])."""
    tree = ast.parse(inspect.getsource(module))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            found.append(("." * node.level + (node.module or ""), [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def package_imports(package):
    """imports_of() over every module of a package (minigrad.checkpoint is one)."""
    names = [f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)]
    modules = [package, *map(importlib.import_module, names)]
    return [found for module in modules for found in imports_of(module)]


def test_the_floors_point_down():
    """checkpoint/ (floor 6) knows the objects only by their state_dict() methods: from the
    rest of minigrad its files import just __version__, backend and random. trainer.py
    (floor 5) imports it only when fit() is asked to checkpoint."""
    from minigrad.optim import trainer as trainer_module

    outside = {
        (m, name)
        for m, names in package_imports(checkpoint)
        if m.startswith(("..", "minigrad"))
        for name in names
    }
    assert outside == {("..", "__version__"), ("..", "backend"), ("..", "random")}, outside
    top = imports_of(trainer_module, top_level_only=True)
    assert not any("checkpoint" in m or "checkpoint" in names for m, names in top), top
    assert ("..", ["checkpoint"]) in imports_of(trainer_module)


# ---------------------------------------------------------------- GPU <-> CPU


@pytest.mark.gpu
@pytest.mark.parametrize("source, target", [("gpu", "cpu"), ("cpu", "gpu")])
def test_a_checkpoint_moves_between_devices(source, target, tmp_path):
    run = make_run("adam", device=source)
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", **objects(run))
    saved = state_of(run)
    other = make_run("adam", seed=4, device=target)
    checkpoint.load(path, **objects(other))
    assert_identical(saved, state_of(other))
    assert other.model.device == target
    assert all(backend.device_of(b) == target for b in other.optimizers[0].state["exp_avg"])
    # Both continue from the same random stream (dropout draws from the global generator,
    # which the first run would otherwise move on); the devices round differently, so
    # compare closely, not bit for bit.
    stream = mg.random.get_state()
    train_epochs(run, 1)
    mg.random.set_state(stream)
    train_epochs(other, 1)
    for name, value in run.model.state_dict().items():
        np.testing.assert_allclose(other.model.state_dict()[name], value, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- safetensors


def test_export_safetensors_names_and_values(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors import safe_open
    from safetensors.numpy import load_file

    run = make_run("adam")
    train_epochs(run, 1)
    path = checkpoint.export_safetensors(tmp_path / "mlp.safetensors", run.model)
    tensors = load_file(path)
    assert_identical(dict(run.model.state_dict()), {k: tensors[k] for k in run.model.state_dict()})
    assert sorted(tensors) == ["0.bias", "0.weight", "3.bias", "3.weight"]
    with safe_open(path, framework="numpy") as f:
        assert f.metadata()["format"] == "pt"


def test_exported_weights_load_into_pytorch(tmp_path):
    pytest.importorskip("safetensors")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    run = make_run("adam")
    train_epochs(run, 1)
    path = checkpoint.export_safetensors(tmp_path / "mlp.safetensors", run.model)
    twin = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.25),
                               torch.nn.Linear(16, 3))  # fmt: skip
    twin.load_state_dict(load_file(path))
    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    run.model.eval()
    twin.eval()
    ours = run.model(mg.tensor(x)).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_export_safetensors_without_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        checkpoint.export_safetensors(tmp_path / "m.safetensors", make_run().model)
    assert os.listdir(tmp_path) == []
