"""minigrad against PyTorch's recorded numbers (tests/golden/ops.npz, made by gen_ops.py).

Every case of the golden file has its minigrad twin here, under the same name: the values,
and the gradients for the same random output gradient, must match PyTorch's in float64
(including the places where a convention matters: ties in max/min/maximum, clamp at its
bounds, relu and abs at 0, pow where the base is 0, -inf in log_softmax). The cases that
are not differentiable (indices, type promotion) compare values and dtypes. PyTorch is not
needed: regenerate the file with `python tests/golden/make_golden.py ops` where it is.
"""

import numpy as np
import pytest
from golden import load

import minigrad as mg
from minigrad import nn
from minigrad.backend import to_numpy

GOLDEN = load("ops")

# name: minigrad function of float64 tensors (the inputs come from the golden file)
DIFFERENTIABLE = {
    "broadcast-arithmetic": lambda a, b: a * b + a / b - b**2,
    "pow": lambda a, b: a**b + 2.0**b - 1.0 / a,
    "matmul-batched": lambda a, b: a @ b,
    "dot": lambda a, b: a @ b,
    "matmul-vector-batch": lambda a, b: a @ b,
    "elementwise": lambda a: (a.exp() + a.abs().sqrt() + a.tanh() + a.sigmoid() + a.relu()).log(),
    "relu-abs-at-zero": lambda a: a.relu() + a.abs(),
    "maximum-minimum-ties": lambda a, b: mg.maximum(a, b) * 2 + mg.minimum(a, b),
    "clip-at-bounds": lambda a: a.clip(-1.0, 1.0),
    "max-min-ties-all": lambda a: a.max() + a.min() * 2,
    "amax-amin-ties-dim": lambda a: a.amax(dim=1) + a.amin(axis=0, keepdims=True).sum(),
    "sum-mean": lambda a: a.sum(axis=(0, 2)) * a.mean(dim=-1, keepdim=True).mean(),
    "logsumexp": lambda a: a.logsumexp(dim=1) + mg.logsumexp(a * 100),
    "shapes": lambda a: a.reshape(4, 6).T.transpose(1, 0).reshape(-1)[::-3],
    "indexing": lambda a: a[[0, 2, 0], 1:] * a[1, 1:] + a[:, [3, 3]].sum(),
    "concatenate-stack": lambda a, b: (
        mg.concatenate([a, b, a], axis=1) * mg.stack([a, b], dim=-1).sum()
    ),
    "where": lambda a, b: mg.where(a > b, a * b, b),
    "cross-entropy": lambda x, w, b: nn.functional.cross_entropy(x @ w + b, [2, 0, 1]),
    "pow-exponent-zero": lambda a: a**0.0,
    "pow-base-zero-number": lambda b: 0.0**b,
    "pow-base-zero-tensor": lambda a, b: a**b,
    "sin-cos": lambda a: a.sin() * 2 + mg.cos(a),
    "clamp-min": lambda a: a.clamp(min=0.25),
    "clamp-max": lambda a: mg.clamp(a, max=0.25),
    "var-dim": lambda a: a.var(dim=1),
    "var-correction0-all": lambda a: a.var(correction=0),
    "std-keepdim": lambda a: a.std(dim=0, keepdim=True),
    "std-unbiased-false": lambda a: a.std(unbiased=False),
    "prod-dim-with-zeros": lambda a: a.prod(dim=1),
    "prod-all": lambda a: a.prod(),
    "prod-all-one-zero": lambda a: mg.prod(a),
    "cumsum-0": lambda a: a.cumsum(dim=0),
    "cumsum-last": lambda a: a.cumsum(-1),
    "max-dim-ties": lambda a: a.max(dim=1).values,
    "min-dim-keepdim": lambda a: a.min(0, keepdim=True).values,
    "softmax-dim0": lambda a: a.softmax(dim=0),
    "log-softmax-last": lambda a: nn.functional.log_softmax(a, dim=-1),
    "log-softmax-minus-inf": lambda a: a.log_softmax(dim=1),
    "gather-dim1": lambda a: a.gather(1, mg.tensor([[0, 0], [3, 1], [2, 2]], device=a.device)),
    "gather-dim0-repeats": lambda a: mg.gather(a, 0, [[2, 0, 1, 2], [2, 2, 0, 0]]),
    "masked-fill": lambda a: a.masked_fill(_mask(a), -1.5),
    "view-unsqueeze-squeeze": lambda a: (
        a.view(3, 1, 4).unsqueeze(0).squeeze() * a.unsqueeze(-1).squeeze(-1)
    ),
    "flatten": lambda a: a.flatten(1) * 2 + a.flatten().sum(),
    "expand": lambda a: a.expand(2, 3, 4) * 1.5,
    "repeat": lambda a: a.repeat(2, 1, 3),
    "flip": lambda a: a.flip((0, 2)),
    "chunk-split": lambda a: (
        a.chunk(3, dim=1)[1] * a.split([1, 3], dim=1)[0] + a.split(3, 1)[1].sum()
    ),
    "cat-stack-dims": lambda a, b: mg.cat([a, b], dim=-1).sum(0) * mg.stack([a, b], 1).sum(),
    "pad": lambda a: mg.pad(a, (1, 2, 0, 1), value=0.5),
    "pad-negative": lambda a: mg.pad(a, (-1, 2, 1, -1)),
    "sum-0d-dim0": lambda a: a.sum(dim=0) * a.mean(-1),
    "max-0d-dim": lambda a: a.max(dim=0).values * 3,
    "softmax-0d": lambda a: a.softmax(0),
    "flatten-0d": lambda a: a.flatten() * 2,
    "sum-empty": lambda a: a.sum(dim=0),
    "softmax-empty": lambda a: a.softmax(dim=-1),
}


