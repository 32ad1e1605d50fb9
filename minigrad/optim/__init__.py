"""Optimizers, learning-rate schedules, gradient clipping and the Trainer.

from minigrad import optim
opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
opt.step(loss.backward())      # takes its parameters' gradients out of the store
"""

from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_value
from .optimizer import Optimizer, OptimizerState
from .plateau import ReduceLROnPlateau
from .scheduler_base import LRScheduler
from .schedulers import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearWarmup,
    MultiStepLR,
    OneCycleLR,
    SequentialLR,
    StepLR,
)
from .sgd import SGD
from .trainer import Trainer

__all__ = [
    "Optimizer",
    "OptimizerState",
    "SGD",
    "Adam",
    "AdamW",
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "LambdaLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "LinearWarmup",
    "SequentialLR",
    "ReduceLROnPlateau",
    "clip_grad_norm",
    "clip_grad_value",
    "Trainer",
]
