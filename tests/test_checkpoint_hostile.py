"""Checkpoints built to hurt: zip bombs, edited meta.json, values no run writes, JSON that
overflows the parser, and what killed saves leave behind. Every refusal is a clear
CheckpointError (CorruptCheckpointError for a malformed file), never another exception, and
no live object changes."""

import fcntl
import io
import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from test_checkpoint import (
    REPO,
    TESTS,
    good,
    make_run,
    objects,
    package_imports,
    refused,
    rewrite,
    train_epochs,
)

from minigrad import checkpoint
from minigrad.checkpoint import CheckpointError, CorruptCheckpointError

__all__ = ["good"]  # the fixture, used by name

MB = 1 << 20


# ---------------------------------------------------------------- memory stays bounded


def overlapping_zip(path, members: int, payload: np.ndarray) -> None:
    """A zip whose `members` entries all share one stored .npy payload: each local header's
    extra field runs up to the common data, so the file is about the payload's size while
    the entries add up to `members` times it (an "overlapping files" zip bomb, stored)."""
    npy = b"\x93NUMPY\x01\x00"
    header = (
        f"{{'descr': '{payload.dtype.str}', 'fortran_order': False, 'shape': {payload.shape}, }}"
    )
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = npy + struct.pack("<H", len(header)) + header.encode() + payload.tobytes()
    crc = zlib.crc32(data)
    names = [f"model.w{i}.npy".encode() for i in range(members)]
    meta = {
        "format": "minigrad-checkpoint",
        "format_version": checkpoint.FORMAT_VERSION,
        "minigrad_version": "0",
        "created": "2026-01-01T00:00:00+00:00",
        "dtype": "float32",
        "extra": {},
        "contents": {
            "model": True,
            "optimizers": 0,
            "schedulers": 0,
            "trainer": False,
            "loaders": 0,
            "rng": False,
        },  # fmt: skip
        "keys": sorted(name.decode()[: -len(".npy")] for name in names),
        "json_keys": [],
        "checksum": "sha256:0",
    }
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array(json.dumps(meta)))
    meta_data = buffer.getvalue()

    def local(name, size, crc, extra_length):
        return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, size, size,
                           len(name), extra_length) + name  # fmt: skip

    out = bytearray()
    offsets = []
    offsets.append(len(out))
    out += local(b"meta.json.npy", len(meta_data), zlib.crc32(meta_data), 0) + meta_data
    headers_size = sum(30 + len(n) for n in names)
    data_start = len(out) + headers_size
    for name in names:
        offsets.append(len(out))
        extra = data_start - (len(out) + 30 + len(name))
        out += local(name, len(data), crc, extra)
    assert len(out) == data_start
    out += data
    central = bytearray()
    entries = [(b"meta.json.npy", len(meta_data), zlib.crc32(meta_data))]
    entries += [(n, len(data), crc) for n in names]
    for (name, size, crc_i), offset in zip(entries, offsets):
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc_i, size,
                               size, len(name), 0, 0, 0, 0, 0, offset) + name  # fmt: skip
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(out), 0)  # fmt: skip
    path.write_bytes(bytes(out + central + end))


