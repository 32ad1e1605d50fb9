"""Learning-rate schedules: each sets optimizer.lr from a closed form of the step count.

    opt = Adam(model.parameters(), lr=1e-3)
    sched = LinearWarmup(CosineAnnealingLR(opt, T_max=900), warmup_steps=100)
    for batch in loader:
        opt.step(loss_of(batch).backward())
        sched.step()                      # t <- t + 1;  opt.lr <- lr_at(t)

A scheduler remembers base_lr, the optimizer's lr before any scheduler changed it, and counts
its steps in `last_epoch` (t, PyTorch's name). Each schedule is a formula of t, not an update
of the previous lr, so loading a state or jumping to any t gives exactly the same lr:

    StepLR             lr_t = base_lr * gamma ** (t // step_size)
    MultiStepLR        lr_t = base_lr * gamma ** (number of milestones <= t)
    ExponentialLR      lr_t = base_lr * gamma ** t
    LambdaLR           lr_t = base_lr * lr_lambda(t)
    CosineAnnealingLR  lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
    OneCycleLR         up from max_lr / div_factor to max_lr, then down to a tiny lr
    LinearWarmup       lr_t = base_lr * (t + 1) / warmup_steps        for t < warmup_steps,
                       then the wrapped schedule at t - warmup_steps
    SequentialLR       schedule k from milestone k on, restarted there at t = 0

The one exception is ReduceLROnPlateau (plateau.py), stepped with a metric: it divides the
lr when the metric stops improving, so its lr is state, not a formula. The machinery they all
share (stepping, the state protocol, one schedule per optimizer) is in scheduler_base.py.

One optimizer, one schedule. Two schedulers stepped on one optimizer would each set the lr
from their own formula and the one stepped last would silently win, so stepping the second
raises: compose them into one (SequentialLR, LinearWarmup, or a LambdaLR whose lambda
multiplies the factors). Schedulers change only Python floats on the optimizer (lr, and
OneCycleLR's momentum): no array, no recompilation.
"""

from __future__ import annotations

import bisect
import math

from ..checks import check_count, check_flag, check_number
from .optimizer import Optimizer
from .scheduler_base import LRScheduler, _momentum_name, _set_momentum

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "LambdaLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "LinearWarmup",
    "SequentialLR",
]

# ---------------------------------------------------------------- closed forms


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


class MultiStepLR(LRScheduler):
    """lr_t = base_lr * gamma ** (number of milestones <= t): multiply by gamma at each one.

    >>> MultiStepLR(opt, milestones=[30, 80], gamma=0.1)   # lr, lr/10 from 30, lr/100 from 80
    """

    _options = ("milestones", "gamma")

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1):
        self.milestones, self.gamma = self._check(milestones, gamma)
        super().__init__(optimizer)

    @staticmethod
    def _check(milestones, gamma) -> tuple:
        return _milestones("milestones", milestones), check_number("gamma", gamma, low=0.0)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


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


