"""The machinery every learning-rate scheduler shares: the base class LRScheduler.

    lr_at(t)      the schedule itself, a formula of the step count (each subclass)
    step()        t <- t + 1, optimizer.lr <- lr_at(t), after checking the new lr
    state         check_state_dict(state) -> prepared (changes nothing; computes and checks the
                  lr the state leads to), apply_state_dict(prepared) (cannot fail),
                  load_state_dict = both

and the one rule across schedulers: one optimizer, one schedule. Every scheduler built on
an optimizer starts from the lr it had before any of them changed it (PyTorch's
"initial_lr"); stepping one of two unrelated schedulers of one optimizer raises, because
the one stepped last would silently win. The schedules themselves are in schedulers.py.
"""

from __future__ import annotations

import copy
import math
import weakref
from dataclasses import dataclass, field

from ..checks import check_count, check_number, check_state_keys
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
    follows_step_count = True  # lr_at(t) is a formula of t (all but ReduceLROnPlateau)

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
            if not child.follows_step_count:
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
