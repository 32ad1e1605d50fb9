"""Attention: scaled_dot_product_attention and MultiheadAttention against PyTorch's numbers
(golden file) with every kind of mask, finite differences (float64), on every device."""

import numpy as np
import pytest
from golden import load
from golden.gen_nn import ATTENTION, MHA_EMBED, MHA_HEADS, upstream

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


def sdpa_options(case, golden, device):
    options = dict(ATTENTION[case][2])
    if options.pop("mask", None) is not None:
        options["attn_mask"] = mg.tensor(golden["mask"], dtype=golden["mask"].dtype, device=device)
    return options


@pytest.mark.parametrize("case", ATTENTION)
def test_sdpa_matches_pytorch(case, device):
    golden = load("nn").case(case)
    q, k, v = (t64(golden[n], device) for n in "qkv")
    out = F.scaled_dot_product_attention(q, k, v, **sdpa_options(case, golden, device))
    close(out, golden["out"])
    grads = out.backward(backend.to_device(upstream(golden["out"].shape), device))
    for name, t in zip("qkv", (q, k, v)):
        close(grads[t], golden[f"grad.{name}"])


@pytest.mark.parametrize("case", ATTENTION)
def test_sdpa_gradcheck(case, device):
    golden = load("nn").case(case)
    inputs = [t64(golden[n], device) for n in "qkv"]
    options = sdpa_options(case, golden, device)
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **options), inputs)


def test_causal_attention_does_not_look_ahead(device):
    q = mg.randn(1, 5, 4, device=device)
    k = mg.randn(1, 5, 4, device=device)
    v = mg.randn(1, 5, 4, device=device, requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # The output at position 2 depends on values 0..2 only.
    grad = host(out[:, 2].sum().backward()[v])
    assert not grad[0, 3:].any()
    assert grad[0, :3].all()
    # The same as the explicit bool mask (True = takes part).
    keep = mg.tensor(np.tril(np.ones((5, 5), dtype=bool)), dtype=bool, device=device)
    explicit = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    np.testing.assert_allclose(host(out), host(explicit), rtol=1e-6)


def test_sdpa_errors():
    q = mg.randn(2, 3, 4)
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 3), bool), is_causal=True)
    with pytest.raises(ValueError, match="share the last axis"):
        F.scaled_dot_product_attention(q, mg.randn(2, 3, 5), q)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)


def test_sdpa_dropout_is_seeded_and_keeps_float32():
    q = mg.randn(2, 3, 4, requires_grad=True)
    mg.manual_seed(3)
    a = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    mg.manual_seed(3)
    b = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.float32 and a.sum().backward()[q].dtype == np.float32


def mha_from_golden(golden, batch_first, device):
    mha = nn.MultiheadAttention(MHA_EMBED, MHA_HEADS, batch_first=batch_first, dtype=np.float64)
    state = {k[len("param.") :]: v for k, v in golden.items() if k.startswith("param.")}
    mha.load_state_dict(state)
    return mha.to(device)


def test_mha_self_attention_causal_matches_pytorch(device):
    golden = load("nn").case("mha_self_causal")
    mha = mha_from_golden(golden, True, device)
    x = t64(golden["x"], device)
    causal = np.triu(np.ones((4, 4), dtype=bool), k=1)  # True = masked out, in this layer
    out, weights = mha(x, x, x, attn_mask=backend.to_device(causal, device))
    close(out, golden["out"])
    close(weights, golden["weights"])
    grads = out.backward(backend.to_device(upstream(golden["out"].shape), device))
    close(grads[x], golden["grad.x"])
    for name, p in mha.named_parameters():
        close(grads[p], golden[f"grad.param.{name}"])
    # is_causal=True builds the same mask
    same, _ = mha(x, x, x, is_causal=True, need_weights=False)
    close(same, golden["out"])


def test_mha_cross_attention_with_padding_matches_pytorch(device):
    golden = load("nn").case("mha_cross_padding")
    mha = mha_from_golden(golden, False, device)
    q, kv = t64(golden["q"], device), t64(golden["kv"], device)
    padding = backend.to_device(golden["key_padding_mask"], device)
    out, weights = mha(q, kv, kv, key_padding_mask=padding)
    close(out, golden["out"])
    close(weights, golden["weights"])
    grads = out.backward(backend.to_device(upstream(golden["out"].shape), device))
    close(grads[q], golden["grad.q"])
    close(grads[kv], golden["grad.kv"])
    for name, p in mha.named_parameters():
        close(grads[p], golden[f"grad.param.{name}"])


def test_mha_gradcheck(device):
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=np.float64).to(device)
    x = t64(np.random.default_rng(0).standard_normal((2, 3, 4)), device)
    assert gradcheck(lambda x: mha(x, x, x, is_causal=True)[0], [x])
    assert gradcheck(lambda w: mha(x, x, x)[0], [mha.in_proj_weight])


def test_mha_parameters_init_and_errors():
    mha = nn.MultiheadAttention(8, 2)
    names = [n for n, _ in mha.named_parameters()]
    assert names == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert mha.in_proj_weight.shape == (24, 8)
    bound = np.sqrt(6 / (24 + 8))  # xavier_uniform on (3E, E), as PyTorch
    assert np.abs(mha.in_proj_weight.numpy()).max() <= bound
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    out, weights = mha(mg.randn(5, 3, 8), mg.randn(5, 3, 8), mg.randn(5, 3, 8))
    assert out.shape == (5, 3, 8) and weights.shape == (3, 5, 5)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="not supported"):
        nn.MultiheadAttention(8, 2, kdim=4)
    with pytest.raises(ValueError, match=r"\(L, B, E\)"):
        mha(mg.randn(3, 8), mg.randn(3, 8), mg.randn(3, 8))
