"""mg.cuda.graph: a training step captured once and replayed, against the same steps run
eagerly on the GPU (bit for bit), and the errors for steps that cannot be captured.

The GPU tests are marked `gpu`; the import test runs everywhere.
"""

import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F
from minigrad.optim.clip import clip_grad_norm

STEPS = 100
OPTIMIZERS = [
    (optim.SGD, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-3)),
    (optim.AdamW, dict(lr=1e-2, weight_decay=1e-2)),
]
IDS = ["sgd-momentum", "sgd-nesterov", "adam-amsgrad", "adamw"]


def test_importing_minigrad_cuda_does_not_import_cupy():
    code = "import sys, minigrad, minigrad.cuda; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def batches(count, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (
            mg.tensor(rng.standard_normal((size, 20)), device="gpu"),
            mg.tensor(rng.integers(0, 5, size), device="gpu"),
        )
        for _ in range(count)
    ]


class Setup:
    """A model, one optimizer, a scheduler and the step function: built the same way twice."""

    def __init__(self, cls, kwargs, clip=True):
        mg.manual_seed(0)
        self.model = nn.Sequential(
            nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 5)
        ).to("gpu")
        self.opt = cls(self.model.parameters(), **kwargs)
        self.sched = optim.CosineAnnealingLR(self.opt, T_max=STEPS)
        self.clip = clip

    def step(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        grads = loss.backward()
        if self.clip:
            clip_grad_norm(grads, 0.5, error_if_nonfinite=False)
        self.opt.step(grads)
        return loss

    def result(self):
        values = [p.numpy() for p in self.model.parameters()]
        state = self.opt.state_dict()
        self.opt.release()
        return values, state


def assert_same_training(a, b):
    (values_a, state_a), (values_b, state_b) = a, b
    for x, y in zip(values_a, values_b):
        np.testing.assert_array_equal(x, y)
    assert state_a.scalars == state_b.scalars
    for key in state_a.buffers:
        np.testing.assert_array_equal(state_a.buffers[key], state_b.buffers[key])


def eager_run(cls, kwargs, data):
    setup = Setup(cls, kwargs)
    losses = []
    for x, y in data:
        losses.append(setup.step(x, y).item())
        setup.sched.step()
    return losses, setup.result()


@pytest.mark.gpu
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_replays_equal_eager_steps_bit_for_bit(cls, kwargs):
    """100 steps with a cosine schedule (a new lr every step, seen by the next replay),
    gradient clipping and dropout (a new mask every replay, the one the eager step draws):
    the same parameters, optimizer state and losses as eager steps."""
    import minigrad.cuda

    data = batches(STEPS)
    expected_losses, expected = eager_run(cls, kwargs, data)

    setup = Setup(cls, kwargs)
    step = minigrad.cuda.graph(setup.step, *data[0])  # step 1, eagerly, then the capture
    losses = [step.warmup_output.item()]
    setup.sched.step()
    for x, y in data[1:]:
        losses.append(step(x, y).item())
        setup.sched.step()
    assert step.replays == STEPS - 1
    assert losses == expected_losses
    assert_same_training(setup.result(), expected)


@pytest.mark.gpu
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_eager_steps_between_replays_stay_in_step(cls, kwargs):
    """The device clock is rewritten when eager steps moved the host's step count."""
    import minigrad.cuda

    data = batches(12, seed=1)
    _, expected = eager_run(cls, kwargs, data)
    setup = Setup(cls, kwargs)
    step = minigrad.cuda.graph(setup.step, *data[0])
    setup.sched.step()
    for t, (x, y) in enumerate(data[1:], start=1):
        if t % 4 == 0:
            setup.step(x, y)  # eager
        else:
            step(x, y)
        setup.sched.step()
    assert_same_training(setup.result(), expected)


@pytest.mark.gpu
@pytest.mark.parametrize("new_shapes", ["capture", "eager"])
def test_a_batch_of_another_shape_is_one_correct_step(new_shapes):
    import minigrad.cuda

    cls, kwargs = OPTIMIZERS[3]
    data = batches(5) + batches(2, size=7, seed=3) + batches(2, seed=4)
    _, expected = eager_run(cls, kwargs, data)
    setup = Setup(cls, kwargs)
    step = minigrad.cuda.graph(setup.step, *data[0], new_shapes=new_shapes)
    setup.sched.step()
    for x, y in data[1:]:
        step(x, y)
        setup.sched.step()
    assert len(step.shapes) == (2 if new_shapes == "capture" else 1)
    assert_same_training(setup.result(), expected)


@pytest.mark.gpu
def test_a_host_read_inside_the_step_names_the_op_and_the_line():
    import minigrad.cuda

    setup = Setup(optim.AdamW, dict(lr=1e-3))
    x, y = batches(1)[0]

    def step_with_item(x, y):
        loss = setup.step(x, y)
        print(loss.item())  # the offending line
        return loss

    with pytest.raises(minigrad.cuda.CaptureError) as info:
        minigrad.cuda.graph(step_with_item, x, y)
    message = str(info.value)
    assert "item" in message
    assert "print(loss.item())" in message and "test_cuda_graphs.py" in message
    setup.opt.release()


@pytest.mark.gpu
def test_a_branch_on_a_device_value_fails_at_capture():
    import minigrad.cuda

    setup = Setup(optim.SGD, dict(lr=0.1))
    x, y = batches(1)[0]

    def step_with_branch(x, y):
        loss = setup.step(x, y)
        if loss > 100:  # a Python branch on a GPU value
            raise AssertionError("unreachable")
        return loss

    with pytest.raises(minigrad.cuda.CaptureError, match="if loss > 100"):
        minigrad.cuda.graph(step_with_branch, x, y)
    setup.opt.release()


@pytest.mark.gpu
def test_a_failed_capture_changes_no_step_count():
    import minigrad.cuda

    setup = Setup(optim.Adam, dict(lr=1e-3))
    x, y = batches(1)[0]

    def bad(x, y):
        loss = setup.step(x, y)
        loss.numpy()
        return loss

    with pytest.raises(minigrad.cuda.CaptureError, match="numpy"):
        minigrad.cuda.graph(bad, x, y)
    assert set(setup.opt.steps) == {1}  # the warm-up's step, not the capture's
    setup.opt.release()


@pytest.mark.gpu
def test_inputs_must_be_arrays():
    import minigrad.cuda

    with pytest.raises(TypeError, match="tensors or arrays"):
        minigrad.cuda.graph(lambda n: n, 3)


def loader(sizes=(16, 16, 16, 16, 9), seed=5):
    rng = np.random.default_rng(seed)
    return [
        (
            mg.tensor(rng.standard_normal((n, 20)), device="gpu"),
            mg.tensor(rng.integers(0, 5, n), device="gpu"),
        )
        for n in sizes
    ]


def fit_run(cuda_graph, data, epochs=4):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 5))
    model = model.to("gpu")
    named = list(model.named_parameters())
    opt_w = optim.AdamW([p for n, p in named if n.endswith("weight")], lr=1e-2)
    opt_b = optim.SGD([p for n, p in named if n.endswith("bias")], lr=0.1, momentum=0.9)
    sched = optim.StepLR(opt_w, step_size=3, gamma=0.5)
    trainer = optim.Trainer(opt_w, opt_b, grad_clip=0.5, cuda_graph=cuda_graph)
    history = trainer.fit(
        model,
        data,
        epochs=epochs,
        loss_fn=F.cross_entropy,
        schedulers=[sched],
        scheduler_interval="step",
    )
    values = [p.numpy() for p in model.parameters()]
    states = [opt.state_dict() for opt in (opt_w, opt_b)]
    return history, values, states, trainer


@pytest.mark.gpu
def test_fit_with_cuda_graph_equals_eager_fit():
    """Two optimizers, clipping, dropout, a per-step scheduler and a short last batch (its
    own graph): the same history, parameters and optimizer states, bit for bit."""
    data = loader()
    eager = fit_run(False, data)
    graphed = fit_run(True, data)
    assert graphed[0] == eager[0]
    for a, b in zip(graphed[1], eager[1]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(graphed[2], eager[2]):
        assert_same_training(([], a), ([], b))
    assert graphed[3].optimizer_steps == eager[3].optimizer_steps == 4 * len(data)
    assert sorted(graphed[3]._graph.shapes) == [((9, 20), (9,)), ((16, 20), (16,))]


def test_cuda_graph_refuses_gradient_accumulation():
    opt = optim.SGD([mg.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="accumulate=1"):
        optim.Trainer(opt, accumulate=2, cuda_graph=True)
