"""GPU training steps (an MLP, lesson 11's tiny GPT): minigrad and PyTorch, eager and graphed.

    PYTHONPATH=. python3 benchmarks/bench_train.py [--out results.json] [--batch 128,1024] [--gpt]

MLP 784-256-256-10 at each batch size: forward, cross-entropy, backward, AdamW step (weights
with decay, biases without, as two optimizers), with a running loss kept on the device.
With --gpt, lesson 11's tiny GPT (model_cases.py's sizes) too, with gradient clipping.
Four contenders per case in one run:

  minigrad eager   Trainer.train_step: one Python call and one kernel launch per op
  minigrad graph   the same step captured once with mg.cuda.graph, replayed per batch
  torch eager      the same model, optimizers and loss in PyTorch (foreach AdamW)
  torch graph      PyTorch's whole-step capture (torch.cuda.graph, capturable AdamW), replayed

All start from the same weights and see the same batches, which live on the GPU already: the
step itself is measured, not the data pipeline. CUDA events around runs of back-to-back steps;
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


def minigrad_graph_step(batch: int):
    """The same step as minigrad_step, captured once into a CUDA graph and replayed."""
    import minigrad.cuda

    mg.manual_seed(0)
    model = mlp().to("gpu")
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=1e-3, weight_decay=1e-2)
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], lr=1e-3, weight_decay=0.0)
    xs, ys = make_batches(batch)
    batches = [(mg.tensor(x, device="gpu"), mg.tensor(y, device="gpu")) for x, y in zip(xs, ys)]
    running = mg.zeros((), dtype=np.float64, device="gpu").data

    def train_step(x, y):
        loss = F.cross_entropy(model(x), y)
        grads = loss.backward()
        opt_w.step(grads)
        opt_b.step(grads)
        running[...] += loss.data * batch  # the running loss, kept on the device
        return loss

    graphed = minigrad.cuda.graph(train_step, *batches[0])
    state = {"i": 1}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        graphed(x, y)

    return step


def torch_step(batch: int, weights, graphed: bool = False):
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
    # PyTorch's default (foreach on CUDA); capturable keeps its step count on the device.
    opt = torch.optim.AdamW(groups, lr=1e-3, capturable=graphed)
    xs, ys = make_batches(batch)
    batches = [(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()) for x, y in zip(xs, ys)]
    running = torch.zeros((), device="cuda")
    state = {"i": 0}
    if graphed:
        return _torch_graph(torch, model, opt, batches, batch)

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


def _torch_graph(torch, model, opt, batches, batch):
    """PyTorch's recipe for capturing a whole training step (torch.cuda.graph docs)."""
    static_x, static_y = (t.clone() for t in batches[0])
    running = torch.zeros((), device="cuda")

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(static_x), static_y)
        loss.backward()
        opt.step()
        running.add_(loss.detach() * batch)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up on a side stream, as the docs do
            train_step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        train_step()
    state = {"i": 0}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()

    return step


# ---------------------------------------------------------------- the tiny GPT (lesson 11)


