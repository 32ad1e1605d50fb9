"""PyTorch's values and gradients for minigrad's ops (`python tests/golden/make_golden.py ops`).

Each differentiable case is a function of float64 tensors and its inputs; recorded are the
inputs (`<case>/x0`, `x1`, ...), the output (`out`), a random output gradient (`gout`) and
the input gradients PyTorch's backward gives for it (`grad.x0`, ...). Cases whose result is
not differentiable (indices, dtypes) record `out` only. tests/test_vs_torch.py holds the
minigrad side of every case, under the same name.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 0.5], [0.0, -2.0, 1.0, 1.0]])
BOUNDS = np.array([[-1.0, -0.5, 0.0, 0.5], [1.0, 1.5, -1.5, 0.25], [0.0, 0.75, -0.75, 1.0]])
ZEROS = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 0.5]])


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def positive(shape, seed):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


# name: (torch function of the input tensors, input arrays)
DIFFERENTIABLE = {
    # ---------------------------------------------------------------- from test_vs_torch
    "broadcast-arithmetic": (
        lambda a, b: a * b + a / b - b**2,
        [normal((2, 3, 1), 0), positive((3, 4), 1)],
    ),
    "pow": (lambda a, b: a**b + 2.0**b - 1.0 / a, [positive((3, 1), 2), normal((4,), 3)]),
    "matmul-batched": (lambda a, b: a @ b, [normal((2, 1, 3, 4), 4), normal((5, 4, 2), 5)]),
    "dot": (lambda a, b: a @ b, [normal(4, 6), normal(4, 7)]),
    "matmul-vector-batch": (lambda a, b: a @ b, [normal(4, 8), normal((2, 4, 3), 9)]),
    "elementwise": (
        lambda a: (a.exp() + a.abs().sqrt() + a.tanh() + a.sigmoid() + a.relu()).log(),
        [normal((3, 4), 10)],
    ),
    "relu-abs-at-zero": (lambda a: a.relu() + a.abs(), [BOUNDS]),
    "maximum-minimum-ties": (
        lambda a, b: torch.maximum(a, b) * 2 + torch.minimum(a, b),
        [TIES, np.array([3.0, 2.0, 1.0, 0.0])],
    ),
    "clip-at-bounds": (lambda a: a.clamp(-1.0, 1.0), [BOUNDS]),
    "max-min-ties-all": (lambda a: a.max() + a.min() * 2, [TIES]),
    "amax-amin-ties-dim": (
        lambda a: a.amax(dim=1) + a.amin(dim=0, keepdim=True).sum(),
        [TIES],
    ),
    "sum-mean": (
        lambda a: a.sum(dim=(0, 2)) * a.mean(dim=-1, keepdim=True).mean(),
        [normal((2, 3, 4), 11)],
    ),
    "logsumexp": (
        lambda a: a.logsumexp(dim=1) + (a * 100).logsumexp(dim=(0, 1)),
        [normal((3, 4), 12)],
    ),
    "shapes": (
        lambda a: a.reshape(4, 6).T.permute(1, 0).reshape(-1).flip(0)[::3],
        [normal((2, 3, 4), 13)],
    ),
    "indexing": (
        lambda a: a[[0, 2, 0], 1:] * a[1, 1:] + a[:, [3, 3]].sum(),
        [normal((3, 4), 14)],
    ),
    "concatenate-stack": (
        lambda a, b: torch.cat([a, b, a], dim=1) * torch.stack([a, b], dim=-1).sum(),
        [normal((2, 2), 15), normal((2, 2), 16)],
    ),
    "where": (lambda a, b: torch.where(a > b, a * b, b), [normal((3, 4), 17), normal((4,), 18)]),
    "cross-entropy": (
        lambda x, w, b: F.cross_entropy(x @ w + b, torch.tensor([2, 0, 1])),
        [normal((3, 5), 19), normal((5, 3), 20), normal(3, 21)],
    ),
    # ---------------------------------------------------------------- pow where the base is 0
    "pow-exponent-zero": (lambda a: a**0.0, [np.array([0.0, 1.0, -2.0, 0.5])]),
    "pow-base-zero-number": (lambda b: 0.0**b, [np.array([0.0, 1.0, 2.5, 3.0])]),
    "pow-base-zero-tensor": (
        lambda a, b: a**b,
        [np.array([0.0, 0.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0, 0.5])],
    ),
    # ---------------------------------------------------------------- math
    "sin-cos": (lambda a: a.sin() * 2 + a.cos(), [normal((3, 4), 22)]),
    "clamp-min": (lambda a: a.clamp(min=0.25), [BOUNDS]),
    "clamp-max": (lambda a: torch.clamp(a, max=0.25), [BOUNDS]),
    "var-dim": (lambda a: a.var(dim=1), [normal((3, 5), 23)]),
    "var-correction0-all": (lambda a: a.var(correction=0), [normal((3, 5), 24)]),
    "std-keepdim": (lambda a: a.std(dim=0, keepdim=True), [normal((4, 3), 25)]),
    "std-unbiased-false": (lambda a: a.std(unbiased=False), [normal((2, 3), 26)]),
    "prod-dim-with-zeros": (lambda a: a.prod(dim=1), [ZEROS]),
    "prod-all": (lambda a: a.prod(), [positive((2, 3), 27)]),
    "prod-all-one-zero": (lambda a: a.prod(), [np.array([[2.0, 0.0], [3.0, -1.5]])]),
    "cumsum-0": (lambda a: a.cumsum(dim=0), [normal((3, 4), 28)]),
    "cumsum-last": (lambda a: a.cumsum(-1), [normal((2, 3, 4), 29)]),
    "max-dim-ties": (lambda a: a.max(dim=1).values, [TIES]),
    "min-dim-keepdim": (lambda a: a.min(0, keepdim=True).values, [TIES]),
    "softmax-dim0": (lambda a: a.softmax(dim=0), [normal((3, 4), 30)]),
    "log-softmax-last": (lambda a: F.log_softmax(a, dim=-1), [normal((2, 3, 4), 31)]),
    "log-softmax-minus-inf": (
        lambda a: a.log_softmax(dim=1),
        [np.array([[0.0, -np.inf, 1.0], [2.0, 1.0, -np.inf]])],
    ),
    # ---------------------------------------------------------------- indexing
    "gather-dim1": (
        lambda a: a.gather(1, torch.tensor([[0, 0], [3, 1], [2, 2]])),
        [normal((3, 4), 32)],
    ),
    "gather-dim0-repeats": (
        lambda a: torch.gather(a, 0, torch.tensor([[2, 0, 1, 2], [2, 2, 0, 0]])),
        [normal((3, 4), 33)],
    ),
    "masked-fill": (
        lambda a: a.masked_fill(torch.tensor([True, False, True, False]), -1.5),
        [normal((3, 4), 34)],
    ),
    # ---------------------------------------------------------------- shape
    "view-unsqueeze-squeeze": (
        lambda a: a.view(3, 1, 4).unsqueeze(0).squeeze() * a.unsqueeze(-1).squeeze(-1),
        [normal((3, 4), 35)],
    ),
    "flatten": (lambda a: a.flatten(1) * 2 + a.flatten().sum(), [normal((2, 3, 4), 36)]),
    "expand": (lambda a: a.expand(2, 3, 4) * 1.5, [normal((3, 1), 37)]),
    "repeat": (lambda a: a.repeat(2, 1, 3), [normal((2, 3), 38)]),
    "flip": (lambda a: a.flip(0, 2), [normal((2, 3, 4), 39)]),
    "chunk-split": (
        lambda a: a.chunk(3, dim=1)[1] * a.split([1, 3], dim=1)[0] + a.split(3, 1)[1].sum(),
        [normal((2, 4), 40)],
    ),
    "cat-stack-dims": (
        lambda a, b: torch.cat([a, b], dim=-1).sum(0) * torch.stack([a, b], 1).sum(),
        [normal((2, 3), 41), normal((2, 3), 42)],
    ),
    "pad": (lambda a: F.pad(a, (1, 2, 0, 1), value=0.5), [normal((2, 3), 43)]),
    "pad-negative": (lambda a: F.pad(a, (-1, 2, 1, -1)), [normal((3, 4), 44)]),
    # ---------------------------------------------------------------- 0-d and empty
    "sum-0d-dim0": (lambda a: a.sum(dim=0) * a.mean(-1), [np.array(1.5)]),
    "max-0d-dim": (lambda a: a.max(dim=0).values * 3, [np.array(-0.5)]),
    "softmax-0d": (lambda a: a.softmax(0), [np.array(2.0)]),
    "flatten-0d": (lambda a: a.flatten() * 2, [np.array(0.75)]),
    "sum-empty": (lambda a: a.sum(dim=0), [np.zeros((0, 3))]),
    "softmax-empty": (lambda a: a.softmax(dim=-1), [np.zeros((0, 3))]),
}

# name: torch function of nothing, returning a tensor of the dtype PyTorch picks
VALUES_ONLY = {
    "argmax-ties": lambda: torch.tensor(TIES).argmax(dim=1),
    "argmin-all": lambda: torch.tensor(TIES).argmin(),
    "argmax-keepdim": lambda: torch.tensor(TIES).argmax(0, keepdim=True),
    "max-dim-indices": lambda: torch.tensor(TIES).max(dim=1).indices,
    "min-dim-indices": lambda: torch.tensor(TIES).min(0).indices,
    # type promotion: the dtype of the result is the point
    "promote-f32-f64": lambda: torch.ones(2) + torch.ones(2, dtype=torch.float64),
    "promote-f32-0d-f64": lambda: torch.ones(2) + torch.tensor(2.0, dtype=torch.float64),
    "promote-f32-number": lambda: torch.ones(2) * 2.5,
    "promote-f32-np-float64": lambda: torch.ones(2) * np.float64(2.5),
    "promote-int-float-number": lambda: torch.tensor([1, 2]) * 2.5,
    "promote-int-f32": lambda: torch.tensor([1, 2]) + torch.ones(2),
    "promote-int-0d-f64": lambda: torch.tensor([1, 2]) + torch.tensor(0.5, dtype=torch.float64),
    "promote-bool-int": lambda: torch.tensor([True, False]) + 3,
    "promote-f16-f32": lambda: torch.ones(2, dtype=torch.float16) + torch.ones(2),
    "promote-int-div-int": lambda: torch.tensor([1, 2]) / 2,
    "promote-int-div-int-tensor": lambda: torch.tensor([1, 2]) / torch.tensor([4, 8]),
}


def generate() -> dict[str, np.ndarray]:
    arrays = {}
    for name, (fn, inputs) in DIFFERENTIABLE.items():
        tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
        out = fn(*tensors)
        gout = normal(tuple(out.shape), 99)
        out.backward(torch.from_numpy(np.asarray(gout, dtype=np.float64)))
        for i, (x, t) in enumerate(zip(inputs, tensors)):
            arrays[f"{name}/x{i}"] = np.asarray(x, dtype=np.float64)
            grad = t.grad if t.grad is not None else torch.zeros_like(t)
            arrays[f"{name}/grad.x{i}"] = grad.numpy()
        arrays[f"{name}/out"] = out.detach().numpy()
        arrays[f"{name}/gout"] = np.asarray(gout, dtype=np.float64)
    for name, fn in VALUES_ONLY.items():
        arrays[f"{name}/out"] = fn().numpy()
    return arrays
