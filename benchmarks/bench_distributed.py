"""Data-parallel scaling: the training step of a wide MLP on 1 GPU and on N GPUs (NCCL).

    PYTHONPATH=. python3 benchmarks/bench_distributed.py [--gpus 2] [--out results.json]
    PYTHONPATH=. python3 benchmarks/bench_distributed.py --backend cpu --width 64 --batch 32

Weak scaling, as data-parallel training is used: every GPU keeps its batch (--batch per GPU),
so N GPUs process N times the examples per step. One step = forward, cross-entropy, backward,
all_reduce of the gradients (bucketed, NCCL), AdamW step. The model is compute-heavy on
purpose (depth x width^2 weights: 4 x 4096^2 = 67M by default), so the all-reduce of its
gradients (268 MB in float32) is small against the matrix products, as in real training.

Throughput = N x batch / step time; the ratio against 1 GPU, measured in the same run, is
the scaling (ideal N). Each configuration runs as its own launch of this script (--worker),
timed with CUDA events over runs of back-to-back steps after a warm-up (median per step).
The 2-GPU run also times the all-reduce alone. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import minigrad as mg  # noqa: E402
import minigrad.distributed as dist  # noqa: E402
from minigrad import nn, optim  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402


def wide_mlp(width: int, depth: int, classes: int) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def worker(args) -> None:
    """One rank: build, broadcast, warm up, time; rank 0 writes the numbers."""
    group = dist.init_process_group(backend=args.backend)
    device = group.device
    classes = 1000 if args.width >= 1000 else 10
    mg.manual_seed(0)
    model = wide_mlp(args.width, args.depth, classes).to(device)
    dist.broadcast_parameters(model)
    opt = optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(group.rank)  # each rank its own batch
    x = mg.tensor(rng.standard_normal((args.batch, args.width)).astype(np.float32), device=device)
    y = mg.tensor(rng.integers(0, classes, size=args.batch), device=device)

    def step():
        grads = F.cross_entropy(model(x), y).backward()
        dist.all_reduce(grads, model)
        opt.step(grads)

    for _ in range(3):
        step()
    step_time = median_seconds(step, args.steps, args.runs, device)
    allreduce_time = None
    if group.world_size > 1:
        grads = F.cross_entropy(model(x), y).backward()  # a full store (step() drains its own)
        allreduce_time = median_seconds(lambda: dist.all_reduce(grads, model), 5, 5, device)
    if group.rank == 0:
        params = model.num_parameters()
        plan = next(iter(group._plans.values()), [])
        report = {
            "world_size": group.world_size,
            "seconds_per_step": step_time,
            "allreduce_seconds": allreduce_time,
            "parameters": params,
            "gradient_bytes": params * 4,
            "buckets": len(plan),
        }
        Path(args.report).write_text(json.dumps(report))
    dist.destroy_process_group()


def median_seconds(fn, steps: int, runs: int, device: str) -> float:
    """Median over `runs` of the mean seconds per call of `steps` back-to-back calls."""
    times = []
    if device == "gpu":
        cupy = mg.backend.cupy_module()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        for _ in range(runs):
            start.record()
            for _ in range(steps):
                fn()
            end.record()
            end.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3 / steps)
    else:
        for _ in range(runs):
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times.append((time.perf_counter() - t0) / steps)
    return float(np.median(times))


def launch(nproc: int, args, report: Path) -> dict:
    command = [sys.executable, "-m", "minigrad.distributed.run", "--nproc-per-node", str(nproc)]
    command += [__file__, "--worker", "--report", str(report)]
    for name in ("backend", "width", "depth", "batch", "steps", "runs"):
        command += [f"--{name}", str(getattr(args, name))]
    environ = dict(os.environ, PYTHONPATH=str(ROOT))  # NCCL_* settings pass through
    subprocess.run(command, env=environ, check=True)
    return json.loads(report.read_text())


def device_name(backend: str) -> str:
    if backend == "nccl":
        cupy = mg.backend.cupy_module()
        return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=2, help="N: compare 1 and N processes")
    parser.add_argument("--backend", default="nccl", choices=["nccl", "cpu"])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4096, help="examples per GPU per step")
    parser.add_argument("--steps", type=int, default=5, help="back-to-back steps per timed run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/bench_distributed.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        results = [launch(n, args, Path(tmp) / f"{n}.json") for n in sorted({1, args.gpus})]
    base = results[0]
    print(f"\nwide MLP {args.depth} x {args.width}^2 ({base['parameters']:,} parameters,")
    print(f"{base['gradient_bytes'] / 2**20:.0f} MiB of float32 gradients), batch {args.batch}")
    print(f"per process, backend {args.backend}, {device_name(args.backend)}\n")
    print(f"{'processes':>9} {'step (ms)':>10} {'examples/s':>11} {'speed-up':>9} "
          f"{'all-reduce (ms)':>16} {'buckets':>8}")  # fmt: skip
    rows = []
    for r in results:
        n, seconds = r["world_size"], r["seconds_per_step"]
        throughput = n * args.batch / seconds
        speedup = throughput / (args.batch / base["seconds_per_step"])
        reduce_ms = f"{r['allreduce_seconds'] * 1e3:.2f}" if r["allreduce_seconds"] else "-"
        print(f"{n:>9} {seconds * 1e3:>10.2f} {throughput:>11.0f} {speedup:>8.2f}x "
              f"{reduce_ms:>16} {r['buckets'] if n > 1 else '-':>8}")  # fmt: skip
        rows.append(dict(r, examples_per_second=throughput, speedup=speedup))
    print(f"\ntarget: >= 1.8x the examples/s of one GPU on 2 GPUs (ideal: {args.gpus}x)")
    result = {
        "benchmark": "bench_distributed",
        "device": device_name(args.backend),
        "backend": args.backend,
        "model": {"width": args.width, "depth": args.depth},
        "batch_per_process": args.batch,
        "python": platform.python_version(),
        "runs": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
