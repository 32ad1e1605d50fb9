"""The lessons' models on the GPU: minigrad and PyTorch, eager and as a CUDA graph.

    PYTHONPATH=. python3 benchmarks/bench_models_gpu.py [--out runs/bench_models_gpu.json]

Two training steps, the GPU twins of `make bench`'s model cases (model_cases.py): LeNet-5
(lesson 08) on a batch of 64 1x28x28 images with Adam, eager only; lesson 11's tiny GPT with
AdamW and gradient clipping at 1.0, eager and as a CUDA graph. Each framework runs in a
process of its own (this script starts both), so that a failure or a device-side assert in
one cannot poison the other's CUDA context. Median of 7 runs of 50 steps, timed with a
device synchronization around each run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from model_cases import GPT, lesson, rng, torch_gpt  # noqa: E402


def batch():
    tokens = rng(6).integers(0, GPT["vocab"], (GPT["batch"], GPT["block"] + 1))
    return np.ascontiguousarray(tokens[:, :-1]), tokens[:, 1:].reshape(-1)


def median_step_us(fn, sync, steps: int = 50, runs: int = 7) -> float:
    for _ in range(10):
        fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times)) * 1e6


def lenet_batch():
    r = rng(5)
    return r.standard_normal((64, 1, 28, 28)).astype(np.float32), r.integers(0, 10, 64)


def minigrad_lenet_time(mg, optim, F) -> float:
    x, y = lenet_batch()
    mg.manual_seed(0)
    model = lesson("08_cnn_digits.py").lenet5().to("gpu")
    opt = optim.Adam(model.parameters(), lr=1e-3)
    xb, yb = mg.tensor(x, device="gpu"), mg.tensor(y, device="gpu")

    def step():
        opt.step(F.cross_entropy(model(xb), yb).backward())

    return median_step_us(step, mg.backend.cupy_module().cuda.Device().synchronize)


def torch_lenet_time(torch) -> float:
    nn = torch.nn
    x, y = lenet_batch()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    ).cuda()  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xb, yb = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()

    return median_step_us(step, torch.cuda.synchronize)


def minigrad_times() -> dict:
    import minigrad as mg
    import minigrad.cuda
    from minigrad import optim
    from minigrad.nn import functional as F

    x, y = batch()
    sizes = (GPT["vocab"], GPT["block"], GPT["n_embd"], GPT["n_head"], GPT["n_layer"])
    sync = mg.backend.cupy_module().cuda.Device().synchronize
    times = {"LeNet-5 minigrad eager": minigrad_lenet_time(mg, optim, F)}
    for graphed in (False, True):
        mg.manual_seed(0)
        net = lesson("11_tiny_gpt.py").GPT(*sizes).to("gpu")
        opt = optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
        xb, yb = mg.tensor(x, device="gpu"), mg.tensor(y, device="gpu")

        def train_step(xb, yb, net=net, opt=opt):
            loss = F.cross_entropy(net(xb).reshape(-1, GPT["vocab"]), yb)
            grads = loss.backward()
            optim.clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
            opt.step(grads)
            return loss

        step = minigrad.cuda.graph(train_step, xb, yb) if graphed else train_step
        times["GPT minigrad graph" if graphed else "GPT minigrad eager"] = median_step_us(
            lambda step=step, xb=xb, yb=yb: step(xb, yb), sync
        )
    return times


def torch_times() -> dict:
    import torch

    x, y = batch()
    times = {"LeNet-5 torch eager": torch_lenet_time(torch)}
    for graphed in (False, True):
        torch.manual_seed(0)
        net = torch_gpt(torch).cuda()
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01, capturable=graphed)
        xb, yb = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

        def step(net=net, opt=opt, xb=xb, yb=yb):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(xb).reshape(-1, GPT["vocab"]), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()

        if not graphed:
            times["GPT torch eager"] = median_step_us(step, torch.cuda.synchronize)
            continue
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as PyTorch's docs do it
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            step()
        times["GPT torch graph"] = median_step_us(graph.replay, torch.cuda.synchronize)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_models_gpu.json")
    parser.add_argument("--only", choices=("minigrad", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:  # the child process: print one JSON line
        print(json.dumps(minigrad_times() if args.only == "minigrad" else torch_times()))
        return 0
    times = {}
    for name in ("minigrad", "torch"):
        done = subprocess.run(
            [sys.executable, __file__, "--only", name], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            continue
        times.update(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"training steps on the GPU, microseconds per step (GPT sizes: {GPT})")
    for name, value in times.items():
        print(f"  {name:24s} {value:9.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"benchmark": "bench_models_gpu", "us_per_step": times}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
