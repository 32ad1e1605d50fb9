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

The one exception is ReduceLROnPlateau, stepped with a metric: it divides the lr when the
metric stops improving, so its lr is state, not a formula.

One optimizer, one schedule. Two schedulers stepped on one optimizer would each set the lr
from their own formula and the one stepped last would silently win, so stepping the second
raises: compose them into one (SequentialLR, LinearWarmup, or a LambdaLR whose lambda
multiplies the factors). Schedulers change only Python floats on the optimizer (lr, and
OneCycleLR's momentum): no array, no recompilation.
"""

from __future__ import annotations

import bisect
import copy
import math
import numbers
import weakref
from dataclasses import dataclass, field

from ..checks import check_count, check_flag, check_number, check_state_keys
from .optimizer import Optimizer

# ---------------------------------------------------------------- who drives an optimizer


class _Drive:
    """The live schedulers of one optimizer, and its lr before the first of them changed it."""

    def __init__(self, lr: float):
        self.initial_lr = lr
        self.schedulers: weakref.WeakSet = weakref.WeakSet()


_drives: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _initial_lr(optimizer) -> float:
    """The base_lr of a new scheduler on `optimizer`.

    Every scheduler built on one optimizer (e.g. the parts of a SequentialLR) starts from the
    same lr, the one the optimizer had before the first of them changed it (PyTorch's
    'initial_lr'). Once no scheduler of it is alive, a new one starts from the current lr.
    """
    drive = _drives.get(optimizer)
    return drive.initial_lr if drive is not None and len(drive.schedulers) else float(optimizer.lr)


def _attach(optimizer, scheduler) -> None:
    drive = _drives.get(optimizer)
    if drive is None or not len(drive.schedulers):
        drive = _drives[optimizer] = _Drive(float(optimizer.lr))
    drive.schedulers.add(scheduler)


@dataclass
class PreparedSchedulerState:
    """A checked state, ready for apply_state_dict (which cannot fail)."""

    values: dict  # attribute -> value
    lr: float  # the optimizer's lr once applied (checked: finite, >= 0)
    momentum: float | None = None  # OneCycleLR's momentum once applied
    children: list = field(default_factory=list)  # the wrapped schedulers' prepared states
    trial: object = None  # a shallow copy holding the new values (to compute a parent's lr)


class LRScheduler:
    """Base class: `step()` advances t and sets the optimizer's lr to `lr_at(t)`."""

    _options: tuple[str, ...] = ()  # the constructor arguments kept in the state

    def __init__(self, optimizer: Optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(
                f"a scheduler drives an optimizer (anything with an lr attribute), "
                f"not a {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.last_epoch = 0
        self._parent = None  # a weak reference to the scheduler that wraps this one
        self.base_lr = _initial_lr(optimizer)
        lr = self._checked_lr(0)  # may raise: nothing is registered or changed yet
        _attach(optimizer, self)
        self._set_optimizer(lr, 0)

    def lr_at(self, t: int) -> float:
        """The learning rate after t calls of step()."""
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step and set the optimizer's learning rate; returns it."""
        self._check_in_charge()
        lr = self._checked_lr(self.last_epoch + 1)  # may raise: nothing has changed yet
        self.last_epoch += 1
        self._set_optimizer(lr, self.last_epoch)
        return lr

    def get_last_lr(self) -> float:
        return self.lr_at(self.last_epoch)

    # ------------------------------------------------------------ helpers
    def _checked_lr(self, t: int) -> float:
        """lr_at(t), refused with a clear error when it is not a finite number >= 0."""
        try:
            lr = self.lr_at(t)
        except OverflowError:
            lr = math.inf
        except ZeroDivisionError:  # e.g. a OneCycleLR phase of length 0
            lr = math.nan
        try:
            return check_number("lr", lr, low=0.0)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{type(self).__name__} gives no valid lr at step {t}: {exc}"
            ) from None

    def _set_optimizer(self, lr: float, t: int) -> None:
        """Set the optimizer's hyperparameters for step t (OneCycleLR also sets momentum)."""
        self.optimizer.lr = lr

    def _children(self) -> list:
        """The schedulers this one wraps (composites override)."""
        return []

    def _check_parts(self, optimizer, children) -> None:
        for child in children:
            if child.optimizer is not optimizer:
                raise ValueError(
                    f"{type(self).__name__}: {child!r} drives a different optimizer; every "
                    "part of one schedule must be built on the same optimizer"
                )
            if isinstance(child, ReduceLROnPlateau):
                raise TypeError(
                    f"{type(self).__name__} cannot wrap a ReduceLROnPlateau: its lr depends on "
                    "a metric, not on the step count"
                )

    def _adopt(self, children) -> None:
        """Mark the parts as wrapped: stepping one of them alone now raises."""
        for child in children:
            child._parent = weakref.ref(self)

    def _check_in_charge(self) -> None:
        parent = self._parent() if self._parent is not None else None
        if parent is not None:
            raise RuntimeError(
                f"{self!r} is part of {type(parent).__name__}: step that one (it sets the lr "
                "for the whole schedule)"
            )
        drive = _drives.get(self.optimizer)
        others = [
            s
            for s in (drive.schedulers if drive is not None else ())
            if s is not self and (s._parent is None or s._parent() is None)
        ]
        if others:
            raise RuntimeError(
                f"two schedulers drive this optimizer: {self!r} and {others[0]!r}. Each sets the "
                "lr from its own formula, so the one stepped last would silently win. Make one "
                "schedule of them: SequentialLR(opt, [first, second], milestones=[...]) to run "
                "them one after another, LinearWarmup(sched, warmup_steps) for a warmup, or one "
                "LambdaLR whose lambda multiplies the factors (or drop the old scheduler: "
                "`del` it)"
            )

    # ------------------------------------------------------------ saving and loading
    def state_dict(self) -> dict:
        """A plain dict (JSON-friendly): type, step count, base_lr and the options."""
        state = {"type": type(self).__name__, "last_epoch": self.last_epoch}
        state["base_lr"] = self.base_lr
        state.update({name: getattr(self, name) for name in self._options})
        return state

    def check_state_dict(self, state: dict) -> PreparedSchedulerState:
        """Check `state` and return it prepared; raises naming the problem, changes nothing.

        The lr the state leads to is computed and checked here too, so that applying it
        (which sets the optimizer's lr) cannot be refused halfway.
        """
        if not isinstance(state, dict):
            raise TypeError(f"a scheduler state is a dict, not a {type(state).__name__}")
        mine = type(self).__name__
        if state.get("type") != mine:
            raise ValueError(
                f"this state was saved by a {state.get('type')!r} scheduler, not a {mine}"
            )
        check_state_keys(f"the {mine}", set(self.state_dict()), state)
        values = {
            "last_epoch": check_count("last_epoch", state["last_epoch"], 0),
            "base_lr": check_number("base_lr", state["base_lr"], low=0.0),
            **dict(zip(self._options, self._check(*(state[n] for n in self._options)))),
            **self._check_more(state),
        }
        children = self._check_children(state)
        # The same formulas on a shallow copy holding the new values: the lr it will set.
        trial = copy.copy(self)
        trial.__dict__.update(values)
        trial._use_children([child.trial for child in children])
        t = values["last_epoch"]
        return PreparedSchedulerState(values, trial._checked_lr(t), trial._momentum_at(t),
                                      children, trial)  # fmt: skip

    def apply_state_dict(self, prepared: PreparedSchedulerState) -> None:
        """Apply a state from check_state_dict: the optimizer's lr is set at once."""
        for child, child_state in zip(self._children(), prepared.children):
            child.apply_state_dict(child_state)
        self.__dict__.update(prepared.values)
        self.optimizer.lr = prepared.lr
        if prepared.momentum is not None:
            _set_momentum(self.optimizer, prepared.momentum)

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`: check_state_dict, then apply_state_dict."""
        self.apply_state_dict(self.check_state_dict(state))

    @staticmethod
    def _check(*options) -> tuple:
        """The options (in _options order), checked and normalized; raise on a bad one."""
        return options

    def _check_more(self, state: dict) -> dict:
        """More state beyond the options, checked (ReduceLROnPlateau's counters)."""
        return {}

    def _check_children(self, state: dict) -> list:
        return []

    def _use_children(self, trials: list) -> None:
        """On a trial copy: wrap the children's trial copies (composites override)."""

    def _momentum_at(self, t: int) -> float | None:
        return None

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._options)
        return f"{type(self).__name__}({options}, last_epoch={self.last_epoch})"


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


def _momentum_name(optimizer) -> str:
    if getattr(optimizer, "betas", None) is not None:
        return "betas"
    if getattr(optimizer, "momentum", 0):
        return "momentum"
    raise ValueError(
        f"OneCycleLR cycles the momentum, but this {type(optimizer).__name__} has none (SGD "
        "with momentum > 0, or Adam's beta1): pass cycle_momentum=False"
    )


def _set_momentum(optimizer, momentum: float) -> None:
    if _momentum_name(optimizer) == "betas":
        optimizer.betas = (momentum, optimizer.betas[1])
    else:
        optimizer.momentum = momentum


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


# ---------------------------------------------------------------- stepped with a metric


class ReduceLROnPlateau(LRScheduler):
    """Divide the lr by 1 / factor when a metric has stopped improving, as PyTorch does.

        sched = ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=10)
        for epoch in range(epochs):
            train_one_epoch()
            sched.step(validation_loss)        # the metric, once per epoch

    "Improving" means better than the best so far by more than threshold (relative:
    best * (1 -+ threshold), or absolute: best -+ threshold). After more than `patience`
    steps without improvement the lr becomes max(lr * factor, min_lr) (a change smaller
    than eps is skipped), then `cooldown` steps pass before counting again.
    """

    _options = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                "min_lr", "eps")  # fmt: skip
    _counters = ("best", "num_bad_epochs", "cooldown_counter", "lr")

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ):
        options = self._check(mode, factor, patience, threshold, threshold_mode, cooldown,
                              min_lr, eps)  # fmt: skip
        self.__dict__.update(zip(self._options, options))
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.lr = float(optimizer.lr) if hasattr(optimizer, "lr") else 0.0
        super().__init__(optimizer)

    @staticmethod
    def _check(mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        return (
            mode,
            check_number("factor", factor, low=0.0, high=1.0, high_open=True),
            check_count("patience", patience, 0),
            check_number("threshold", threshold, low=0.0),
            threshold_mode,
            check_count("cooldown", cooldown, 0),
            check_number("min_lr", min_lr, low=0.0),
            check_number("eps", eps, low=0.0),
        )

    def lr_at(self, t: int) -> float:
        return self.lr  # state, not a formula of t

    def get_last_lr(self) -> float:
        return self.lr

    def step(self, metrics=None) -> float:
        """Count one epoch with this value of the metric; returns the lr now in effect."""
        if metrics is None:
            raise TypeError(
                "ReduceLROnPlateau.step takes the metric it watches: sched.step(val_loss), once "
                "per epoch (with Trainer.fit, step it in on_epoch_end, e.g. "
                "on_epoch_end=lambda record: sched.step(record['val_loss']))"
            )
        current = _metric(metrics)
        self._check_in_charge()
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown are not counted
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
                self.optimizer.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        return self.lr

    def _is_better(self, current: float) -> bool:
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return current < (
                self.best * (1 - self.threshold) if relative else self.best - self.threshold
            )
        return current > (
            self.best * (1 + self.threshold) if relative else self.best + self.threshold
        )

    def state_dict(self) -> dict:
        """The base state, plus "progress": the best metric, the counters and the lr (nested,
        so that nobody mistakes them for settings: they are where the run has got to)."""
        state = super().state_dict()
        state["progress"] = {name: getattr(self, name) for name in self._counters}
        return state

    def _check_more(self, state: dict) -> dict:
        progress = state["progress"]
        if not isinstance(progress, dict):
            raise TypeError(f"progress must be a dict, got {type(progress).__name__}")
        check_state_keys("the ReduceLROnPlateau progress", set(self._counters), progress)
        best = progress["best"]
        if isinstance(best, bool) or not isinstance(best, numbers.Real) or math.isnan(best):
            raise ValueError(
                f"best must be a number (or +-inf before the first step), got {best!r}"
            )
        return {
            "best": float(best),
            "num_bad_epochs": check_count("num_bad_epochs", progress["num_bad_epochs"], 0),
            "cooldown_counter": check_count("cooldown_counter", progress["cooldown_counter"], 0),
            "lr": check_number("lr", progress["lr"], low=0.0),
        }


def _metric(value) -> float:
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()  # a 0-d tensor or array: one read from the device
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"ReduceLROnPlateau.step takes the metric (a number, e.g. the validation loss), "
            f"got {value!r}"
        )
    return float(value)
