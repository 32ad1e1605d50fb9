"""GPU training step of a 784-256-256-10 MLP at batch 128: minigrad against PyTorch eager.

    PYTHONPATH=. python3 benchmarks/bench_train.py [--out results.json] [--batch 128]

One step = forward, cross-entropy, backward, AdamW step (weights with decay, biases without,
as two optimizers), with the loss kept on the device by the Trainer. Both frameworks start
from the same weights and see the same batches, which live on the GPU already: the step
itself is measured, not the data pipeline. CUDA events around runs of back-to-back steps;
the median per step over many runs after a warm-up. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu_timing import time_interleaved  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import nn, optim  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402

SIZES = (784, 256, 256, 10)


def make_batches(batch: int, count: int = 8):
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((count, batch, SIZES[0])).astype(np.float32)
    ys = rng.integers(0, SIZES[-1], size=(count, batch))
    return xs, ys


def mlp() -> nn.Sequential:
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def minigrad_step(batch: int):
    mg.manual_seed(0)
    model = mlp().to("gpu")
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=1e-3, weight_decay=1e-2)
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], lr=1e-3, weight_decay=0.0)
    trainer = optim.Trainer(opt_w, opt_b)
    xs, ys = make_batches(batch)
    batches = [(mg.tensor(x, device="gpu"), mg.tensor(y, device="gpu")) for x, y in zip(xs, ys)]
    state = {"i": 0}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        trainer.train_step(lambda: F.cross_entropy(model(x), y), batch_size=batch)

    return step


def torch_step(batch: int, weights):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).cuda()
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n.endswith("weight")], "weight_decay": 1e-2},
        {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3)  # PyTorch's default (foreach on CUDA)
    xs, ys = make_batches(batch)
    batches = [(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()) for x, y in zip(xs, ys)]
    running = torch.zeros((), device="cuda")
    state = {"i": 0}

    def step():
        nonlocal running
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        running = running + loss.detach() * batch  # kept on the device, as minigrad does

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/bench_train.json")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not mg.gpu_available():
        print("bench_train needs a CUDA GPU with CuPy; nothing to measure here.")
        return
    runs, steps_per_run = (5, 5) if args.quick else (30, 20)
    mg.manual_seed(0)
    weights = [p.numpy() for p in mlp().parameters()]
    contenders = {"minigrad": minigrad_step(args.batch), "torch": torch_step(args.batch, weights)}
    measured = time_interleaved(
        {k: v for k, v in contenders.items() if v is not None}, steps_per_run, runs, warmup=10
    )
    ours, theirs = measured["minigrad"], measured.get("torch")

    device = mg.backend.cupy_module().cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"\nMLP {'-'.join(map(str, SIZES))} training step, batch {args.batch}, on {device}\n")
    print(f"{'impl':<16}{'time/step':>12}{'minigrad/peer':>16}")
    print(f"{'minigrad':<16}{ours * 1e6:>10.1f}us")
    if theirs is None:
        print(f"{'torch eager':<16}{'not installed':>12}")
    else:
        print(f"{'torch eager':<16}{theirs * 1e6:>10.1f}us{ours / theirs:>15.2f}x")
    print("\n(minigrad/peer < 1 means minigrad is faster)")
    result = dict(
        benchmark="bench_train",
        device=device,
        batch=args.batch,
        python=platform.python_version(),
        seconds_per_step={"minigrad": ours, "torch_eager": theirs},
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
