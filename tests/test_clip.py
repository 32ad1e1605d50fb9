"""clip_grad_norm: the global 2-norm, in-place scaling, the non-finite check."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.gradients import GradientStore
from minigrad.optim import clip_grad_norm


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


def test_matches_torch():
    torch = pytest.importorskip("torch")
    params, grads = store("cpu", np.float64, scale=3.0)
    tensors = []
    for p in params:
        t = torch.zeros(p.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(grads[p].copy())
        tensors.append(t)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm=2.0)
    norm = clip_grad_norm(grads, 2.0)
    assert norm.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, t in zip(params, tensors):
        np.testing.assert_allclose(grads[p], t.grad.numpy(), rtol=1e-12)
