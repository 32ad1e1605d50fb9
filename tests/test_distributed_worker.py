"""The program each rank runs in the multi-process tests (no tests in here: it is a script).

    python -m minigrad.distributed.run --nproc-per-node 2 tests/test_distributed_worker.py \
        --backend cpu --dtype float64 --out DIR

Every rank trains the same small MLP on its DistributedSampler shard, twice:
  A: two epochs straight through;
  B: the same through Trainer(process_group=...): one epoch, a checkpoint written by rank 0,
     a fresh model/optimizer/trainer/sampler loaded from it on every rank, the second epoch.
Each rank writes DIR/rank<r>.npz (A's and B's final parameters, and each run's epoch losses
averaged over ranks). `reference()` trains the same model in one process with batch N*B, for the
tests to compare against; `run_killing_all_on_timeout()` starts a launcher for them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
from pathlib import Path

import numpy as np

import minigrad as mg
import minigrad.distributed as dist
from minigrad import nn, optim

EXAMPLES, FEATURES, CLASSES, BATCH, EPOCHS = 96, 10, 3, 8, 2


def make_data(dtype):
    rng = np.random.default_rng(123)
    X = rng.normal(size=(EXAMPLES, FEATURES))
    y = np.argmax(X @ rng.normal(size=(FEATURES, CLASSES)), axis=1).astype(np.int64)
    return X.astype(dtype), y


def make_model(dtype, device, seed):
    mg.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(FEATURES, 16, dtype=dtype), nn.Tanh(), nn.Linear(16, CLASSES, dtype=dtype)
    )
    model.to(device)
    return model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def make_sampler(world, rank, seed=0):
    return dist.DistributedSampler(
        EXAMPLES, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
    )


def loss_of(model, X, y, index, device):
    xb = mg.tensor(X[index], dtype=X.dtype, device=device)
    yb = mg.tensor(y[index], device=device)
    return nn.functional.cross_entropy(model(xb), yb)


def train_epoch(model, opt, sampler, epoch, X, y, device, group):
    """One epoch of this rank's shard; returns the epoch's mean loss over every rank."""
    order = sampler.indices(epoch)
    steps = len(order) // BATCH
    loss_sum = 0.0
    for s in range(steps):
        loss = loss_of(model, X, y, order[s * BATCH : (s + 1) * BATCH], device)
        grads = loss.backward()
        dist.all_reduce(grads, model)
        opt.step(grads)
        loss_sum += loss.item() * BATCH
    total, count = group.sum_over_ranks(loss_sum, steps * BATCH)
    return total / count


def trainer_epoch(trainer, model, sampler, epoch, X, y, device):
    """The same epoch through the Trainer, which averages the gradients and the loss."""
    order = sampler.indices(epoch)
    for s in range(len(order) // BATCH):
        index = order[s * BATCH : (s + 1) * BATCH]
        trainer.train_step(lambda i=index: loss_of(model, X, y, i, device), batch_size=BATCH)
    return trainer.epoch_avg_loss()


def reference(world, dtype, device):
    """One process, batch world*BATCH: the union of the ranks' batches at every step."""
    X, y = make_data(dtype)
    model, opt = make_model(dtype, device, seed=0)
    samplers = [make_sampler(world, r) for r in range(world)]
    losses = []
    for epoch in range(EPOCHS):
        orders = [s.indices(epoch) for s in samplers]
        steps = len(orders[0]) // BATCH
        total = 0.0
        for s in range(steps):
            index = np.concatenate([o[s * BATCH : (s + 1) * BATCH] for o in orders])
            loss = loss_of(model, X, y, index, device)
            opt.step(loss.backward())
            total += loss.item()
        losses.append(total / steps)
    return [p.numpy() for p in model.parameters()], losses


def run_killing_all_on_timeout(command, environ, timeout, cwd=None):
    """subprocess.run, except that a timeout kills the launcher *and* its ranks (they share
    the new session's process group), so that a stuck test leaves nothing running."""
    proc = subprocess.Popen(
        command,
        env=environ,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout} s\n{out}\n{err}") from None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    group = dist.init_process_group(backend=args.backend, timeout=60)
    device = group.device
    dtype = np.dtype(args.dtype)
    X, y = make_data(dtype)

    # A: straight through. Each rank starts from other weights; the broadcast fixes that.
    model, opt = make_model(dtype, device, seed=group.rank)
    dist.broadcast_parameters(model)
    sampler = make_sampler(group.world_size, group.rank)
    losses = [train_epoch(model, opt, sampler, e, X, y, device, group) for e in range(EPOCHS)]
    params_a = [p.numpy() for p in model.parameters()]

    # B: the Trainer; one epoch, checkpoint (rank 0 writes), fresh objects resumed, one epoch.
    model, opt = make_model(dtype, device, seed=group.rank)
    dist.broadcast_parameters(model)
    trainer = optim.Trainer(opt, process_group=group)
    sampler = make_sampler(group.world_size, group.rank)
    losses_b = [trainer_epoch(trainer, model, sampler, 0, X, y, device)]
    path = out / "resume.npz"
    objects = {"model": model, "optimizers": [opt], "trainer": trainer, "loaders": [sampler]}
    dist.save_checkpoint(path, **objects)
    model, opt = make_model(dtype, device, seed=1000 + group.rank)
    trainer = optim.Trainer(opt, process_group=group)
    sampler = make_sampler(group.world_size, group.rank, seed=77)  # the checkpoint's wins
    mg.load(path, model=model, optimizers=[opt], trainer=trainer, loaders=[sampler])
    losses_b.append(trainer_epoch(trainer, model, sampler, trainer.epoch, X, y, device))
    params_b = [p.numpy() for p in model.parameters()]

    arrays = {f"a{i}": p for i, p in enumerate(params_a)}
    arrays.update({f"b{i}": p for i, p in enumerate(params_b)})
    np.savez(out / f"rank{group.rank}.npz", losses=losses, losses_b=losses_b, **arrays)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
