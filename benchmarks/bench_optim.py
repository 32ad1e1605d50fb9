"""GPU optimizer step: minigrad's fused AdamW kernel against the copy bandwidth and PyTorch.

    PYTHONPATH=. python3 benchmarks/bench_optim.py [--out results.json] [--quick]

For each case it measures, in the same run and on the same device:
  * copy:      a device-to-device copy of the case's bytes (the memory system's ceiling),
  * minigrad:  AdamW.step() as one fused launch for all parameters,
  * per-param: the same kernel launched once per parameter (the teaching path),
  * graphed:   the fused step captured once into a CUDA graph and replayed (no Python at all
               per step: what remains is the kernels' own time),
  * torch fused / torch foreach: torch.optim.AdamW(fused=True) and (foreach=True),
               where PyTorch with CUDA is installed.
AdamW reads p, g, m, v and writes p, m, v: 28 bytes per float32 element. Effective bandwidth
is 28 * elements / time; "of copy" divides it by the copy bandwidth measured here.

Times are per step, from CUDA events around a run of back-to-back steps, so whatever limits
throughput (device work or host-side Python) shows up; the median of many such runs after
a warm-up is reported. Nothing is asserted: this prints a table and writes JSON.
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
from minigrad import optim  # noqa: E402

BYTES_PER_ELEMENT = 28  # AdamW, float32: read p g m v (16) + write p m v (12)
MLP_SHAPES = [(256, 784), (256,), (256, 256), (256,), (10, 256), (10,)]


def cases(quick: bool) -> dict[str, list[tuple]]:
    return {
        "1 x 64M": [(2**22 if quick else 2**26,)],
        "MLP 784-256-256-10": MLP_SHAPES,
        "200 x 64K": [(2**16,)] * (20 if quick else 200),
    }


def copy_step(elements: int):
    """A copy of as many bytes as the update moves: 28 per element, 14 read + 14 written."""
    cupy = mg.backend.cupy_module()
    source = cupy.random.random(elements * 7 // 2, dtype=np.float32)
    target = cupy.empty_like(source)
    return lambda: cupy.copyto(target, source), 2 * source.nbytes


def minigrad_step(shapes, fused: bool):
    cupy = mg.backend.cupy_module()
    params = [mg.randn(*s, device="gpu", requires_grad=True) for s in shapes]
    grads = [cupy.random.standard_normal(s, dtype=np.float32) for s in shapes]
    opt = optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
    opt.fused = fused
    ids = [p.id for p in params]

    def step():
        # A fresh store each step, as backward() would give; the same arrays, like the pool.
        opt.step(mg.GradientStore(dict(zip(ids, grads))))

    return step


def minigrad_graph_step(shapes):
    """The fused step recorded into a CUDA graph once; each step is one graph launch."""
    cupy = mg.backend.cupy_module()
    params = [mg.randn(*s, device="gpu", requires_grad=True) for s in shapes]
    grads = [cupy.random.standard_normal(s, dtype=np.float32) for s in shapes]
    opt = optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
    ids = [p.id for p in params]
    opt.step(mg.GradientStore(dict(zip(ids, grads))))  # compiles the kernels
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            opt.step(mg.GradientStore(dict(zip(ids, grads))))
        finally:
            graph = stream.end_capture()
    stream.synchronize()
    # The graph reads and writes these arrays by address: they must outlive it.
    keep = (graph, opt, params, grads, stream)
    return lambda: keep[0].launch()


def torch_step(shapes, mode: str):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    params = [torch.randn(*s, device="cuda", requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, **{mode: True})
    return opt.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/bench_optim.json")
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs")
    args = parser.parse_args()
    if not mg.gpu_available():
        print("bench_optim needs a CUDA GPU with CuPy; nothing to measure here.")
        return
    cupy = mg.backend.cupy_module()
    runs, steps_per_run = (5, 5) if args.quick else (30, 20)

    rows = []
    for name, shapes in cases(args.quick).items():
        elements = int(sum(np.prod(s) for s in shapes))
        copy, copy_bytes = copy_step(elements)
        contenders = {
            "copy": copy,
            "minigrad": minigrad_step(shapes, fused=True),
            "per-param": minigrad_step(shapes, fused=False),
            "graphed": minigrad_graph_step(shapes),
            "torch fused": torch_step(shapes, "fused"),
            "torch foreach": torch_step(shapes, "foreach"),
        }
        measured = time_interleaved(
            {k: v for k, v in contenders.items() if v is not None}, steps_per_run, runs
        )
        copy_bw = copy_bytes / measured.pop("copy")
        times = {k: measured.get(k) for k in contenders if k != "copy"}
        rows.append(
            dict(case=name, tensors=len(shapes), elements=elements, copy_bw=copy_bw, times=times)
        )

    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"\nAdamW step on {device} (median per step; bandwidth = 28 B/element / time)\n")
    header = f"{'case':<20}{'impl':<15}{'time':>11}{'GB/s':>9}{'of copy':>9}{'vs torch fused':>16}"
    print(header)
    print("-" * len(header))
    for row in rows:
        torch_fused = row["times"]["torch fused"]
        print(f"{row['case']:<20}{'copy':<15}{'':>11}{row['copy_bw'] / 1e9:>9.0f}{'100%':>9}")
        for impl, seconds in row["times"].items():
            if seconds is None:
                print(f"{'':<20}{impl:<15}{'not installed':>11}")
                continue
            bandwidth = BYTES_PER_ELEMENT * row["elements"] / seconds
            ratio = f"{torch_fused / seconds:.2f}x" if torch_fused else "-"
            print(
                f"{'':<20}{impl:<15}{seconds * 1e6:>9.1f}us{bandwidth / 1e9:>9.0f}"
                f"{bandwidth / row['copy_bw']:>9.0%}{ratio:>16}"
            )
        per_param, fused = row["times"]["per-param"], row["times"]["minigrad"]
        print(f"{'':<20}{'fused speedup over per-param launches: %.1fx' % (per_param / fused)}")
    print("\n(vs torch fused > 1 means minigrad is faster)")

    result = dict(
        benchmark="bench_optim",
        device=device,
        cupy=cupy.__version__,
        numpy=np.__version__,
        python=platform.python_version(),
        rows=rows,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
