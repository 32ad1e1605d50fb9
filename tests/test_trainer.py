"""Trainer: train_step, the weighted epoch average, gradient accumulation, fit(), state."""

import ast
import inspect
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.optim import SGD, Adam, Trainer, clip_grad_norm
from minigrad.optim import trainer as trainer_module


class TinyModel:
    """y = x @ w + b, duck-typed like a Module: callable, with train() and eval()."""

    def __init__(self, device="cpu", dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        self.w = mg.tensor(rng.standard_normal((3, 2)), dtype=dtype, device=device,
                           requires_grad=True, name="w")  # fmt: skip
        self.b = mg.tensor(np.zeros(2), dtype=dtype, device=device, requires_grad=True, name="b")
        self.calls = []

    def __call__(self, x):
        return x @ self.w + self.b

    def train(self):
        self.calls.append("train")

    def eval(self):
        self.calls.append("eval")

    def parameters(self):
        return [self.w, self.b]


def mse(prediction, target):
    diff = prediction - target
    return (diff * diff).mean()


def data(n, device="cpu", dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal((n, 3)), dtype=dtype, device=device)
    y = mg.tensor(rng.standard_normal((n, 2)), dtype=dtype, device=device)
    return x, y


def batches(x, y, sizes):
    out, start = [], 0
    for size in sizes:
        out.append((x[start : start + size], y[start : start + size]))
        start += size
    return out


def values(model):
    return [backend.to_numpy(p.data).copy() for p in model.parameters()]


# ---------------------------------------------------------------- train_step


def test_train_step_is_backward_then_step(device):
    a, b = TinyModel(device), TinyModel(device)
    trainer = Trainer(Adam(a.parameters(), lr=0.1))
    opt_b = Adam(b.parameters(), lr=0.1)
    for xb, yb in batches(*data(12, device), [4, 4, 4]):
        loss = trainer.train_step(lambda xb=xb, yb=yb: mse(a(xb), yb))
        assert isinstance(loss, mg.Tensor) and loss.shape == ()
        opt_b.step(mse(b(xb), yb).backward())
    for p, q in zip(values(a), values(b)):
        np.testing.assert_array_equal(p, q)
    assert trainer.optimizer_steps == 3


def test_several_optimizers_each_step_their_own(device):
    a, b = TinyModel(device), TinyModel(device)
    trainer = Trainer(SGD([a.w], lr=0.1, momentum=0.9), Adam([a.b], lr=0.1))
    opt_w, opt_b = SGD([b.w], lr=0.1, momentum=0.9), Adam([b.b], lr=0.1)
    for xb, yb in batches(*data(8, device), [4, 4]):
        trainer.train_step(lambda xb=xb, yb=yb: mse(a(xb), yb))
        grads = mse(b(xb), yb).backward()
        opt_w.step(grads)
        opt_b.step(grads)
    for p, q in zip(values(a), values(b)):
        np.testing.assert_array_equal(p, q)


def test_grad_clip_clips_before_the_step(device):
    a, b = TinyModel(device), TinyModel(device)
    trainer = Trainer(SGD(a.parameters(), lr=0.1), grad_clip=0.05)
    opt = SGD(b.parameters(), lr=0.1)
    x, y = data(6, device)
    trainer.train_step(lambda: mse(a(x), y))
    grads = mse(b(x), y).backward()
    clip_grad_norm(grads, 0.05)
    opt.step(grads)
    for p, q in zip(values(a), values(b)):
        np.testing.assert_allclose(p, q, rtol=1e-14)


# ---------------------------------------------------------------- the epoch average


def test_the_epoch_average_weights_a_short_last_batch(device):
    model = TinyModel(device)
    trainer = Trainer(SGD(model.parameters(), lr=0.01))
    losses, sizes = [], [4, 4, 2]
    for xb, yb in batches(*data(10, device), sizes):
        loss = trainer.train_step(lambda xb=xb, yb=yb: mse(model(xb), yb), batch_size=len(yb))
        losses.append(loss.item())
    if device == "gpu":
        assert backend.device_of(trainer._loss_sum) == "gpu"  # no host copy per step
    expected = sum(s * l for s, l in zip(sizes, losses)) / sum(sizes)
    assert trainer.epoch_avg_loss() == pytest.approx(expected, rel=1e-12)
    assert trainer.epoch == 1
    # A new epoch has started; without batch_size every step weighs the same.
    losses = []
    for xb, yb in batches(*data(10, device), sizes):
        losses.append(trainer.train_step(lambda xb=xb, yb=yb: mse(model(xb), yb)).item())
    assert trainer.epoch_avg_loss() == pytest.approx(np.mean(losses), rel=1e-12)
    with pytest.raises(RuntimeError, match="no train_step"):
        trainer.epoch_avg_loss()


# ---------------------------------------------------------------- accumulation


@pytest.mark.parametrize(
    "sizes, weighted",
    [([3, 3, 2], True), ([4, 4], False), ([2, 2, 2, 2], False)],
    ids=["unequal-weighted", "two-equal", "four-equal"],
)
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_accumulation_equals_the_large_batch_step(cls, sizes, weighted, device):
    x, y = data(8, device)
    big, small = TinyModel(device), TinyModel(device)
    Trainer(cls(big.parameters(), lr=0.1)).train_step(lambda: mse(big(x), y))
    trainer = Trainer(cls(small.parameters(), lr=0.1), accumulate=len(sizes))
    for k, (xb, yb) in enumerate(batches(x, y, sizes)):
        assert trainer.optimizer_steps == 0, k
        trainer.train_step(
            lambda xb=xb, yb=yb: mse(small(xb), yb), batch_size=len(yb) if weighted else None
        )
    assert trainer.optimizer_steps == 1
    for p, q in zip(values(small), values(big)):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_leftover_micro_batches_step_at_the_end_of_the_epoch():
    x, y = data(8)
    model, alone = TinyModel(), TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.1), accumulate=3)
    parts = batches(x, y, [2, 2, 2, 2])
    for xb, yb in parts:
        trainer.train_step(lambda xb=xb, yb=yb: mse(model(xb), yb), batch_size=2)
    assert trainer.optimizer_steps == 1
    after_first = values(model)
    trainer.epoch_avg_loss()
    assert trainer.optimizer_steps == 2 and trainer.flush() is False
    # The leftover step is the step of the last micro-batch alone.
    for p, v in zip(alone.parameters(), after_first):
        p.data[...] = v
    opt = SGD(alone.parameters(), lr=0.1)
    opt.step(mse(alone(parts[3][0]), parts[3][1]).backward())
    for p, q in zip(values(model), values(alone)):
        np.testing.assert_allclose(p, q, rtol=1e-14)


