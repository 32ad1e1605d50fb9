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
    assert state == {
        "epoch": 2,
        "optimizer_steps": 4,
        "history": trainer.history,
        "loss_sum": 0.0,  # at an epoch's end nothing is running
        "loss_weight": 0.0,
    }
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
        ({"epoch": 1, "optimizer_steps": 0, "history": [], "loss_weight": -1}, "'loss_weight'"),
        ({"epoch": 1, "optimizer_steps": 0, "history": [], "loss_sum": "1"}, "'loss_sum'"),
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


def test_check_state_dict_changes_nothing_then_apply_assigns():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    trainer.fit(model, batches(*data(4), [4]), epochs=2, loss_fn=mse)
    state = trainer.state_dict()
    other = Trainer(SGD(TinyModel(seed=2).parameters(), lr=0.05))
    prepared = other.check_state_dict(state)
    assert other.epoch == 0 and other.history == []
    state["history"].append({"epoch": 99})  # the prepared state is a copy
    other.apply_state_dict(prepared)
    assert other.epoch == 2 and len(other.history) == 2


def test_an_older_state_without_the_running_loss_loads_as_an_epoch_end():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    trainer.load_state_dict({"epoch": 3, "optimizer_steps": 6, "history": []})
    assert trainer.epoch == 3
    with pytest.raises(RuntimeError, match="no train_step"):
        trainer.epoch_avg_loss()


# ---------------------------------------------------------------- mid-epoch state


def test_a_state_saved_mid_epoch_keeps_the_running_loss(device):
    """Saved after 2 of 4 batches, resumed in a fresh trainer: the same epoch average."""
    x, y = data(16, device)
    parts = batches(x, y, [4, 4, 4, 4])

    def train(trainer, model, chunk):
        for xb, yb in chunk:
            trainer.train_step(lambda xb=xb, yb=yb: mse(model(xb), yb), batch_size=len(yb))

    model = TinyModel(device)
    trainer = Trainer(SGD(model.parameters(), lr=0.05, momentum=0.9))
    train(trainer, model, parts[:2])
    saved = trainer.state_dict()
    opt_state = trainer.optimizers[0].state_dict()
    weights = values(model)
    train(trainer, model, parts[2:])
    uninterrupted = trainer.epoch_avg_loss()

    again = TinyModel(device)
    for p, v in zip(again.parameters(), weights):
        p.data[...] = backend.to_device(v, device)
    resumed = Trainer(SGD(again.parameters(), lr=0.05, momentum=0.9))
    resumed.optimizers[0].load_state_dict(opt_state)
    resumed.load_state_dict(saved)
    train(resumed, again, parts[2:])
    assert resumed.epoch_avg_loss() == uninterrupted  # bit for bit
    assert resumed.epoch == trainer.epoch == 1


def test_a_state_with_pending_micro_batches_is_refused():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05), accumulate=2)
    x, y = data(4)
    trainer.train_step(lambda: mse(model(x), y))
    with pytest.raises(
        RuntimeError, match=r"1 of 2 accumulated micro-batches have not been stepped.*\(every 2"
    ):
        trainer.state_dict()
    trainer.train_step(lambda: mse(model(x), y))
    assert trainer.state_dict()["loss_weight"] == 2.0


# ---------------------------------------------------------------- fit steps the schedulers


def test_fit_steps_the_schedulers_once_per_epoch_by_default():
    from minigrad.optim import StepLR

    model = TinyModel()
    opt = SGD(model.parameters(), lr=0.8)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    seen = []
    trainer = Trainer(opt)
    trainer.fit(model, batches(*data(8), [4, 4]), epochs=3, loss_fn=mse, schedulers=[sched],
                on_epoch_end=lambda record: seen.append(opt.lr))  # fmt: skip
    assert sched.last_epoch == 3 and seen == [0.4, 0.2, 0.1]


def test_fit_steps_a_plateau_scheduler_with_the_epochs_val_loss():
    """ReduceLROnPlateau watches a metric: fit gives it val_loss when validate reports one.
    The training loss falls, the (constant) validation loss never improves: the lr drops
    after every epoch but the first, which shows the val_loss is the one watched."""
    from minigrad.optim import ReduceLROnPlateau

    model = TinyModel()
    opt = SGD(model.parameters(), lr=0.1)
    sched = ReduceLROnPlateau(opt, patience=0, factor=0.5)
    lrs = []
    trainer = Trainer(opt)
    trainer.fit(model, batches(*data(8), [4, 4]), epochs=3, loss_fn=mse, schedulers=sched,
                validate=lambda: {"val_loss": 1.0},
                on_epoch_end=lambda record: lrs.append(opt.lr))  # fmt: skip
    assert lrs == [0.1, 0.05, 0.025]
    with pytest.raises(ValueError, match="scheduler_interval='epoch'"):
        trainer.fit(model, batches(*data(8), [4]), epochs=1, loss_fn=mse, schedulers=sched,
                    scheduler_interval="step")  # fmt: skip