class LambdaLR(LRScheduler):
    """lr_t = base_lr * lr_lambda(t): any schedule as a function of the step count.

        >>> LambdaLR(opt, lambda t: min(1.0, (t + 1) / 100) * 0.99 ** t)   # warmup, decay

    The state holds t and base_lr, not the function (as in PyTorch): loading continues with
    the lr_lambda this scheduler was made with.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda):
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda must be a function of the step, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.lr_lambda(t)


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


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up to max_lr, then anneal to far below where it started.

        initial = max_lr / div_factor,   final = initial / final_div_factor
        phase 1: initial -> max_lr      over the first pct_start * total_steps steps
        phase 2: max_lr  -> final       until total_steps
        three_phase=True: max_lr -> initial (as long as phase 1), then initial -> final

    Each phase follows half a cosine (anneal_strategy="cos") or a line ("linear"). With
    cycle_momentum, the momentum (SGD's momentum, Adam's beta1) moves the opposite way,
    between max_momentum and base_momentum. PyTorch's arguments, defaults and numbers; the
    optimizer's own lr is not used. Stepping past total_steps raises, as in PyTorch.

        >>> OneCycleLR(opt, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
    """

    _options = (
        "max_lr", "total_steps", "pct_start", "anneal_strategy", "cycle_momentum",
        "base_momentum", "max_momentum", "div_factor", "final_div_factor", "three_phase",
    )  # fmt: skip

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or both epochs and steps_per_epoch")
            total_steps = check_count("epochs", epochs, 1) * check_count(
                "steps_per_epoch", steps_per_epoch, 1
            )
        options = self._check(
            max_lr, total_steps, pct_start, anneal_strategy, cycle_momentum, base_momentum,
            max_momentum, div_factor, final_div_factor, three_phase,
        )  # fmt: skip
        self.__dict__.update(zip(self._options, options))
        if self.cycle_momentum:
            _momentum_name(optimizer)  # raises when the optimizer has no momentum to cycle
        super().__init__(optimizer)

    @staticmethod
    def _check(max_lr, total_steps, pct_start, anneal_strategy, cycle_momentum, base_momentum,
               max_momentum, div_factor, final_div_factor, three_phase) -> tuple:  # fmt: skip
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        return (
            check_number("max_lr", max_lr, low=0.0),
            check_count("total_steps", total_steps, 1),
            check_number("pct_start", pct_start, low=0.0, high=1.0),
            anneal_strategy,
            check_flag("cycle_momentum", cycle_momentum),
            check_number("base_momentum", base_momentum, low=0.0, high=1.0),
            check_number("max_momentum", max_momentum, low=0.0, high=1.0),
            _positive("div_factor", div_factor),
            _positive("final_div_factor", final_div_factor),
            check_flag("three_phase", three_phase),
        )

    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        """[(end_step, start_lr, end_lr, start_momentum, end_momentum)], PyTorch's phases."""
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        up = float(self.pct_start * self.total_steps) - 1
        low_m, high_m = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [
                (up, initial, self.max_lr, high_m, low_m),
                (
                    float(2 * self.pct_start * self.total_steps) - 2,
                    self.max_lr,
                    initial,
                    low_m,
                    high_m,
                ),
                (self.total_steps - 1, initial, final, high_m, high_m),
            ]
        return [(up, initial, self.max_lr, high_m, low_m),
                (self.total_steps - 1, self.max_lr, final, low_m, high_m)]  # fmt: skip

    def _anneal(self, t: int, lr: bool) -> float:
        if t > self.total_steps:
            raise ValueError(
                f"OneCycleLR was stepped {t} times, but total_steps is {self.total_steps}: "
                "make total_steps the number of steps you take"
            )
        start = 0.0
        phases = self._phases()
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                a, b = (lr0, lr1) if lr else (m0, m1)
                if self.anneal_strategy == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (b - a) * pct + a
            start = end
        raise AssertionError("unreachable")

    def lr_at(self, t: int) -> float:
        # At t = total_steps (after the last step of the cycle) the phase's line goes on past
        # its end, below 0 for "linear"; PyTorch sets that negative lr, minigrad sets 0.
        return max(self._anneal(t, lr=True), 0.0)

    def _momentum_at(self, t: int) -> float | None:
        return self._anneal(t, lr=False) if self.cycle_momentum else None

    def _set_optimizer(self, lr: float, t: int) -> None:
        self.optimizer.lr = lr
        if self.cycle_momentum:
            _set_momentum(self.optimizer, self._momentum_at(t))


def _positive(name: str, value) -> float:
    value = check_number(name, value, low=0.0)
    if value == 0:
        raise ValueError(f"{name} must be > 0 (the lr is divided by it), got 0.0")
    return value


# ---------------------------------------------------------------- composites


