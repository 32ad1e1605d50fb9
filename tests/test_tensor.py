"""Tensors: constructors and their dtypes, the seeded generator, properties, leaving the graph."""

import numpy as np
import pytest

import minigrad as mg

# ---------------------------------------------------------------- mg.tensor and dtypes

DTYPES = [
    pytest.param(1.5, None, np.float32, id="python-float"),
    pytest.param([[1.0, 2.0]], None, np.float32, id="float-list"),
    pytest.param(np.array([1.0], dtype=np.float64), None, np.float32, id="float64-array"),
    pytest.param(np.array([1.0], dtype=np.float16), None, np.float32, id="float16-array"),
    pytest.param([1, 2, 3], None, np.int64, id="int-list"),
    pytest.param(np.array([1], dtype=np.int32), None, np.int64, id="int32-array"),
    pytest.param(np.array([1], dtype=np.uint8), None, np.int64, id="uint8-array"),
    pytest.param([True, False], None, np.bool_, id="bool-list"),
    pytest.param([1.0, 2.0], "float64", np.float64, id="float64-asked"),
    pytest.param([1, 2], np.float32, np.float32, id="int-to-float32"),
    pytest.param([1.7, 2.2], "int64", np.int64, id="float-to-int64"),
]


@pytest.mark.parametrize("data, dtype, expected", DTYPES)
def test_tensor_dtype_defaults_and_overrides(data, dtype, expected, device):
    t = mg.tensor(data, dtype=dtype, device=device)
    assert t.dtype == expected
    assert t.device == device
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(expected))


def test_tensor_copies_its_data(device):
    source = np.array([1.0, 2.0], dtype=np.float32)
    t = mg.tensor(source, device=device)
    source[0] = 99.0
    assert t.numpy().tolist() == [1.0, 2.0]
    u = mg.tensor(t)  # from another tensor: a copy too, a new leaf
    assert u.data is not t.data and u.id != t.id


def test_tensor_keeps_requires_grad_and_name():
    t = mg.tensor([1.0], requires_grad=True, name="w")
    assert t.requires_grad and t.name == "w" and t.is_leaf


def test_only_floating_tensors_can_require_gradients():
    with pytest.raises(ValueError, match="only floating-point tensors can require gradients"):
        mg.tensor([1, 2], requires_grad=True)


def test_unsupported_data_is_a_type_error():
    with pytest.raises(TypeError, match="cannot make a tensor from data of dtype complex128"):
        mg.tensor([1 + 2j])


def test_ids_are_distinct_increasing_integers():
    a, b = mg.tensor(1.0), mg.tensor(1.0)
    assert isinstance(a.id, int) and b.id > a.id


# ---------------------------------------------------------------- other constructors


@pytest.mark.parametrize(
    "make, fill",
    [(mg.zeros, 0.0), (mg.ones, 1.0)],
    ids=["zeros", "ones"],
)
def test_zeros_and_ones_take_sizes_or_a_tuple(make, fill, device):
    a = make(2, 3, device=device)
    b = make((2, 3), device=device)
    for t in (a, b):
        assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device
        assert (t.numpy() == fill).all()
    c = make(4, dtype="float64", device=device, requires_grad=True)
    assert c.dtype == np.float64 and c.requires_grad


def test_full_and_like_constructors(device):
    f = mg.full((2, 2), 7.0, device=device)
    assert f.numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]] and f.dtype == np.float32
    assert mg.full(3, 1.0).shape == (3,)
    base = mg.tensor([[1.0, 2.0, 3.0]], dtype="float64", device=device)
    z, o = mg.zeros_like(base), mg.ones_like(base)
    for t, fill in ((z, 0.0), (o, 1.0)):
        assert t.shape == (1, 3) and t.dtype == np.float64 and t.device == device
        assert (t.numpy() == fill).all()