def _mask(a):
    return mg.tensor([True, False, True, False], device=a.device)


TIES = GOLDEN["max-min-ties-all/x0"]

# name: minigrad function of the device, giving the tensor whose values and dtype PyTorch's
# recorded result must equal
VALUES_ONLY = {
    "argmax-ties": lambda d: mg.tensor(TIES, device=d).argmax(dim=1),
    "argmin-all": lambda d: mg.tensor(TIES, device=d).argmin(),
    "argmax-keepdim": lambda d: mg.tensor(TIES, device=d).argmax(0, keepdim=True),
    "max-dim-indices": lambda d: mg.tensor(TIES, device=d).max(dim=1).indices,
    "min-dim-indices": lambda d: mg.tensor(TIES, device=d).min(0)[1],
    "promote-f32-f64": lambda d: mg.ones(2, device=d) + mg.ones(2, dtype="float64", device=d),
    "promote-f32-0d-f64": lambda d: (
        mg.ones(2, device=d) + mg.tensor(2.0, dtype="float64", device=d)
    ),
    "promote-f32-number": lambda d: mg.ones(2, device=d) * 2.5,
    "promote-f32-np-float64": lambda d: mg.ones(2, device=d) * np.float64(2.5),
    "promote-int-float-number": lambda d: mg.tensor([1, 2], device=d) * 2.5,
    "promote-int-f32": lambda d: mg.tensor([1, 2], device=d) + mg.ones(2, device=d),
    "promote-int-0d-f64": lambda d: (
        mg.tensor([1, 2], device=d) + mg.tensor(0.5, dtype="float64", device=d)
    ),
    "promote-bool-int": lambda d: mg.tensor([True, False], device=d) + 3,
    "promote-f16-f32": lambda d: mg.ones(2, dtype="float16", device=d) + mg.ones(2, device=d),
    "promote-int-div-int": lambda d: mg.tensor([1, 2], device=d) / 2,
    "promote-int-div-int-tensor": lambda d: (
        mg.tensor([1, 2], device=d) / mg.tensor([4, 8], device=d)
    ),
}


def test_every_golden_case_has_a_minigrad_twin():
    assert set(GOLDEN.cases()) == set(DIFFERENTIABLE) | set(VALUES_ONLY)


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_values_and_gradients_match_pytorch(name, device):
    case = GOLDEN.case(name)
    inputs = [case[f"x{i}"] for i in range(sum(key[0] == "x" for key in case))]
    ours = [mg.tensor(x, dtype="float64", requires_grad=True, device=device) for x in inputs]
    out = DIFFERENTIABLE[name](*ours)
    assert out.dtype == np.float64 and out.shape == case["out"].shape
    np.testing.assert_allclose(out.numpy(), case["out"], rtol=1e-12, atol=1e-12)

    grads = out.backward(mg.tensor(case["gout"], dtype="float64", device=device))
    for i, x in enumerate(ours):
        got = to_numpy(grads[x]) if x in grads else np.zeros(x.shape)
        np.testing.assert_allclose(
            got, case[f"grad.x{i}"], rtol=1e-12, atol=1e-12, err_msg=f"gradient of input {i}"
        )


@pytest.mark.parametrize("name", list(VALUES_ONLY))
def test_values_and_dtypes_match_pytorch(name, device):
    expected = GOLDEN[f"{name}/out"]
    out = VALUES_ONLY[name](device)
    assert out.dtype == expected.dtype, f"PyTorch gives {expected.dtype}, minigrad {out.dtype}"
    np.testing.assert_array_equal(out.numpy(), expected)
