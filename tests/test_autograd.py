"""backward(): accumulation, deep graphs, no_grad, detach, calling it twice, its errors."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.backend import to_numpy


def test_a_tensor_used_twice_in_one_op_gets_both_contributions(device):
    x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True, device=device)
    grads = (x * x).sum().backward()
    assert to_numpy(grads[x]).tolist() == [2.0, -4.0, 6.0]


def test_a_tensor_used_on_several_paths_sums_them(device):
    # f = sum(x*y + x**2 + 3x), so df/dx = y + 2x + 3 and df/dy = x
    x = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True, device=device)
    y = mg.tensor([5.0, 7.0], dtype="float64", requires_grad=True, device=device)
    grads = (x * y + x**2 + 3 * x).sum().backward()
    assert to_numpy(grads[x]).tolist() == [10.0, 14.0]
    assert to_numpy(grads[y]).tolist() == [1.0, 2.0]


def test_a_diamond_graph_adds_both_branches_once(device):
    # a = 2x; f = a*a + a  ->  df/dx = (2a + 1) * 2 = 8x + 2
    x = mg.tensor(3.0, dtype="float64", requires_grad=True, device=device)
    a = x * 2
    grads = (a * a + a).backward()
    assert float(grads[x]) == 26.0


def test_repeated_use_with_broadcasting_sums_back_to_the_shape(device):
    b = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    m = mg.ones(3, 2, device=device)
    grads = ((m + b) * b).sum().backward()  # d/db sum_i (1 + b) b = 3 * (1 + 2b)
    assert to_numpy(grads[b]).tolist() == [9.0, 15.0]


@pytest.mark.parametrize("depth", [10_000])
def test_a_chain_ten_thousand_ops_deep_needs_no_recursion(depth, device):
    x = mg.tensor(0.5, dtype="float64", requires_grad=True, device=device)
    y = x
    for _ in range(depth):
        y = y * 1.0001
    grads = y.backward()
    np.testing.assert_allclose(float(grads[x]), 1.0001**depth, rtol=1e-10)


def test_a_leaf_used_ten_thousand_times_accumulates_every_use():
    x = mg.tensor(1.0, dtype="float64", requires_grad=True)
    total = x
    for _ in range(9_999):
        total = total + x
    assert float(total.backward()[x]) == 10_000.0


def test_a_deep_graph_is_freed_without_recursion_errors():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    del y  # dropping the only reference to a 20,000-deep chain


def test_backward_twice_returns_equal_gradients_in_separate_arrays(device):
    w = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    x = mg.tensor([0.5, -1.0], device=device)
    loss = ((w @ x).tanh() ** 2).sum()
    first = loss.backward()
    expected = to_numpy(first[w]).copy()
    first[w] *= 100  # an optimizer may change a gradient in place
    second = loss.backward()
    np.testing.assert_array_equal(to_numpy(second[w]), expected)


def test_the_store_holds_exactly_the_leaves_that_require_gradients(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    unused = mg.tensor([1.0], requires_grad=True, device=device)
    const = mg.tensor([3.0, 4.0], device=device)
    hidden = w * const
    grads = (hidden + const).sum().backward()
    assert list(grads) == [w.id]
    assert hidden not in grads and const not in grads and unused not in grads


def test_gradients_of_two_leaves_never_share_memory(device):
    a = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = mg.tensor([3.0, 4.0], requires_grad=True, device=device)
    grads = (a + b).sum().backward()  # add hands one array to both inputs
    grads[a] += 1
    assert to_numpy(grads[b]).tolist() == [1.0, 1.0]
    assert to_numpy(grads[a]).tolist() == [2.0, 2.0]


def test_a_gradient_never_aliases_the_seed_or_leaf_data(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    seed = mg.tensor([5.0, 6.0], device=device)
    grads = x.backward(seed)  # the leaf itself as the output
    grads[x] += 1
    assert seed.numpy().tolist() == [5.0, 6.0]
    assert x.numpy().tolist() == [1.0, 2.0]


# ---------------------------------------------------------------- non-scalar backward


def test_backward_with_a_gradient_gives_the_vector_jacobian_product(device):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    y = x * x  # dy/dx = diag(2x)
    v = mg.tensor([1.0, 0.5, -1.0], device=device)
    assert to_numpy(y.backward(v)[x]).tolist() == [2.0, 2.0, -6.0]
    assert to_numpy(y.backward(v.data)[x]).tolist() == [2.0, 2.0, -6.0]  # an array works too


def test_non_scalar_backward_without_a_gradient_says_what_to_do():
    y = mg.tensor([[1.0, 2.0]], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"shape \(1, 2\).*pass grad=.*\.sum\(\)"):
        y.backward()


def test_a_one_element_tensor_that_is_not_0d_backpropagates_without_a_gradient():
    x = mg.tensor([[2.0]], requires_grad=True)
    assert to_numpy((x * 3).backward()[x]).tolist() == [[3.0]]


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    y = mg.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), the tensor has shape \(2,\)"):
        y.backward(np.ones(3))


def test_backward_of_a_tensor_that_needs_no_gradient_is_an_empty_store():
    y = mg.tensor([1.0, 2.0]) * 2
    grads = y.sum().backward()
    assert isinstance(grads, mg.GradientStore) and len(grads) == 0


# ---------------------------------------------------------------- no_grad and detach


def test_no_grad_builds_no_graph_and_restores_the_mode(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    assert mg.is_grad_enabled()
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = (x * 2).exp()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._parents == ()
    np.testing.assert_allclose(y.numpy(), np.exp([2.0, 4.0]), rtol=1e-6)
    assert (x * 2).requires_grad


def test_no_grad_nests_and_restores_after_an_exception():
    with pytest.raises(RuntimeError, match="inside"):
        with mg.no_grad():
            with mg.no_grad():
                pass
            assert not mg.is_grad_enabled()
            raise RuntimeError("inside no_grad")
    assert mg.is_grad_enabled()


def test_no_grad_as_a_decorator():
    @mg.no_grad()
    def evaluate(t):
        """Evaluate without a graph."""
        return t * 3

    x = mg.tensor([1.0], requires_grad=True)
    assert not evaluate(x).requires_grad
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Evaluate without a graph."
    assert mg.is_grad_enabled()


def test_detach_shares_the_array_and_stops_the_gradient(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    d = x.detach()
    assert d.data is x.data
    assert not d.requires_grad and d.is_leaf
    grads = (x * x.detach()).sum().backward()  # only the first factor is differentiated
    assert to_numpy(grads[x]).tolist() == [1.0, 2.0]


def test_an_intermediate_records_its_parents_and_op():
    x = mg.tensor([1.0], requires_grad=True)
    c = mg.tensor([2.0])
    y = x * c
    assert y.requires_grad and not y.is_leaf
    assert y._op == "mul" and y._parents == (x, c)
    z = c * 2  # nothing needs a gradient: no graph
    assert not z.requires_grad and z._parents == ()


def test_backward_takes_a_number_as_the_gradient_on_either_device(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    loss = (x * x).sum()
    np.testing.assert_array_equal(mg.backend.to_numpy(loss.backward(0.5)[x]), [1.0, 2.0])
    out = x * 3.0
    np.testing.assert_array_equal(mg.backend.to_numpy(out.backward(2.0)[x]), [6.0, 6.0])
