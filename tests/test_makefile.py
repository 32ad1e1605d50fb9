"""The Makefile's promises: `make gpu-test` never passes with nothing run, and `make bench`
writes its results outside the tracked files unless asked to."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad as mg

REPO = Path(__file__).resolve().parent.parent
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args):
    return subprocess.run(["make", "-s", *args, f"PYTHON={sys.executable}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@needs_make
@pytest.mark.skipif(mg.gpu_available(), reason="here the GPU tests really run")
def test_make_gpu_test_without_a_gpu_fails_saying_nothing_ran():
    done = make("gpu-test")
    assert done.returncode != 0
    assert "make gpu-test: nothing ran" in done.stderr
    assert "gpu_available() is False" in done.stderr


@needs_make
def test_make_bench_writes_outside_the_tracked_files():
    """make bench leaves the tracked results alone unless asked (bench_cpu.py's default is
    runs/, which git ignores; --save-results writes benchmarks/results/)."""
    planned = make("-n", "bench").stdout
    assert "benchmarks/bench_cpu.py" in planned and "--out" not in planned
    assert "--save-results" not in planned
    assert "runs/" in (REPO / ".gitignore").read_text().split()
    asked = make("-n", "bench", "ARGS=--save-results").stdout
    assert "benchmarks/bench_cpu.py --save-results" in asked
