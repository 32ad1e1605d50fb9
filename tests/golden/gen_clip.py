"""PyTorch's gradient clipping: clip_grad_norm_ for several norms, clip_grad_value_.

Three gradients ("grads/0", "grads/1", "grads/2", float64) are clipped by each case of
NORM_CASES (norm_type, max_norm) and VALUE_CASES (clip_value). Each case stores the total
norm PyTorch returned (<case>/norm) and the clipped gradients (<case>/0, /1, /2).
"""

from __future__ import annotations

import math

import numpy as np

SHAPES = [(3, 4), (5,), (2, 2, 2)]
NORM_CASES = {
    f"norm_{name}_{max_norm}": (p, max_norm)
    for name, p in (("2", 2.0), ("1", 1.0), ("3.5", 3.5), ("inf", math.inf))
    for max_norm in (0.5, 100.0)
}
VALUE_CASES = {"value_0.3": 0.3, "value_5": 5.0}


def gradients() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) * 2 for shape in SHAPES]


def generate() -> dict:
    import torch

    out = {f"grads/{i}": g for i, g in enumerate(gradients())}

    def params():
        tensors = []
        for g in gradients():
            t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
            t.grad = torch.from_numpy(g.copy())
            tensors.append(t)
        return tensors

    for name, (p, max_norm) in NORM_CASES.items():
        tensors = params()
        norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm=max_norm, norm_type=p)
        out[f"{name}/norm"] = norm.numpy()
        out.update({f"{name}/{i}": t.grad.numpy() for i, t in enumerate(tensors)})
    for name, value in VALUE_CASES.items():
        tensors = params()
        torch.nn.utils.clip_grad_value_(tensors, clip_value=value)
        out.update({f"{name}/{i}": t.grad.numpy() for i, t in enumerate(tensors)})
    return out
