"""nn.functional: each function against a plain-NumPy formula, and its backward against
finite differences (gradcheck, float64), on every device."""

import math

import numpy as np
import pytest
from golden import load
from golden.gen_nn import ACTIVATIONS as ACTIVATION_GOLDEN
from golden.gen_nn import upstream

import minigrad as mg
from minigrad import backend, nn
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F
from minigrad.nn.functional._erf import erf


def t64(array, device, requires_grad=True):
    return mg.tensor(np.asarray(array), dtype="float64", device=device, requires_grad=requires_grad)


def host(x):
    return backend.to_numpy(x.data if isinstance(x, mg.Tensor) else x)


def np_log_softmax(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def np_cross_entropy(z, t, reduction="mean", eps=0.0):
    logp = np_log_softmax(z)
    n, c = z.shape
    q = np.full((n, c), eps / c)
    q[np.arange(n), t] += 1.0 - eps
    losses = -(q * logp).sum(axis=1)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


# ---------------------------------------------------------------- activations
# Inputs keep away from 0 where relu/leaky_relu have a kink.
X = np.array([[-2.0, -0.7, 0.3], [1.5, -0.1, 2.2]])

ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "tanh": (F.tanh, np.tanh),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "gelu": (F.gelu, np_gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), np_gelu_tanh),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x))),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x))),
    "softplus_threshold": (
        lambda x: F.softplus(x, beta=2.0, threshold=1.0),
        lambda x: np.where(2 * x > 1, x, np.log1p(np.exp(2 * x)) / 2),
    ),
    "softmax": (F.softmax, lambda x: np.exp(np_log_softmax(x))),
    "log_softmax": (F.log_softmax, np_log_softmax),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: np.exp(np_log_softmax(x, 0))),
    "log_softmax_axis0": (lambda x: F.log_softmax(x, axis=0), lambda x: np_log_softmax(x, 0)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_numpy(name, device):
    fn, reference = ACTIVATIONS[name]
    out = fn(t64(X, device))
    np.testing.assert_allclose(host(out), reference(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradcheck(name, device):
    fn, _ = ACTIVATIONS[name]
    assert gradcheck(fn, [t64(X, device)])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_keeps_float32(name, device):
    fn, _ = ACTIVATIONS[name]
    x = mg.tensor(X, device=device, requires_grad=True)
    out = fn(x)
    assert out.dtype == np.float32
    assert out.sum().backward()[x].dtype == np.float32


def test_gelu_tanh_form_is_close_to_the_exact_default():
    x = np.linspace(-5, 5, 201)
    tanh_form = host(F.gelu(t64(x, "cpu"), approximate="tanh"))
    assert np.abs(tanh_form - np_gelu(x)).max() < 1e-3
    with pytest.raises(ValueError, match="'none' or 'tanh'"):
        F.gelu(t64(x, "cpu"), approximate="erf")


def test_erf_is_within_one_ulp_of_math_erf_in_float64(device):
    x = np.concatenate(
        [np.linspace(-7, 7, 20001), [0.0, 1e-300, 2.0**-30, 0.84375, 1.25, 1 / 0.35, 6.0, 40.0]]
    )
    expected = np.vectorize(math.erf)(x)
    got = host(erf(backend.to_device(x, device)))
    assert (np.abs(got - expected) <= np.spacing(np.abs(expected))).all()
    special = host(erf(backend.to_device(np.array([np.inf, -np.inf, np.nan]), device)))
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2])
    x32 = np.linspace(-8, 8, 20001, dtype=np.float32)
    got32 = erf(backend.to_device(x32, device))
    assert got32.dtype == np.float32
    assert np.abs(host(got32) - np.vectorize(math.erf)(x32.astype(np.float64))).max() < 6e-7


def test_float32_gelu_is_within_float32_rounding_of_the_exact_values(device):
    x = np.linspace(-6, 6, 2001)
    out = host(F.gelu(mg.tensor(x, device=device)))  # float32
    assert out.dtype == np.float32
    assert np.abs(out - np_gelu(x.astype(np.float32).astype(np.float64))).max() < 1e-6


@pytest.mark.parametrize("name", ACTIVATION_GOLDEN)
def test_activation_matches_pytorch(name, device):
    fn, options = ACTIVATION_GOLDEN[name]
    expected = load("nn").case(f"act_{name}")
    x = t64(expected["x"], device)
    out = getattr(F, fn)(x, **options)
    np.testing.assert_allclose(host(out), expected["out"], rtol=1e-12, atol=1e-15)
    grad = out.backward(backend.to_device(upstream(expected["out"].shape), device))[x]
    np.testing.assert_allclose(host(grad), expected["grad.x"], rtol=1e-10, atol=1e-15)


def test_activation_layers_have_pytorchs_arguments():
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert nn.GELU("tanh").approximate == "tanh"
    assert repr(nn.Softplus(beta=2)) == "Softplus(beta=2.0, threshold=20.0)"
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)"
    x = t64(X, "cpu")
    np.testing.assert_allclose(host(nn.Softmax(dim=0)(x)), host(F.softmax(x, 0)))
    np.testing.assert_allclose(host(nn.LogSoftmax(dim=-1)(x)), host(F.log_softmax(x, -1)))
    np.testing.assert_allclose(host(nn.SiLU()(x)), host(F.silu(x)))
    with pytest.raises(ValueError, match=r"nn.Softmax\(dim=-1\)"):
        nn.Softmax()
    # PyTorch habits: inplace=True is accepted and gives the same values
    for layer, plain in [
        (nn.ReLU(inplace=True), nn.ReLU()),
        (nn.LeakyReLU(0.1, inplace=True), nn.LeakyReLU(0.1)),
        (nn.ELU(inplace=True), nn.ELU()),
        (nn.SiLU(inplace=True), nn.SiLU()),
    ]:
        np.testing.assert_array_equal(host(layer(x)), host(plain(x)))
    assert nn.Dropout(0.2, inplace=True).p == 0.2