@pytest.mark.parametrize("accumulate, expected", [(1, 6), (2, 4)])
def test_fit_can_step_the_schedulers_after_every_optimizer_step(accumulate, expected):
    """Per step: once per optimizer step, so accumulated micro-batches count once (here 3
    micro-batches an epoch: one full group and a leftover flushed at the epoch's end)."""
    from minigrad.optim import ExponentialLR

    model = TinyModel()
    opt = SGD(model.parameters(), lr=0.1)
    sched = ExponentialLR(opt, gamma=0.9)
    trainer = Trainer(opt, accumulate=accumulate)
    trainer.fit(model, batches(*data(6), [2, 2, 2]), epochs=2, loss_fn=mse, schedulers=sched,
                scheduler_interval="step")  # fmt: skip
    assert sched.last_epoch == trainer.optimizer_steps == expected
    assert opt.lr == pytest.approx(0.1 * 0.9**expected)


def test_fit_refuses_an_unknown_scheduler_interval():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="scheduler_interval must be 'epoch' or 'step'"):
        trainer.fit(model, batches(*data(4), [4]), epochs=1, loss_fn=mse,
                    scheduler_interval="batch")  # fmt: skip
    assert trainer.epoch == 0


# ---------------------------------------------------------------- a loss that is NaN


def nan_after(model, epoch_of_nan, trainer):
    def step(xb, yb):
        loss = mse(model(xb), yb)
        return loss * float("nan") if trainer.epoch + 1 >= epoch_of_nan else loss

    return step


def test_fit_stops_at_the_end_of_the_epoch_whose_loss_is_nan():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    validated = []
    with pytest.raises(FloatingPointError, match="training loss of epoch 2 is nan"):
        trainer.fit(nan_after(model, 2, trainer), batches(*data(8), [4, 4]), epochs=5,
                    validate=lambda: validated.append(1))  # fmt: skip
    assert trainer.epoch == 2 and [r["epoch"] for r in trainer.history] == [1, 2]
    assert validated == [1]  # not run on the NaN epoch


def test_fit_trains_on_through_nan_when_asked():
    model = TinyModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.05))
    history = trainer.fit(nan_after(model, 2, trainer), batches(*data(8), [4, 4]), epochs=3,
                          stop_on_nonfinite=False)  # fmt: skip
    assert len(history) == 3 and np.isnan(history[2]["train_loss"])


# ---------------------------------------------------------------- resuming says what it did


def linear_run(lr=0.05, seed=0):
    mg.manual_seed(seed)
    model = mg.nn.Linear(3, 2, dtype=np.float64)
    opt = Adam(model.parameters(), lr=lr)
    return model, opt, Trainer(opt)


def test_resuming_a_finished_run_says_so(tmp_path, capsys):
    loader = batches(*data(8), [4, 4])
    model, _, trainer = linear_run()
    trainer.fit(model, loader, epochs=2, loss_fn=mse, checkpoint_dir=tmp_path)
    assert trainer.resumed is None
    capsys.readouterr()

    model, opt, trainer = linear_run(lr=0.01)  # the script run again, with a new lr
    trainer.fit(model, loader, epochs=2, loss_fn=mse, checkpoint_dir=tmp_path)
    out = capsys.readouterr().out
    assert "epoch-000002.npz at epoch 2" in out
    assert "already complete" in out and "0 epochs to train" in out
    assert "optimizers[0].lr = 0.05 (passed: 0.01)" in out and "kept over" in out
    assert "restored: model, optimizers[0], trainer, random generator" in out
    assert trainer.resumed == {
        "path": str(tmp_path / "epoch-000002.npz"),
        "restored": ["model", "optimizers[0]", "trainer", "random generator"],
        "epoch": 2,
        "target_epoch": 2,
        "epochs_left": 0,
        "changed": {"optimizers[0].lr": {"checkpoint": 0.05, "passed": 0.01}},
    }
    assert opt.lr == 0.05 and len(trainer.history) == 2


