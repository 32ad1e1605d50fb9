"""12 - The whole training step as one CUDA graph.

A small model's training step on the GPU is bound by the host, not the GPU. Every op is a
Python call that launches a kernel: a few microseconds of Python, CuPy and driver work each,
while the GPU finishes most of those kernels in one or two microseconds. So the GPU waits
for Python, and the step takes (number of launches) x (cost of one launch from Python).

A CUDA graph removes that factor. mg.cuda.graph runs the step once, then records it (every
kernel, copy and memset, with their arguments and memory addresses) and from then on sends
the whole step to the GPU with ONE call, cudaGraphLaunch. What changes from step to step
lives on the device: the batch is copied into the graph's input buffers, and the optimizers'
per-step numbers (lr, bias corrections) and dropout's seed are queued into small device
arrays before each replay. See docs/cuda_graphs.md.

This script trains the same 784-256-256-10 MLP (dropout, AdamW, gradient clipping) eagerly
and as a graph from the same start, checks that both give the same parameters to the bit,
and prints the time per step and the number of launches in one step.

    python examples/12_cuda_graph.py [--quick] [--batch 128]

Without a CUDA GPU it says so and exits (the graph part needs one).
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F
from minigrad.optim.clip import clip_grad_norm


def make_step(batch_size: int):
    """A model, its optimizer, and the training step function (the same code for both runs)."""
    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10),
    ).to("gpu")  # fmt: skip
    opt = optim.AdamW(model.parameters(), lr=1e-3)

    def train_step(x, y):
        loss = F.cross_entropy(model(x), y)
        grads = loss.backward()
        clip_grad_norm(grads, 1.0, error_if_nonfinite=False)  # no host read: capturable
        opt.step(grads)
        return loss

    return model, train_step


def batches(batch_size: int, count: int):
    rng = np.random.default_rng(0)
    return [
        (
            mg.tensor(rng.standard_normal((batch_size, 784)), device="gpu"),
            mg.tensor(rng.integers(0, 10, batch_size), device="gpu"),
        )
        for _ in range(count)
    ]


def time_per_step(step, data, repeats: int) -> float:
    """Seconds per step: CUDA events around `repeats` passes over the batches."""
    cupy = mg.backend.cupy_module()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeats):
        for x, y in data:
            step(x, y)
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3 / (repeats * len(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    if not mg.gpu_available():
        print("12_cuda_graph needs a CUDA GPU with CuPy (a CUDA graph is a GPU feature);")
        print("on this machine there is none, so there is nothing to show. See")
        print("docs/cuda_graphs.md for what it does and the numbers measured on an H200.")
        return
    import minigrad.cuda

    data = batches(args.batch, 8)
    repeats = 5 if args.quick else 50

    eager_model, eager_step = make_step(args.batch)
    graph_model, graph_fn = make_step(args.batch)  # the same initial weights
    # Both runs draw their dropout seeds from the global generator: give both the same stream.
    start = mg.random.get_state()
    graphed = minigrad.cuda.graph(graph_fn, *data[0])  # runs step 1, then records the step
    mg.random.set_state(start)
    eager_step(*data[0])  # step 1 eagerly too
    data = data[1:] + data[:1]

    start = mg.random.get_state()
    eager = time_per_step(eager_step, data, repeats)
    mg.random.set_state(start)
    graph = time_per_step(graphed, data, repeats)
    same = all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(eager_model.parameters(), graph_model.parameters())
    )
    nodes = graphed.node_counts()
    launches = sum(nodes.values())

    print(f"MLP 784-256-256-10, batch {args.batch}, AdamW, dropout, clipping\n")
    print(f"{'':<10}{'time/step':>12}{'launches/step':>16}")
    print(f"{'eager':<10}{eager * 1e6:>10.1f}us{launches:>16}   (one Python call each)")
    print(f"{'graph':<10}{graph * 1e6:>10.1f}us{1:>16}   (cudaGraphLaunch)")
    print(f"\nspeed-up: {eager / graph:.1f}x; the graph holds {nodes}")
    print(f"eager and graphed parameters identical after {repeats * len(data) + 1} steps: {same}")
    print(
        f"\nWhy: eagerly each of the {launches} launches costs about "
        f"{eager / launches * 1e6:.0f}us of host time, more than the GPU needs for most of\n"
        "those kernels, so the GPU idles between them. The graph sends all of them at once."
    )


if __name__ == "__main__":
    main()
