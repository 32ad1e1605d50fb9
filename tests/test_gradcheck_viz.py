"""gradcheck catches wrong backward rules and explains them; to_dot draws the graph as DOT text."""

import re
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad.gradcheck import GradcheckError, gradcheck
from minigrad.tensor import Tensor
from minigrad.viz import to_dot


def f64(data, device="cpu", requires_grad=True, name=None):
    return mg.tensor(data, dtype="float64", device=device, requires_grad=requires_grad, name=name)


# Ops a student might write, with Tensor._from_op as minigrad/ops/ does; some with planted mistakes.
def square(a, factor=2.0):
    """a**2, whose backward is factor * a * g (correct for factor = 2)."""
    return Tensor._from_op(a.data**2, (a,), lambda g: (factor * a.data * g,), "square")


def scaled_product(a, b, wrong_b=False):
    """a * b; the planted mistake hands b the gradient of a."""
    return Tensor._from_op(
        a.data * b.data, (a, b), lambda g: (g * b.data, g * (b.data if wrong_b else a.data)), "prod"
    )


def drop_last_output(a):
    """2a, but the backward forgets the gradient of the last output element."""

    def backward(g):
        g = g.copy()
        g[..., -1] = 0
        return (2 * g,)

    return Tensor._from_op(2 * a.data, (a,), backward, "double")


# ---------------------------------------------------------------- gradcheck passes


def test_a_correct_op_passes_on_every_device(device):
    x = f64([[0.5, -1.0], [2.0, 0.3]], device=device)
    assert gradcheck(square, [x]) is True
    assert gradcheck(lambda t: (t * t).tanh(), x) is True  # one tensor, not a list, works too


def test_the_inputs_are_restored_exactly(device):
    data = np.array([0.1, -0.7, 1.3])
    x = f64(data, device=device)
    gradcheck(lambda t: t.exp().sum(), [x])
    np.testing.assert_array_equal(x.numpy(), data)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: square(t, factor=3.0), [x])
    np.testing.assert_array_equal(x.numpy(), data)


def test_the_inputs_are_restored_when_fn_raises_midway():
    x = f64([1.0, 2.0])
    calls = []

    def fails_on_third_call(t):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return t * 2

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(fails_on_third_call, [x])
    assert x.numpy().tolist() == [1.0, 2.0]


def test_constants_and_plain_values_pass_through_unchecked():
    x = f64([1.0, 2.0])
    c = mg.tensor([3.0, 4.0], dtype="float32")  # no gradient: any dtype is fine
    assert gradcheck(lambda a, k, s: (a * k * s).sum(), [x, c, 2.5])


def test_an_input_that_fn_ignores_has_zero_gradient_and_passes():
    x, unused = f64([1.0, 2.0]), f64([5.0])
    assert gradcheck(lambda a, b: (a * a).sum(), [x, unused])


def test_0d_inputs_and_outputs():
    x = f64(0.7)
    assert gradcheck(lambda t: t.sigmoid(), [x])


# ---------------------------------------------------------------- gradcheck fails, and explains


def test_a_wrong_backward_names_input_element_and_both_values():
    x = f64([1.0, 2.0, 3.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: square(t, factor=3.0).sum(), [x])
    message = str(info.value)
    # d/dx sum(x**2) = 2x = 2 at x = 1; the wrong rule says 3x = 3
    assert message.startswith("gradcheck: input 0, element (0,): analytic gradient 3 but numeric 2")
    assert "3 of 3 elements of this input disagree" in message


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)


def test_the_failing_input_is_named_by_index_and_name():
    a = f64([[1.0, 2.0]], name="left")
    b = f64([[3.0, 5.0]], name="right")
    assert gradcheck(scaled_product, [a, b])
    with pytest.raises(GradcheckError, match=r"input 1 \('right'\), element \(0, 0\)"):
        gradcheck(lambda p, q: scaled_product(p, q, wrong_b=True), [a, b])


def test_a_non_scalar_output_checks_every_output_element():
    # Only the last output element's gradient is wrong; the random projection still sees it.
    x = f64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(GradcheckError, match=r"element \(0, 2\):.* 2 of 6 elements"):
        gradcheck(drop_last_output, [x])


def test_a_looser_tolerance_accepts_what_the_default_rejects():
    x = f64([1.0])
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: square(t, factor=2.01), [x])
    assert gradcheck(lambda t: square(t, factor=2.01), [x], atol=0, rtol=1e-2)


def test_the_projection_is_fixed_so_results_repeat():
    x = f64([[1.0, 2.0, 3.0]])
    messages = []
    for _ in range(2):
        with pytest.raises(GradcheckError) as info:
            gradcheck(drop_last_output, [x])
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# ---------------------------------------------------------------- gradcheck refuses bad setups


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_non_float64_inputs_are_refused_with_the_reason(dtype):
    x = mg.tensor([1.0], dtype=dtype, requires_grad=True)
    with pytest.raises(ValueError, match=f"input 0 has dtype {dtype}.*need float64.*rounding"):
        gradcheck(lambda t: t * 2, [x])


