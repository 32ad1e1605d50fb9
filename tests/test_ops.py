"""Every op: forward values against NumPy, backward against finite differences (float64).

The op table below runs on every device of the `device` fixture; hypothesis adds random
broadcastable shape pairs for the binary ops and random shapes and axes for the reductions.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import ops
from minigrad.gradcheck import gradcheck

# ---------------------------------------------------------------- inputs


def values(shape, domain="normal", seed=0):
    """Float64 host values: normal, positive in [0.5, 2), or nonzero with |v| in [0.5, 2)."""
    rng = np.random.default_rng(seed)
    if domain == "normal":
        return rng.standard_normal(shape)
    magnitude = rng.uniform(0.5, 2.0, shape)
    if domain == "positive":
        return magnitude
    assert domain == "nonzero"
    return magnitude * rng.choice([-1.0, 1.0], shape)


def leaves(specs, device):
    """(host arrays, float64 leaf tensors on `device`) for [(shape, domain), ...]."""
    arrays = [values(shape, domain, seed=i) for i, (shape, domain) in enumerate(specs)]
    tensors = [
        mg.tensor(x, dtype="float64", device=device, requires_grad=True, name=f"in{i}")
        for i, x in enumerate(arrays)
    ]
    return arrays, tensors


def host(array):
    """A gradient array (NumPy or CuPy) as a NumPy array, dtype unchanged."""
    return mg.backend.to_numpy(array)


def np_logsumexp(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


COND = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, True]])
INDEX = np.array([[0, 1], [1, 0]])
MASK = np.array([True, False, True, True])
GATHER = np.array([[0, 3], [1, 1], [2, 0]])


def same(fn):
    """An op written with operators and methods that mean the same on arrays and tensors."""
    return fn, fn


def case(name, pair, *specs):
    mg_fn, np_fn = pair
    return pytest.param(mg_fn, np_fn, specs, id=name)


N, P, NZ = "normal", "positive", "nonzero"

OPS = [
    # arithmetic, with broadcasting and Python numbers on either side
    case("add", same(lambda a, b: a + b), ((3, 4), N), ((3, 4), N)),
    case("add-broadcast", same(lambda a, b: a + b), ((2, 3, 4), N), ((3, 1), N)),
    case("add-scalar", same(lambda a: a + 2.5), ((3,), N)),
    case("radd-scalar", same(lambda a: 2.5 + a), ((3,), N)),
    case("sub-broadcast", same(lambda a, b: a - b), ((4,), N), ((3, 4), N)),
    case("rsub-scalar", same(lambda a: 1.0 - a), ((2, 2), N)),
    case("mul-broadcast", same(lambda a, b: a * b), ((3, 1), N), ((1, 4), N)),
    case("mul-0d", same(lambda a, b: a * b), ((), N), ((2, 3), N)),
    case("rmul-scalar", same(lambda a: 3 * a), ((2, 3), N)),
    case("div-broadcast", same(lambda a, b: a / b), ((2, 3), N), ((3,), NZ)),
    case("rdiv-scalar", same(lambda a: 2.0 / a), ((4,), NZ)),
    case("div-scalar", same(lambda a: a / 4), ((4,), N)),
    case("pow-tensors", same(lambda a, b: a**b), ((2, 3), P), ((3,), N)),
    case("pow-int", same(lambda a: a**3), ((2, 3), N)),
    case("pow-half", same(lambda a: a**0.5), ((5,), P)),
    case("rpow", same(lambda a: 2.0**a), ((5,), N)),
    case("neg", same(lambda a: -a), ((2, 3), N)),
    # matmul: vectors, matrices, batches, broadcast batches
    case("matmul-1d-1d", same(lambda a, b: a @ b), ((4,), N), ((4,), N)),
    case("matmul-2d-1d", same(lambda a, b: a @ b), ((3, 4), N), ((4,), N)),
    case("matmul-1d-2d", same(lambda a, b: a @ b), ((4,), N), ((4, 5), N)),
    case("matmul-2d-2d", same(lambda a, b: a @ b), ((3, 4), N), ((4, 5), N)),
    case("matmul-3d-2d", same(lambda a, b: a @ b), ((2, 3, 4), N), ((4, 5), N)),
    case("matmul-2d-3d", same(lambda a, b: a @ b), ((3, 4), N), ((2, 4, 5), N)),
    case("matmul-1d-3d", same(lambda a, b: a @ b), ((4,), N), ((2, 4, 5), N)),
    case("matmul-3d-1d", same(lambda a, b: a @ b), ((2, 3, 4), N), ((4,), N)),
    case("matmul-batch-bcast", same(lambda a, b: a @ b), ((2, 1, 3, 4), N), ((5, 4, 2), N)),
    case("matmul-fn", (mg.matmul, np.matmul), ((2, 3), N), ((3, 2), N)),
    # elementwise functions
    case("exp", (mg.exp, np.exp), ((2, 3), N)),
    case("log", (mg.log, np.log), ((2, 3), P)),
    case("sqrt", (mg.sqrt, np.sqrt), ((2, 3), P)),
    case("tanh", (mg.tanh, np.tanh), ((2, 3), N)),
    case("sigmoid", (mg.sigmoid, lambda x: 1 / (1 + np.exp(-x))), ((2, 3), N)),
    case("relu", (mg.relu, lambda x: np.maximum(x, 0)), ((3, 4), NZ)),
    case("abs", (mg.abs, np.abs), ((3, 4), NZ)),
    case(
        "methods",
        (lambda a: a.exp().log().sqrt().tanh().sigmoid().relu().abs(), None),
        ((3,), P),
    ),
    case("maximum-bcast", (mg.maximum, np.maximum), ((3, 4), N), ((4,), N)),
    case("minimum-bcast", (mg.minimum, np.minimum), ((3, 1), N), ((3, 4), N)),
    case(
        "maximum-scalar", (lambda a: mg.maximum(a, 0.25), lambda x: np.maximum(x, 0.25)), ((6,), NZ)
    ),
    case(
        "minimum-rscalar",
        (lambda a: mg.minimum(0.25, a), lambda x: np.minimum(0.25, x)),
        ((6,), NZ),
    ),
    case("clip", same(lambda a: a.clip(-0.7, 0.7)), ((3, 4), N)),
    case("clip-min", (lambda a: mg.clip(a, min=0.1), lambda x: np.clip(x, 0.1, None)), ((3, 4), N)),
    case("clip-max", (lambda a: mg.clip(a, max=0.1), lambda x: np.clip(x, None, 0.1)), ((3, 4), N)),
    case(
        "where-bcast",
        (
            lambda a, b: mg.where(mg.tensor(COND, device=a.device), a, b),
            lambda x, y: np.where(COND, x, y),
        ),
        ((3, 4), N),
        ((4,), N),
    ),
    case(
        "where-scalar",
        (
            lambda a: mg.where(mg.tensor(COND, device=a.device), 0.5, a),
            lambda x: np.where(COND, 0.5, x),
        ),
        ((1, 4), N),
    ),
    # reductions
    case("sum", same(lambda a: a.sum()), ((2, 3), N)),
    case("sum-axis", same(lambda a: a.sum(axis=0)), ((2, 3, 4), N)),
    case("sum-neg-keepdims", same(lambda a: a.sum(axis=-1, keepdims=True)), ((2, 3, 4), N)),
    case("sum-axes", same(lambda a: a.sum(axis=(0, 2))), ((2, 3, 4), N)),
    case("sum-0d", same(lambda a: a.sum()), ((), N)),
    case("mean", same(lambda a: a.mean()), ((2, 3), N)),
    case("mean-axis", same(lambda a: a.mean(axis=1)), ((2, 3, 4), N)),
    case("mean-axes-keepdims", same(lambda a: a.mean(axis=(0, -1), keepdims=True)), ((2, 3, 4), N)),
    case("max", same(lambda a: a.max()), ((3, 4), N)),
    case("max-axis", (lambda a: a.amax(axis=1), lambda x: x.max(axis=1)), ((3, 4, 2), N)),
    case(
        "max-keepdims",
        (lambda a: a.amax(dim=0, keepdim=True), lambda x: x.max(axis=0, keepdims=True)),
        ((3, 4), N),
    ),
    case("min", same(lambda a: a.min()), ((3, 4), N)),
    case("min-axes", (lambda a: a.amin(axis=(0, 2)), lambda x: x.min(axis=(0, 2))), ((3, 4, 2), N)),
    case("logsumexp", (mg.logsumexp, np_logsumexp), ((3, 4), N)),
    case(
        "logsumexp-axis",
        (lambda a: a.logsumexp(axis=1), lambda x: np_logsumexp(x, axis=1)),
        ((3, 4), N),
    ),
    case(
        "logsumexp-axes-keepdims",
        (
            lambda a: mg.logsumexp(a, axis=(0, 2), keepdims=True),
            lambda x: np_logsumexp(x, axis=(0, 2), keepdims=True),
        ),
        ((2, 3, 4), N),
    ),
    # shapes
    case("reshape", same(lambda a: a.reshape(6, 4)), ((2, 3, 4), N)),
    case("reshape-tuple", same(lambda a: a.reshape((4, -1))), ((2, 3, 4), N)),
    case("reshape-flat", same(lambda a: a.reshape(-1)), ((2, 3), N)),
    # transpose(dim0, dim1) swaps two axes, as in PyTorch (NumPy's swapaxes)
    case("transpose", (lambda a: a.transpose(0, 2), lambda x: x.swapaxes(0, 2)), ((2, 3, 4), N)),
    case(
        "transpose-negative",
        (lambda a: a.transpose(-1, 1), lambda x: x.swapaxes(-1, 1)),
        ((2, 3, 4), N),
    ),
    case("transpose-0d", (lambda a: a.transpose(0, -1), lambda x: x), ((), N)),
    case("T-3d", same(lambda a: a.T), ((2, 3, 4), N)),
    case("mT", (lambda a: a.mT, lambda x: x.swapaxes(-1, -2)), ((2, 3, 4), N)),
    case("permute", (lambda a: a.permute(1, 0, 2), lambda x: x.transpose(1, 0, 2)), ((2, 3, 4), N)),
    case(
        "permute-negative",
        (lambda a: a.permute(0, -1, -2), lambda x: x.transpose(0, 2, 1)),
        ((2, 3, 4), N),
    ),
    case(
        "permute-tuple",
        (lambda a: a.permute((2, 0, 1)), lambda x: x.transpose(2, 0, 1)),
        ((2, 3, 4), N),
    ),
    case("T", same(lambda a: a.T), ((2, 3), N)),
    # indexing: slices and integers (assign), integer arrays (scatter-add)
    case("getitem-int", same(lambda a: a[1]), ((3, 4), N)),
    case("getitem-slices", same(lambda a: a[:, 1:3]), ((3, 4), N)),
    case("getitem-reverse", same(lambda a: a[::-1, ::2]), ((3, 4), N)),
    case("getitem-ellipsis-none", same(lambda a: a[..., None, 0]), ((2, 3, 4), N)),
    case("getitem-list-repeats", same(lambda a: a[[0, 2, 0, 0]]), ((3, 4), N)),
    case(
        "getitem-2d-index",
        (lambda a: a[mg.tensor(INDEX, device=a.device)], lambda x: x[INDEX]),
        ((3, 4), N),
    ),
    case("getitem-pairs", same(lambda a: a[[0, 1, 0], [2, 2, 2]]), ((3, 4), N)),
    case("getitem-slice-and-array", same(lambda a: a[1:, [3, 3, 0]]), ((3, 4), N)),
    case(
        "getitem-tensor-index",
        (lambda a: a[mg.tensor([0, 0, 1], device=a.device)], lambda x: x[[0, 0, 1]]),
        ((3, 4), N),
    ),
    case(
        "getitem-bool-mask",
        (lambda a: a[mg.tensor(MASK, device=a.device)], lambda x: x[MASK]),
        ((4, 2), N),
    ),
    case(
        "concatenate",
        (lambda *t: mg.concatenate(t), lambda *x: np.concatenate(x)),
        ((2, 3), N),
        ((1, 3), N),
    ),
    case(
        "concatenate-axis-neg",
        (lambda *t: mg.concatenate(t, axis=-1), lambda *x: np.concatenate(x, axis=-1)),
        ((2, 1), N),
        ((2, 3), N),
        ((2, 2), N),
    ),
    case("stack", (lambda *t: mg.stack(t), lambda *x: np.stack(x)), ((2, 3), N), ((2, 3), N)),
    case(
        "stack-axis-neg",
        (lambda *t: mg.stack(t, axis=-1), lambda *x: np.stack(x, axis=-1)),
        ((2, 3), N),
        ((2, 3), N),
        ((2, 3), N),
    ),
    # PyTorch's names (issue 10): math
    case("sin", (mg.sin, np.sin), ((2, 3), N)),
    case("cos", (lambda a: a.cos(), np.cos), ((2, 3), N)),
    case("clamp-min", (lambda a: a.clamp(min=0.1), lambda x: np.clip(x, 0.1, None)), ((3, 4), N)),
    case(
        "clamp-both", (lambda a: mg.clamp(a, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)), ((5,), N)
    ),
    case("var-dim", (lambda a: a.var(dim=1), lambda x: x.var(axis=1, ddof=1)), ((3, 4), N)),
    case("var-all-correction0", (lambda a: a.var(correction=0), np.var), ((3, 4), N)),
    case(
        "std-keepdim",
        (lambda a: a.std(0, keepdim=True), lambda x: x.std(axis=0, ddof=1, keepdims=True)),
        ((3, 4), N),
    ),
    case(
        "std-unbiased-false-axis",
        (lambda a: a.std(axis=(0, 2), unbiased=False), lambda x: x.std(axis=(0, 2))),
        ((2, 3, 4), N),
    ),
    case("prod-dim", (lambda a: a.prod(dim=1), lambda x: x.prod(axis=1)), ((3, 4), N)),
    case("prod-all", (mg.prod, np.prod), ((2, 3), N)),
    case(
        "prod-keepdim",
        (lambda a: a.prod(0, keepdim=True), lambda x: x.prod(0, keepdims=True)),
        ((3, 2), N),
    ),
    case("cumsum", (lambda a: a.cumsum(dim=1), lambda x: x.cumsum(axis=1)), ((3, 4), N)),
    case("cumsum-neg", (lambda a: mg.cumsum(a, -1), lambda x: x.cumsum(axis=-1)), ((2, 3, 4), N)),
    case("max-dim-values", (lambda a: a.max(dim=1).values, lambda x: x.max(axis=1)), ((3, 4), N)),
    case(
        "min-dim-keepdim",
        (lambda a: a.min(0, keepdim=True)[0], lambda x: x.min(axis=0, keepdims=True)),
        ((3, 4), N),
    ),
    case(
        "softmax-dim0",
        (lambda a: a.softmax(dim=0), lambda x: np.exp(x) / np.exp(x).sum(0)),
        ((3, 4), N),
    ),
    case(
        "log-softmax",
        (
            lambda a: mg.log_softmax(a, dim=-1),
            lambda x: x - np_logsumexp(x, axis=-1, keepdims=True),
        ),
        ((2, 3, 4), N),
    ),
    # PyTorch's names: indexing
    case(
        "gather",
        (
            lambda a: a.gather(1, mg.tensor(GATHER, device=a.device)),
            lambda x: np.take_along_axis(x, GATHER, axis=1),
        ),
        ((3, 4), N),
    ),
    case(
        "gather-dim0-smaller-index",
        (lambda a: mg.gather(a, 0, GATHER), lambda x: np.take_along_axis(x[:, :2], GATHER, 0)),
        ((4, 3), N),
    ),
    case(
        "masked-fill",
        (
            lambda a: a.masked_fill(mg.tensor(MASK, device=a.device), 2.0),
            lambda x: np.where(MASK, 2.0, x),
        ),
        ((3, 4), N),
    ),
    # PyTorch's names: shapes
    case("view", same(lambda a: a.reshape(4, -1)), ((2, 3, 4), N)),
    case("view-method", (lambda a: a.view(4, 6), lambda x: x.reshape(4, 6)), ((2, 3, 4), N)),
    case("unsqueeze", (lambda a: a.unsqueeze(1), lambda x: np.expand_dims(x, 1)), ((2, 3), N)),
    case("unsqueeze-end", (lambda a: a.unsqueeze(-1), lambda x: x[..., None]), ((2, 3), N)),
    case("squeeze", (lambda a: a.squeeze(), np.squeeze), ((2, 1, 3, 1), N)),
    case("squeeze-dim", (lambda a: a.squeeze(1), lambda x: x.squeeze(1)), ((2, 1, 1), N)),
    case("squeeze-not-1", (lambda a: a.squeeze(0), lambda x: x), ((2, 3), N)),
    case("flatten", (lambda a: a.flatten(), lambda x: x.reshape(-1)), ((2, 3, 4), N)),
    case("flatten-1", (lambda a: mg.flatten(a, 1), lambda x: x.reshape(2, -1)), ((2, 3, 4), N)),
    case("flatten-0d", (lambda a: a.flatten(), lambda x: x.reshape(1)), ((), N)),
    case(
        "expand",
        (lambda a: a.expand(2, -1, 4), lambda x: np.broadcast_to(x, (2, 3, 4))),
        ((3, 1), N),
    ),
    case("repeat", (lambda a: a.repeat(2, 3), lambda x: np.tile(x, (2, 3))), ((2, 3), N)),
    case(
        "repeat-new-dim", (lambda a: a.repeat(2, 1, 2), lambda x: np.tile(x, (2, 1, 2))), ((3,), N)
    ),
    case("flip", (lambda a: a.flip(0), lambda x: x[::-1]), ((3, 4), N)),
    case("flip-dims", (lambda a: mg.flip(a, (0, -1)), lambda x: x[::-1, :, ::-1]), ((2, 3, 4), N)),
    case(
        "split-chunk",
        (
            lambda a: a.split(2, dim=1)[1] * a.chunk(2, 1)[0].sum(),
            lambda x: x[:, 2:4] * x[:, :3].sum(),
        ),
        ((2, 5), N),
    ),
    case(
        "split-sizes",
        (lambda a: mg.split(a, [1, 2], dim=0)[1], lambda x: x[1:]),
        ((3, 2), N),
    ),
    case(
        "cat-dim",
        (lambda *t: mg.cat(t, dim=1), lambda *x: np.concatenate(x, axis=1)),
        ((2, 1), N),
        ((2, 3), N),
    ),
    case(
        "stack-dim",
        (lambda *t: mg.stack(t, dim=1), lambda *x: np.stack(x, 1)),
        ((2,), N),
        ((2,), N),
    ),
    case(
        "pad",
        (lambda a: mg.pad(a, (1, 2)), lambda x: np.pad(x, ((0, 0), (1, 2)))),
        ((2, 3), N),
    ),
    case(
        "pad-two-dims-value",
        (
            lambda a: mg.pad(a, (0, 1, 2, 0), value=-1.0),
            lambda x: np.pad(x, ((0, 0), (2, 0), (0, 1)), constant_values=-1.0),
        ),
        ((2, 3, 4), N),
    ),
    case(
        "pad-crop",
        (lambda a: mg.pad(a, (-1, 1)), lambda x: np.pad(x[:, 1:], ((0, 0), (0, 1)))),
        ((2, 3), N),
    ),
    # 0-d and empty tensors
    case("sum-0d-dim0", (lambda a: a.sum(dim=0), lambda x: x), ((), N)),
    case("mean-0d-dim-neg", (lambda a: a.mean(-1, keepdim=True), lambda x: x), ((), N)),
    case("softmax-0d", (lambda a: a.softmax(0), lambda x: np.ones(())), ((), N)),
    case("sum-empty", (lambda a: a.sum(dim=0), lambda x: x.sum(axis=0)), ((0, 3), N)),
    case("softmax-empty", (lambda a: a.softmax(-1), lambda x: x), ((0, 3), N)),
    case("cumsum-empty", (lambda a: a.cumsum(0), lambda x: x), ((0,), N)),
    case(
        "cat-empty", (lambda *t: mg.cat(t), lambda *x: np.concatenate(x)), ((0, 2), N), ((1, 2), N)
    ),
    # compositions: gradients flowing through several ops
    case(
        "mlp-layer",
        (
            lambda x, w, b: mg.tanh(x @ w + b).logsumexp(axis=1).mean(),
            lambda x, w, b: np_logsumexp(np.tanh(x @ w + b), axis=1).mean(),
        ),
        ((4, 3), N),
        ((3, 5), N),
        ((5,), N),
    ),
    case(
        "softmax",
        (
            lambda z: (z - z.logsumexp(axis=-1, keepdims=True)).exp(),
            lambda z: np.exp(z - np_logsumexp(z, axis=-1, keepdims=True)),
        ),
        ((3, 4), N),
    ),
]


@pytest.mark.parametrize("mg_fn, np_fn, specs", OPS)
def test_forward_matches_numpy_in_float64(mg_fn, np_fn, specs, device):
    arrays, tensors = leaves(specs, device)
    out = mg_fn(*tensors)
    if np_fn is None:  # the method forms: equal to the same chain of functions
        np_fn = lambda x: 1 / (1 + np.exp(-np.tanh(np.sqrt(np.log(np.exp(x))))))  # noqa: E731
    expected = np_fn(*arrays)
    assert out.device == device
    assert out.dtype == np.float64
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert out.requires_grad


@pytest.mark.parametrize("mg_fn, np_fn, specs", OPS)
def test_backward_matches_finite_differences(mg_fn, np_fn, specs, device):
    _, tensors = leaves(specs, device)
    assert gradcheck(mg_fn, tensors) is True


@pytest.mark.parametrize("mg_fn, np_fn, specs", OPS)
def test_gradients_have_the_inputs_shapes_dtypes_and_device(mg_fn, np_fn, specs, device):
    _, tensors = leaves(specs, device)
    out = mg_fn(*tensors)
    grads = out.backward(mg.ones_like(out).data)
    for t in tensors:
        assert grads[t].shape == t.shape
        assert grads[t].dtype == np.float64
        assert mg.tensor(grads[t]).device == device


# ---------------------------------------------------------------- float32 stays float32

FLOAT32_OPS = [
    pytest.param(lambda a: a * 2.5 + 1, id="scalar-arith"),
    pytest.param(lambda a: 1.0 / (a.abs() + 1) - a**2, id="rdiv-pow"),
    pytest.param(mg.sigmoid, id="sigmoid"),
    pytest.param(lambda a: mg.relu(a) * 2, id="relu"),
    pytest.param(lambda a: a.mean(axis=0), id="mean"),
    pytest.param(lambda a: a.logsumexp(axis=1), id="logsumexp"),
    pytest.param(lambda a: a.amax(axis=1), id="amax"),
    pytest.param(lambda a: a.max(dim=1).values, id="max-dim"),
    pytest.param(lambda a: mg.maximum(a, 0.0), id="maximum-scalar"),
    pytest.param(lambda a: mg.where(a > 0, a, 0.0), id="where-scalar"),
    pytest.param(lambda a: a[[0, 0]], id="getitem"),
    pytest.param(lambda a: a @ a.T, id="matmul"),
    pytest.param(lambda a: a * np.float64(2.5) - np.float32(1) / np.array(4.0), id="numpy-scalars"),
    pytest.param(lambda a: a ** mg.tensor(2.0, dtype="float64", device=a.device), id="pow-0d-f64"),
    pytest.param(lambda a: a.abs() ** 0.0 + a.abs() ** np.float64(1.5), id="pow-scalar-0"),
    pytest.param(lambda a: a.sin() + a.cos(), id="sin-cos"),
    pytest.param(lambda a: a.clamp(min=np.float64(0.0)), id="clamp-numpy-bound"),
    pytest.param(lambda a: a.var(dim=1) + a.std(), id="var-std"),
    pytest.param(lambda a: a.prod(dim=1) + a.cumsum(1)[:, -1], id="prod-cumsum"),
    pytest.param(lambda a: a.softmax(dim=0) + mg.log_softmax(a, dim=1), id="softmax"),
    pytest.param(lambda a: a.gather(1, mg.tensor([[0], [1], [3]], device=a.device)), id="gather"),
    pytest.param(
        lambda a: mg.pad(a, (1, 1)).masked_fill(mg.tensor(True, device=a.device), 0.5),
        id="pad-fill",
    ),
    pytest.param(lambda a: a.unsqueeze(0).expand(2, 3, 4).repeat(1, 2, 1).flip(0), id="shapes"),
]


@pytest.mark.parametrize("fn", FLOAT32_OPS)
def test_float32_inputs_give_float32_outputs_and_gradients(fn, device):
    x = mg.tensor(values((3, 4)), requires_grad=True, device=device)
    assert x.dtype == np.float32
    out = fn(x)
    assert out.dtype == np.float32
    grads = out.sum().backward()
    assert grads[x].dtype == np.float32


def test_mixed_float32_and_float64_promote_and_the_gradient_keeps_the_leaf_dtype(device):
    a = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = mg.tensor([3.0, 4.0], dtype="float64", requires_grad=True, device=device)
    out = a * b
    assert out.dtype == np.float64
    grads = out.sum().backward()
    assert grads[a].dtype == np.float32 and grads[b].dtype == np.float64
    np.testing.assert_array_equal(host(grads[a]), [3.0, 4.0])


def test_astype_converts_values_and_the_gradient_back(device):
    x = mg.tensor([1.5, -2.25], dtype="float64", requires_grad=True, device=device)
    y = x.astype("float32")
    assert y.dtype == np.float32
    grads = (y * y).sum().backward()
    assert grads[x].dtype == np.float64
    np.testing.assert_array_equal(host(grads[x]), [3.0, -4.5])


# ---------------------------------------------------------------- kinks and ties

KINKS = [
    # (op, input, expected gradient of out.sum())
    pytest.param(mg.relu, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0], id="relu-at-0"),
    pytest.param(mg.abs, [-1.0, 0.0, 2.0], [-1.0, 0.0, 1.0], id="abs-at-0"),
    pytest.param(lambda a: a.clip(-1.0, 1.0), [-1.0, 1.0, 3.0], [1.0, 1.0, 0.0], id="clip-bounds"),
    pytest.param(lambda a: a.max(), [3.0, 1.0, 3.0], [0.5, 0.0, 0.5], id="max-tie"),
    pytest.param(lambda a: a.amin(dim=0), [1.0, 1.0, 1.0], [1 / 3, 1 / 3, 1 / 3], id="amin-tie"),
    pytest.param(lambda a: a.min(dim=0).values, [1.0, 1.0, 1.0], [1.0, 0, 0], id="min-dim-tie"),
    pytest.param(lambda a: mg.maximum(a, 1.0), [1.0, 0.0, 2.0], [0.5, 0.0, 1.0], id="maximum-tie"),
    pytest.param(lambda a: mg.minimum(a, 1.0), [1.0, 0.0, 2.0], [0.5, 1.0, 0.0], id="minimum-tie"),
]


@pytest.mark.parametrize("fn, data, expected", KINKS)
def test_gradient_at_kinks_and_ties_follows_the_documented_convention(fn, data, expected, device):
    x = mg.tensor(data, dtype="float64", requires_grad=True, device=device)
    grads = fn(x).sum().backward()
    np.testing.assert_allclose(host(grads[x]), expected, rtol=1e-15)


def test_maximum_of_two_tensors_splits_a_tie_between_them(device):
    a = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True, device=device)
    b = mg.tensor([1.0, 0.0], dtype="float64", requires_grad=True, device=device)
    grads = mg.maximum(a, b).sum().backward()
    assert host(grads[a]).tolist() == [0.5, 1.0]
    assert host(grads[b]).tolist() == [0.5, 0.0]


# ---------------------------------------------------------------- logsumexp stability


def test_logsumexp_is_stable_for_large_inputs(device):
    x = mg.tensor([[1000.0, 1000.0], [-1000.0, -1000.0]], dtype="float64", device=device)
    out = x.logsumexp(axis=1).numpy()
    np.testing.assert_allclose(out, [1000.0 + np.log(2.0), -1000.0 + np.log(2.0)], rtol=1e-15)


def test_logsumexp_of_an_all_minus_inf_row_is_minus_inf_with_zero_gradient(device):
    data = np.array([[-np.inf, -np.inf], [0.0, -np.inf], [0.0, 1.0]])
    x = mg.tensor(data, dtype="float64", requires_grad=True, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or invalid-value warnings
        out = x.logsumexp(axis=1)
        grads = out.sum().backward()
    np.testing.assert_array_equal(out.numpy()[:2], [-np.inf, 0.0])
    softmax = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    np.testing.assert_allclose(host(grads[x]), [[0, 0], [1, 0], softmax], rtol=1e-15)


def test_logsumexp_of_a_plus_inf_entry_is_plus_inf(device):
    x = mg.tensor([[np.inf, 1.0]], dtype="float64", device=device)
    assert x.logsumexp(axis=1).numpy().tolist() == [np.inf]


# ---------------------------------------------------------------- indexing and joining details


def test_integer_array_indexing_scatter_adds_repeated_positions(device):
    x = mg.tensor([10.0, 20.0, 30.0], requires_grad=True, device=device)
    out = x[[2, 0, 2, 2]]
    np.testing.assert_array_equal(out.numpy(), [30.0, 10.0, 30.0, 30.0])
    grads = out.backward(mg.tensor([1.0, 2.0, 3.0, 4.0], device=device))
    np.testing.assert_array_equal(host(grads[x]), [2.0, 0.0, 8.0])


def test_concatenate_gives_each_input_its_slice_of_the_gradient(device):
    a = mg.tensor([[1.0, 2.0]], requires_grad=True, device=device)
    b = mg.tensor([[3.0, 4.0], [5.0, 6.0]], requires_grad=True, device=device)
    out = mg.concatenate([a, b])
    weights = mg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], device=device)
    grads = (out * weights).sum().backward()
    assert host(grads[a]).tolist() == [[1.0, 2.0]]
    assert host(grads[b]).tolist() == [[3.0, 4.0], [5.0, 6.0]]


def test_concatenate_and_stack_accept_inputs_that_need_no_gradient(device):
    a = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    c = mg.tensor([7.0, 8.0], device=device)
    grads = (mg.stack([a, c]) * 3).sum().backward()
    assert list(grads) == [a.id]
    assert host(grads[a]).tolist() == [3.0, 3.0]
    grads = mg.concatenate([c, a]).sum().backward()
    assert list(grads) == [a.id]


# ---------------------------------------------------------------- comparisons

COMPARISONS = [
    pytest.param(lambda a, b: a < b, np.less, id="lt"),
    pytest.param(lambda a, b: a <= b, np.less_equal, id="le"),
    pytest.param(lambda a, b: a > b, np.greater, id="gt"),
    pytest.param(lambda a, b: a >= b, np.greater_equal, id="ge"),
    pytest.param(lambda a, b: a == b, np.equal, id="eq"),
    pytest.param(lambda a, b: a != b, np.not_equal, id="ne"),
]


@pytest.mark.parametrize("compare, np_compare", COMPARISONS)
def test_comparisons_return_bool_tensors_outside_the_graph(compare, np_compare, device):
    x_np = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    y_np = np.array([2.0, 2.0, 2.0])
    x = mg.tensor(x_np, requires_grad=True, device=device)
    y = mg.tensor(y_np, requires_grad=True, device=device)
    for result, expected in [
        (compare(x, y), np_compare(x_np, y_np)),
        (compare(x, 2.0), np_compare(x_np, 2.0)),
    ]:
        assert result.dtype == np.bool_
        assert result.device == device
        assert not result.requires_grad and result.is_leaf
        np.testing.assert_array_equal(result.numpy(), expected)


def test_a_comparison_used_as_a_mask_passes_no_gradient_through_the_condition(device):
    x = mg.tensor([-1.0, 2.0], requires_grad=True, device=device)
    grads = mg.where(x > 0, x * 3, 0.0).sum().backward()
    assert host(grads[x]).tolist() == [0.0, 3.0]


def test_tensors_stay_hashable_despite_elementwise_equality():
    a, b = mg.tensor([1.0]), mg.tensor([1.0])
    assert len({a, b, a}) == 2


# ---------------------------------------------------------------- numpy operands


def test_numpy_arrays_on_either_side_of_an_operator_give_tensors():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    host = np.array([3.0, 4.0], dtype=np.float32)
    for out, expected in [
        (host + x, [4.0, 6.0]),
        (x + host, [4.0, 6.0]),
        (host * x, [3.0, 8.0]),
        (host - x, [2.0, 2.0]),
        (host / x, [3.0, 2.0]),
        (host @ x, 11.0),
    ]:
        assert isinstance(out, mg.Tensor)
        assert out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)
    grads = (host * x).sum().backward()
    assert grads[x].tolist() == [3.0, 4.0]


def test_a_list_operand_takes_the_tensor_float_dtype():
    x = mg.tensor([1.0, 2.0])
    out = x + [1, 2]
    assert out.dtype == np.float32
    assert out.numpy().tolist() == [2.0, 4.0]


# ---------------------------------------------------------------- errors


def test_matmul_shape_mismatch_names_both_shapes():
    a, b = mg.zeros(2, 3), mg.zeros(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        a @ b


def test_matmul_rejects_0d_operands():
    with pytest.raises(ValueError, match="at least one dimension"):
        mg.matmul(mg.tensor(2.0), mg.zeros(2))


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda a: a.sum(axis=2), id="sum-2"),
        pytest.param(lambda a: a.mean(axis=-3), id="mean--3"),
        pytest.param(lambda a: a.amax(axis=(0, 5)), id="amax-tuple"),
        pytest.param(lambda a: a.logsumexp(axis=2), id="logsumexp"),
        pytest.param(lambda a: a.transpose(0, 2), id="transpose"),
    ],
)
def test_an_axis_out_of_range_raises_instead_of_wrapping_around(fn):
    with pytest.raises(IndexError, match="out of range for a tensor with 2 dimensions"):
        fn(mg.zeros(2, 3))


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="give min, max, or both"):
        mg.clip(mg.zeros(2))


@pytest.mark.parametrize("join", [mg.concatenate, mg.stack])
def test_joining_nothing_raises(join):
    with pytest.raises(ValueError, match="need at least one tensor"):
        join([])


# ---------------------------------------------------------------- hypothesis: broadcasting

BINARY = {
    "add": (lambda a, b: a + b, np.add, N, N),
    "sub": (lambda a, b: a - b, np.subtract, N, N),
    "mul": (lambda a, b: a * b, np.multiply, N, N),
    "div": (lambda a, b: a / b, np.divide, N, NZ),
    "pow": (lambda a, b: a**b, np.power, P, N),
    "maximum": (mg.maximum, np.maximum, N, N),
    "minimum": (mg.minimum, np.minimum, N, N),
    "where": (
        lambda a, b: mg.where(a > 0, a, b),
        lambda x, y: np.where(x > 0, x, y),
        NZ,
        N,
    ),
}

HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("name", list(BINARY))
@HYPOTHESIS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_binary_ops_broadcast_like_numpy_and_gradcheck(name, shapes, device):
    fn, np_fn, domain_a, domain_b = BINARY[name]
    (shape_a, shape_b), result_shape = shapes.input_shapes, shapes.result_shape
    arrays, tensors = leaves([(shape_a, domain_a), (shape_b, domain_b)], device)
    out = fn(*tensors)
    assert out.shape == result_shape
    np.testing.assert_allclose(out.numpy(), np_fn(*arrays), rtol=1e-12)
    assert gradcheck(fn, tensors)


@st.composite
def shape_axis_keepdims(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    axis_choices = [st.none(), hnp.valid_tuple_axes(len(shape))]
    if shape:
        axis_choices.append(st.integers(-len(shape), len(shape) - 1))
    return shape, draw(st.one_of(*axis_choices)), draw(st.booleans())


REDUCTIONS = {
    "sum": (ops.sum, np.sum),
    "mean": (ops.mean, np.mean),
    "amax": (ops.amax, np.max),
    "amin": (ops.amin, np.min),
    "logsumexp": (ops.logsumexp, np_logsumexp),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@HYPOTHESIS
@given(spec=shape_axis_keepdims())
def test_reductions_match_numpy_for_any_axis_and_gradcheck(name, spec, device):
    fn, np_fn = REDUCTIONS[name]
    shape, axis, keepdims = spec
    arrays, tensors = leaves([(shape, N)], device)
    out = fn(tensors[0], axis=axis, keepdims=keepdims)
    expected = np_fn(arrays[0], axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda t: fn(t, axis=axis, keepdims=keepdims), tensors)


@st.composite
def shape_and_dim(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    low = -max(len(shape), 1)
    return shape, draw(st.integers(low, -low - 1)), draw(st.booleans())


ONE_DIM_OPS = {
    "var": (
        lambda t, d, k: t.var(dim=d, keepdim=k, correction=0),
        lambda x, d, k: x.var(axis=d if x.ndim else None, keepdims=k and x.ndim > 0),
    ),
    "prod": (
        lambda t, d, k: t.prod(d, keepdim=k),
        lambda x, d, k: x.prod(axis=d if x.ndim else None, keepdims=k and x.ndim > 0),
    ),
    "cumsum": (lambda t, d, k: t.cumsum(d), lambda x, d, k: np.cumsum(x, axis=d) if x.ndim else x),
    "softmax": (
        lambda t, d, k: t.softmax(d),
        lambda x, d, k: np.exp(x - np_logsumexp(x, axis=d if x.ndim else None, keepdims=True)),
    ),
    "max-values": (
        lambda t, d, k: t.max(d, keepdim=k).values,
        lambda x, d, k: x.max(axis=d if x.ndim else None, keepdims=k and x.ndim > 0),
    ),
}


@pytest.mark.parametrize("name", list(ONE_DIM_OPS))
@HYPOTHESIS
@given(spec=shape_and_dim())
def test_one_dim_ops_match_numpy_for_any_shape_and_dim_and_gradcheck(name, spec, device):
    fn, np_fn = ONE_DIM_OPS[name]
    shape, dim, keepdim = spec
    arrays, tensors = leaves([(shape, N)], device)
    out = fn(tensors[0], dim, keepdim)
    expected = np_fn(arrays[0], dim, keepdim)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda t: fn(t, dim, keepdim), tensors)


SHAPE_OPS = {
    "unsqueeze": (lambda t, d: t.unsqueeze(d), lambda x, d: np.expand_dims(x, d)),
    "flatten-from": (
        lambda t, d: t.flatten(d),
        lambda x, d: x.reshape(x.shape[: d % x.ndim] + (-1,)) if x.ndim else x.reshape(1),
    ),
    "flip": (lambda t, d: t.flip(d), lambda x, d: np.flip(x, d) if x.ndim else x),
    "repeat": (
        lambda t, d: t.repeat(*[2] * t.ndim, 2),
        lambda x, d: np.tile(x, [2] * (x.ndim + 1)),
    ),
    "expand": (
        lambda t, d: t.expand(3, *t.shape),
        lambda x, d: np.broadcast_to(x, (3,) + x.shape),
    ),
    "pad-last": (
        lambda t, d: mg.pad(t, (1, 2)) if t.ndim else t * 1,
        lambda x, d: np.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 2)]) if x.ndim else x,
    ),
    "split-2": (
        lambda t, d: mg.cat(t.split(2, dim=d)[::-1], dim=d) if t.ndim else t * 1,
        lambda x, d: (
            np.concatenate(np.split(x, range(2, x.shape[d], 2), d)[::-1], d) if x.ndim else x
        ),
    ),
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
@HYPOTHESIS
@given(spec=shape_and_dim())
def test_shape_ops_match_numpy_for_any_shape_and_gradcheck(name, spec, device):
    fn, np_fn = SHAPE_OPS[name]
    shape, dim, _ = spec
    if name == "unsqueeze":
        dim = max(min(dim, len(shape)), -len(shape) - 1)
    arrays, tensors = leaves([(shape, N)], device)
    out = fn(tensors[0], dim)
    expected = np_fn(arrays[0], dim)
    assert out.shape == np.shape(expected)
    np.testing.assert_array_equal(out.numpy(), expected)
    assert gradcheck(lambda t: fn(t, dim), tensors)


def test_transpose_has_pytorchs_meaning_and_points_to_permute():
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert x.transpose(0, 1).shape == (3, 2)  # NumPy's transpose(0, 1) would leave it (2, 3)
    np.testing.assert_array_equal(x.transpose(0, 1).numpy(), x.numpy().T)
    with pytest.raises(TypeError, match=r"permute"):
        mg.zeros(2, 3, 4).transpose(1, 0, 2)
    with pytest.raises(TypeError, match=r"two dims"):
        x.transpose()
    with pytest.raises(ValueError, match=r"name an axis twice"):
        mg.zeros(2, 3).permute(0, 0)
    with pytest.raises(ValueError, match=r"needs 3 dims"):
        mg.zeros(2, 3, 4).permute(0, 1)
    with pytest.raises(ValueError, match=r"at least 2 dimensions"):
        _ = mg.zeros(3).mT
