"""13 - Data-parallel training: the same model on 1 and on N processes (GPUs or CPU workers).

When one GPU is too slow, N GPUs can share the work. Data parallelism is the simplest way:

  1. every process (a "rank") holds a full copy of the model, with the same weights
     (dist.broadcast_parameters copies rank 0's weights to everyone);
  2. every rank reads its own shard of each epoch (dist.DistributedSampler: the same shuffled
     order on every rank, cut into N disjoint pieces);
  3. every rank computes the gradients of its batch; an all-reduce averages them, so every
     rank now holds the gradient of all N batches together (dist.all_reduce(grads));
  4. every rank applies the same optimizer step to the same weights: they stay identical.

With a mean loss and equal batches, step 3 gives exactly the gradient one process would get
from one batch N times as large, so N ranks with batch B train like one process with batch
N*B, and an epoch takes 1/N of the steps. On GPUs the all-reduce runs through NCCL; on the
CPU through TCP sockets (backend="cpu", slower, for learning and testing).

This script runs itself twice through minigrad's launcher, with 1 process and with N, and
prints the time per epoch of each:

    python examples/13_data_parallel.py                        # 1 and 2 processes
    python examples/13_data_parallel.py --nproc 2 --backend nccl   # on two GPUs

The training code is `train()` below; the launcher starts it once per rank.

Measured on two H200s (--nproc 2 --epochs 3): 0.35 s per epoch on one GPU and on two. This
small model's step is bound by Python launching kernels, and each all-reduce makes the host
wait, so the halved number of steps costs twice as long each; a compute-heavy model scales
(benchmarks/bench_distributed.py: 1.90x on two GPUs). See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import minigrad as mg
import minigrad.distributed as dist
from minigrad import nn, optim
from minigrad.nn import functional as F


def make_data(examples: int, features: int = 64, classes: int = 10):
    """A synthetic task: labels from a fixed random two-layer "teacher" network."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((examples, features)).astype(np.float32)
    hidden = np.tanh(X @ rng.standard_normal((features, 64)))
    y = np.argmax(hidden @ rng.standard_normal((64, classes)), axis=1).astype(np.int64)
    split = int(0.8 * examples)
    return X[:split], y[:split], X[split:], y[split:]


def train(args) -> None:
    """What every rank runs (started by the launcher, which sets RANK, WORLD_SIZE, ...)."""
    group = dist.init_process_group(backend=args.backend)
    device = group.device  # "gpu": this rank's own GPU, number LOCAL_RANK
    X_train, y_train, X_test, y_test = make_data(args.examples)

    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(X_train.shape[1], args.width), nn.ReLU(),
        nn.Linear(args.width, args.width), nn.ReLU(),
        nn.Linear(args.width, 10),
    ).to(device)  # fmt: skip
    dist.broadcast_parameters(model)  # 1. the same weights everywhere
    opt = optim.AdamW(model.parameters(), lr=args.lr)
    sampler = dist.DistributedSampler(len(X_train), shuffle=True, seed=0)  # 2. this rank's shard

    epoch_seconds, losses = [], []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = sampler.indices(epoch)  # every rank's shard has the same length: the ranks
        loss_sum = 0.0  # make the same number of steps, so every all-reduce has all of them
        for first in range(0, len(order), args.batch_size):
            index = order[first : first + args.batch_size]
            xb = mg.tensor(X_train[index], device=device)
            yb = mg.tensor(y_train[index], device=device)
            loss = F.cross_entropy(model(xb), yb)
            grads = loss.backward()
            dist.all_reduce(grads, model)  # 3. the average over ranks
            opt.step(grads)  # 4. the same step everywhere
            loss_sum = loss_sum + loss.data * len(index)  # stays on the device: no wait
        total, count = group.sum_over_ranks(loss_sum, len(order))  # the mean over all ranks
        epoch_seconds.append(time.perf_counter() - start)
        losses.append(total / count)
        if group.is_main_process:
            print(f"  [{group.world_size} process(es)] epoch {epoch + 1}: "
                  f"loss {losses[-1]:.4f}, {epoch_seconds[-1]:.2f} s", flush=True)  # fmt: skip

    if group.is_main_process:  # every rank holds the same model: one of them evaluates
        with mg.no_grad():
            logits = model(mg.tensor(X_test, device=device)).numpy()
        accuracy = float((logits.argmax(axis=1) == y_test).mean())
        report = {"world_size": group.world_size, "epoch_seconds": epoch_seconds}
        report.update(losses=losses, test_accuracy=accuracy, backend=group.backend)
        Path(args.report).write_text(json.dumps(report))
    dist.destroy_process_group()


def launch(nproc: int, args, report: Path) -> dict:
    """Run this file's train() on `nproc` ranks through minigrad's launcher."""
    command = [sys.executable, "-m", "minigrad.distributed.run", "--nproc-per-node", str(nproc)]
    command += [__file__, "--rank-worker", "--report", str(report)]
    for name in ("backend", "examples", "epochs", "batch_size", "width", "lr"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    environ = dict(os.environ)
    if args.backend == "cpu":  # one core per process in both runs: a fair comparison
        environ.setdefault("OMP_NUM_THREADS", "1")
    subprocess.run(command, check=True, env=environ)
    return json.loads(report.read_text())


def default_backend(nproc: int) -> str:
    if mg.gpu_available() and mg.backend.cupy_module().cuda.runtime.getDeviceCount() >= nproc:
        return "nccl"
    return "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description="Data-parallel training on 1 and N processes")
    parser.add_argument("--nproc", type=int, default=2, help="N: processes (GPUs) to compare")
    parser.add_argument("--backend", choices=["nccl", "cpu"], default=None,
                        help="default: nccl when there are N GPUs, else cpu")  # fmt: skip
    parser.add_argument("--examples", type=int, default=32768)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128, help="per process")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--rank-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_worker:
        train(args)
        return
    if args.quick:
        args.examples, args.epochs, args.width = 2048, 2, 64
    args.backend = args.backend or default_backend(args.nproc)

    print(f"{args.examples} examples, batch {args.batch_size} per process, "
          f"backend {args.backend}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        reports = [launch(n, args, Path(tmp) / f"{n}.json") for n in sorted({1, args.nproc})]
    print(f"\n{'processes':>9} {'s/epoch':>8} {'speed-up':>9} {'final loss':>11} {'test acc':>9}")
    # the first epoch also builds kernels and connections: time the later ones
    per_epoch = [np.median(r["epoch_seconds"][1:] or r["epoch_seconds"]) for r in reports]
    for report, seconds in zip(reports, per_epoch):
        print(f"{report['world_size']:>9} {seconds:>8.2f} {per_epoch[0] / seconds:>8.2f}x "
              f"{report['losses'][-1]:>11.4f} {report['test_accuracy']:>9.3f}")  # fmt: skip
    print(
        f"\nWith {args.nproc} processes an epoch takes 1/{args.nproc} of the steps (each of a "
        f"batch {args.nproc} times as large in total), at the price of one all-reduce per step."
    )


if __name__ == "__main__":
    main()
