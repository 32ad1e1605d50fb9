"""Learning-rate schedulers against their closed forms (and torch.optim.lr_scheduler)."""

import math

import pytest

import minigrad as mg
from minigrad.optim import (
    SGD,
    Adam,
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
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


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("StepLR", lambda o: StepLR(o, 7, gamma=0.5), lambda t, o: t.StepLR(o, 7, gamma=0.5)),
        ("ExponentialLR", lambda o: ExponentialLR(o, 0.95), lambda t, o: t.ExponentialLR(o, 0.95)),
        (
            "CosineAnnealingLR",
            lambda o: CosineAnnealingLR(o, 20, 0.001),
            lambda t, o: t.CosineAnnealingLR(o, 20, 0.001),
        ),
    ],
)
def test_schedules_match_torch(name, ours, theirs, opt):
    torch = pytest.importorskip("torch")
    torch_opt = torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=BASE)
    torch_sched = theirs(torch.optim.lr_scheduler, torch_opt)
    scheduler = ours(opt)
    for _ in range(30):
        assert opt.lr == pytest.approx(torch_opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        torch_opt.step()
        torch_sched.step()
        scheduler.step()
