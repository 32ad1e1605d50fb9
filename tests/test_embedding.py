"""Embedding: PyTorch's numbers (golden file), the scatter-add gradient with repeated ids,
padding_idx, finite differences (float64), on every device."""

import numpy as np
import pytest
from golden import load
from golden.gen_nn import upstream

import minigrad as mg
from minigrad import backend, nn
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F


def host(x):
    return backend.to_numpy(x.data if isinstance(x, mg.Tensor) else x)


@pytest.mark.parametrize("case, padding_idx", [("embedding", None), ("embedding_padding", 2)])
def test_embedding_matches_pytorch(case, padding_idx, device):
    expected = load("nn").case(case)
    w = mg.tensor(expected["weight"], dtype="float64", device=device, requires_grad=True)
    ids = mg.tensor(expected["ids"], device=device)
    out = F.embedding(ids, w, padding_idx=padding_idx)
    np.testing.assert_array_equal(host(out), expected["out"])
    grad = out.backward(backend.to_device(upstream(expected["out"].shape), device))[w]
    np.testing.assert_allclose(host(grad), expected["grad.weight"], rtol=1e-12)


def test_embedding_gradcheck_with_repeated_ids(device):
    rng = np.random.default_rng(0)
    w = mg.tensor(rng.standard_normal((5, 3)), dtype="float64", device=device, requires_grad=True)
    ids = backend.to_device(np.array([[1, 1, 4], [0, 1, 3]]), device)
    assert gradcheck(lambda w: F.embedding(ids, w), [w])
    # (padding_idx departs from the derivative on purpose, as PyTorch: tested below)


def test_padding_row_gets_no_gradient_and_starts_at_zero(device):
    emb = nn.Embedding(5, 3, padding_idx=-1).to(device)
    assert emb.padding_idx == 4 and not host(emb.weight)[4].any()
    ids = mg.tensor([[4, 0, 4]], device=device)
    grad = emb(ids).sum().backward()[emb.weight]
    np.testing.assert_array_equal(host(grad)[4], 0.0)
    np.testing.assert_array_equal(host(grad)[0], 1.0)


def test_embedding_layer_shapes_init_and_errors():
    mg.manual_seed(0)
    emb = nn.Embedding(100, 16)
    assert emb(np.array([[1, 2, 3]])).shape == (1, 3, 16)
    assert abs(host(emb.weight).std() - 1.0) < 0.05  # N(0, 1), as PyTorch
    assert repr(emb) == "Embedding(100, 16)"
    with pytest.raises(IndexError, match="id 100 is out of range"):
        emb(np.array([100]))
    with pytest.raises(TypeError, match="integer ids"):
        emb(np.array([1.0]))
    with pytest.raises(ValueError, match="max_norm"):
        nn.Embedding(3, 2, max_norm=1.0)
    with pytest.raises(ValueError, match="padding_idx 5"):
        nn.Embedding(3, 2, padding_idx=5)
