"""clip_grad_norm and clip_grad_value: PyTorch's numbers (golden), in-place scaling, the
non-finite check, and all-or-nothing changes."""

import math

import numpy as np
import pytest
from golden import load
from golden.gen_clip import NORM_CASES, VALUE_CASES

import minigrad as mg
from minigrad import backend
from minigrad.gradients import GradientStore
from minigrad.optim import clip_grad_norm, clip_grad_value


def store(device, dtype=np.float32, scale=1.0):
    rng = np.random.default_rng(0)
    params = [mg.zeros(*s, dtype=dtype, device=device, requires_grad=True) for s in [(3, 4), (5,)]]
    grads = GradientStore(
        {
            p.id: backend.to_device((scale * rng.standard_normal(p.shape)).astype(dtype), device)
            for p in params
        }  # fmt: skip
    )
    return params, grads


def host(grads):
    return {k: backend.to_numpy(g).astype(np.float64) for k, g in grads.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_gradients_are_scaled_to_max_norm(dtype, device):
    params, grads = store(device, dtype, scale=10.0)
    before = host(grads)
    expected = np.sqrt(sum((g**2).sum() for g in before.values()))
    norm = clip_grad_norm(grads, max_norm=1.0)
    assert isinstance(norm, mg.Tensor) and norm.device == device and norm.shape == ()
    assert norm.dtype == dtype
    assert norm.item() == pytest.approx(expected, rel=1e-6)
    coef = 1.0 / (expected + 1e-6)
    for key, g in host(grads).items():
        np.testing.assert_allclose(g, before[key] * coef, rtol=1e-6)
    assert np.sqrt(sum((g**2).sum() for g in host(grads).values())) == pytest.approx(1.0, 1e-5)


def test_small_gradients_are_left_as_they_are(device):
    _, grads = store(device, scale=0.01)
    before = host(grads)
    clip_grad_norm(grads, max_norm=100.0)
    for key, g in host(grads).items():
        np.testing.assert_array_equal(g, before[key])


def test_params_limit_the_norm_to_their_gradients(device):
    params, grads = store(device, scale=10.0)
    before = host(grads)
    norm = clip_grad_norm(grads, 1.0, params=[params[1]])
    assert norm.item() == pytest.approx(np.linalg.norm(before[params[1].id]), rel=1e-6)
    np.testing.assert_array_equal(host(grads)[params[0].id], before[params[0].id])
    # A parameter with no gradient in the store is skipped.
    clip_grad_norm(grads, 1.0, params=[mg.zeros(2, requires_grad=True), params[1]])


def test_a_non_finite_norm_raises_and_changes_nothing(device):
    params, grads = store(device)
    grads[params[1]][2] = np.inf
    before = host(grads)
    with pytest.raises(RuntimeError, match="not finite.*error_if_nonfinite=False"):
        clip_grad_norm(grads, 1.0)
    after = host(grads)
    assert all(np.array_equal(after[k], before[k]) for k in before)


def test_the_check_can_be_turned_off(device):
    params, grads = store(device)
    grads[params[0]][0, 0] = np.nan
    norm = clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
    assert np.isnan(norm.item())
    assert all(np.isnan(g).all() for g in host(grads).values())  # as in PyTorch


def test_an_empty_store_has_norm_zero():
    assert clip_grad_norm(GradientStore(), 1.0).item() == 0.0


def test_bad_arguments():
    _, grads = store("cpu")
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        clip_grad_norm(grads, 0.0)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm(grads, -1.0)
    with pytest.raises(TypeError, match="GradientStore"):
        clip_grad_norm(list(grads.values()), 1.0)


@pytest.mark.gpu
def test_the_gpu_path_returns_a_device_array():
    _, grads = store("gpu", scale=10.0)
    norm = clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
    assert backend.is_gpu_array(norm.data)
    cpu_params, cpu_grads = store("cpu", scale=10.0)
    assert norm.item() == pytest.approx(clip_grad_norm(cpu_grads, 1.0).item(), rel=1e-6)


def golden_store(device):
    golden = load("clip")
    arrays = [golden[f"grads/{i}"] for i in range(3)]
    params = [
        mg.zeros(*a.shape, dtype="float64", device=device, requires_grad=True) for a in arrays
    ]
    store = GradientStore(
        {p.id: backend.to_device(a.copy(), device) for p, a in zip(params, arrays)}
    )
    return params, store


@pytest.mark.parametrize("name", sorted(NORM_CASES))
def test_clip_grad_norm_matches_pytorch(name, device):
    norm_type, max_norm = NORM_CASES[name]
    case = load("clip").case(name)
    params, grads = golden_store(device)
    norm = clip_grad_norm(grads, max_norm, norm_type=norm_type, error_if_nonfinite=False)
    assert norm.device == device
    np.testing.assert_allclose(norm.item(), case["norm"], rtol=1e-12)
    for i, p in enumerate(params):
        np.testing.assert_allclose(backend.to_numpy(grads[p]), case[str(i)], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_clip_grad_value_matches_pytorch(name, device):
    case = load("clip").case(name)
    params, grads = golden_store(device)
    assert clip_grad_value(grads, VALUE_CASES[name]) is None
    for i, p in enumerate(params):
        np.testing.assert_array_equal(backend.to_numpy(grads[p]), case[str(i)])


@pytest.mark.parametrize("clip", ["norm", "value"])
def test_a_read_only_gradient_changes_no_gradient(clip):
    """Issue 12: clipping used to scale the gradients before the read-only one, then raise."""
    params, grads = store("cpu", scale=10.0)
    grads[params[1]].flags.writeable = False  # the second one: the first would be changed
    before = host(grads)
    with pytest.raises(ValueError, match="read-only array.*no gradient was changed"):
        if clip == "norm":
            clip_grad_norm(grads, 1.0)
        else:
            clip_grad_value(grads, 0.1)
    assert all(np.array_equal(host(grads)[k], before[k]) for k in before)


def test_infinity_norm_is_the_largest_magnitude(device):
    params, grads = store(device, scale=3.0)
    largest = max(np.abs(g).max() for g in host(grads).values())
    assert clip_grad_norm(grads, 1e9, norm_type=math.inf).item() == pytest.approx(largest)


def test_bad_norm_type_and_clip_value():
    _, grads = store("cpu")
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        clip_grad_norm(grads, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="norm_type must be >= 0"):
        clip_grad_norm(grads, 1.0, norm_type=-2)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value(grads, -1.0)
    with pytest.raises(TypeError, match="GradientStore"):
        clip_grad_value([1.0], 1.0)
