"""PyTorch's learning-rate sequences for every scheduler minigrad has.

CASES (read by tests/test_schedulers.py too) maps a case name to a dict:

    build      (class name, keyword arguments), nested for SequentialLR / LinearWarmup parts
    steps      how many times the scheduler is stepped
    optimizer  "sgd" (SGD, momentum 0.9) or "adam" (Adam): OneCycleLR cycles their momentum
    metrics    ReduceLROnPlateau only: the values passed to step(metric), one per step

Each case stores <case>/lr (steps + 1 values: the lr before the first step and after each)
and, where the momentum is cycled, <case>/momentum (SGD's momentum or Adam's beta1).
minigrad's LinearWarmup is recorded as PyTorch's equivalent, SequentialLR of a LinearLR from
1 / warmup_steps to 1 over warmup_steps - 1 steps and then the wrapped schedule.
"""

from __future__ import annotations

import math

import numpy as np

BASE_LR = 0.1

# lr_lambda functions by name: the same functions on both sides.
LAMBDAS = {
    "inverse_sqrt": lambda t: 1.0 / math.sqrt(t + 1),
    "warmup_decay": lambda t: min(1.0, (t + 1) / 10) * 0.97**t,
}

_PLATEAU_METRICS = [1.0, 0.9, 0.85, 0.85, 0.849, 0.86, 0.87, 0.8, 0.8, 0.8, 0.8, 0.8, 0.79,
                    0.795, 0.8, 0.81, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]  # fmt: skip
_RISING_METRICS = [0.1, 0.2, 0.22, 0.24, 0.3, 0.31, 0.3, 0.29, 0.5, 0.5, 0.5, 0.52, 0.6,
                   0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]  # fmt: skip

CASES = {
    "step": {"build": ("StepLR", {"step_size": 7, "gamma": 0.5}), "steps": 40},
    "multistep": {"build": ("MultiStepLR", {"milestones": [5, 12, 30], "gamma": 0.3}), "steps": 40},
    "exponential": {"build": ("ExponentialLR", {"gamma": 0.95}), "steps": 40},
    "cosine": {"build": ("CosineAnnealingLR", {"T_max": 20, "eta_min": 0.001}), "steps": 50},
    "lambda_inverse_sqrt": {"build": ("LambdaLR", {"lr_lambda": "inverse_sqrt"}), "steps": 30},
    "lambda_warmup_decay": {"build": ("LambdaLR", {"lr_lambda": "warmup_decay"}), "steps": 30},
    "onecycle_cos_sgd": {"build": ("OneCycleLR", {"max_lr": 0.5, "total_steps": 50}), "steps": 50},
    "onecycle_linear_adam": {
        "build": (
            "OneCycleLR",
            {"max_lr": 0.01, "total_steps": 40, "pct_start": 0.25, "anneal_strategy": "linear"},
        ),  # fmt: skip
        "steps": 40,
        "optimizer": "adam",
    },
    "onecycle_three_phase": {
        "build": (
            "OneCycleLR",
            {
                "max_lr": 1.0,
                "total_steps": 60,
                "three_phase": True,
                "div_factor": 10.0,
                "final_div_factor": 100.0,
            },
        ),  # fmt: skip
        "steps": 60,
    },
    "onecycle_epochs_no_momentum": {
        "build": (
            "OneCycleLR",
            {"max_lr": 0.2, "epochs": 4, "steps_per_epoch": 9, "cycle_momentum": False},
        ),  # fmt: skip
        "steps": 36,
    },
    "plateau_min_rel": {
        "build": ("ReduceLROnPlateau", {"factor": 0.5, "patience": 2, "threshold": 0.01}),
        "steps": len(_PLATEAU_METRICS),
        "metrics": _PLATEAU_METRICS,
    },
    "plateau_max_abs_cooldown": {
        "build": (
            "ReduceLROnPlateau",
            {
                "mode": "max",
                "factor": 0.3,
                "patience": 1,
                "threshold": 0.05,
                "threshold_mode": "abs",
                "cooldown": 2,
                "min_lr": 0.004,
            },
        ),  # fmt: skip
        "steps": len(_RISING_METRICS),
        "metrics": _RISING_METRICS,
    },
    "plateau_eps_skips_small_changes": {
        "build": (
            "ReduceLROnPlateau",
            {"factor": 0.9, "patience": 0, "min_lr": 0.08, "eps": 0.005},
        ),  # fmt: skip
        "steps": 12,
        "metrics": [1.0] * 12,
    },
    "sequential_exponential_step": {
        "build": (
            "SequentialLR",
            {
                "schedulers": [
                    ("ExponentialLR", {"gamma": 0.9}),
                    ("StepLR", {"step_size": 3, "gamma": 0.5}),
                ],
                "milestones": [6],
            },
        ),  # fmt: skip
        "steps": 25,
    },
    "sequential_three_parts": {
        "build": (
            "SequentialLR",
            {
                "schedulers": [
                    ("LambdaLR", {"lr_lambda": "warmup_decay"}),
                    ("CosineAnnealingLR", {"T_max": 10}),
                    ("ExponentialLR", {"gamma": 0.8}),
                ],
                "milestones": [5, 15],
            },
        ),  # fmt: skip
        "steps": 30,
    },
    "warmup_cosine": {
        "build": (
            "LinearWarmup",
            {"after": ("CosineAnnealingLR", {"T_max": 20}), "warmup_steps": 5},
        ),  # fmt: skip
        "steps": 40,
    },
    "warmup_constant": {"build": ("LinearWarmup", {"after": None, "warmup_steps": 4}), "steps": 12},
}


