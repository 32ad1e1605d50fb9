"""The PyTorch-shaped tensor surface (issue 10): a PyTorch habit either works as in PyTorch
or fails with an error that says what to write instead; never silently wrong.

Values of the new ops against NumPy and finite differences are in test_ops.py, against
PyTorch's recorded numbers in test_vs_torch.py; this file covers the behaviour around them:
in-place updates, the version counter, type promotion, conversions, and the errors.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.backend import to_numpy

# ---------------------------------------------------------------- in-place operators


def test_hand_written_update_changes_the_weights_in_the_same_array(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    array = w.data
    grads = (w * w).sum().backward()
    with mg.no_grad():
        w -= 0.5 * grads[w]  # lesson one of every course: before, this rebound the name
    assert w.data is array  # the GPU optimizer caches pointers to it
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0])
    assert w.requires_grad and w.is_leaf


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(lambda t: t.__iadd__(1.0), [2.0, 3.0, 4.0], id="+="),
        pytest.param(lambda t: t.__isub__([1.0, 1.0, 1.0]), [0.0, 1.0, 2.0], id="-="),
        pytest.param(lambda t: t.__imul__(mg.tensor([2.0], device=t.device)), [2, 4, 6], id="*="),
        pytest.param(lambda t: t.__itruediv__(2), [0.5, 1.0, 1.5], id="/="),
        pytest.param(lambda t: t.add_(mg.ones(3, device=t.device), alpha=2), [3, 4, 5], id="add_"),
        pytest.param(lambda t: t.sub_(1.0), [0.0, 1.0, 2.0], id="sub_"),
        pytest.param(lambda t: t.mul_(np.float64(3)), [3.0, 6.0, 9.0], id="mul_"),
        pytest.param(lambda t: t.div_(4.0), [0.25, 0.5, 0.75], id="div_"),
        pytest.param(lambda t: t.zero_(), [0.0, 0.0, 0.0], id="zero_"),
        pytest.param(lambda t: t.fill_(7), [7.0, 7.0, 7.0], id="fill_"),
        pytest.param(
            lambda t: t.copy_(mg.tensor([4.0, 5.0, 6.0], dtype="float64", device=t.device)),
            [4.0, 5.0, 6.0],
            id="copy_",
        ),
    ],
)
def test_in_place_ops_write_into_the_array_and_keep_the_dtype(change, expected, device):
    t = mg.tensor([1.0, 2.0, 3.0], device=device)
    array = t.data
    out = change(t)
    assert out is t and t.data is array and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy(), expected)


def test_in_place_on_a_tensor_that_requires_grad_needs_no_grad():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    for change in (lambda: w.__isub__(1.0), lambda: w.zero_(), lambda: w.mul_(2.0)):
        with pytest.raises(RuntimeError, match=r"(?s)requires grad.*with mg.no_grad\(\)"):
            change()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])  # nothing changed


def test_in_place_with_a_value_that_requires_grad_is_refused_in_the_graph():
    x, w = mg.zeros(2), mg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="y = x"):
        x += w
    with mg.no_grad():
        x += w
    np.testing.assert_array_equal(x.numpy(), [1.0, 1.0])


def test_in_place_takes_a_numpy_value_on_the_cpu():
    t = mg.tensor([1.0, 2.0])
    t -= np.array([1.0, 1.0])  # float64 values written into the float32 array
    assert t.dtype == np.float32 and t.tolist() == [0.0, 1.0]


def test_in_place_errors_name_the_problem_and_change_nothing():
    x = mg.tensor([1, 2])
    with pytest.raises(TypeError, match=r"x.float\(\)"):
        x += 0.5
    with pytest.raises(TypeError, match="true division"):
        x /= 2
    y = mg.zeros(2, 3)
    with pytest.raises(ValueError, match="must broadcast"):
        y += mg.ones(3, 3)
    np.testing.assert_array_equal(x.numpy(), [1, 2])
    np.testing.assert_array_equal(y.numpy(), np.zeros((2, 3)))


@pytest.mark.gpu
def test_in_place_refuses_a_value_on_another_device():
    with pytest.raises(mg.DeviceError, match="different devices"):
        mg.zeros(2, device="gpu").add_(mg.ones(2))


# ---------------------------------------------------------------- the version counter


def test_backward_raises_when_a_saved_input_was_changed_in_place(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    x = mg.tensor([3.0, 4.0], device=device)
    y = (w * x).sum()  # mul's backward reads x
    x += 1
    with pytest.raises(RuntimeError, match="changed in place.*'mul'"):
        y.backward()


def test_backward_raises_when_a_saved_result_was_changed_in_place(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = w.exp()  # exp's backward reads its own result
    with mg.no_grad():
        y.zero_()
    with pytest.raises(RuntimeError, match="its result was changed in place.*'exp'"):
        y.backward(mg.ones(2, device=device))


def test_changes_before_the_forward_pass_are_fine(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    for _ in range(3):  # a training loop: update, then a new forward pass
        grads = (w * w).sum().backward()
        with mg.no_grad():
            w -= 0.25 * grads[w]
    np.testing.assert_allclose(w.numpy(), np.array([1.0, 2.0]) * 0.5**3)


# ---------------------------------------------------------------- type promotion


@pytest.mark.parametrize(
    "scalar",
    [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2), np.array(2.0), True],
    ids=["float", "int", "np.float64", "np.float32", "np.int64", "0-d array", "bool"],
)
def test_a_scalar_never_widens_a_float32_tensor(scalar, device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    for out in (x * scalar, scalar + x, x - scalar, scalar / x, x**scalar, mg.maximum(x, scalar)):
        assert out.dtype == np.float32
    assert (x > scalar).dtype == np.bool_


def test_tensors_of_two_float_dtypes_meet_at_the_wider_and_gradients_keep_theirs(device):
    a = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = mg.tensor([3.0, 4.0], dtype=mg.float64, requires_grad=True, device=device)
    out = a * b
    assert out.dtype == np.float64  # as PyTorch: float32 tensor * float64 tensor -> float64
    grads = out.sum().backward()
    assert grads[a].dtype == np.float32 and grads[b].dtype == np.float64


def test_a_float64_batch_for_a_float32_model_is_an_error_with_the_fix():
    model = nn.Linear(3, 2)
    batch = np.random.default_rng(0).standard_normal((4, 3))  # float64, as NumPy makes it
    for x in (batch, mg.tensor(batch, dtype="float64")):
        with pytest.raises(TypeError, match=r"float64 but the weight is float32.*x\.float\(\)"):
            model(x)
    assert model(mg.tensor(batch)).dtype == np.float32  # mg.tensor makes float32
    assert model(mg.tensor(batch, dtype="float64").float()).dtype == np.float32


def test_matmul_of_two_dtypes_is_an_error_naming_both():
    with pytest.raises(TypeError, match="float32 but the right operand is float64"):
        mg.ones(2, 3) @ mg.ones(3, 2, dtype="float64")


# ---------------------------------------------------------------- leaving for NumPy


def test_np_asarray_gives_the_values_of_a_cpu_tensor():
    t = mg.tensor([[1.0, 2.0]], requires_grad=True)
    array = np.asarray(t)
    assert array.dtype == np.float32 and array.tolist() == [[1.0, 2.0]]  # not an object array
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t) is not t.data  # np.array copies, as for any array


@pytest.mark.gpu
def test_np_asarray_of_a_gpu_tensor_says_to_call_numpy():
    with pytest.raises(TypeError, match=r"\.numpy\(\)"):
        np.asarray(mg.ones(2, device="gpu"))


def test_tolist_and_item():
    assert mg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert mg.tensor(2.5).tolist() == 2.5


# ---------------------------------------------------------------- .grad and grad mode


def test_grad_explains_that_backward_returns_the_gradients():
    w = mg.ones(2, requires_grad=True)
    with pytest.raises(AttributeError, match=r"(?s)grads = loss.backward\(\).*GradientStore"):
        _ = w.grad
    with pytest.raises(AttributeError, match="zero_grad"):
        _ = w.grad


def test_set_grad_enabled_as_a_call_and_as_a_context_manager():
    w = mg.ones(2, requires_grad=True)
    with mg.set_grad_enabled(False):
        assert not (w * 2).requires_grad
        with mg.set_grad_enabled(True):
            assert (w * 2).requires_grad
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    try:
        mg.set_grad_enabled(False)
        assert not (w * 2).requires_grad
    finally:
        mg.set_grad_enabled(True)


def test_requires_grad_():
    x = mg.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    assert not x.requires_grad_(False).requires_grad
    with pytest.raises(ValueError, match="floating-point"):
        mg.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        (mg.ones(2, requires_grad=True) * 2).requires_grad_()


# ---------------------------------------------------------------- conversions and sizes


def test_dtype_conversions_are_differentiable(device):
    x = mg.tensor([1.5, -2.0], dtype=mg.float64, requires_grad=True, device=device)
    assert x.float().dtype == mg.float32 and x.half().dtype == np.float16
    assert x.float().double().dtype == np.float64 and x.to(mg.float32).dtype == np.float32
    assert x.to(device, mg.float16).dtype == np.float16
    assert x.long().dtype == mg.int64 and x.long().tolist() == [1, -2]
    grads = (x.float() * 3).sum().backward()
    assert grads[x].dtype == np.float64 and to_numpy(grads[x]).tolist() == [3.0, 3.0]
    assert x.to(x) is x and x.double() is x  # nothing to change: the tensor itself


@pytest.mark.gpu
def test_device_moves():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    for y in (x.cuda(), x.to("cuda"), x.to("gpu"), x.to(device="cuda:0")):
        assert y.device == "gpu" and y.requires_grad and y.is_leaf
    assert x.cuda().cuda().device == "gpu" and x.cuda().cpu().tolist() == [1.0, 2.0]


def test_clone_is_a_copy_in_the_graph(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x.clone()
    assert y.data is not x.data and not y.is_leaf
    with mg.no_grad():
        y += 1
    assert x.tolist() == [1.0, 2.0]
    assert to_numpy((x.clone() * 2).sum().backward()[x]).tolist() == [2.0, 2.0]


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    array = np.array([1.0, 2.0])
    t = mg.from_numpy(array)
    assert t.dtype == np.float64
    array[0] = 5.0
    assert t.tolist() == [5.0, 2.0]
    with pytest.raises(TypeError, match="numpy.ndarray"):
        mg.from_numpy([1.0, 2.0])


def test_size_numel_and_dtype_names():
    x = mg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.size == 24 and x.numel() == 24  # NumPy's x.size still works
    with pytest.raises(IndexError):
        x.size(3)
    assert mg.float32 == np.float32 and mg.float64 == np.float64 and mg.int64 == np.int64
    assert mg.tensor([1.0], dtype=mg.float16).dtype == np.float16


# ---------------------------------------------------------------- functions of numbers


def test_functions_accept_numbers_and_arrays():
    out = mg.exp(2.0)
    assert isinstance(out, mg.Tensor) and out.dtype == np.float32 and out.shape == ()
    np.testing.assert_allclose(out.item(), np.exp(2.0), rtol=1e-6)
    assert mg.sin(np.array([0.0, np.pi / 2])).dtype == np.float64  # an array keeps its dtype
    assert mg.tanh([0.0, 1.0]).shape == (2,)
    assert mg.maximum(2, 2.5).dtype == np.float32 and mg.maximum(2, 3).dtype == np.int64
    with pytest.raises(TypeError, match=r"mg.tensor\(\.\.\.\)"):
        mg.exp("2")


# ---------------------------------------------------------------- max/min and dims


def test_max_without_dim_is_a_tensor_and_with_dim_values_and_indices(device):
    x = mg.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 0.0]], requires_grad=True, device=device)
    assert isinstance(x.max(), mg.Tensor) and x.max().item() == 7.0
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    result = x.min(1, keepdim=True)
    assert result.values.shape == (2, 1) and result.indices.tolist() == [[0], [2]]
    grads = x.max(1).values.sum().backward()  # the gradient goes to the index, as PyTorch
    assert to_numpy(grads[x]).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert x.max(mg.zeros(2, 3, device=device) + 6).tolist() == [[6, 6, 6], [7, 6, 6]]
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))


def test_dim_and_axis_are_one_argument():
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=1, keepdim=True).tolist() == x.sum(axis=1, keepdims=True).tolist()
    assert x.mean(1).tolist() == x.mean(axis=1).tolist()
    with pytest.raises(TypeError, match="give dim"):
        x.sum(dim=0, axis=1)
    with pytest.raises(TypeError, match="give keepdim"):
        x.sum(0, keepdim=True, keepdims=True)
    with pytest.raises(IndexError, match="out of range"):
        mg.tensor(1.0).sum(dim=1)  # a 0-d tensor takes dim 0 or -1 only


def test_pow_gradient_is_zero_where_pytorchs_is_and_finite(device):
    x = mg.tensor([0.0, 2.0], requires_grad=True, device=device)
    with np.errstate(all="raise"):  # no warning either
        grads = (x**0.0).sum().backward()
        assert to_numpy(grads[x]).tolist() == [0.0, 0.0]  # was nan at 0
        y = mg.tensor([0.0, 1.0, 2.0], requires_grad=True, device=device)
        grads = (0.0**y).sum().backward()
        assert to_numpy(grads[y]).tolist() == [0.0, 0.0, 0.0]  # was nan / -inf
