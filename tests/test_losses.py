"""Every loss against PyTorch's numbers (tests/golden/losses.npz), on every device; backward
against finite differences; the edge cases PyTorch defines (empty batch, all ignored)."""

import numpy as np
import pytest
from golden import load
from golden.gen_losses import CASES, cotangent

import minigrad as mg
from minigrad import backend
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F

GOLDEN = load("losses")


def call(name: str, x: mg.Tensor, device: str):
    """The minigrad call that gen_losses.py made with PyTorch for case `name`."""
    fn, kwargs, kind = CASES[name]
    data = GOLDEN.case(f"data_{kind}")
    kwargs = dict(kwargs)
    target = data["target"].copy()
    if kwargs.pop("use_weight", False):
        kwargs["weight"] = mg.tensor(data["weight"], dtype="float64", device=device)
    if kwargs.pop("ignore", False):
        target[[1, 4]] = -100
    if fn == "nll_loss":
        x = F.log_softmax(x)  # over the last axis, the classes
    target = backend.to_device(target, device)
    return getattr(F, fn)(x, target, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_and_gradient_match_pytorch(name, device):
    fn, kwargs, kind = CASES[name]
    case = GOLDEN.case(name)
    x = mg.tensor(GOLDEN[f"data_{kind}/input"], dtype="float64", device=device, requires_grad=True)
    loss = call(name, x, device)
    assert loss.device == device and loss.dtype == np.float64
    np.testing.assert_allclose(loss.numpy(), case["out"], rtol=1e-12, atol=1e-12)
    g = backend.to_device(cotangent(loss.shape), device)
    grad = loss.backward(g if loss.ndim else float(g))[x]
    np.testing.assert_allclose(backend.to_numpy(grad), case["grad"], rtol=1e-10, atol=1e-12)


# Away from the kinks of l1/smooth_l1/huber (the data has none near them), and away from the
# clamps of binary_cross_entropy (p = 0 and 1, whose neighbourhood is not differentiable).
@pytest.mark.parametrize(
    "name",
    [n for n in sorted(CASES) if "empty" not in n and "binary" not in n and "all_ignored" not in n],
)
def test_backward_matches_finite_differences(name):
    kind = CASES[name][2]
    x = mg.tensor(GOLDEN[f"data_{kind}/input"], dtype="float64", requires_grad=True)
    assert gradcheck(lambda t: call(name, t, "cpu"), [x])


def test_binary_cross_entropy_gradcheck_inside_the_clamps():
    p = mg.tensor(np.linspace(0.05, 0.95, 12).reshape(4, 3), dtype="float64", requires_grad=True)
    y = np.random.default_rng(0).uniform(0, 1, (4, 3))
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(lambda t, r=reduction: F.binary_cross_entropy(t, y, reduction=r), [p])


def test_cross_entropy_of_an_empty_batch_is_nan_not_an_error(device):
    """Issue 12: 0 rows raised ZeroDivisionError. PyTorch gives nan (a mean over nothing), 0
    for "sum" and an empty vector for "none"; the gradient of every form is empty."""
    x = mg.zeros(0, 4, device=device, requires_grad=True)
    t = backend.to_device(np.zeros(0, dtype=np.int64), device)
    loss = F.cross_entropy(x, t)
    assert np.isnan(loss.item())
    assert loss.backward()[x].shape == (0, 4)
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0
    assert F.cross_entropy(x, t, reduction="none").shape == (0,)


def test_all_targets_ignored_gives_nan_and_a_zero_gradient(device):
    x = mg.tensor(np.ones((3, 4)), device=device, requires_grad=True)
    t = backend.to_device(np.full(3, -100), device)
    loss = F.cross_entropy(x, t, label_smoothing=0.1)
    assert np.isnan(loss.item())
    assert not np.asarray(backend.to_numpy(loss.backward()[x])).any()


def test_an_ignored_target_changes_nothing():
    rng = np.random.default_rng(1)
    z, t = rng.standard_normal((5, 3)), np.array([0, 2, 1, 1, 0])
    kept = F.cross_entropy(mg.tensor(z[[0, 2, 3]]), t[[0, 2, 3]]).item()
    t_ignored = t.copy()
    t_ignored[[1, 4]] = 7
    assert F.cross_entropy(mg.tensor(z), t_ignored, ignore_index=7).item() == pytest.approx(kept)


def test_class_target_errors():
    z = mg.tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="target 4 is out of range.*ignore_index=-100"):
        F.cross_entropy(z, [0, 4, -100])
    with pytest.raises(IndexError, match="target -1"):
        F.nll_loss(z, [0, -1, 2])
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(4,\)"):
        F.cross_entropy(z, [0, 1, 2], weight=[1.0, 2.0])
    with pytest.raises(TypeError, match="integer class indices.*or probabilities"):
        F.cross_entropy(z, np.zeros(3))
    with pytest.raises(TypeError, match="for probabilities use cross_entropy"):
        F.nll_loss(z, np.full((3, 4), 0.25))
    with pytest.raises(ValueError, match="targets require gradients.*detach"):
        F.cross_entropy(z, mg.tensor(np.full((3, 4), 0.25), requires_grad=True))


