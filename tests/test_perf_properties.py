"""Properties that keep the CPU path fast: no float64 on a float32 path, no memory that
grows with the step count, and updates in cache-sized blocks that change no bit.

(Speed itself is measured, never asserted: see benchmarks/bench_cpu.py.)
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.optim.adam import adam_update_numpy
from minigrad.optim.optimizer import CPU_BLOCK, blocks
from minigrad.optim.sgd import sgd_update_numpy

# ---------------------------------------------------------------- blocked updates


def test_blocks_cover_the_range_once():
    n = 2 * CPU_BLOCK + 5
    cut = blocks(n)
    assert [(b.start, b.stop) for b in cut] == [
        (0, CPU_BLOCK),
        (CPU_BLOCK, 2 * CPU_BLOCK),
        (2 * CPU_BLOCK, n),
    ]
    assert blocks(3) == [slice(0, 3)]
    assert blocks(0) == []


ADAM_OPTIONS = [
    dict(weight_decay=0.0, decoupled=False, amsgrad=False, maximize=False),
    dict(weight_decay=0.1, decoupled=False, amsgrad=True, maximize=True),
    dict(weight_decay=0.01, decoupled=True, amsgrad=False, maximize=False),
]


@pytest.mark.parametrize("options", ADAM_OPTIONS)
def test_blocked_adam_step_equals_one_whole_array_update_bit_for_bit(options):
    rng = np.random.default_rng(0)
    shape = (3, CPU_BLOCK + 1000)  # more than one block, and a short last one
    p0, m0 = (
        rng.standard_normal(shape, dtype=np.float32),
        rng.standard_normal(shape, dtype=np.float32),
    )
    v0 = rng.random(shape, dtype=np.float32)
    grads = [rng.standard_normal(shape, dtype=np.float32) for _ in range(3)]
    make = optim.AdamW if options["decoupled"] else optim.Adam
    w = mg.tensor(p0, requires_grad=True)
    opt = make([w], lr=1e-2, weight_decay=options["weight_decay"], amsgrad=options["amsgrad"],
               maximize=options["maximize"])  # fmt: skip
    opt.state["exp_avg"][0][...] = m0
    opt.state["exp_avg_sq"][0][...] = v0
    p, m, v = p0.copy().ravel(), m0.copy().ravel(), v0.copy().ravel()
    vmax = np.zeros_like(v) if options["amsgrad"] else None
    for t, g in enumerate(grads, start=1):
        opt.step(mg.GradientStore({w.id: g.copy()}))
        adam_update_numpy(
            p, g.copy().ravel(), m, v, vmax, np.empty_like(p),
            lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, step=t, **options,
        )  # fmt: skip
    np.testing.assert_array_equal(w.data.ravel(), p)
    np.testing.assert_array_equal(opt.state["exp_avg_sq"][0].ravel(), v)


@pytest.mark.parametrize("nesterov", [False, True])
def test_blocked_sgd_step_equals_one_whole_array_update_bit_for_bit(nesterov):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(2 * CPU_BLOCK + 7, dtype=np.float32)
    grads = [rng.standard_normal(p0.shape, dtype=np.float32) for _ in range(3)]
    w = mg.tensor(p0, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    p, buf = p0.copy(), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        opt.step(mg.GradientStore({w.id: g.copy()}))
        sgd_update_numpy(
            p, g.copy(), buf, np.empty_like(p), lr=0.1, momentum=0.9, dampening=0.0,
            nesterov=nesterov, weight_decay=1e-3, maximize=False, first_step=t == 1,
        )  # fmt: skip
    np.testing.assert_array_equal(w.data, p)
    np.testing.assert_array_equal(opt.state["momentum_buffer"][0], buf)


def test_scratch_is_one_block_long_at_most():
    big = mg.zeros(3 * CPU_BLOCK, requires_grad=True)
    small = mg.zeros(10, requires_grad=True)
    opt = optim.Adam([big, small])
    assert opt._scratch[("cpu", np.dtype(np.float32))].size == CPU_BLOCK