def test_log_softmax_is_stable_for_large_and_minus_inf_logits(device):
    z = t64([[1000.0, 0.0, -1000.0], [5.0, -np.inf, 3.0]], device)
    out = F.log_softmax(z)
    expected = np.array(
        [
            [0.0, -1000.0, -2000.0],
            [-math.log1p(math.exp(-2)), -np.inf, -2 - math.log1p(math.exp(-2))],
        ]
    )
    np.testing.assert_allclose(host(out), expected, rtol=1e-12)
    # The gradient is finite everywhere, -inf included (g there, minus 0 * sum(g)).
    g = out.backward(backend.to_device(np.ones(out.shape), device))[z]
    assert np.isfinite(host(g)).all()
    probs = host(F.softmax(z))
    assert np.isfinite(probs).all() and probs[1, 1] == 0.0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


# ---------------------------------------------------------------- linear


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 5, 3), (3,)])
def test_linear_matches_numpy_and_gradcheck(bias, x_shape, device):
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal(x_shape), device)
    w = t64(rng.standard_normal((2, 3)), device)
    b = t64(rng.standard_normal(2), device) if bias else None
    expected = host(x) @ host(w).T + (host(b) if bias else 0)
    np.testing.assert_allclose(host(F.linear(x, w, b)), expected, rtol=1e-12)
    inputs = [x, w] + ([b] if bias else [])
    assert gradcheck(lambda *a: F.linear(*a), inputs)


def test_linear_skips_the_input_gradient_when_not_needed():
    x = mg.tensor(np.ones((2, 3)), dtype="float64")  # data: no gradient wanted
    w = t64(np.ones((4, 3)), "cpu")
    grads = F.linear(x, w).sum().backward()
    assert x.id not in grads and grads[w].shape == (4, 3)


def test_linear_shape_error_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(4, 3\)"):
        F.linear(mg.zeros(2, 5), mg.zeros(4, 3))


# ---------------------------------------------------------------- cross_entropy and nll


Z = np.array([[2.0, 0.5, -1.0, 0.1], [0.3, -0.2, 1.7, 0.0], [-1.0, 2.5, 0.4, 0.9]])
T = np.array([0, 2, 3])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_matches_numpy(reduction, label_smoothing, device):
    z = t64(Z, device)
    t = mg.tensor(T, device=device)
    out = F.cross_entropy(z, t, reduction=reduction, label_smoothing=label_smoothing)
    expected = np_cross_entropy(Z, T, reduction, label_smoothing)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_gradcheck(reduction, label_smoothing, device):
    t = mg.tensor(T, device=device)
    fn = lambda z: F.cross_entropy(z, t, reduction=reduction, label_smoothing=label_smoothing)  # noqa: E731
    assert gradcheck(fn, [t64(Z, device)])


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    z = t64(Z, "cpu")
    grad = F.cross_entropy(z, T).backward()[z]
    onehot = np.eye(4)[T]
    np.testing.assert_allclose(grad, (np.exp(np_log_softmax(Z)) - onehot) / 3, rtol=1e-12)


def test_cross_entropy_float32_and_targets_as_list_or_numpy(device):
    z = mg.tensor(Z, device=device, requires_grad=True)
    a = F.cross_entropy(z, T.tolist())
    b = F.cross_entropy(z, mg.tensor(T, device=device))
    assert a.dtype == np.float32 and a.shape == ()
    assert a.item() == pytest.approx(b.item())
    assert a.backward()[z].dtype == np.float32


def test_cross_entropy_large_logits_do_not_overflow():
    z = t64([[1e4, 0.0, -1e4]], "cpu")
    assert F.cross_entropy(z, [1]).item() == pytest.approx(1e4)
    assert np.isfinite(F.cross_entropy(z, [1]).backward()[z]).all()


def test_cross_entropy_with_minus_inf_logit():
    z = t64([[0.0, -np.inf, 0.0]], "cpu")
    loss = F.cross_entropy(z, [0])
    assert loss.item() == pytest.approx(math.log(2))
    np.testing.assert_allclose(loss.backward()[z], [[-0.5, 0.0, 0.5]])


