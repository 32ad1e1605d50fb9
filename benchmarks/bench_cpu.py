"""CPU speed: minigrad against PyTorch and against the same computation in plain NumPy.

    make bench                                    # or: python benchmarks/bench_cpu.py
    python benchmarks/bench_cpu.py --quick        # a smoke run: small sizes, few runs
    python benchmarks/bench_cpu.py --out results.json
    python benchmarks/bench_cpu.py --save-results # update benchmarks/results/bench_cpu.json

The JSON goes to runs/bench_cpu.json (ignored by git) unless --out says where: a run on your
machine never changes a tracked file. --save-results writes the repository's published
results in benchmarks/results/ instead, on purpose.

Each case (see cpu_cases.py) is one computation done three ways, measured side by side in
the same run:

    minigrad  the library;
    torch     PyTorch on the CPU, with as many threads as NumPy's BLAS uses ("not installed"
              where PyTorch is absent: it is never a requirement);
    numpy     the computation written by hand in plain NumPy, the floor for any NumPy
              framework (no graph, no checks, in-place where natural); "-" for the model
              cases (a LeNet-5 and a tiny GPT training step, see model_cases.py).

Timing: the contenders take turns (minigrad, torch, numpy, minigrad, ..., five turns each),
so that whatever else the machine does slows all three alike. A turn starts with untimed
calls (warm caches; meanwhile the previous contender's idle threads stop spinning), then
timed runs: one call each, or a few back-to-back calls of a short case so that a run lasts
at least a millisecond, timed with time.perf_counter. The table shows the median over all
runs. The ratios are minigrad's time divided by the other's: below 1, minigrad is faster.
Nothing is asserted: the script prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu_cases as cases  # noqa: E402
import model_cases  # noqa: E402

import minigrad as mg  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"  # tracked: written only with --save-results
RUNS = ROOT / "runs"  # ignored by git: where a run writes by default
MIN_RUN_SECONDS = 1e-3  # a timed run of a short case repeats it until it lasts this long
# (turns per contender, seconds of timed runs per turn, seconds of untimed calls before each)
TIMING = {"full": (5, 0.25, 0.15), "quick": (2, 0.02, 0.02)}


# ---------------------------------------------------------------- threads and PyTorch


def blas_threads() -> tuple[int, str]:
    """How many threads NumPy's BLAS uses, and how that was found out."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                return int(pool["num_threads"]), f"threadpoolctl ({pool['internal_api']})"
    # Without threadpoolctl: OpenBLAS (NumPy's wheels) starts one thread per core unless an
    # environment variable says otherwise.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name]), name
    return os.cpu_count() or 1, "os.cpu_count() (OpenBLAS's default)"


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def import_torch(threads: int):
    """PyTorch with `threads` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


# ---------------------------------------------------------------- timing


def measure(contenders: dict, turns: int, turn_seconds: float, settle_seconds: float) -> dict:
    """{contender: {"median": seconds per call, "runs": timed runs, "calls": calls per run}}.

    The contenders take `turns` turns each, in rotation. A turn starts with untimed calls
    for `settle_seconds`: they warm the caches, and they give the idle threads of the
    previous contender's thread pools time to stop spinning (OpenBLAS's threads keep polling
    for about 0.1 s after their last task, and on two cores they would slow the next
    contender down several times over). Then timed runs for `turn_seconds`.
    """
    active = {name: c for name, c in contenders.items() if c is not None}
    calls = {name: _calls_per_run(c) for name, c in active.items()}
    times = {name: [] for name in active}
    for _ in range(turns):
        for name, c in active.items():
            _run_for(c, 1, settle_seconds)
            times[name] += _run_for(c, calls[name], turn_seconds)
    return {
        name: {
            "median": statistics.median(times[name]),
            "runs": len(times[name]),
            "calls": calls[name],
        }
        if name in active
        else None
        for name in contenders
    }


def _calls_per_run(c) -> int:
    """Calls per timed run: 1, or enough back-to-back calls of a short case to last 1 ms."""
    if c.before:  # each call needs its untimed preparation: one call per run
        return 1
    one = min(_time_run(c, 1) for _ in range(3))
    return max(1, math.ceil(MIN_RUN_SECONDS / one))


def _run_for(c, calls: int, seconds: float) -> list[float]:
    """Timed runs of `calls` calls until `seconds` have passed (at least one run)."""
    times = []
    end = time.perf_counter() + seconds
    while not times or time.perf_counter() < end:
        times.append(_time_run(c, calls) / calls)
    return times


def _time_run(c, calls: int) -> float:
    if c.before:
        c.before()
    start = time.perf_counter()
    for _ in range(calls):
        c.run()
    return time.perf_counter() - start


# ---------------------------------------------------------------- the cases


def plan(quick: bool, torch) -> list[tuple[str, str, Callable]]:
    """(group, case, builder) in the order of the table; a builder returns the contenders."""
    big = 2**18 if quick else 2**22  # the one large tensor: 4M elements (256K with --quick)
    big_name = f"1 x {big // 2**20}M" if big >= 2**20 else f"1 x {big // 2**10}K"
    mlp_shapes = [(256, 784), (256,), (256, 256), (256,), (10, 256), (10,)]
    epochs = 2 if quick else 30
    rows = [
        ("MLP step", "batch 128", lambda: cases.mlp_step(torch, 128)),
        ("MLP step", "batch 1024", lambda: cases.mlp_step(torch, 1024)),
        ("digits demo", f"{epochs} epochs", lambda: cases.digits_run(torch, epochs)),
    ]
    for opt in cases.OPTIMIZERS:
        rows.append(
            (f"{opt} step", "MLP", lambda opt=opt: cases.optimizer_step(torch, opt, mlp_shapes))
        )
        rows.append(
            (f"{opt} step", big_name, lambda opt=opt: cases.optimizer_step(torch, opt, [(big,)]))
        )
    rows += [
        ("LeNet-5 step", "1x28x28, batch 64", lambda: model_cases.lenet_step(torch, 64)),
        ("tiny GPT step", "32 x 32 chars", lambda: model_cases.gpt_step(torch)),
        ("engine", "tiny graph", lambda: cases.tiny_graph(torch)),
        ("engine", "1,000-op chain", lambda: cases.op_chain(torch)),
    ]
    return rows


# ---------------------------------------------------------------- output


def format_time(seconds: float | None, missing: str = "-") -> str:
    if seconds is None:
        return missing
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def ratio(a, b) -> float | None:
    return None if a is None or b is None else a / b


def table(results: list[dict], threads: int, torch_installed: bool) -> str:
    header = (
        f"{'case':<32}{'minigrad':>11}{'torch':>15}{'numpy':>11}{'mg/torch':>10}{'mg/numpy':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in results:
        t = {name: (v["median"] if v else None) for name, v in row["times"].items()}
        r = [row["ratios"]["minigrad/torch"], row["ratios"]["minigrad/numpy"]]
        lines.append(
            f"{row['group'] + ', ' + row['case']:<32}{format_time(t['minigrad']):>11}"
            f"{format_time(t['torch'], '-' if torch_installed else 'not installed'):>15}"
            f"{format_time(t['numpy']):>11}"
            + "".join(f"{'-' if x is None else f'{x:.2f}x':>10}" for x in r)
        )
    lines.append(
        f"\nmedian time per call; mg/x = minigrad's time / x's (below 1: minigrad is faster); "
        f"{threads} BLAS threads" + (", and as many torch threads" if torch_installed else "")
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="where to write the JSON (default: runs/bench_cpu.json)")
    parser.add_argument(
        "--save-results",
        action="store_true",
        help="write benchmarks/results/bench_cpu.json (the tracked, published results)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs (a smoke run)")
    args = parser.parse_args(argv)
    if args.save_results and args.out:
        parser.error("give --out or --save-results, not both")
    if args.save_results:
        args.out = str(RESULTS / "bench_cpu.json")
    elif args.out is None:
        args.out = str(RUNS / "bench_cpu.json")

    mg.set_default_device("cpu")
    threads, threads_source = blas_threads()
    torch = import_torch(threads)
    started = time.perf_counter()
    results = []
    turns, turn_seconds, settle_seconds = TIMING["quick" if args.quick else "full"]
    for group, name, build in plan(args.quick, torch):
        contenders = build()
        times = measure(contenders, turns, turn_seconds, settle_seconds)
        medians = {k: (v["median"] if v else None) for k, v in times.items()}
        row = dict(
            group=group,
            case=name,
            times=times,
            ratios={
                "minigrad/torch": ratio(medians["minigrad"], medians["torch"]),
                "minigrad/numpy": ratio(medians["minigrad"], medians["numpy"]),
            },
        )
        if group == "digits demo":  # the three runs should learn equally well
            row["test_accuracy"] = {k: c.result() for k, c in contenders.items() if c}
        results.append(row)
        print(f"  measured {group}, {name}", file=sys.stderr, flush=True)

    print()
    print(f"minigrad on the CPU: {cpu_name()}, {os.cpu_count()} cores, NumPy {np.__version__}"
          + (f", PyTorch {torch.__version__}" if torch else ", PyTorch not installed"))  # fmt: skip
    print(table(results, threads, torch is not None))
    digits = next((r for r in results if "test_accuracy" in r), None)
    if digits:
        accs = ", ".join(
            f"{k} {100 * v:.1f}%" for k, v in digits["test_accuracy"].items() if v is not None
        )
        print(f"digits test accuracy: {accs}")

    result = dict(
        benchmark="bench_cpu",
        quick=args.quick,
        seconds=round(time.perf_counter() - started, 1),
        machine=dict(
            processor=cpu_name(),
            machine=platform.machine(),
            cores=os.cpu_count(),
            blas_threads=threads,
            blas_threads_from=threads_source,
        ),
        versions=dict(
            python=platform.python_version(),
            numpy=np.__version__,
            minigrad=mg.__version__,
            torch=torch.__version__ if torch else None,
        ),
        cases=results,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