def test_regression_and_probability_errors():
    x = mg.tensor(np.zeros((4, 1)))
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.mse_loss):
        with pytest.raises(ValueError, match="broadcasting here is usually a bug"):
            fn(x, np.zeros(4))
    with pytest.raises(ValueError, match="beta must be a number >= 0"):
        F.smooth_l1_loss(x, np.zeros((4, 1)), beta=-1.0)
    with pytest.raises(ValueError, match="delta must be a number > 0"):
        F.huber_loss(x, np.zeros((4, 1)), delta=0.0)
    with pytest.raises(ValueError, match="probability in \\[0, 1\\].*with_logits"):
        F.binary_cross_entropy(mg.tensor([0.5, 1.5]), [0.0, 1.0])
    with pytest.raises(ValueError, match="'batchmean'"):
        F.kl_div(x, np.zeros((4, 1)), reduction="avg")


def test_regression_target_tensor_gets_its_gradient():
    x = mg.tensor([1.0, -2.0, 0.25], dtype="float64", requires_grad=True)
    y = mg.tensor([0.5, 1.0, 0.0], dtype="float64", requires_grad=True)
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        grads = fn(x, y).backward()
        np.testing.assert_allclose(grads[y], -grads[x])


def test_float32_stays_float32(device):
    x = mg.tensor(np.ones((2, 3)), device=device, requires_grad=True)
    assert x.dtype == np.float32
    w = np.array([1.0, 2.0, 3.0])  # a float64 weight does not promote the loss
    loss = F.cross_entropy(x, backend.to_device(np.array([0, 2]), device), weight=w)
    assert loss.dtype == np.float32 and loss.backward()[x].dtype == np.float32


@pytest.mark.parametrize(
    "targets, message",
    [([0, 2, 5], "target 5 is out of range for 3 classes"), ([0, -1, 1], "target -1")],
)
def test_accuracy_refuses_targets_out_of_range(targets, message, device):
    """Issue 12: out-of-range targets returned a number (silently too low)."""
    logits = mg.tensor(np.eye(3), device=device)
    with pytest.raises(IndexError, match=message):
        F.accuracy(logits, backend.to_device(np.array(targets), device))


def test_accuracy_refuses_bad_shapes_and_zero_rows():
    with pytest.raises(ValueError, match="no rows"):
        F.accuracy(mg.zeros(0, 3), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match=r"targets of shape \(2,\)"):
        F.accuracy(mg.zeros(2, 3), [0, 1, 2])
    with pytest.raises(TypeError, match="integer class indices"):
        F.accuracy(mg.zeros(2, 3), [0.0, 1.0])
    assert F.accuracy(mg.tensor([[0.1, 2.0], [3.0, 0.0]]), [1, 1]) == 0.5


def test_cross_entropy_moves_host_targets_and_keeps_float32_with_ignored_rows(device):
    """Host targets (a list or a NumPy array) go to the logits' device, as mg.tensor would;
    an ignored row makes the mean divide by a device count, which must not widen float32."""
    z = mg.tensor(np.linspace(-1, 1, 12).reshape(4, 3), device=device, requires_grad=True)
    targets = np.array([0, 2, -100, 1])
    for given in (targets, targets.tolist()):
        loss = F.cross_entropy(z, given)
        assert loss.dtype == np.float32 and loss.device == device
        assert loss.backward()[z].dtype == np.float32
