"""PyTorch's optimizer trajectories: SGD, Adam and AdamW over the option grid PyTorch tests.

Run with `python tests/golden/make_golden.py optim` (needs PyTorch). The parameters are
three tensors of shapes (3, 4), (5,) and (), kept flat and end to end (18 numbers) so that
the file holds few, small arrays. For each dtype (float64, float32, float16) one set of
inputs is shared by every case:

    inputs/shapes               JSON: [[3, 4], [5], []]
    inputs/skip                 (STEPS, 3) bool: True where parameter k has no gradient at
                                that step (PyTorch skips it: no decay, its step count lags)
    inputs.<dtype>/init         (18,)        the starting values
    inputs.<dtype>/grads        (STEPS, 18)  the gradient at each step

and each case, one optimizer in one dtype (e.g. "adamw.float32"), holds

    <case>/options              JSON: the keyword arguments of each run, a list
    <case>/params               (runs, STEPS, 18): the parameters after each step of each run

The gradients are fixed (they do not depend on the parameters), so a difference at one step
does not change the next step's inputs. PyTorch runs its single-tensor loops
(foreach=False), the reference form of each algorithm. float16 on PyTorch's CPU computes in
float16, op by op; minigrad (like its CUDA kernels) computes float16 in float32 and rounds
once per step: the test compares float16 at a tolerance and says why.
"""

from __future__ import annotations

import json

import numpy as np

SHAPES = [(3, 4), (5,), ()]
STEPS = 8
DTYPES = ["float64", "float32", "float16"]

# The option grid of PyTorch's own optimizer tests (torch/testing/_internal/common_optimizers.py:
# optim_inputs_func_sgd / _adam / _adamw), with lr chosen so that 8 steps move visibly.
SGD_OPTIONS = [
    {"lr": 0.05},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.5},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True},
    {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01, "maximize": True},
]
ADAM_OPTIONS = [
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "amsgrad": True},
    {"lr": 0.01, "maximize": True},
    {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6},
    {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True},
    {"lr": 0.05, "betas": [0.5, 0.9], "eps": 1e-3, "weight_decay": 0.05, "amsgrad": True},
]
GRID = {"SGD": SGD_OPTIONS, "Adam": ADAM_OPTIONS, "AdamW": ADAM_OPTIONS}


def inputs() -> dict[str, np.ndarray]:
    """The shared shapes, skip mask, starting values and gradients (one draw, cast per dtype)."""
    rng = np.random.default_rng(12)
    size = sum(int(np.prod(shape)) for shape in SHAPES)
    init, grads = rng.standard_normal(size), rng.standard_normal((STEPS, size))
    skip = np.zeros((STEPS, len(SHAPES)), dtype=bool)
    skip[[2, 5], 1] = True  # parameter 1 has no gradient at steps 2 and 5
    arrays = {"inputs/shapes": np.array(json.dumps(SHAPES)), "inputs/skip": skip}
    for dtype in DTYPES:  # the same values in every dtype, rounded to it
        arrays[f"inputs.{dtype}/init"] = init.astype(dtype)
        arrays[f"inputs.{dtype}/grads"] = grads.astype(dtype)
    return arrays


def split(flat: np.ndarray) -> list[np.ndarray]:
    """The flat parameters (..., 18) as one array per parameter (..., *shape)."""
    out, start = [], 0
    for shape in SHAPES:
        size = int(np.prod(shape))
        out.append(flat[..., start : start + size].reshape(flat.shape[:-1] + tuple(shape)))
        start += size
    return out


def trajectory(torch, name: str, options: dict, init, grads, skip) -> np.ndarray:
    """The flat parameters after each step: (STEPS, 18), in init's dtype."""
    params = [torch.tensor(x, requires_grad=True) for x in split(init)]
    per_step = split(grads)
    torch_options = {**options, "foreach": False}
    if "betas" in torch_options:
        torch_options["betas"] = tuple(torch_options["betas"])
    opt = getattr(torch.optim, name)(params, **torch_options)
    history = []
    for t in range(STEPS):
        for k, p in enumerate(params):
            p.grad = None if skip[t, k] else torch.tensor(per_step[k][t])
        opt.step()
        history.append(np.concatenate([p.detach().numpy().reshape(-1) for p in params]))
    return np.stack(history)


def generate() -> dict[str, np.ndarray]:
    import torch

    arrays = inputs()
    for dtype in DTYPES:
        init, grads = arrays[f"inputs.{dtype}/init"], arrays[f"inputs.{dtype}/grads"]
        for name, grid in GRID.items():
            case = f"{name.lower()}.{dtype}"
            runs = [trajectory(torch, name, o, init, grads, arrays["inputs/skip"]) for o in grid]
            arrays[f"{case}/options"] = np.array(json.dumps(grid))
            arrays[f"{case}/params"] = np.stack(runs)
            assert arrays[f"{case}/params"].dtype == np.dtype(dtype), case
    return arrays
