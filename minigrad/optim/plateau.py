"""ReduceLROnPlateau: lower the learning rate when a metric stops improving.

The one scheduler whose lr is not a formula of the step count: it is stepped once per epoch
with the metric it watches (sched.step(val_loss)) and divides the lr when the metric has not
improved for a while, so its lr is state, kept (with its counters) in state["progress"].
"""

from __future__ import annotations

import math
import numbers

from ..checks import check_count, check_number, check_state_keys
from .optimizer import Optimizer
from .scheduler_base import LRScheduler


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
    follows_step_count = False  # a SequentialLR or LinearWarmup cannot wrap it

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
