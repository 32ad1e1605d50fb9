"""07 - The optimizer step on the GPU: one fused update for many parameters.

An Adam(W) step touches every parameter element five times (p, g, m, v and the update):

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,   p <- p - lr m_hat / (sqrt(v_hat) + eps)

On the CPU, NumPy runs this as a handful of array operations per parameter tensor. On the
GPU, minigrad runs the same formula as a CuPy ElementwiseKernel (written in
minigrad/optim/adam.py next to its NumPy twin): each thread updates one element, reading
p, g, m, v once and writing p, m, v once, so the step costs about what moving those bytes
costs, and kernel launches, not arithmetic, dominate for small models.

This script times `optimizer.step(grads)` for the parameters of an MLP on the CPU and on
the GPU (same seed, same gradients), checks that both devices computed the same parameters,
and prints a table. It needs a CUDA GPU with CuPy; without one it says so and exits.

    python examples/07_gpu_fused_optimizer.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import minigrad as mg
from minigrad import backend, nn, optim


def make_model(width: int, device: str):
    mg.manual_seed(0)  # the same initial parameters on both devices
    return nn.Sequential(
        nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
    ).to(device)


def time_steps(model, device: str, steps: int) -> tuple[float, list]:
    """Seconds per AdamW step over `steps` steps, and the final parameters (host arrays)."""
    params = model.parameters()
    opt = optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
    rng = np.random.default_rng(1)  # the same gradients on both devices
    host_grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    grads = [backend.to_device(g, device) for g in host_grads]
    # step() takes the arrays out of the store and may reuse them as scratch: a fresh store
    # (and fresh copies) per step, made before the clock starts.
    stores = [
        mg.GradientStore({p.id: g.copy() for p, g in zip(params, grads)}) for _ in range(steps + 1)
    ]
    sync = backend.cupy_module().cuda.Device().synchronize if device == "gpu" else (lambda: None)
    opt.step(stores[0])  # warm-up: builds and caches the kernels on the GPU
    sync()
    start = time.perf_counter()
    for store in stores[1:]:
        opt.step(store)
    sync()  # GPU work is asynchronous: wait for it before reading the clock
    seconds = (time.perf_counter() - start) / steps
    final = [p.numpy() for p in params]
    return seconds, final


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="few steps, for the tests")
    args = parser.parse_args(argv)
    steps = 5 if args.quick else args.steps

    if not mg.gpu_available():
        print(
            "This example needs a CUDA GPU with CuPy (pip install 'minigrad[gpu]'), and this "
            "machine has none.\nOn a GPU it prints, for MLPs of a few sizes, the time of one "
            "AdamW step on the CPU (NumPy) and on the GPU (one fused CUDA kernel), the speed-up, "
            "and the largest difference between the parameters the two devices computed "
            "(the same formula in float32 on both: 0 on an H100)."
        )
        return 0

    widths = [256] if args.quick else [256, 1024, 4096]
    print(f"AdamW step, {steps} steps each, float32")
    print(
        f"{'model':>22} {'parameters':>12} {'CPU ms':>9} {'GPU ms':>9} {'speed-up':>9} "
        f"{'max |diff|':>11}"
    )
    for width in widths:
        cpu_model, gpu_model = make_model(width, "cpu"), make_model(width, "gpu")
        cpu_s, cpu_params = time_steps(cpu_model, "cpu", steps)
        gpu_s, gpu_params = time_steps(gpu_model, "gpu", steps)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(cpu_params, gpu_params))
        name = f"784-{width}-{width}-10"
        print(
            f"{name:>22} {cpu_model.num_parameters():>12,} {1e3 * cpu_s:>9.3f} "
            f"{1e3 * gpu_s:>9.3f} {cpu_s / gpu_s:>8.1f}x {diff:>11.2e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