def build(lib, opt, spec, torch_names: bool):
    """The scheduler of `spec` from `lib` (torch.optim.lr_scheduler or minigrad.optim)."""
    name, kwargs = spec
    kwargs = dict(kwargs)
    if name == "SequentialLR":
        kwargs["schedulers"] = [build(lib, opt, s, torch_names) for s in kwargs["schedulers"]]
    if name == "LambdaLR":
        kwargs["lr_lambda"] = LAMBDAS[kwargs["lr_lambda"]]
    if name == "LinearWarmup":
        w, after = kwargs["warmup_steps"], kwargs["after"]
        if not torch_names:
            return lib.LinearWarmup(build(lib, opt, after, False) if after else opt, w)
        ramp = lib.LinearLR(opt, start_factor=1 / w, end_factor=1.0, total_iters=w - 1)
        if after is None:
            return ramp
        return lib.SequentialLR(opt, [ramp, build(lib, opt, after, True)], milestones=[w])
    return getattr(lib, name)(opt, **kwargs)


def momentum_of(case: dict) -> bool:
    """Whether the case cycles the momentum (OneCycleLR's default)."""
    name, kwargs = case["build"]
    return name == "OneCycleLR" and kwargs.get("cycle_momentum", True)


def generate() -> dict:
    import torch

    out = {}
    for name, case in CASES.items():
        param = torch.zeros(3, requires_grad=True)
        if case.get("optimizer", "sgd") == "adam":
            opt = torch.optim.Adam([param], lr=BASE_LR)
        else:
            opt = torch.optim.SGD([param], lr=BASE_LR, momentum=0.9)
        scheduler = build(torch.optim.lr_scheduler, opt, case["build"], torch_names=True)
        group = opt.param_groups[0]
        lrs, momenta = [group["lr"]], [group.get("momentum", group.get("betas", [0])[0])]
        for t in range(case["steps"]):
            opt.step()
            if "metrics" in case:
                scheduler.step(case["metrics"][t])
            else:
                scheduler.step()
            lrs.append(group["lr"])
            momenta.append(group["betas"][0] if "betas" in group else group["momentum"])
        out[f"{name}/lr"] = np.array(lrs, dtype=np.float64)
        if momentum_of(case):
            out[f"{name}/momentum"] = np.array(momenta, dtype=np.float64)
    return out
