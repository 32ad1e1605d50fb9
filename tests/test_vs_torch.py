"""Cross-check against PyTorch, where it is installed: the same values and gradients (float64).

Includes the places where a convention matters: ties in max/min/maximum, clip at its bounds,
relu and abs at 0. Skipped as a whole without torch; torch is never a requirement.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad.backend import to_numpy

torch = pytest.importorskip("torch")

TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 0.5], [0.0, -2.0, 1.0, 1.0]])
BOUNDS = np.array([[-1.0, -0.5, 0.0, 0.5], [1.0, 1.5, -1.5, 0.25], [0.0, 0.75, -0.75, 1.0]])


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def positive(shape, seed):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


CASES = [
    pytest.param(
        lambda a, b: a * b + a / b - b**2,
        lambda a, b: a * b + a / b - b**2,
        [normal((2, 3, 1), 0), positive((3, 4), 1)],
        id="broadcast-arithmetic",
    ),
    pytest.param(
        lambda a, b: a**b + 2.0**b - 1.0 / a,
        lambda a, b: a**b + 2.0**b - 1.0 / a,
        [positive((3, 1), 2), normal((4,), 3)],
        id="pow",
    ),
    pytest.param(
        lambda a, b: a @ b,
        lambda a, b: a @ b,
        [normal((2, 1, 3, 4), 4), normal((5, 4, 2), 5)],
        id="matmul-batched",
    ),
    pytest.param(lambda a, b: a @ b, lambda a, b: a @ b, [normal(4, 6), normal(4, 7)], id="dot"),
    pytest.param(
        lambda a, b: a @ b,
        lambda a, b: a @ b,
        [normal(4, 8), normal((2, 4, 3), 9)],
        id="matmul-vector-batch",
    ),
    pytest.param(
        lambda a: (a.exp() + a.abs().sqrt() + a.tanh() + a.sigmoid() + a.relu()).log(),
        lambda a: (a.exp() + a.abs().sqrt() + a.tanh() + a.sigmoid() + a.relu()).log(),
        [normal((3, 4), 10)],
        id="elementwise",
    ),
    pytest.param(
        lambda a: a.relu() + a.abs(),
        lambda a: a.relu() + a.abs(),
        [BOUNDS],
        id="relu-abs-at-zero",
    ),
    pytest.param(
        lambda a, b: mg.maximum(a, b) * 2 + mg.minimum(a, b),
        lambda a, b: torch.maximum(a, b) * 2 + torch.minimum(a, b),
        [TIES, np.array([3.0, 2.0, 1.0, 0.0])],
        id="maximum-minimum-ties",
    ),
    pytest.param(
        lambda a: a.clip(-1.0, 1.0),
        lambda a: a.clamp(-1.0, 1.0),
        [BOUNDS],
        id="clip-at-bounds",
    ),
    pytest.param(
        lambda a: a.max() + a.min() * 2,
        lambda a: a.amax() + a.amin() * 2,
        [TIES],
        id="max-min-ties-all",
    ),
    pytest.param(
        lambda a: a.max(axis=1) + a.min(axis=0, keepdims=True).sum(),
        lambda a: a.amax(dim=1) + a.amin(dim=0, keepdim=True).sum(),
        [TIES],
        id="max-min-ties-axis",
    ),
    pytest.param(
        lambda a: a.sum(axis=(0, 2)) * a.mean(axis=-1, keepdims=True).mean(),
        lambda a: a.sum(dim=(0, 2)) * a.mean(dim=-1, keepdim=True).mean(),
        [normal((2, 3, 4), 11)],
        id="sum-mean",
    ),
    pytest.param(
        lambda a: a.logsumexp(axis=1) + mg.logsumexp(a * 100),
        lambda a: a.logsumexp(dim=1) + (a * 100).logsumexp(dim=(0, 1)),
        [normal((3, 4), 12)],
        id="logsumexp",
    ),
    pytest.param(
        lambda a: a.reshape(4, 6).T.transpose(1, 0).reshape(-1)[::-3],
        lambda a: a.reshape(4, 6).T.permute(1, 0).reshape(-1).flip(0)[::3],
        [normal((2, 3, 4), 13)],
        id="shapes",
    ),
    pytest.param(
        lambda a: a[[0, 2, 0], 1:] * a[1, 1:] + a[:, [3, 3]].sum(),
        lambda a: a[[0, 2, 0], 1:] * a[1, 1:] + a[:, [3, 3]].sum(),
        [normal((3, 4), 14)],
        id="indexing",
    ),
    pytest.param(
        lambda a, b: mg.concatenate([a, b, a], axis=1) * mg.stack([a, b], axis=-1).sum(),
        lambda a, b: torch.cat([a, b, a], dim=1) * torch.stack([a, b], dim=-1).sum(),
        [normal((2, 2), 15), normal((2, 2), 16)],
        id="concatenate-stack",
    ),
    pytest.param(
        lambda a, b: mg.where(a > b, a * b, b),
        lambda a, b: torch.where(a > b, a * b, b),
        [normal((3, 4), 17), normal((4,), 18)],
        id="where",
    ),
    pytest.param(
        lambda x, w, b: (
            -(x @ w + b - (x @ w + b).logsumexp(axis=1, keepdims=True))[[0, 1, 2], [2, 0, 1]].mean()
        ),
        lambda x, w, b: torch.nn.functional.cross_entropy(x @ w + b, torch.tensor([2, 0, 1])),
        [normal((3, 5), 19), normal((5, 3), 20), normal(3, 21)],
        id="cross-entropy",
    ),
]


@pytest.mark.parametrize("mg_fn, torch_fn, arrays", CASES)
def test_values_and_gradients_match_pytorch(mg_fn, torch_fn, arrays, device):
    ours = [mg.tensor(a, dtype="float64", requires_grad=True, device=device) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, expected = mg_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)

    seed = normal(out.shape, 99)  # a random output gradient: every output element counts
    grads = out.backward(mg.tensor(seed, dtype="float64", device=device))
    expected.backward(torch.from_numpy(seed))
    for i, (a, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(
            to_numpy(grads[a]), t.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"input {i}"
        )
