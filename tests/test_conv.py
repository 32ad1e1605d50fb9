"""Conv2d and pooling: PyTorch's numbers (golden file), finite differences (float64), a plain
loop reference over random shapes (hypothesis), the layers' arguments, on every device."""

import numpy as np
import pytest
from golden import load
from golden.gen_nn import CONV, POOL, upstream
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend, nn
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F


def t64(array, device, requires_grad=True):
    return mg.tensor(np.asarray(array), dtype="float64", device=device, requires_grad=requires_grad)


def host(x):
    return backend.to_numpy(x.data if isinstance(x, mg.Tensor) else x)


def check_against_golden(case, fn, names, device):
    """fn(*tensors) against PyTorch's out and gradients recorded under `case`."""
    golden = load("nn").case(case)
    inputs = [t64(golden[n], device) for n in names]
    out = fn(*inputs)
    np.testing.assert_allclose(host(out), golden["out"], rtol=1e-10, atol=1e-12)
    grads = out.backward(backend.to_device(upstream(golden["out"].shape), device))
    for name, t in zip(names, inputs):
        np.testing.assert_allclose(host(grads[t]), golden[f"grad.{name}"], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- conv2d


def conv_options(case):
    options = dict(CONV[case][3])
    options.pop("bias", None)
    return options


@pytest.mark.parametrize("case", CONV)
def test_conv2d_matches_pytorch(case, device):
    names = ["x", "weight"] + (["bias"] if CONV[case][3].get("bias", True) else [])
    options = conv_options(case)
    check_against_golden(case, lambda *t: F.conv2d(*t, **options), names, device)


@pytest.mark.parametrize("case", CONV)
def test_conv2d_gradcheck(case, device):
    shape, oc, kernel, _ = CONV[case]
    options = conv_options(case)
    rng = np.random.default_rng(1)
    # The smallest batch and channel counts that keep the case's shape rules (groups).
    x = t64(rng.standard_normal((1,) + shape[1:]), device)
    w = t64(rng.standard_normal((oc, shape[1] // options.get("groups", 1)) + kernel), device)
    b = t64(rng.standard_normal(oc), device)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b])


def conv2d_loops(x, w, b, stride, padding, dilation):
    """The definition, written as loops over output pixels: the reference for hypothesis."""
    n, c, h, wd = x.shape
    oc, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, oc, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = i * stride[0] + dilation[0] * np.arange(kh)
            cols = j * stride[1] + dilation[1] * np.arange(kw)
            patch = xp[:, :, rows[:, None], cols[None, :]]  # (N, C, KH, KW)
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w) + b
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    oc=st.integers(1, 3),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    dh=st.integers(1, 2),
    dw=st.integers(1, 2),
)
def test_conv2d_equals_the_loop_definition(n, c, oc, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    # A kernel that does not fit is an error, tested below.
    assume(h + 2 * ph >= dh * (kh - 1) + 1 and w + 2 * pw >= dw * (kw - 1) + 1)
    rng = np.random.default_rng(n * 1000 + h * 10 + w)
    x, weight, b = (
        rng.standard_normal((n, c, h, w)),
        rng.standard_normal((oc, c, kh, kw)),
        rng.standard_normal(oc),
    )
    out = F.conv2d(t64(x, "cpu"), t64(weight, "cpu"), t64(b, "cpu"), (sh, sw), (ph, pw), (dh, dw))
    expected = conv2d_loops(x, weight, b, (sh, sw), (ph, pw), (dh, dw))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_conv2d_unbatched_input_and_float32(device):
    x = mg.randn(3, 6, 5, device=device)
    w = mg.randn(2, 3, 3, 3, device=device, requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    assert out.shape == (2, 6, 5) and out.dtype == np.float32
    batched = F.conv2d(x.reshape(1, 3, 6, 5), w, padding=1)
    np.testing.assert_allclose(host(out), host(batched)[0], rtol=1e-6)
    assert out.sum().backward()[w].dtype == np.float32


def test_conv2d_errors_name_the_problem():
    x, w = mg.zeros(1, 3, 5, 5), mg.zeros(2, 3, 3, 3)
    with pytest.raises(ValueError, match="expects 4"):
        F.conv2d(x, mg.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="groups=2"):
        F.conv2d(x, w, groups=2)
    with pytest.raises(ValueError, match="spans 7 pixels"):
        F.conv2d(x, mg.zeros(2, 3, 7, 7))
    with pytest.raises(ValueError, match="stride must be"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(mg.zeros(5, 5), w)


# ---------------------------------------------------------------- the Conv2d layer


def test_conv2d_layer_shapes_init_and_repr(device):
    mg.manual_seed(0)
    conv = nn.Conv2d(3, 8, (3, 2), stride=2, padding=1, device=device)
    assert conv.weight.shape == (8, 3, 3, 2) and conv.bias.shape == (8,)
    bound = 1 / np.sqrt(3 * 3 * 2)  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(host(conv.weight)).max() <= bound and np.abs(host(conv.bias)).max() <= bound
    assert np.abs(host(conv.weight)).max() > 0.8 * bound
    assert conv.weight.device == device
    out = conv(mg.randn(2, 3, 9, 8, device=device))
    assert out.shape == (2, 8, 5, 5)
    assert repr(conv) == "Conv2d(3, 8, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1))"
    assert nn.Conv2d(4, 4, 1, groups=2, bias=False).weight.shape == (4, 2, 1, 1)
    assert nn.Conv2d(2, 2, 3, bias=False).bias is None


def test_conv2d_layer_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups=3"):
        nn.Conv2d(4, 6, 3, groups=3)


def test_lenet_learns_a_batch(device):
    """A LeNet-style model drives the loss of one fixed batch down (everything connected)."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    ).to(device)
    x = mg.randn(6, 1, 8, 8, device=device)
    y = np.array([0, 1, 2, 0, 1, 2])
    opt = mg.optim.Adam(model.parameters(), lr=0.02)
    first = F.cross_entropy(model(x), y).item()
    for _ in range(60):
        opt.step(F.cross_entropy(model(x), y).backward())
    assert F.cross_entropy(model(x), y).item() < 0.5 * first


# ---------------------------------------------------------------- pooling


@pytest.mark.parametrize("case", POOL)
def test_pooling_matches_pytorch(case, device):
    fn, _, options = POOL[case]
    check_against_golden(case, lambda x: getattr(F, fn)(x, **options), ["x"], device)


@pytest.mark.parametrize("case", POOL)
def test_pooling_gradcheck(case, device):
    fn, shape, options = POOL[case]
    x = t64(np.random.default_rng(2).standard_normal((1,) + shape[1:]), device)
    assert gradcheck(lambda x: getattr(F, fn)(x, **options), [x])


def test_max_pool_indices_match_pytorch(device):
    golden = load("nn").case("maxpool_indices")
    out, indices = F.max_pool2d(t64(golden["x"], device), 3, 2, 1, return_indices=True)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(host(indices), golden["indices"])


def test_max_pool_gives_a_tie_to_the_first_maximum(device):
    x = t64(np.ones((1, 1, 2, 2)), device)
    grad = F.max_pool2d(x, 2).sum().backward()[x]
    np.testing.assert_array_equal(host(grad), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_pool_propagates_nan(device):
    x = t64([[[[1.0, np.nan], [0.0, 2.0]]]], device, requires_grad=False)
    assert np.isnan(host(F.max_pool2d(x, 2))).all()


def test_pooling_layers(device):
    x = mg.randn(2, 3, 8, 6, device=device)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 3)
    assert nn.AvgPool2d(3, stride=1, padding=1)(x).shape == (2, 3, 8, 6)
    assert nn.AdaptiveAvgPool2d((2, None))(x).shape == (2, 3, 2, 6)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert out.shape == idx.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(
        host(nn.AdaptiveAvgPool2d(1)(x)),
        host(x).mean(axis=(2, 3), keepdims=True),
        rtol=1e-5,
        atol=1e-7,  # float32 sums in another order (a matrix product on the GPU)
    )
    assert nn.MaxPool2d(2)(mg.randn(3, 4, 4, device=device)).shape == (3, 2, 2)


def test_pooling_errors():
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(mg.zeros(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(mg.zeros(1, 1, 4, 4), 2, divisor_override=0)
    with pytest.raises(ValueError, match="kernel_size"):
        F.max_pool2d(mg.zeros(1, 1, 4, 4), 0)


def test_conv2d_reads_non_contiguous_inputs_through_their_strides(device):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((5, 2, 3, 6))  # (W, N, C, H) in memory
    x = t64(base, device).permute(1, 2, 3, 0)  # (N, C, H, W), not contiguous
    w = t64(rng.standard_normal((4, 3, 2, 3)), device)
    expected = conv2d_loops(
        base.transpose(1, 2, 3, 0), host(w), np.zeros(4), (1, 2), (0, 0), (1, 1)
    )
    np.testing.assert_allclose(host(F.conv2d(x, w, stride=(1, 2))), expected, rtol=1e-10)
    assert gradcheck(
        lambda x: F.conv2d(x.permute(1, 2, 3, 0), w, stride=(1, 2)), [t64(base, device)]
    )


def pool_loops(x, kind, k, s, p, d, ceil_mode, count_include_pad=True):
    """PyTorch's pooling definition as loops over output pixels (its C++ reference kernel)."""
    n, c, h, w = x.shape
    span = [d[i] * (k[i] - 1) + 1 for i in range(2)]
    size = []
    for i, length in enumerate((h, w)):
        steps = (length + 2 * p[i] - span[i]) / s[i]
        out = (int(np.ceil(steps)) if ceil_mode else int(np.floor(steps))) + 1
        if ceil_mode and (out - 1) * s[i] >= length + p[i]:
            out -= 1
        size.append(out)
    out = np.zeros((n, c, *size))
    for i in range(size[0]):
        for j in range(size[1]):
            if kind == "max":
                rows = i * s[0] - p[0] + d[0] * np.arange(k[0])
                cols = j * s[1] - p[1] + d[1] * np.arange(k[1])
                rows, cols = rows[(rows >= 0) & (rows < h)], cols[(cols >= 0) & (cols < w)]
                window = x[:, :, rows[:, None], cols[None, :]]
                # a window that holds only padding is -inf, as in PyTorch
                out[:, :, i, j] = window.max(axis=(2, 3)) if window.size else -np.inf
            else:
                h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
                h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
                divisor = (h1 - h0) * (w1 - w0)
                h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
                if not count_include_pad:
                    divisor = (h1 - h0) * (w1 - w0)
                out[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / divisor
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["max", "avg"]),
    h=st.integers(1, 8),
    w=st.integers(1, 8),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    p=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    ceil_mode=st.booleans(),
    count_include_pad=st.booleans(),
)
def test_pooling_equals_the_loop_definition(kind, h, w, k, s, p, d, ceil_mode, count_include_pad):
    d = d if kind == "max" else (1, 1)  # avg_pool2d has no dilation
    span = [d[i] * (k[i] - 1) + 1 for i in range(2)]
    assume(
        all(
            2 * p[i] <= span[i] and h + 2 * p[0] >= span[0] and w + 2 * p[1] >= span[1]
            for i in range(2)
        )
    )
    x = np.random.default_rng(h * 100 + w).standard_normal((2, 2, h, w))
    if kind == "max":
        out = F.max_pool2d(t64(x, "cpu"), k, s, p, d, ceil_mode=ceil_mode)
    else:
        out = F.avg_pool2d(t64(x, "cpu"), k, s, p, ceil_mode, count_include_pad)
    expected = pool_loops(x, kind, k, s, p, d, ceil_mode, count_include_pad)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


def test_a_float64_batch_into_a_float32_layer_is_an_error_naming_both_dtypes():
    x64 = mg.randn(2, 3, 5, 5, dtype=np.float64)
    with pytest.raises(TypeError, match="input is float64 but the weight is float32"):
        nn.Conv2d(3, 2, 3)(x64)
    with pytest.raises(TypeError, match="batch_norm: the input is float64"):
        nn.BatchNorm2d(3)(x64)
    with pytest.raises(TypeError, match="layer_norm: the input is float64"):
        nn.LayerNorm(5)(x64)
    q = mg.randn(2, 3, 4)
    with pytest.raises(TypeError, match="the key is float64"):
        F.scaled_dot_product_attention(q, mg.randn(2, 3, 4, dtype=np.float64), q)


@pytest.mark.parametrize("op", ["conv", "max", "avg"])
def test_a_batch_last_input_gives_the_same_bits_as_a_c_contiguous_one(op, device):
    """conv2d and pooling store images batch-last, (C, H, W, N) in memory, behind
    (N, C, H, W) views; an input laid out either way must give identical results."""
    rng = np.random.default_rng(7)
    array = rng.standard_normal((3, 2, 7, 6))
    batch_last = array.transpose(1, 2, 3, 0).copy().transpose(3, 0, 1, 2)  # same values
    w = t64(rng.standard_normal((4, 2, 3, 2)), device)
    results = []
    for layout in (array, batch_last):
        x = t64(layout, device)
        if op == "conv":
            out = F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2))
        elif op == "max":
            out = F.max_pool2d(x, 2, stride=1, padding=1)
        else:
            out = F.avg_pool2d(x, (3, 2), stride=2, padding=1)
        grads = out.backward(backend.to_device(upstream(out.shape), device))
        results.append([host(out), host(grads[x])] + ([host(grads[w])] if op == "conv" else []))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
