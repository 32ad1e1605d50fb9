"""GradientStore: lookup by tensor or id, the explanatory KeyError, pop, drain, merge and +=."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import GradientStore


@pytest.fixture
def params():
    return [
        mg.tensor([1.0, 2.0], requires_grad=True, name="w"),
        mg.tensor([3.0], requires_grad=True, name="b"),
        mg.tensor([[0.0]], requires_grad=True),
    ]


@pytest.fixture
def store(params):
    w, b, _ = params
    return GradientStore({w.id: np.array([0.1, 0.2]), b.id: np.array([0.3])})


def test_lookup_by_tensor_or_by_id(store, params):
    w, b, _ = params
    assert store[w] is store[w.id]
    assert store[b].tolist() == [0.3]
    assert store.get(w) is store[w]


def test_get_contains_and_len(store, params):
    w, b, other = params
    assert w in store and b.id in store and other not in store
    assert store.get(other) is None
    assert store.get(other, "absent") == "absent"
    assert len(store) == 2


def test_iteration_yields_ids_in_insertion_order(store, params):
    w, b, _ = params
    assert list(store) == [w.id, b.id]
    assert list(store.keys()) == [w.id, b.id]
    assert [g.tolist() for g in store.values()] == [[0.1, 0.2], [0.3]]
    assert [k for k, _ in store.items()] == [w.id, b.id]


def test_a_missing_key_raises_a_key_error_naming_the_parameter(store, params):
    w, b, other = params
    named = mg.tensor([1.0], requires_grad=True, name="gamma")
    with pytest.raises(KeyError) as info:
        store[named]
    message = info.value.args[0]
    assert f"parameter 'gamma' (id={named.id}, shape=(1,))" in message
    assert f"ids {[w.id, b.id]}" in message
    assert "requires_grad=True" in message and "step()" in message
    with pytest.raises(KeyError, match=rf"parameter \(id={other.id}, shape=\(1, 1\)\)"):
        store[other]
    with pytest.raises(KeyError, match="parameter id=999999"):
        store[999999]


@pytest.mark.parametrize("key", ["w", 1.5, True, None])
def test_keys_other_than_tensors_and_ints_are_a_type_error(store, key):
    with pytest.raises(TypeError, match="keyed by tensors or their integer ids"):
        store[key]


def test_setitem_by_tensor(params):
    w, _, _ = params
    store = GradientStore()
    store[w] = np.zeros(2)
    assert list(store) == [w.id]


def test_pop_removes_and_returns(store, params):
    w, b, other = params
    grad = store[w]
    assert store.pop(w) is grad
    assert w not in store and len(store) == 1
    assert store.pop(w, None) is None
    with pytest.raises(KeyError, match="parameter 'w'"):
        store.pop(w)
    assert store.pop(b.id).tolist() == [0.3]
    assert len(store) == 0


def test_drain_takes_exactly_the_given_parameters(store, params):
    w, b, other = params
    grad_w = store[w]
    taken = store.drain([other, w])
    assert taken[0] is None and taken[1] is grad_w
    assert list(store) == [b.id]  # b was not asked for and stays
    assert store.drain([w]) == [None]


def test_merge_adds_where_both_hold_and_copies_what_is_new(store, params):
    w, b, other = params
    incoming = GradientStore({w.id: np.array([1.0, 1.0]), other.id: np.array([[5.0]])})
    held_w = store[w]
    assert store.merge(incoming) is store
    assert store[w] is held_w  # added in place
    np.testing.assert_allclose(store[w], [1.1, 1.2])
    assert store[other].tolist() == [[5.0]]
    assert store[other] is not incoming[other]  # its own copy
    incoming[other][...] = 0
    assert store[other].tolist() == [[5.0]]
    assert incoming[w].tolist() == [1.0, 1.0]  # the merged-in store is untouched


def test_plus_equals_accumulates_micro_batches():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    total = GradientStore()
    for scale in (1.0, 2.0, 3.0):
        total += (w * scale).sum().backward()
    assert isinstance(total, GradientStore)
    assert total[w].tolist() == [6.0, 6.0]


def test_merge_rejects_other_types_and_mismatched_shapes(store, params):
    w, _, _ = params
    with pytest.raises(TypeError, match="only merge another GradientStore, not dict"):
        store.merge({w.id: np.zeros(2)})
    with pytest.raises(ValueError, match=rf"parameter id={w.id}: shapes \(2,\) and \(3,\)"):
        store.merge(GradientStore({w.id: np.zeros(3)}))


def test_repr_lists_ids_and_shapes(store, params):
    w, b, _ = params
    assert repr(store) == f"GradientStore({{{w.id}: (2,), {b.id}: (1,)}})"


def test_the_store_backward_returns_is_keyed_by_parameter_id(device):
    w = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    grads = (w * 3).sum().backward()
    assert isinstance(grads, GradientStore)
    assert list(grads) == [w.id]
    assert mg.tensor(grads[w]).device == device


@pytest.mark.gpu
def test_merge_refuses_gradients_on_different_devices():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    on_cpu = (w * w).sum().backward()
    on_gpu = mg.GradientStore({w.id: mg.backend.to_device(on_cpu[w], "gpu")})
    with pytest.raises(mg.DeviceError, match="one is on cpu, the other on gpu"):
        on_cpu.merge(on_gpu)