def gpt_builders() -> dict:
    """The four contenders for lesson 11's GPT (model_cases.GPT's sizes), AdamW, clipping.

    Behind --gpt: run with the MLP in one process, a PyTorch contender hit a device-side
    "index out of bounds" assert in a gather on the H200 (2026-11-22), which ends the run;
    each framework alone runs cleanly. bench_models_gpu.py measures the GPT with each framework
    in a process of its own.
    """
    from model_cases import GPT, copy_weights, lesson, rng, torch_gpt

    tokens = rng(6).integers(0, GPT["vocab"], (GPT["batch"], GPT["block"] + 1))
    x, y = tokens[:, :-1], tokens[:, 1:].reshape(-1)
    sizes = (GPT["vocab"], GPT["block"], GPT["n_embd"], GPT["n_head"], GPT["n_layer"])

    def model():
        mg.manual_seed(0)
        return lesson("11_tiny_gpt.py").GPT(*sizes).to("gpu")

    def minigrad(graphed: bool):
        net = model()
        opt = optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
        xb, yb = mg.tensor(x, device="gpu"), mg.tensor(y, device="gpu")

        def train_step(xb, yb):
            loss = F.cross_entropy(net(xb).reshape(-1, GPT["vocab"]), yb)
            grads = loss.backward()
            optim.clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
            opt.step(grads)
            return loss

        if graphed:
            import minigrad.cuda

            step = minigrad.cuda.graph(train_step, xb, yb)
            return lambda: step(xb, yb)
        return lambda: train_step(xb, yb)

    def torch_contender(graphed: bool):
        import torch

        if not torch.cuda.is_available():
            return None
        net = torch_gpt(torch)
        copy_weights(torch, model(), net)
        net = net.cuda()
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01, capturable=graphed)
        xb, yb = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(xb).reshape(-1, GPT["vocab"]), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()

        if not graphed:
            return train_step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                train_step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            train_step()
        return graph.replay

    return {
        "minigrad eager": lambda: minigrad(False),
        "minigrad graph": lambda: minigrad(True),
        "torch eager": lambda: torch_contender(False),
        "torch graph": lambda: torch_contender(True),
    }


def mlp_builders(batch: int) -> dict:
    mg.manual_seed(0)
    weights = [p.numpy() for p in mlp().parameters()]
    return {
        "minigrad eager": lambda: minigrad_step(batch),
        "minigrad graph": lambda: minigrad_graph_step(batch),
        "torch eager": lambda: torch_step(batch, weights),
        "torch graph": lambda: torch_step(batch, weights, graphed=True),
    }


def measure(builders: dict, runs: int, steps_per_run: int) -> dict:
    """Seconds per step of each contender (None: not available, and why is printed)."""
    contenders = {}
    for name, build in builders.items():
        try:
            contenders[name] = build()
        except Exception as error:  # report and measure the others
            print(f"{name}: could not be built: {type(error).__name__}: {str(error)[:600]}")
            contenders[name] = None
    available = {k: v for k, v in contenders.items() if v is not None}
    measured = time_interleaved(available, steps_per_run, runs, warmup=10)
    return {name: measured.get(name) for name in contenders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/bench_train.json")
    parser.add_argument("--batch", default="128,1024", help="batch sizes, comma-separated")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--gpt",
        action="store_true",
        help="also lesson 11's tiny GPT (see the note in gpt_builders: not yet clean)",
    )
    args = parser.parse_args()
    if not mg.gpu_available():
        print("bench_train needs a CUDA GPU with CuPy; nothing to measure here.")
        return
    runs, steps_per_run = (5, 5) if args.quick else (30, 20)
    sizes = [int(b) for b in args.batch.split(",")]
    mlp_name = "MLP " + "-".join(map(str, SIZES))
    results = {f"{mlp_name} b{b}": measure(mlp_builders(b), runs, steps_per_run) for b in sizes}
    if args.gpt:
        results["tiny GPT (lesson 11)"] = measure(gpt_builders(), runs, steps_per_run)

    device = mg.backend.cupy_module().cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"\nTraining step (AdamW) on {device}\n")
    names = list(next(iter(results.values())))
    print(f"{'case':<26}" + "".join(f"{n:>16}" for n in names) + f"{'graph/torch graph':>20}")
    for batch, times in results.items():
        cells = "".join(
            f"{t * 1e6:>14.1f}us" if t is not None else f"{'n/a':>16}" for t in times.values()
        )
        ours, theirs = times.get("minigrad graph"), times.get("torch graph")
        ratio = f"{ours / theirs:>19.2f}x" if ours and theirs else f"{'-':>20}"
        print(f"{batch:<26}{cells}{ratio}")
    print("\n(graph/torch graph < 1 means minigrad's graphed step is faster)")
    result = dict(
        benchmark="bench_train",
        device=device,
        python=platform.python_version(),
        seconds_per_step={str(b): t for b, t in results.items()},
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