# ---------------------------------------------------------------- mistakes


def test_train_step_explains_a_bad_closure():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.1))
    x, y = data(4)
    with pytest.raises(TypeError, match="must return the loss tensor"):
        trainer.train_step(lambda: 1.0)
    with pytest.raises(ValueError, match="one element"):
        trainer.train_step(lambda: model(x))
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        trainer.train_step(lambda: mse(model(x), y).detach())
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        trainer.train_step(lambda: mse(model(x), y), batch_size=0)


def test_trainer_arguments_are_checked():
    model = TinyModel()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="at least one optimizer"):
        Trainer()
    with pytest.raises(TypeError, match="separate arguments"):
        Trainer([opt])
    with pytest.raises(TypeError, match="takes optimizers"):
        Trainer(model)
    with pytest.raises(ValueError, match="given twice"):
        Trainer(opt, opt)
    with pytest.raises(ValueError, match="accumulate must be an integer >= 1"):
        Trainer(opt, accumulate=0)
    with pytest.raises(ValueError, match="grad_clip must be > 0"):
        Trainer(opt, grad_clip=0)


# ---------------------------------------------------------------- fit


def test_fit_with_a_model_and_loss_fn():
    model = TinyModel()
    x, y = data(10)
    loader = batches(x, y, [4, 4, 2])
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    seen = []

    def validate():
        assert not mg.is_grad_enabled()
        assert model.calls[-1] == "eval"
        return {"val_loss": mse(model(x), y), "note": "ok"}

    history = trainer.fit(
        model, loader, epochs=3, loss_fn=mse, validate=validate, on_epoch_end=seen.append
    )
    assert history is trainer.history and [r["epoch"] for r in history] == [1, 2, 3]
    assert seen == history and trainer.epoch == 3 and trainer.optimizer_steps == 9
    assert set(history[0]) == {"epoch", "train_loss", "val_loss", "note"}
    assert type(history[0]["val_loss"]) is float and history[0]["note"] == "ok"
    assert history[2]["train_loss"] < history[0]["train_loss"]
    assert model.calls == ["train", "eval", "train"] * 3