def test_resuming_mid_run_names_the_epochs_left(tmp_path, capsys):
    loader = batches(*data(8), [4, 4])
    model, _, trainer = linear_run()
    trainer.fit(model, loader, epochs=2, loss_fn=mse, checkpoint_dir=tmp_path)
    model, _, trainer = linear_run()
    capsys.readouterr()
    trainer.fit(model, loader, epochs=5, loss_fn=mse, checkpoint_dir=tmp_path)
    out = capsys.readouterr().out
    assert "at epoch 2; 3 epochs to train (to epoch 5)" in out and "kept over" not in out
    assert trainer.resumed["epochs_left"] == 3 and trainer.resumed["changed"] == {}
    assert trainer.epoch == 5


def test_a_nan_epoch_saves_no_checkpoint(tmp_path):
    from minigrad.checkpoint import epoch_checkpoints

    model, _, trainer = linear_run()
    loader = batches(*data(8), [4, 4])

    def step(xb, yb):
        loss = mse(model(xb), yb)
        return loss * float("nan") if trainer.epoch >= 1 else loss

    with pytest.raises(FloatingPointError, match="no checkpoint was saved for epoch 2"):
        trainer.fit(_model_with_step(model, step), loader, epochs=3, checkpoint_dir=tmp_path)
    assert [p.name for p in epoch_checkpoints(tmp_path)] == ["epoch-000001.npz"]


def test_fit_saves_only_a_loader_that_load_can_restore(tmp_path, capsys):
    """A loader with state_dict()/load_state_dict() but not the state protocol
    (check_state_dict/apply_state_dict) is not saved: mg.load would refuse it at resume."""

    class OldStyleLoader(list):
        def state_dict(self):
            return {"position": 0}

        def load_state_dict(self, state):
            raise AssertionError("mg.load never calls load_state_dict")

    from minigrad.checkpoint import epoch_checkpoints, read_info

    loader = OldStyleLoader(batches(*data(8), [4, 4]))
    model, _, trainer = linear_run()
    trainer.fit(model, loader, epochs=1, loss_fn=mse, checkpoint_dir=tmp_path)
    assert read_info(epoch_checkpoints(tmp_path)[-1])["contents"]["loaders"] == 0

    model, _, trainer = linear_run()  # the script run again: it resumes, loader and all
    trainer.fit(model, loader, epochs=2, loss_fn=mse, checkpoint_dir=tmp_path)
    assert trainer.resumed["restored"] == ["model", "optimizers[0]", "trainer", "random generator"]
    assert trainer.epoch == 2


class _model_with_step:
    """A model for checkpointing whose call is a step function (fit without loss_fn)."""

    def __init__(self, model, step):
        self.model, self.step = model, step

    def __call__(self, *batch):
        return self.step(*batch)

    def state_dict(self):
        return self.model.state_dict()

    def load_state_dict(self, state, strict=True):
        return self.model.load_state_dict(state, strict)

    def check_state_dict(self, state, strict=True):
        return self.model.check_state_dict(state, strict)

    def apply_state_dict(self, prepared):
        return self.model.apply_state_dict(prepared)


def test_a_step_refused_by_one_optimizer_changes_no_other():
    """The Trainer checks every optimizer before it steps any: opt_b, superseded, refuses,
    and opt_w (stepped first) has not moved either."""
    model = TinyModel()
    opt_w, opt_b = SGD([model.w], lr=0.1), SGD([model.b], lr=0.1)
    trainer = Trainer(opt_w, opt_b, grad_clip=1.0)
    SGD([model.b], lr=0.1)  # a newer optimizer takes b over
    before = values(model)
    x, y = data(4)
    with pytest.raises(RuntimeError, match="no longer owns 'b'"):
        trainer.train_step(lambda: mse(model(x), y))
    for p, v in zip(values(model), before):
        np.testing.assert_array_equal(p, v)
    assert opt_w.steps == [0] and trainer.optimizer_steps == 0


def test_fit_with_checkpoints_asks_for_the_models_state_protocol_up_front(tmp_path):
    """mg.load restores the model with check_state_dict/apply_state_dict: a model with only
    state_dict/load_state_dict would be saved every epoch and refused at the resume."""

    class OldStyleModel(TinyModel):
        def state_dict(self):
            return {"w": self.w.data, "b": self.b.data}

        def load_state_dict(self, state):
            pass

    model = OldStyleModel()
    trainer = Trainer(SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="check_state_dict"):
        trainer.fit(model, batches(*data(4), [4]), epochs=1, loss_fn=mse,
                    checkpoint_dir=tmp_path)  # fmt: skip
    assert trainer.epoch == 0 and not list(tmp_path.iterdir())
