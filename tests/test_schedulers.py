"""Learning-rate schedulers against their closed forms and PyTorch's lr sequences (golden)."""

import math

import numpy as np
import pytest
from golden import load
from golden.gen_schedulers import BASE_LR, CASES, build, momentum_of

import minigrad as mg
from minigrad import optim
from minigrad.optim import (
    SGD,
    Adam,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearWarmup,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

BASE = 0.1


@pytest.fixture
def opt():
    return SGD([mg.zeros(3, requires_grad=True)], lr=BASE, momentum=0.9)


def lrs(scheduler, steps):
    """The lr in effect before each of `steps` steps."""
    out = []
    for _ in range(steps):
        out.append(scheduler.optimizer.lr)
        scheduler.step()
    return out


CLOSED_FORMS = {
    "step": (lambda o: StepLR(o, step_size=7, gamma=0.5), lambda t: BASE * 0.5 ** (t // 7)),
    "exponential": (lambda o: ExponentialLR(o, gamma=0.95), lambda t: BASE * 0.95**t),
    "cosine": (
        lambda o: CosineAnnealingLR(o, T_max=20, eta_min=0.001),
        lambda t: 0.001 + (BASE - 0.001) * (1 + math.cos(math.pi * t / 20)) / 2,
    ),
    "warmup-cosine": (
        lambda o: LinearWarmup(CosineAnnealingLR(o, T_max=20), warmup_steps=5),
        lambda t: (
            BASE * (t + 1) / 5 if t < 5 else BASE * (1 + math.cos(math.pi * (t - 5) / 20)) / 2
        ),
    ),
    "warmup-constant": (
        lambda o: LinearWarmup(o, warmup_steps=4),
        lambda t: BASE * min(1.0, (t + 1) / 4),
    ),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_schedules_follow_their_closed_forms(name, opt):
    make, formula = CLOSED_FORMS[name]
    scheduler = make(opt)
    for t, lr in enumerate(lrs(scheduler, 40)):
        assert lr == pytest.approx(formula(t), rel=1e-15, abs=1e-18), t
    assert scheduler.last_epoch == 40
    assert scheduler.get_last_lr() == opt.lr == pytest.approx(formula(40), rel=1e-15)
    assert type(opt.lr) is float


def test_cosine_reaches_eta_min_at_t_max(opt):
    scheduler = CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
    for _ in range(10):
        scheduler.step()
    assert opt.lr == pytest.approx(0.01, rel=1e-15)


def test_warmup_hands_over_to_the_wrapped_schedule(opt):
    inner = StepLR(opt, step_size=3, gamma=0.1)
    warm = LinearWarmup(inner, warmup_steps=2)
    assert opt.lr == BASE / 2  # the first step already learns
    warm.step()
    assert opt.lr == BASE
    for _ in range(4):
        warm.step()
    assert inner.last_epoch == 3 and opt.lr == pytest.approx(BASE * 0.1)


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_state_dict_round_trip(name, opt):
    make, formula = CLOSED_FORMS[name]
    scheduler = make(opt)
    lrs(scheduler, 13)
    state = scheduler.state_dict()
    assert state["type"] == type(scheduler).__name__ and state["last_epoch"] == 13
    opt2 = Adam([mg.zeros(2, requires_grad=True)], lr=BASE)
    again = make(opt2)
    again.load_state_dict(state)
    assert opt2.lr == opt.lr
    assert lrs(again, 10) == lrs(scheduler, 10)


def test_loading_restores_the_options(opt):
    state = StepLR(Adam([mg.zeros(1, requires_grad=True)], lr=1.0), 2, gamma=0.5).state_dict()
    scheduler = StepLR(opt, step_size=10)
    scheduler.load_state_dict(state)
    assert (scheduler.step_size, scheduler.gamma, scheduler.base_lr) == (2, 0.5, 1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(type="ExponentialLR"), "saved by a 'ExponentialLR' scheduler"),
        (lambda s: s.pop("gamma"), "missing 'gamma'"),
        (lambda s: s.update(extra=1), "unexpected key 'extra'"),
        (lambda s: s.update(last_epoch=-1), "last_epoch must be an integer >= 0"),
        (lambda s: s.update(step_size=0), "step_size must be an integer >= 1"),
        (lambda s: s.update(gamma=-0.5), "gamma must be >= 0"),
        (lambda s: s.update(base_lr="fast"), "base_lr must be a real number"),
    ],
)
def test_a_bad_state_is_refused_and_changes_nothing(change, message, opt):
    scheduler = StepLR(opt, step_size=3)
    lrs(scheduler, 4)
    state = scheduler.state_dict()
    change(state)
    before = (dict(vars(scheduler)), opt.lr)
    with pytest.raises((ValueError, TypeError), match=message):
        scheduler.load_state_dict(state)
    assert (dict(vars(scheduler)), opt.lr) == before


def test_a_bad_inner_state_leaves_the_warmup_unchanged(opt):
    warm = LinearWarmup(CosineAnnealingLR(opt, T_max=10), warmup_steps=3)
    lrs(warm, 5)
    state = warm.state_dict()
    state["after"]["T_max"] = 0
    state["last_epoch"] = 1
    before = (warm.last_epoch, warm.after.last_epoch, opt.lr)
    with pytest.raises(ValueError, match="T_max must be an integer >= 1"):
        warm.load_state_dict(state)
    assert (warm.last_epoch, warm.after.last_epoch, opt.lr) == before
    with pytest.raises(ValueError, match="differ in what follows the warmup"):
        LinearWarmup(opt, warmup_steps=3).load_state_dict(warm.state_dict())


def test_bad_options_are_refused(opt):
    with pytest.raises(ValueError, match="step_size must be an integer >= 1"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max must be an integer >= 1"):
        CosineAnnealingLR(opt, T_max=2.5)
    with pytest.raises(ValueError, match="warmup_steps must be an integer >= 1"):
        LinearWarmup(opt, warmup_steps=0)
    with pytest.raises(TypeError, match="drives an optimizer"):
        ExponentialLR([opt], gamma=0.9)


# ---------------------------------------------------------------- PyTorch's numbers


def golden_optimizer(case):
    param = mg.zeros(3, requires_grad=True)
    if case.get("optimizer", "sgd") == "adam":
        return Adam([param], lr=BASE_LR)
    return SGD([param], lr=BASE_LR, momentum=0.9)


def momentum(opt):
    return opt.betas[0] if isinstance(opt, Adam) else opt.momentum


@pytest.mark.parametrize("name", sorted(CASES))
def test_lr_sequence_matches_pytorch(name):
    """Every scheduler, stepped as PyTorch's was: the same lr (and momentum) at every step."""
    case, golden = CASES[name], load("schedulers").case(name)
    opt = golden_optimizer(case)
    scheduler = build(optim, opt, case["build"], torch_names=False)
    lrs, momenta = [opt.lr], [momentum(opt)]
    for t in range(case["steps"]):
        if "metrics" in case:
            scheduler.step(case["metrics"][t])
        else:
            scheduler.step()
        lrs.append(opt.lr)
        momenta.append(momentum(opt))
    # PyTorch's one negative lr (OneCycleLR's linear phase extrapolated at t = total_steps) is
    # 0 in minigrad, whose optimizers refuse a negative lr.
    np.testing.assert_allclose(lrs, np.maximum(golden["lr"], 0), rtol=1e-12, atol=1e-15)
    if momentum_of(case):
        np.testing.assert_allclose(momenta, golden["momentum"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_loaded_state_continues_the_pytorch_sequence(name):
    """Save halfway, load into a fresh scheduler of the same kind: the rest is unchanged."""
    case, golden = CASES[name], load("schedulers").case(name)
    half = case["steps"] // 2

    def step(scheduler, t):
        scheduler.step(case["metrics"][t]) if "metrics" in case else scheduler.step()

    opt = golden_optimizer(case)
    first = build(optim, opt, case["build"], torch_names=False)
    for t in range(half):
        step(first, t)
    state = first.state_dict()
    del first  # one live schedule per optimizer
    opt2 = golden_optimizer(case)
    again = build(optim, opt2, case["build"], torch_names=False)
    again.load_state_dict(state)
    lrs = [opt2.lr]
    for t in range(half, case["steps"]):
        step(again, t)
        lrs.append(opt2.lr)
    np.testing.assert_allclose(lrs, np.maximum(golden["lr"][half:], 0), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- one schedule per optimizer


def test_a_second_scheduler_on_one_optimizer_is_refused_when_stepped(opt):
    """They used to overwrite each other silently (the last stepped won)."""
    first = StepLR(opt, step_size=2)
    second = ExponentialLR(opt, gamma=0.5)
    for scheduler in (first, second):
        with pytest.raises(RuntimeError, match="two schedulers drive this optimizer.*SequentialLR"):
            scheduler.step()
    assert first.last_epoch == second.last_epoch == 0
    del first  # dropping the old one leaves one schedule: it steps again
    second.step()
    assert opt.lr == pytest.approx(BASE * 0.5)


def test_the_parts_of_a_schedule_are_stepped_through_it(opt):
    parts = [StepLR(opt, step_size=2), ExponentialLR(opt, gamma=0.5)]
    whole = SequentialLR(opt, parts, milestones=[4])
    with pytest.raises(RuntimeError, match="part of SequentialLR: step that one"):
        parts[1].step()
    for _ in range(6):
        whole.step()
    assert parts[1].last_epoch == 2 and opt.lr == pytest.approx(BASE * 0.25)


def test_every_part_starts_from_the_lr_before_any_scheduler(opt):
    """LinearWarmup sets lr = base / 4 when made; the next part still starts from base."""
    warm = LinearWarmup(opt, warmup_steps=4)
    assert opt.lr == BASE / 4
    cosine = CosineAnnealingLR(opt, T_max=10)
    assert warm.base_lr == cosine.base_lr == BASE


def test_sequential_refuses_bad_parts(opt):
    other = SGD([mg.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="2 schedulers need 1 milestones"):
        SequentialLR(opt, [StepLR(opt, 2), StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="drives a different optimizer"):
        SequentialLR(opt, [StepLR(opt, 2), StepLR(other, 3)], milestones=[3])
    with pytest.raises(TypeError, match="cannot wrap a ReduceLROnPlateau"):
        SequentialLR(opt, [StepLR(opt, 2), ReduceLROnPlateau(opt)], milestones=[3])
    with pytest.raises(ValueError, match="milestones must be increasing"):
        MultiStepLR(opt, milestones=[5, 3])


# ---------------------------------------------------------------- the state protocol


def test_a_load_refused_by_the_lr_check_changes_nothing(opt):
    """Issue 12: a state whose lr the optimizer refuses (here inf: 1e300 * 10**10) used to be
    half loaded: the scheduler took the new values, then the optimizer raised."""
    scheduler = ExponentialLR(opt, gamma=0.5)
    scheduler.step()
    state = scheduler.state_dict()
    state.update(base_lr=1e300, gamma=10.0, last_epoch=10)
    before = (dict(vars(scheduler)), opt.lr)
    with pytest.raises(ValueError, match="ExponentialLR gives no valid lr at step 10"):
        scheduler.load_state_dict(state)
    with pytest.raises(ValueError, match="no valid lr"):
        scheduler.check_state_dict(dict(state, last_epoch=10**6))  # 10.0 ** 1e6 overflows
    assert (dict(vars(scheduler)), opt.lr) == before


def test_a_composite_load_refused_by_the_lr_check_changes_no_part(opt):
    parts = [StepLR(opt, step_size=2), ExponentialLR(opt, gamma=0.5)]
    whole = SequentialLR(opt, parts, milestones=[3])
    for _ in range(5):
        whole.step()
    state = whole.state_dict()
    state["schedulers"][1].update(base_lr=1e300, gamma=1e10)
    before = [dict(vars(s)) for s in (whole, *parts)], opt.lr
    with pytest.raises(ValueError, match="ExponentialLR gives no valid lr at step 2"):
        whole.load_state_dict(state)
    assert ([dict(vars(s)) for s in (whole, *parts)], opt.lr) == before


def test_check_then_apply(opt):
    scheduler = MultiStepLR(opt, milestones=[2, 4])
    other = MultiStepLR(Adam([mg.zeros(1, requires_grad=True)], lr=1.0), milestones=[1], gamma=0.5)
    for _ in range(3):
        other.step()
    prepared = scheduler.check_state_dict(other.state_dict())
    assert scheduler.last_epoch == 0 and opt.lr == BASE  # checking changed nothing
    scheduler.apply_state_dict(prepared)
    assert scheduler.milestones == [1] and opt.lr == 0.5 and scheduler.last_epoch == 3


def test_plateau_state_round_trip_and_bad_counters(opt):
    scheduler = ReduceLROnPlateau(opt, patience=0)
    for metric in (1.0, 2.0, 3.0):
        scheduler.step(metric)
    state = scheduler.state_dict()
    progress = state["progress"]
    assert progress["best"] == 1.0 and progress["lr"] == pytest.approx(BASE * 0.01)
    del scheduler
    opt.lr = BASE
    again = ReduceLROnPlateau(opt, patience=0)
    again.load_state_dict(state)
    assert opt.lr == pytest.approx(BASE * 0.01) and again.best == 1.0
    bad_values = [
        ({"num_bad_epochs": -1}, "num_bad_epochs"),
        ({"lr": "x"}, "lr must"),
        ({"best": float("nan")}, "best must"),
        ({"extra": 1}, "'extra'"),
    ]
    for bad, message in bad_values:
        with pytest.raises((TypeError, ValueError), match=message):
            again.check_state_dict({**state, "progress": {**progress, **bad}})


def test_plateau_takes_a_number(opt):
    scheduler = ReduceLROnPlateau(opt)
    with pytest.raises(TypeError, match="takes the metric"):
        scheduler.step("loss")
    with pytest.raises(TypeError, match=r"takes the metric it watches: sched.step\(val_loss\)"):
        scheduler.step()  # as a loop that steps every scheduler alike would call it
    assert scheduler.last_epoch == 0
    scheduler.step(mg.tensor(0.5))  # a 0-d tensor is read once
    assert scheduler.best == 0.5
    with pytest.raises(ValueError, match="factor must be < 1.0"):
        ReduceLROnPlateau(opt, factor=1.0)


def test_onecycle_stops_at_total_steps_and_needs_momentum(opt):
    scheduler = OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        scheduler.step()
    lr = opt.lr
    with pytest.raises(ValueError, match="stepped 4 times, but total_steps is 3"):
        scheduler.step()
    assert scheduler.last_epoch == 3 and opt.lr == lr
    del scheduler
    plain = SGD([mg.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="has none.*cycle_momentum=False"):
        OneCycleLR(plain, max_lr=1.0, total_steps=10)
    with pytest.raises(ValueError, match="needs total_steps, or both epochs and steps_per_epoch"):
        OneCycleLR(plain, max_lr=1.0, epochs=3, cycle_momentum=False)
    with pytest.raises(ValueError, match="div_factor must be > 0"):
        OneCycleLR(plain, max_lr=1.0, total_steps=5, div_factor=0, cycle_momentum=False)
    short = OneCycleLR(plain, max_lr=1.0, total_steps=2, pct_start=1.0, cycle_momentum=False)
    short.step()
    with pytest.raises(ValueError, match="OneCycleLR gives no valid lr at step 2"):
        short.step()  # its last phase has length 0: a clear error, not ZeroDivisionError


def test_lambda_needs_a_function(opt):
    with pytest.raises(TypeError, match="lr_lambda must be a function"):
        LambdaLR(opt, 0.5)