@pytest.mark.parametrize(
    "targets, error, match",
    [
        (np.array([0.0, 1.0, 2.0]), TypeError, "integer class indices"),
        (np.array([0, 1]), ValueError, r"targets of shape \(3,\)"),
        (np.array([0, 1, 4]), IndexError, "target 4 is out of range for 4 classes"),
        (np.array([0, -1, 2]), IndexError, "target -1"),
    ],
)
def test_cross_entropy_bad_targets(targets, error, match):
    with pytest.raises(error, match=match):
        F.cross_entropy(mg.tensor(Z), targets)


def test_cross_entropy_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(mg.tensor(Z), T, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(mg.tensor(Z), T, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        F.cross_entropy(mg.tensor(Z[0]), T[:1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_numpy_and_cross_entropy(reduction, device):
    logp = np_log_softmax(Z)
    t = mg.tensor(T, device=device)
    out = F.nll_loss(t64(logp, device), t, reduction=reduction)
    picked = -logp[np.arange(3), T]
    expected = {"mean": picked.mean(), "sum": picked.sum(), "none": picked}[reduction]
    np.testing.assert_allclose(host(out), expected, rtol=1e-12)
    composed = F.nll_loss(F.log_softmax(t64(Z, device)), t, reduction=reduction)
    fused = F.cross_entropy(t64(Z, device), t, reduction=reduction)
    np.testing.assert_allclose(host(composed), host(fused), rtol=1e-12)
    assert gradcheck(lambda x: F.nll_loss(x, t, reduction=reduction), [t64(logp, device)])


# ---------------------------------------------------------------- mse and bce


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction, device):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    sq = (a - b) ** 2
    expected = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    out = F.mse_loss(t64(a, device), t64(b, device, requires_grad=False), reduction=reduction)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12)
    assert gradcheck(
        lambda x, y: F.mse_loss(x, y, reduction=reduction), [t64(a, device), t64(b, device)]
    )


def test_mse_loss_refuses_silent_broadcasting():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        F.mse_loss(mg.zeros(4, 1), mg.zeros(4))


def np_bce_with_logits(x, y):
    p = 1 / (1 + np.exp(-x))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction, device):
    x = np.array([[-3.0, 0.0, 0.5], [2.0, -0.4, 4.0]])  # 0.0 included: no kink in this loss
    y = np.array([[0.0, 1.0, 1.0], [0.3, 0.0, 1.0]])
    losses = np_bce_with_logits(x, y)
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    out = F.binary_cross_entropy_with_logits(t64(x, device), t64(y, device, False), reduction)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12)
    fn = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction)  # noqa: E731
    assert gradcheck(fn, [t64(x, device), t64(y, device)])


def test_bce_with_logits_is_stable_for_large_logits():
    x = t64([[-800.0, 800.0]], "cpu")
    loss = F.binary_cross_entropy_with_logits(x, np.array([[1.0, 0.0]]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [[800.0, 800.0]])
    loss32 = F.binary_cross_entropy_with_logits(mg.tensor([[-80.0, 0.5]]), [[1.0, 0.0]])
    assert loss32.dtype == np.float32 and np.isfinite(loss32.item())


# ---------------------------------------------------------------- dropout and accuracy


def test_dropout_identity_when_not_training_or_p_zero(device):
    x = mg.tensor(X, device=device)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert (host(F.dropout(x, 1.0)) == 0).all()


def test_dropout_scales_kept_values_and_gradient_is_the_mask(device):
    x = mg.ones(200, 100, device=device, requires_grad=True)
    out = F.dropout(x, 0.25)
    values = host(out)
    assert out.dtype == np.float32
    assert set(np.unique(values).tolist()) <= {0.0, np.float32(1 / 0.75)}
    assert abs((values == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(host(out.sum().backward()[x]), values)


def test_dropout_is_seeded_and_the_same_on_every_device(device):
    mg.manual_seed(7)
    a = host(F.dropout(mg.ones(5, 6, device=device), 0.5))
    mg.manual_seed(7)
    b = host(F.dropout(mg.ones(5, 6), 0.5))
    np.testing.assert_array_equal(a, b)


def test_dropout_rejects_bad_p():
    with pytest.raises(ValueError, match="probability"):
        F.dropout(mg.ones(2), 1.5)


def test_accuracy(device):
    logits = mg.tensor([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0], [5.0, 4.0]], device=device)
    assert F.accuracy(logits, mg.tensor([1, 0, 0, 0], device=device)) == 0.75
    assert F.accuracy(logits, np.array([1, 0, 1, 0])) == 1.0
    assert isinstance(F.accuracy(logits, [0, 0, 0, 0]), float)


# ---------------------------------------------------------------- PyTorch, where installed


def test_against_pytorch_where_installed():
    # cross_entropy (with and without label smoothing) is checked against PyTorch's numbers on
    # every machine by tests/test_losses.py (golden losses.npz).
    torch = pytest.importorskip("torch")
    x = torch.tensor(X)
    ref = torch.nn.functional.gelu(x, approximate="tanh").numpy()
    np.testing.assert_allclose(host(F.gelu(t64(X, "cpu"), approximate="tanh")), ref, rtol=1e-12)
