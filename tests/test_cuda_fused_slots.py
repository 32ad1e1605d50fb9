"""The fused optimizer kernel's 16-byte slots (optim/_kernels.py) against the per-parameter
kernel, bit for bit: sizes that leave short last slots, and arrays that are not 16-byte
aligned (the kernel then goes element by element). Marked `gpu`."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim

pytestmark = pytest.mark.gpu

SIZES = [1, 3, 4, 5, 17, 4096 * 3 + 7, 2, 64]


def params(dtype, misaligned: bool):
    cupy = mg.backend.cupy_module()
    rng = np.random.default_rng(0)
    out = []
    for size in SIZES:
        values = cupy.asarray(rng.standard_normal(size + 1).astype(dtype))
        data = values[1:] if misaligned else values[:size].copy()  # [1:]: one element off
        out.append(mg.Tensor(data, requires_grad=True))
    return out


def run(cls, kwargs, dtype, misaligned, fused):
    cupy = mg.backend.cupy_module()
    ps = params(dtype, misaligned)
    opt = cls(ps, **kwargs)
    opt.fused = fused
    rng = np.random.default_rng(1)
    for _ in range(5):
        grads = [cupy.asarray(rng.standard_normal(p.shape).astype(dtype)) for p in ps]
        opt.step(mg.GradientStore({p.id: g for p, g in zip(ps, grads)}))
    values = [p.numpy() for p in ps]
    opt.release()
    return values


@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(
    "cls,kwargs",
    [(optim.AdamW, dict(lr=1e-2, eps=1e-4, amsgrad=True)), (optim.SGD, dict(lr=0.1, momentum=0.9))],
)
def test_fused_slots_match_the_per_parameter_kernel(cls, kwargs, dtype, misaligned):
    fused = run(cls, kwargs, dtype, misaligned, fused=True)
    single = run(cls, kwargs, dtype, misaligned, fused=False)
    for a, b in zip(fused, single):
        np.testing.assert_array_equal(a, b)


def test_training_reaches_a_steady_state_with_no_new_tables():
    """Two optimizers (weights, biases) over an MLP, through the Trainer: after a few steps
    every gradient comes back at the same address, so no step uploads a new pointer table."""
    from minigrad import nn
    from minigrad.nn import functional as F

    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).to("gpu")
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=1e-2)
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], lr=1e-2)
    trainer = optim.Trainer(opt_w, opt_b)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((16, 64)), device="gpu")
    y = mg.tensor(rng.integers(0, 10, 16), device="gpu")
    for _ in range(4):
        trainer.train_step(lambda: F.cross_entropy(model(x), y), batch_size=16)
    uploads = [opt._pointer_tables.uploads for opt in (opt_w, opt_b)]
    for _ in range(6):
        trainer.train_step(lambda: F.cross_entropy(model(x), y), batch_size=16)
    assert [opt._pointer_tables.uploads for opt in (opt_w, opt_b)] == uploads
