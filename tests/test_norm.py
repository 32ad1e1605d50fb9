"""BatchNorm1d/2d and LayerNorm: PyTorch's numbers over several training steps and in eval mode
(golden file), running statistics as buffers, finite differences (float64), on every device."""

import numpy as np
import pytest
from golden import load
from golden.gen_nn import BATCHNORM, BATCHNORM_STEPS, LAYERNORM, upstream

import minigrad as mg
from minigrad import backend, nn
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F


def t64(array, device, requires_grad=True):
    return mg.tensor(np.asarray(array), dtype="float64", device=device, requires_grad=requires_grad)


def host(x):
    return backend.to_numpy(x.data if isinstance(x, mg.Tensor) else x)


def close(a, b):
    np.testing.assert_allclose(host(a), b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- BatchNorm


@pytest.mark.parametrize("case", BATCHNORM)
def test_batchnorm_steps_and_eval_match_pytorch(case, device):
    layer, shape, options = BATCHNORM[case]
    golden = load("nn")
    bn = getattr(nn, layer)(shape[1], dtype=np.float64, **options).to(device)
    if bn.affine:
        params = golden.case(f"{case}_params")
        bn.load_state_dict({**bn.state_dict(), **params})
    steps = golden.case(f"{case}_steps")
    for step in range(BATCHNORM_STEPS + 1):
        bn.train(step < BATCHNORM_STEPS)
        expected = {field: values[step] for field, values in steps.items()}
        x = t64(expected["x"], device)
        out = bn(x)
        close(out, expected["out"])
        grads = out.backward(backend.to_device(upstream(expected["out"].shape), device))
        close(grads[x], expected["grad.x"])
        if bn.affine:
            close(grads[bn.weight], expected["grad.weight"])
            close(grads[bn.bias], expected["grad.bias"])
        if bn.track_running_stats:
            close(bn.running_mean, expected["running_mean"])
            close(bn.running_var, expected["running_var"])
            assert int(host(bn.num_batches_tracked)) == int(expected["num_batches_tracked"])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (2, 3, 2, 3)])
def test_batch_norm_gradcheck(shape, training, device):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = t64(rng.standard_normal(shape), device)
    w = t64(rng.uniform(0.5, 1.5, c), device)
    b = t64(rng.standard_normal(c), device)
    mean = t64(rng.standard_normal(c), device, requires_grad=False)
    var = t64(rng.uniform(0.5, 2, c), device, requires_grad=False)

    def fn(x, w, b):
        # fresh copies of the running statistics: each call updates them in training mode
        m, v = mg.Tensor(mean.data.copy()), mg.Tensor(var.data.copy())
        return F.batch_norm(x, m, v, w, b, training=training)

    assert gradcheck(fn, [x, w, b])


def test_batchnorm_buffers_are_saved_moved_and_loaded(device):
    bn = nn.BatchNorm2d(3)
    assert list(bn.state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    bn.to(device)
    assert bn.running_mean.device == device and bn.num_batches_tracked.device == device
    bn(mg.randn(4, 3, 2, 2, device=device) * 3 + 2)
    state = bn.state_dict()
    assert state["num_batches_tracked"] == 1 and state["num_batches_tracked"].dtype == np.int64
    fresh = nn.BatchNorm2d(3).to(device)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(host(fresh.running_mean), state["running_mean"])
    assert int(host(fresh.num_batches_tracked)) == 1


def test_state_dict_orders_module_by_module_as_pytorch():
    model = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 2))
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "0.running_mean",
        "0.running_var",
        "0.num_batches_tracked",
        "1.weight",
        "1.bias",
    ]


def test_batchnorm_buffers_go_through_a_checkpoint(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(mg.randn(8, 3))
    mg.save(tmp_path / "ckpt.npz", model=model)
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    mg.load(tmp_path / "ckpt.npz", model=other)
    np.testing.assert_array_equal(host(other[1].running_var), host(model[1].running_var))
    assert int(host(other[1].num_batches_tracked)) == 1


def test_batchnorm_eval_uses_and_keeps_the_running_statistics(device):
    bn = nn.BatchNorm1d(2).to(device)
    bn.eval()
    x = mg.tensor([[1.0, 2.0], [3.0, 6.0]], device=device)
    # Fresh running statistics (mean 0, var 1): eval is x / sqrt(1 + eps).
    np.testing.assert_allclose(host(bn(x)), host(x) / np.sqrt(1 + 1e-5), rtol=1e-6)
    assert host(bn.running_mean).tolist() == [0.0, 0.0] and int(host(bn.num_batches_tracked)) == 0
    bn.train()
    bn(x)
    np.testing.assert_allclose(host(bn.running_mean), [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(host(bn.running_var), [0.9 + 0.1 * 2.0, 0.9 + 0.1 * 8.0], rtol=1e-6)


def test_batchnorm_one_value_per_channel_in_training_is_an_error():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(mg.randn(1, 3))
    bn = nn.BatchNorm1d(3).eval()
    assert bn(mg.randn(1, 3)).shape == (1, 3)  # eval mode needs no batch statistics


def test_batchnorm_checks_its_input_shape():
    with pytest.raises(ValueError, match=r"4-D shape with 3 channels"):
        nn.BatchNorm2d(3)(mg.randn(2, 3))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        nn.BatchNorm1d(3)(mg.randn(2, 4))


def test_batchnorm_reset_running_stats_and_repr():
    bn = nn.BatchNorm1d(2, momentum=None)
    bn(mg.randn(4, 2))
    bn.reset_running_stats()
    assert host(bn.running_var).tolist() == [1.0, 1.0] and int(host(bn.num_batches_tracked)) == 0
    assert "momentum=None" in repr(bn)


def test_batchnorm_keeps_float32(device):
    bn = nn.BatchNorm2d(3).to(device)
    x = mg.randn(4, 3, 2, 2, device=device, requires_grad=True)
    out = bn(x)
    assert out.dtype == np.float32 and bn.running_var.dtype == np.float32
    assert out.sum().backward()[x].dtype == np.float32


# ---------------------------------------------------------------- LayerNorm


@pytest.mark.parametrize("case", LAYERNORM)
def test_layernorm_matches_pytorch(case, device):
    shape, normalized, options = LAYERNORM[case]
    expected = load("nn").case(case)
    ln = nn.LayerNorm(normalized, dtype=np.float64, **options).to(device)
    ln.load_state_dict({k: expected[k] for k in ln.state_dict()})
    x = t64(expected["x"], device)
    out = ln(x)
    close(out, expected["out"])
    grads = out.backward(backend.to_device(upstream(expected["out"].shape), device))
    close(grads[x], expected["grad.x"])
    for name, p in ln.named_parameters():
        close(grads[p], expected[f"grad.{name}"])


@pytest.mark.parametrize("normalized", [(5,), (4, 5)])
def test_layer_norm_gradcheck(normalized, device):
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal((3, 4, 5)), device)
    w = t64(rng.uniform(0.5, 1.5, normalized), device)
    b = t64(rng.standard_normal(normalized), device)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b), [x, w, b])
    assert gradcheck(lambda x: F.layer_norm(x, normalized), [x])


def test_layer_norm_checks_the_shape():
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(mg.randn(2, 3), (4,))
    assert nn.LayerNorm(3, elementwise_affine=False).parameters() == []
    assert nn.LayerNorm(3, bias=False).bias is None
