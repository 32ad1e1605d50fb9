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


# ---------------------------------------------------------------- float32 stays float32


def _float_dtypes_in(obj, seen: set, found: list, where: str) -> None:
    """Collect (where, dtype) of every floating array reachable from a backward closure."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            found.append((where, obj.dtype))
    elif isinstance(obj, mg.Tensor):
        _float_dtypes_in(obj.data, seen, found, where)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _float_dtypes_in(item, seen, found, where)
    elif callable(obj) and getattr(obj, "__closure__", None):
        for cell in obj.__closure__:
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            _float_dtypes_in(contents, seen, found, where)


def _spy_on_graph(loss) -> list:
    """Every node's value and saved arrays now, and (as backward runs) every gradient that
    flows between nodes: a list of (where, dtype) that backward keeps appending to."""
    found = []
    stack, visited = [loss], set()
    while stack:
        node = stack.pop()
        if node.id in visited:
            continue
        visited.add(node.id)
        where = node._op or f"leaf {node.shape}"
        if node.dtype.kind == "f":
            found.append((f"value of {where}", node.dtype))
        if node._backward is not None:
            _float_dtypes_in(node._backward, set(), found, f"saved by {where}")
            node._backward = _checked(node._backward, found, where)
        stack.extend(node._parents)
    return found


def _checked(backward, found, where):
    def run(g):
        found.append((f"gradient into {where}", g.dtype))
        grads = backward(g)
        for grad in grads:
            if grad is not None and grad.dtype.kind == "f":
                found.append((f"gradient out of {where}", grad.dtype))
        return grads

    return run


def test_every_intermediate_of_a_float32_training_step_stays_float32():
    from minigrad import nn
    from minigrad.nn import functional as F

    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 16), nn.Tanh(),
        nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.LeakyReLU(0.1),
        nn.Linear(16, 4),
    )  # fmt: skip
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], weight_decay=1e-2)
    opt_b = optim.SGD([p for n, p in named if n.endswith("bias")], lr=0.1, momentum=0.9)
    trainer = optim.Trainer(opt_w, opt_b, grad_clip=1.0, accumulate=2)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((8, 6)))
    y = mg.tensor(rng.integers(0, 4, 8))
    target = mg.tensor(rng.standard_normal((8, 4)))
    found = []

    def closure():
        logits = model(x)
        loss = (
            F.cross_entropy(logits, y, label_smoothing=0.1)
            + F.mse_loss(F.softmax(logits), target) * 0.5
            + F.binary_cross_entropy_with_logits(logits, (target > 0).astype(np.float32))
            + (F.log_softmax(logits) - logits.logsumexp(axis=1, keepdims=True)).mean() / 4
        )
        found.extend(_spy_on_graph(loss))
        return loss

    for _ in range(4):  # two optimizer steps: accumulation, clipping and both optimizers
        trainer.train_step(closure, batch_size=8)
    assert trainer.optimizer_steps == 2
    assert found, "the spy saw nothing"
    promoted = sorted({(where, str(dtype)) for where, dtype in found if dtype != np.float32})
    assert not promoted, f"float64 (or other) on the float32 path: {promoted}"
    for opt in (opt_w, opt_b):
        assert all(p.dtype == np.float32 for p in opt.params)
        assert all(a.dtype == np.float32 for arrays in opt.state.values() for a in arrays)
        assert all(s.dtype == np.float32 for s in opt._scratch.values())


# ---------------------------------------------------------------- memory stays flat


def test_memory_is_flat_over_10000_training_steps():
    """10,000 training steps of a tiny model, and nothing accumulates.

    tracemalloc (which sees NumPy's buffers too) watches a window of 1,000 steps early and
    one late: neither may leave memory behind. Tracing slows every allocation down about
    five times, so the 7,000 steps between run untraced, and there the count of Python's
    allocated blocks (every ndarray, Tensor, closure, dict...) must not grow either.
    """
    import gc
    import sys
    import tracemalloc

    from minigrad import nn
    from minigrad.nn import functional as F

    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")])
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], weight_decay=0.0)
    trainer = optim.Trainer(opt_w, opt_b)
    rng = np.random.default_rng(0)
    x, y = mg.tensor(rng.standard_normal((16, 4))), mg.tensor(rng.integers(0, 3, 16))

    def steps(count: int) -> None:
        for i in range(count):
            trainer.train_step(lambda: F.cross_entropy(model(x), y), batch_size=16)
            if i % 100 == 99:
                trainer.epoch_avg_loss()  # an epoch every 100 steps: the running loss resets

    def traced_growth(count: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            steps(count)
            gc.collect()
            return tracemalloc.get_traced_memory()[0]  # bytes still held from the window
        finally:
            tracemalloc.stop()

    steps(1_000)  # warm: every cache and buffer exists by now
    early = traced_growth(1_000)
    gc.collect()
    blocks = sys.getallocatedblocks()
    steps(7_000)
    gc.collect()
    block_growth = sys.getallocatedblocks() - blocks
    late = traced_growth(1_000)
    assert trainer.optimizer_steps == 10_000
    assert early < 2048 and late < 2048, f"steps left {early} and {late} bytes behind"
    assert block_growth < 100, f"{block_growth} more Python blocks after 7,000 steps"


def test_dropout_draws_one_seed_per_call_not_a_host_mask(monkeypatch):
    """A dropout mask is made from one seed and the element indices (dropout_mask.py), where
    the tensor lives: the host draws one number per call, not one per element."""
    from minigrad.nn import functional as F
    from minigrad.nn.functional import dropout_mask

    asked = []
    real = mg.random.generator()

    class Spy:
        def integers(self, low, high):
            asked.append((low, high))
            return real.integers(low, high)

    monkeypatch.setattr(dropout_mask, "generator", lambda: Spy())
    assert F.dropout(mg.ones(40, 50), 0.5).dtype == np.float32
    assert F.dropout(mg.ones(3, dtype=np.float64), 0.5).dtype == np.float64
    assert len(asked) == 2