def test_an_output_converted_to_float32_is_refused():
    with pytest.raises(ValueError, match="fn returned dtype float32; the output must stay float64"):
        gradcheck(lambda t: t.astype("float32"), [f64([1.0])])


def test_nothing_to_check_is_an_error():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        gradcheck(lambda t: t * 2, [f64([1.0], requires_grad=False)])


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="fn must return a Tensor, got float"):
        gradcheck(lambda t: 1.0, [f64([1.0])])


def test_fn_returning_max_dims_pair_is_told_to_return_values():
    with pytest.raises(TypeError, match=r"return its \.values"):
        gradcheck(lambda t: t.max(dim=0), [f64([1.0, 2.0])])


def test_eps_must_be_positive():
    with pytest.raises(ValueError, match="eps must be positive"):
        gradcheck(lambda t: t * 2, [f64([1.0])], eps=0)


# ---------------------------------------------------------------- to_dot


def test_to_dot_of_a_small_graph():
    x = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True, name="x")
    w = mg.tensor([[1.0], [2.0]], dtype="float64", requires_grad=True, name="w")
    h = x * x
    out = (h @ w).sum()
    y = out._parents[0]
    filled = ', style=filled, fillcolor="#ddeeff"'
    assert to_dot(out) == "\n".join(
        [
            "digraph minigrad {",
            "  rankdir=LR;",
            "  node [fontname=monospace];",
            f'  t{x.id} [shape=box, label="x\\n(2,) float64"{filled}];',
            f'  t{w.id} [shape=box, label="w\\n(2, 1) float64"{filled}];',
            f'  t{h.id} [shape=box, label="(2,) float64"];',
            f'  op{h.id} [shape=ellipse, label="mul"];',
            f"  t{x.id} -> op{h.id};",
            f"  t{x.id} -> op{h.id};",
            f"  op{h.id} -> t{h.id};",
            f'  t{y.id} [shape=box, label="(1,) float64"];',
            f'  op{y.id} [shape=ellipse, label="matmul"];',
            f"  t{h.id} -> op{y.id};",
            f"  t{w.id} -> op{y.id};",
            f"  op{y.id} -> t{y.id};",
            f'  t{out.id} [shape=box, label="() float64"];',
            f'  op{out.id} [shape=ellipse, label="sum"];',
            f"  t{y.id} -> op{out.id};",
            f"  op{out.id} -> t{out.id};",
            "}",
            "",
        ]
    )


def test_to_dot_has_one_node_per_tensor_and_per_op():
    a = mg.tensor([1.0], requires_grad=True)
    b = mg.tensor([2.0], requires_grad=True)
    c = mg.tensor([3.0])  # a constant: drawn as an input, not filled as a parameter
    out = mg.tanh(a * b + a) * c
    dot = to_dot(out)
    tensor_nodes = re.findall(r"^  t\d+ \[", dot, flags=re.M)
    op_labels = re.findall(r'^  op\d+ \[shape=ellipse, label="(\w+)"\]', dot, flags=re.M)
    edges = re.findall(r"^  \w+ -> \w+;", dot, flags=re.M)
    assert len(tensor_nodes) == 7  # a, b, c, a*b, +a, tanh, *c
    assert dot.count("fillcolor") == 2  # a and b, the leaves that get gradients
    assert sorted(op_labels) == ["add", "mul", "mul", "tanh"]
    assert len(edges) == (2 + 2 + 1 + 2) + 4  # one per input of each op, one per op -> result


def test_to_dot_of_a_leaf_or_a_no_grad_result_is_one_node():
    for t in (mg.tensor([1.0], requires_grad=True), mg.tensor([1.0]) * 2):
        dot = to_dot(t)
        assert dot.count("shape=box") == 1 and "ellipse" not in dot and "->" not in dot


def test_to_dot_quotes_names_safely():
    t = mg.tensor([1.0], requires_grad=True, name='say "hi"\\now')
    assert 'label="say \\"hi\\"\\\\now\\n(1,) float32"' in to_dot(t)


def test_to_dot_walks_a_chain_ten_thousand_ops_deep():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    dot = to_dot(y)
    assert dot.count('label="add"') == 10_000
    assert dot.count("shape=box") == 10_001


def test_to_dot_needs_no_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # any `import graphviz` would fail
    assert to_dot(mg.tensor([1.0], requires_grad=True) * 2).startswith("digraph minigrad {")


def test_to_dot_needs_a_tensor():
    with pytest.raises(TypeError, match="to_dot needs a Tensor, got ndarray"):
        to_dot(np.zeros(2))
