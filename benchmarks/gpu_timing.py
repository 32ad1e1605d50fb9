"""Timing on the GPU, shared by bench_optim.py and bench_train.py."""

from __future__ import annotations

import numpy as np

import minigrad as mg


def time_interleaved(steps: dict, steps_per_run: int, runs: int, warmup: int = 3) -> dict:
    """Median seconds per step of each contender in `steps` ({name: step function}).

    Each run times `steps_per_run` back-to-back steps with CUDA events, so whatever limits
    throughput (device work or host-side Python) shows up. The contenders take turns, run by
    run, so that drift of the machine (clocks, other load) touches them all alike.
    """
    cupy = mg.backend.cupy_module()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    for step in steps.values():
        for _ in range(warmup):
            step()
    cupy.cuda.get_current_stream().synchronize()
    times = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            start.record()
            for _ in range(steps_per_run):
                step()
            end.record()
            end.synchronize()
            times[name].append(cupy.cuda.get_elapsed_time(start, end) / 1e3 / steps_per_run)
    return {name: float(np.median(t)) for name, t in times.items()}