def test_fit_with_a_step_function_and_early_stop():
    model = TinyModel()
    x, y = data(8)
    steps = []

    def step(xb, yb):
        steps.append(len(yb))
        return mse(model(xb), yb)

    trainer = Trainer(Adam(model.parameters(), lr=0.01))
    history = trainer.fit(
        step,
        batches(x, y, [4, 4]),
        epochs=5,
        validate=lambda: 0.5,
        on_epoch_end=lambda record: record["epoch"] == 2,
        progress=False,
    )
    assert len(history) == 2 and history[1]["val_loss"] == 0.5 and steps == [4] * 4


def test_fit_continues_the_epoch_count():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    loader = batches(*data(4), [4])
    trainer.fit(model, loader, epochs=2, loss_fn=mse)
    trainer.fit(model, loader, epochs=1, loss_fn=mse)
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3]


def test_fit_needs_a_loader_it_can_read_again():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    once = iter(batches(*data(4), [2, 2]))
    with pytest.raises(ValueError, match="no batches in epoch 2"):
        trainer.fit(model, once, epochs=2, loss_fn=mse)


def test_fit_shows_a_progress_bar_when_asked(capsys):
    pytest.importorskip("tqdm")
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    trainer.fit(model, batches(*data(4), [2, 2]), epochs=1, loss_fn=mse, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def test_fit_without_tqdm_just_has_no_bar(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    trainer.fit(model, batches(*data(4), [2, 2]), epochs=1, loss_fn=mse, progress=True)
    assert capsys.readouterr().err == "" and len(trainer.history) == 1


def test_fit_with_a_model_needs_pairs():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    x, _ = data(4)
    with pytest.raises(ValueError, match="pair \\(x, y\\)"):
        trainer.fit(model, [(x,)], epochs=1, loss_fn=mse)


# ---------------------------------------------------------------- state


def test_state_dict_round_trip():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    trainer.fit(model, batches(*data(4), [2, 2]), epochs=2, loss_fn=mse, validate=lambda: 1.0)
    state = trainer.state_dict()
    assert state == {"epoch": 2, "optimizer_steps": 4, "history": trainer.history}
    other = Trainer(Adam(TinyModel(seed=3).parameters()))
    other.load_state_dict(state)
    assert other.state_dict() == state
    state["history"][0]["epoch"] = 99  # the trainer keeps its own copy
    assert other.history[0]["epoch"] == 1


@pytest.mark.parametrize(
    "state, message",
    [
        ([], "is a dict"),
        ({"epoch": 1, "optimizer_steps": 0}, "missing 'history'"),
        ({"epoch": 1, "optimizer_steps": 0, "history": [], "x": 1}, "unexpected key 'x'"),
        ({"epoch": -1, "optimizer_steps": 0, "history": []}, "'epoch' must be an integer"),
        ({"epoch": 1, "optimizer_steps": 0, "history": [3]}, "list of dicts"),
    ],
)
def test_a_bad_trainer_state_changes_nothing(state, message):
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    trainer.fit(model, batches(*data(4), [4]), epochs=1, loss_fn=mse)
    before = trainer.state_dict()
    with pytest.raises((TypeError, ValueError), match=message):
        trainer.load_state_dict(state)
    assert trainer.state_dict() == before


def test_the_trainer_does_not_import_nn():
    tree = ast.parse(inspect.getsource(trainer_module))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not any("nn" in name.split(".") for name in imported), imported
