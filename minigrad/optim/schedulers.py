"""Learning-rate schedules: each sets optimizer.lr from a closed form of the step count.

    opt = Adam(model.parameters(), lr=1e-3)
    sched = LinearWarmup(CosineAnnealingLR(opt, T_max=900), warmup_steps=100)
    for batch in loader:
        opt.step(loss_of(batch).backward())
        sched.step()                      # t <- t + 1;  opt.lr <- lr_at(t)

A scheduler remembers base_lr, the optimizer's lr when the scheduler was made, and counts
its steps in `last_epoch` (t, PyTorch's name). Each schedule is a formula of t, not an update
of the previous lr, so loading a state or jumping to any t gives exactly the same lr:

    StepLR             lr_t = base_lr * gamma ** (t // step_size)
    ExponentialLR      lr_t = base_lr * gamma ** t
    CosineAnnealingLR  lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
    LinearWarmup       lr_t = base_lr * (t + 1) / warmup_steps        for t < warmup_steps,
                       then the wrapped schedule at t - warmup_steps

Schedulers change only the Python float optimizer.lr: no array, no recompilation.
"""

from __future__ import annotations

import math

from ..checks import check_count, check_number, check_state_keys
from .optimizer import Optimizer


class LRScheduler:
    """Base class: `step()` advances t and sets the optimizer's lr to `lr_at(t)`."""

    def __init__(self, optimizer: Optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(
                f"a scheduler drives an optimizer (anything with an lr attribute), "
                f"not a {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self._apply()

    def lr_at(self, t: int) -> float:
        """The learning rate after t calls of step()."""
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step and set the optimizer's learning rate; returns it."""
        self.last_epoch += 1
        return self._apply()

    def get_last_lr(self) -> float:
        return self.lr_at(self.last_epoch)

    def _apply(self) -> float:
        lr = self.lr_at(self.last_epoch)
        self.optimizer.lr = lr
        return lr

    # ------------------------------------------------------------ saving and loading
    _options: tuple[str, ...] = ()  # the constructor arguments kept in the state

    def state_dict(self) -> dict:
        """A plain dict (JSON-friendly): type, step count, base_lr and the options."""
        state = {"type": type(self).__name__, "last_epoch": self.last_epoch}
        state["base_lr"] = self.base_lr
        state.update({name: getattr(self, name) for name in self._options})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`: the optimizer's lr is set to the restored lr_at(t) at once.

        Every value is checked before anything changes; a bad state raises naming the key.
        """
        self._commit(*self._check_state(state))

    def _check_state(self, state: dict) -> tuple[int, float, tuple]:
        """(last_epoch, base_lr, options) from `state`, checked; changes nothing."""
        if not isinstance(state, dict):
            raise TypeError(f"a scheduler state is a dict, not a {type(state).__name__}")
        mine = type(self).__name__
        if state.get("type") != mine:
            raise ValueError(
                f"this state was saved by a {state.get('type')!r} scheduler, not a {mine}"
            )
        check_state_keys(f"the {mine}", {"type", "last_epoch", "base_lr", *self._options}, state)
        last_epoch = check_count("last_epoch", state["last_epoch"], 0)
        base_lr = check_number("base_lr", state["base_lr"], low=0.0)
        options = self._check(*(state[name] for name in self._options))
        return last_epoch, base_lr, options

    def _commit(self, last_epoch: int, base_lr: float, options: tuple) -> None:
        for name, value in zip(self._options, options):
            setattr(self, name, value)
        self.base_lr, self.last_epoch = base_lr, last_epoch
        self._apply()

    @staticmethod
    def _check(*options) -> tuple:
        """The options (in _options order), checked and normalized; raise on a bad one."""
        return options

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._options)
        return f"{type(self).__name__}({options}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """lr_t = base_lr * gamma ** (t // step_size): multiply by gamma every step_size steps."""

    _options = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = self._check(step_size, gamma)
        super().__init__(optimizer)

    @staticmethod
    def _check(step_size, gamma) -> tuple:
        return check_count("step_size", step_size, 1), check_number("gamma", gamma, low=0.0)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """lr_t = base_lr * gamma ** t: multiply by gamma every step."""

    _options = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float):
        (self.gamma,) = self._check(gamma)
        super().__init__(optimizer)

    @staticmethod
    def _check(gamma) -> tuple:
        return (check_number("gamma", gamma, low=0.0),)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma**t


class CosineAnnealingLR(LRScheduler):
    """lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    From base_lr at t = 0 down to eta_min at t = T_max along half a cosine. As in PyTorch,
    the formula goes on past T_max (back up, with period 2 * T_max): make T_max the number
    of steps you will take.
    """

    _options = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max, self.eta_min = self._check(T_max, eta_min)
        super().__init__(optimizer)

    @staticmethod
    def _check(T_max, eta_min) -> tuple:
        return check_count("T_max", T_max, 1), check_number("eta_min", eta_min, low=0.0)

    def lr_at(self, t: int) -> float:
        cosine = (1 + math.cos(math.pi * t / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine


class LinearWarmup(LRScheduler):
    """Warm up linearly, then follow another schedule (or stay at base_lr).

        lr_t = base_lr * (t + 1) / warmup_steps       for t < warmup_steps
        lr_t = after.lr_at(t - warmup_steps)          afterwards

    `after` is a scheduler (whose base_lr is the peak) or an optimizer (constant lr after
    the warmup). The first step already has a small positive lr, and the last warmup step
    reaches base_lr.

        >>> sched = LinearWarmup(CosineAnnealingLR(opt, T_max=900), warmup_steps=100)
    """

    _options = ("warmup_steps",)

    def __init__(self, after: LRScheduler | Optimizer, warmup_steps: int):
        self.after = after if isinstance(after, LRScheduler) else None
        (self.warmup_steps,) = self._check(warmup_steps)
        super().__init__(after.optimizer if self.after is not None else after)
        if self.after is not None:
            self.base_lr = self.after.base_lr  # the peak: where the wrapped schedule starts
            self._apply()

    @staticmethod
    def _check(warmup_steps) -> tuple:
        return (check_count("warmup_steps", warmup_steps, 1),)

    def lr_at(self, t: int) -> float:
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        if self.after is None:
            return self.base_lr
        return self.after.lr_at(t - self.warmup_steps)

    def step(self) -> float:
        self.last_epoch += 1
        if self.after is not None:  # keep the wrapped scheduler's own count meaningful
            self.after.last_epoch = max(0, self.last_epoch - self.warmup_steps)
        return self._apply()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["after"] = self.after.state_dict() if self.after is not None else None
        return state

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "after" not in state:
            raise ValueError("not a LinearWarmup state: the key 'after' is missing")
        state = dict(state)
        inner = state.pop("after")
        if (inner is None) != (self.after is None):
            raise ValueError(
                "the LinearWarmup state and this scheduler differ in what follows the warmup "
                "(a scheduler in one, a constant lr in the other)"
            )
        checked = self._check_state(state)  # our part first, so neither half loads alone
        if self.after is not None:
            self.after.load_state_dict(inner)
        self._commit(*checked)
