"""Training end to end on the GPU: the model, the step and the loss bookkeeping stay there.

Marked `gpu`: skipped where CuPy or a CUDA device is missing.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F

pytestmark = pytest.mark.gpu


def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def make_trainer(model):
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=1e-2)
    opt_b = optim.AdamW([p for n, p in named if n.endswith("bias")], lr=1e-2, weight_decay=0.0)
    return optim.Trainer(opt_w, opt_b)


def loss_of(model, x, y):
    """The Trainer's closure: the loss of one batch."""
    return lambda: F.cross_entropy(model(x), y)


def batches(count=6, size=16):
    rng = np.random.default_rng(0)
    return [
        (rng.standard_normal((size, 64)).astype(np.float32), rng.integers(0, 10, size))
        for _ in range(count)
    ]


SPIN = r"""
extern "C" __global__ void spin(long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


def test_training_steps_never_wait_for_the_device():
    """Forward, cross-entropy, backward, both AdamW steps and the Trainer's running loss make
    the host wait for nothing: with the GPU kept busy by a long kernel queued first, the
    steps return while that kernel is still running. Only epoch_avg_loss() waits.

    (tests/test_cuda_graphs.py proves the same by capturing whole steps as CUDA graphs.)
    """
    cupy = pytest.importorskip("cupy")
    model = mlp().to("gpu")
    trainer = make_trainer(model)
    data = [(mg.tensor(x, device="gpu"), mg.tensor(y, device="gpu")) for x, y in batches(4)]
    x, y = data[0]
    # Compile and load every kernel first: two steps, since the second is the first to add
    # to an existing running loss (loading a kernel waits for the GPU).
    for _ in range(2):
        trainer.train_step(loss_of(model, x, y), batch_size=len(y))
    trainer.epoch_avg_loss()
    spin = cupy.RawKernel(SPIN, "spin")
    busy = cupy.cuda.Event()
    spin((1,), (1,), (np.int64(4 * 10**9),))  # about two seconds of GPU clock cycles
    busy.record()
    for x, y in data:
        trainer.train_step(loss_of(model, x, y), batch_size=len(y))
    still_running = not busy.done
    loss = trainer.epoch_avg_loss()  # the one synchronization of an epoch
    assert still_running, "a training step waited for the GPU to finish earlier work"
    assert busy.done and np.isfinite(loss)


def test_gpu_training_matches_cpu_training():
    losses = {}
    weights = {}
    for device in ("cpu", "gpu"):
        model = mlp().to(device)
        trainer = make_trainer(model)
        history = []
        for _epoch in range(3):
            for x, y in batches():
                xb, yb = mg.tensor(x, device=device), mg.tensor(y, device=device)
                trainer.train_step(loss_of(model, xb, yb), batch_size=len(y))
            history.append(trainer.epoch_avg_loss())
        losses[device] = history
        weights[device] = [p.numpy() for p in model.parameters()]
        assert all(p.device == device for p in model.parameters())
    np.testing.assert_allclose(losses["gpu"], losses["cpu"], rtol=1e-4)
    assert losses["gpu"][-1] < losses["gpu"][0]
    for a, b in zip(weights["gpu"], weights["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