def test_arange_keeps_integers_and_makes_floats_float32(device):
    a = mg.arange(5, device=device)
    assert a.dtype == np.int64 and a.numpy().tolist() == [0, 1, 2, 3, 4]
    b = mg.arange(1, 7, 2, device=device)
    assert b.numpy().tolist() == [1, 3, 5]
    c = mg.arange(0.0, 1.0, 0.25, device=device)
    assert c.dtype == np.float32 and c.numpy().tolist() == [0.0, 0.25, 0.5, 0.75]
    d = mg.arange(3, dtype="float64", device=device)
    assert d.dtype == np.float64


# ---------------------------------------------------------------- the seeded generator


def test_manual_seed_repeats_the_stream():
    mg.manual_seed(7)
    first = mg.randn(3, 4).numpy()
    mg.manual_seed(7)
    again = mg.randn(3, 4).numpy()
    np.testing.assert_array_equal(first, again)
    mg.manual_seed(8)
    assert not np.array_equal(mg.randn(3, 4).numpy(), first)


def test_randn_and_rand_dtypes_and_ranges(device):
    n = mg.randn((50, 40), device=device)
    assert n.shape == (50, 40) and n.dtype == np.float32 and n.device == device
    assert abs(float(n.numpy().mean())) < 0.1 and abs(float(n.numpy().std()) - 1.0) < 0.1
    u = mg.rand(1000, dtype="float64", device=device)
    assert u.dtype == np.float64
    assert 0.0 <= u.numpy().min() and u.numpy().max() < 1.0
    assert mg.randn(2, requires_grad=True).requires_grad


def test_the_same_seed_gives_the_same_numbers_on_every_device(device):
    mg.manual_seed(11)
    on_cpu = mg.randn(5, dtype="float64", device="cpu").numpy()
    mg.manual_seed(11)
    here = mg.randn(5, dtype="float64", device=device).numpy()
    np.testing.assert_array_equal(here, on_cpu)


def test_random_state_round_trips():
    mg.manual_seed(5)
    mg.randn(3)
    state = mg.random.get_state()
    expected = mg.randn(4).numpy()
    mg.manual_seed(99)
    mg.random.set_state(state)
    np.testing.assert_array_equal(mg.randn(4).numpy(), expected)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_manual_seed_rejects_non_integers(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        mg.manual_seed(seed)


def test_set_state_rejects_what_get_state_did_not_make():
    with pytest.raises(ValueError, match="not a minigrad random state"):
        mg.random.set_state({"bit_generator": "MT19937"})


# ---------------------------------------------------------------- properties and host values


def test_shape_properties(device):
    t = mg.zeros(2, 3, 4, device=device)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and len(t) == 2


def test_numpy_and_item_bring_values_to_the_host(device):
    t = mg.tensor([[1.5, 2.5]], device=device)
    host = t.numpy()
    assert type(host) is np.ndarray and host.tolist() == [[1.5, 2.5]]
    s = t.sum()
    assert s.item() == 4.0 and type(s.item()) is float
    assert type(mg.tensor([3], device=device).item()) is int
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element"):
        t.item()


def test_truth_value_of_one_element_and_the_ambiguous_case():
    assert bool(mg.tensor([2.0]) > 1)
    assert not bool(mg.tensor(0.0))
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2,\) is ambiguous"):
        bool(mg.tensor([1.0, 2.0]))


def test_repr_shows_values_dtype_and_flags():
    t = mg.tensor([1.0, 2.0], requires_grad=True, name="w")
    assert repr(t) == "tensor([1., 2.], dtype=float32, requires_grad=True, name='w')"
    assert repr(mg.tensor([1, 2])) == "tensor([1, 2], dtype=int64)"


@pytest.mark.gpu
def test_repr_names_the_gpu():
    assert "device='gpu'" in repr(mg.tensor([1.0], device="gpu"))


def test_to_makes_a_new_leaf_on_another_device_and_returns_itself_on_its_own(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(device)
    assert y.device == device and y.requires_grad and y.is_leaf
    assert (y is x) == (device == "cpu")  # PyTorch's to(): the tensor itself when nothing changes
    assert y.numpy().tolist() == [1.0, 2.0]
    back = y.to("cpu")
    assert back.device == "cpu" and back.numpy().tolist() == [1.0, 2.0]