class LinearWarmup(LRScheduler):
    """Warm up linearly, then follow another schedule (or stay at base_lr).

        lr_t = base_lr * (t + 1) / warmup_steps       for t < warmup_steps
        lr_t = after.lr_at(t - warmup_steps)          afterwards

    `after` is a scheduler (whose base_lr is the peak) or an optimizer (constant lr after
    the warmup). The first step already has a small positive lr, and the last warmup step
    reaches base_lr. The same as PyTorch's SequentialLR(opt, [LinearLR(opt, 1 / warmup_steps,
    total_iters=warmup_steps - 1), after], milestones=[warmup_steps]).

        >>> sched = LinearWarmup(CosineAnnealingLR(opt, T_max=900), warmup_steps=100)
    """

    _options = ("warmup_steps",)

    def __init__(self, after: LRScheduler | Optimizer, warmup_steps: int):
        self.after = after if isinstance(after, LRScheduler) else None
        (self.warmup_steps,) = self._check(warmup_steps)
        self._check_parts(getattr(after, "optimizer", None), self._children())
        super().__init__(after.optimizer if self.after is not None else after)
        self._adopt(self._children())

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
        lr = super().step()
        if self.after is not None:  # keep the wrapped scheduler's own count meaningful
            self.after.last_epoch = max(0, self.last_epoch - self.warmup_steps)
        return lr

    def _children(self) -> list:
        return [self.after] if self.after is not None else []

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["after"] = self.after.state_dict() if self.after is not None else None
        return state

    def _check_children(self, state: dict) -> list:
        if (state["after"] is None) != (self.after is None):
            raise ValueError(
                "the LinearWarmup state and this scheduler differ in what follows the warmup "
                "(a scheduler in one, a constant lr in the other)"
            )
        return [self.after.check_state_dict(state["after"])] if self.after is not None else []

    def _use_children(self, trials: list) -> None:
        if trials:
            self.after = trials[0]


class SequentialLR(LRScheduler):
    """Schedules one after another: schedulers[k] from milestones[k - 1] on, started afresh.

        lr_t = schedulers[k].lr_at(t - milestones[k - 1]),   k = number of milestones <= t

    PyTorch's SequentialLR for schedules that are formulas of t (all here except
    ReduceLROnPlateau). Build every part on the same optimizer, then step only this one.

        >>> warm = LinearWarmup(opt, warmup_steps=100)
        >>> SequentialLR(opt, [warm, CosineAnnealingLR(opt, T_max=900)], milestones=[100])
    """

    _options = ("milestones",)

    def __init__(self, optimizer: Optimizer, schedulers, milestones):
        schedulers = list(schedulers)
        if not schedulers or not all(isinstance(s, LRScheduler) for s in schedulers):
            raise TypeError("SequentialLR needs a non-empty list of schedulers")
        (self.milestones,) = self._check(milestones)
        if len(self.milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} "
                f"milestones (where each one after the first starts), got {len(self.milestones)}"
            )
        self._check_parts(optimizer, schedulers)
        self.schedulers = schedulers
        super().__init__(optimizer)
        self._adopt(schedulers)

    @staticmethod
    def _check(milestones) -> tuple:
        return (_milestones("milestones", milestones),)

    def _active(self, t: int) -> tuple[LRScheduler, int]:
        k = bisect.bisect_right(self.milestones, t)
        return self.schedulers[k], t - (self.milestones[k - 1] if k else 0)

    def lr_at(self, t: int) -> float:
        scheduler, local_t = self._active(t)
        return scheduler.lr_at(local_t)

    def step(self) -> float:
        lr = super().step()
        scheduler, local_t = self._active(self.last_epoch)
        scheduler.last_epoch = local_t
        return lr

    def _momentum_at(self, t: int) -> float | None:
        scheduler, local_t = self._active(t)
        return scheduler._momentum_at(local_t)

    def _set_optimizer(self, lr: float, t: int) -> None:
        self.optimizer.lr = lr
        momentum = self._momentum_at(t)
        if momentum is not None:
            _set_momentum(self.optimizer, momentum)

    def _children(self) -> list:
        return list(self.schedulers)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def _check_children(self, state: dict) -> list:
        states = state["schedulers"]
        if not isinstance(states, list) or len(states) != len(self.schedulers):
            raise ValueError(
                f"the SequentialLR state must hold {len(self.schedulers)} scheduler states, "
                f"one per part, got {states!r:.80}"
            )
        return [s.check_state_dict(child) for s, child in zip(self.schedulers, states)]

    def _use_children(self, trials: list) -> None:
        self.schedulers = trials


def _milestones(name: str, milestones) -> list[int]:
    if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
        raise TypeError(f"{name} must be a list of step counts, got {milestones!r}")
    values = [check_count(f"each of {name}", m, 1) for m in milestones]
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"{name} must be increasing, got {values}")
    return values