def peak_memory(call) -> int:
    """The peak of Python and NumPy allocations while call() runs, in bytes."""
    tracemalloc.start()
    try:
        call()
    except CheckpointError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_overlapping_zip_members_are_refused_without_reading_them(good, tmp_path):
    """A 1 MB file of 100 entries sharing their data must not cost 100 MB to refuse."""
    path, live = good
    bomb = tmp_path / "bomb.npz"
    overlapping_zip(bomb, members=100, payload=np.ones(MB // 4, np.float32))
    assert bomb.stat().st_size < 2 * MB
    with pytest.raises(CorruptCheckpointError, match="overlap"):
        checkpoint.read_info(bomb)
    refused(bomb, live, CorruptCheckpointError, "overlap")
    assert peak_memory(lambda: checkpoint.read_info(bomb)) < 8 * MB
    assert peak_memory(lambda: checkpoint.load(bomb, **objects(live))) < 8 * MB


def test_a_large_entry_is_hashed_in_blocks_and_refused_by_its_header(good, tmp_path):
    """A checksum-valid file whose weight is 32 MB where the model's is 384 bytes: read_info
    reads it a block at a time, load refuses it by its header before reading its data."""
    path, live = good

    def huge_weight(arrays, meta):
        arrays["model.0.weight"] = np.zeros((8 * MB // 6, 6), np.float32)

    big = rewrite(path, tmp_path / "big.npz", huge_weight)
    assert peak_memory(lambda: checkpoint.read_info(big)) < 8 * MB
    refused(big, live, CheckpointError, "'model.0.weight': the model expects float32 of shape")
    assert peak_memory(lambda: checkpoint.load(big, **objects(live))) < 8 * MB


def test_a_state_entry_larger_than_the_cap_is_refused(good, tmp_path, monkeypatch):
    """Entries not checked against a live array (JSON state) are read only up to a cap."""
    path, live = good
    monkeypatch.setattr(checkpoint.reader, "_MAX_SMALL_ENTRY", 64 * 1024)

    def long_history(arrays, meta):
        history = [{"epoch": i, "train_loss": 0.5} for i in range(1000)]
        arrays["trainer.history"] = np.array(json.dumps(history))

    bad = rewrite(path, tmp_path / "bad.npz", long_history)
    refused(bad, live, CorruptCheckpointError, "'trainer.history' holds .* bytes")


# ---------------------------------------------------------------- meta.json is checksummed


@pytest.mark.parametrize(
    "field, value",
    [
        ("extra", {"note": "edited"}),
        ("created", "1999-01-01T00:00:00+00:00"),
        ("dtype", "float64"),
        ("minigrad_version", "9.9"),
    ],  # fmt: skip
)
def test_an_edited_meta_json_fails_the_checksum(good, tmp_path, field, value):
    path, live = good
    bad = rewrite(path, tmp_path / "bad.npz", lambda a, m: m.update({field: value}),
                  fix_checksum=False)  # fmt: skip
    refused(bad, live, CorruptCheckpointError, "checksum")
    with pytest.raises(CorruptCheckpointError, match="checksum"):
        checkpoint.read_info(bad)


def test_an_unknown_meta_field_is_refused(good, tmp_path):
    path, live = good
    bad = rewrite(path, tmp_path / "bad.npz", lambda a, m: m.update(payload=[1, 2]))
    refused(bad, live, CorruptCheckpointError, "unknown field 'payload'")


# ---------------------------------------------------------------- values no run writes


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["model.0.weight", "model.3.bias", "optim.0.buffer.exp_avg.1"])
def test_non_finite_weights_and_buffers_are_refused(good, tmp_path, key, value):
    path, live = good

    def poison(arrays, meta):
        arrays[key] = arrays[key].copy()
        arrays[key].reshape(-1)[1] = value

    bad = rewrite(path, tmp_path / "bad.npz", poison)
    refused(bad, live, CorruptCheckpointError, f"'{key}' holds 1 NaN or infinite")


@pytest.mark.parametrize("key", ["optim.0.buffer.exp_avg_sq.0", "optim.0.buffer.max_exp_avg_sq.2"])
def test_a_negative_second_moment_is_refused(good, tmp_path, key):
    path, live = good

    def negative(arrays, meta):
        arrays[key] = arrays[key] - np.float32(1.0)

    bad = rewrite(path, tmp_path / "bad.npz", negative)
    refused(bad, live, CorruptCheckpointError, f"'{key}' has negative values")


def set_json(key, value=None, text=None):
    """A change for rewrite(): `key` holds json.dumps(value), or `text` as it is."""

    def change(arrays, meta):
        arrays[key] = np.array(json.dumps(value) if text is None else text)

    return change


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("loader.0.epoch", -1, "'loader.0' does not fit: .*epoch"),
        ("loader.0.epoch", "7", "'loader.0' does not fit: .*epoch"),
        ("loader.0.stray", 1, "'loader.0' does not fit: .*unexpected key 'stray'"),
        ("trainer.stray", 1, "'trainer' does not fit: .*unexpected key 'stray'"),
    ],
)
def test_bad_or_stray_state_in_a_checksum_valid_file_is_refused(good, tmp_path, key, value,
                                                                 message):  # fmt: skip
    path, live = good

    def change(arrays, meta):
        set_json(key, value)(arrays, meta)
        meta["keys"] = sorted(set(meta["keys"]) | {key})
        meta["json_keys"] = sorted(set(meta["json_keys"]) | {key})

    bad = rewrite(path, tmp_path / "bad.npz", change)
    refused(bad, live, CheckpointError, message)


# ---------------------------------------------------------------- parsers pushed too far


def deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("key", ["trainer.history", "loader.0.seed", "rng.minigrad"])
def test_json_nested_too_deep_is_corrupt_not_a_recursion_error(good, tmp_path, key):
    path, live = good
    bad = rewrite(path, tmp_path / "bad.npz", set_json(key, text=deep(100_000)))
    refused(bad, live, CorruptCheckpointError, f"'{key}' does not hold valid JSON.*Recursion")


def test_meta_json_nested_too_deep_is_corrupt(good, tmp_path):
    path, live = good

    def deep_extra(arrays, meta):
        meta["extra"] = {"x": "PLACEHOLDER"}

    bad = rewrite(path, tmp_path / "bad.npz", deep_extra)
    with np.load(bad) as npz:
        arrays = {key: npz[key] for key in npz.files}
    text = str(arrays["meta.json"]).replace('"PLACEHOLDER"', deep(100_000))
    arrays["meta.json"] = np.array(text)
    np.savez(bad, **arrays)
    with pytest.raises(CorruptCheckpointError, match="'meta.json' is not valid JSON"):
        checkpoint.read_info(bad)
    refused(bad, live, CorruptCheckpointError, "'meta.json' is not valid JSON")


@pytest.mark.parametrize("digits", [80, 5000])
def test_huge_integers_in_the_generator_state_are_corrupt(good, tmp_path, digits):
    path, live = good

    def huge(arrays, meta):
        state = json.loads(str(arrays["rng.minigrad"]))
        state["state"]["state"] = "HUGE"
        text = json.dumps(state).replace('"HUGE"', "9" * digits)
        arrays["rng.minigrad"] = np.array(text)

    bad = rewrite(path, tmp_path / "bad.npz", huge)
    refused(bad, live, CorruptCheckpointError, "'rng.minigrad'")


# ---------------------------------------------------------------- files that are no checkpoint


def test_a_text_file_is_not_called_a_pickle(good, tmp_path):
    path, live = good
    text = tmp_path / "notes.npz"
    text.write_text("epoch 3: loss 0.12\n")
    error = refused(text, live, CorruptCheckpointError, "not a zip of arrays.*looks like text")
    assert "pickle" not in str(error)


# ---------------------------------------------------------------- saving


def test_a_save_into_a_missing_folder_names_the_folder(tmp_path):
    run = make_run("adam")
    target = tmp_path / "runs" / "c.npz"
    with pytest.raises(FileNotFoundError, match="the folder .*runs does not exist") as info:
        checkpoint.save(target, **objects(run))
    assert ".tmp" not in str(info.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        checkpoint.save(tmp_path / "file" / "c.npz", **objects(run))


def age(path, seconds=3600):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    """A save killed mid-write leaves .c.npz.<random>.tmp; the next save to c.npz removes it
    once it is stale (older than a minute, and no live process writing it)."""
    run = make_run("adam")
    train_epochs(run, 1)
    path = checkpoint.save(tmp_path / "c.npz", **objects(run))
    code = f"""
import os, sys
sys.path.insert(0, {str(TESTS)!r})
import numpy as np
import test_checkpoint as t
from minigrad import checkpoint
def savez_then_die(file, *args, **kwargs):
    file.write(b"PK" * 1000)
    file.flush()
    os._exit(3)
np.savez = savez_then_die
checkpoint.save({str(path)!r}, **t.objects(t.make_run("adam")))
"""
    env = dict(os.environ, MINIGRAD_DEVICE="cpu", PYTHONPATH=str(REPO))
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 3, done.stderr.decode()[-2000:]
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(leftovers) == 3
    checkpoint.save(path, **objects(run))  # too young: a save might still be writing them
    assert sorted(os.listdir(tmp_path)) == sorted(["c.npz", *leftovers])
    for name in leftovers:
        age(tmp_path / name)
    checkpoint.save(path, **objects(run))
    assert os.listdir(tmp_path) == ["c.npz"]


def test_stale_temporary_cleanup_touches_only_ours(tmp_path):
    run = make_run("adam")
    path = tmp_path / "c.npz"
    others = [
        "c.npz.abcdefgh.tmp",  # not hidden: not a name our saves use
        ".c.npz.abc.tmp",  # not 8 random characters
        ".d.npz.abcdefgh.tmp",  # another target's
        ".c.npz.x.abcdefgh.tmp",  # the temporary of a target named c.npz.x
        "notes.txt",
    ]
    for name in others:
        (tmp_path / name).write_text("keep me")
        age(tmp_path / name)
    (tmp_path / ".c.npz.folder00.tmp").mkdir()  # not a regular file
    age(tmp_path / ".c.npz.folder00.tmp")
    writing = tmp_path / ".c.npz.writing0.tmp"  # a save in progress in another process
    writing.write_bytes(b"PK")
    age(writing)
    with open(writing, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        stale = tmp_path / ".c.npz.k1lled_0.tmp"
        stale.write_bytes(b"PK")
        age(stale)
        checkpoint.save(path, **objects(run))
    assert sorted(os.listdir(tmp_path)) == sorted(
        [*others, "c.npz", ".c.npz.folder00.tmp", ".c.npz.writing0.tmp"]
    )


def test_save_epoch_sweeps_what_killed_saves_of_earlier_epochs_left(tmp_path):
    """A save killed while writing epoch 5 leaves a temporary of epoch-000005.npz, a name
    the run never saves again once it has moved on: the next epoch's save removes it."""
    run = make_run("adam")
    left = [".epoch-000005.npz.abcdefgh.tmp", ".epoch-000002.npz.zz_99xyz.tmp"]
    kept = [".notes.npz.abcdefgh.tmp", ".epoch-000005.npz.abcdefgh.tmp.bak", "epoch-x.npz"]
    for name in left + kept:
        (tmp_path / name).write_bytes(b"PK")
        age(tmp_path / name)
    young = ".epoch-000004.npz.justnow_.tmp"  # a save that may still be starting
    (tmp_path / young).write_bytes(b"PK")
    checkpoint.save_epoch(tmp_path, 6, **objects(run))
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, young, "epoch-000006.npz"])


# ---------------------------------------------------------------- check every part, then apply


def test_load_checks_then_applies_without_copies_or_load_state_dict(good, monkeypatch):
    """mg.load runs check_state_dict on every part, then apply_state_dict on every part:
    no trial loads on copies (minigrad/checkpoint/ does not even import copy), no load_state_dict
    (so nothing to roll back)."""
    path, live = good
    calls = []

    def forbidden(name):
        def call(*args, **kwargs):
            raise AssertionError(f"mg.load called {name}")

        return call

    assert "copy" not in {name for module, names in package_imports(checkpoint) for name in
                          [module, *names]}  # fmt: skip
    parts = [live.model, *live.optimizers, *live.schedulers, live.trainer, live.loader]
    for obj in parts:
        monkeypatch.setattr(obj, "load_state_dict", forbidden("load_state_dict"), raising=False)
        for step in ("check_state_dict", "apply_state_dict"):
            real = getattr(obj, step)

            def spy(state, real=real, step=step, obj=obj):
                calls.append((step, type(obj).__name__))
                return real(state)

            monkeypatch.setattr(obj, step, spy)
    checkpoint.load(path, **objects(live))
    steps = [step for step, _ in calls]
    n = len(parts)
    assert steps == ["check_state_dict"] * n + ["apply_state_dict"] * n, calls


def test_load_needs_the_state_protocol(good):
    path, live = good

    class OldStyleLoader:
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            raise AssertionError("never called")

    refused_objects = {**objects(live), "loaders": [OldStyleLoader()]}
    before = checkpoint.read_info(path)
    with pytest.raises(TypeError, match=r"loaders\[0\] is a OldStyleLoader, which has no "
                       "check_state_dict and no apply_state_dict"):  # fmt: skip
        checkpoint.load(path, **refused_objects)
    assert checkpoint.read_info(path) == before
