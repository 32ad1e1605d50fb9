"""OptimizerState: save mid-run, load into a fresh optimizer, continue exactly; bad states are
refused with an error naming the problem, and leave the optimizer as it was."""

import io

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.gradients import GradientStore
from minigrad.optim import SGD, Adam, AdamW, OptimizerState

SHAPES = [(4, 3), (3,)]

CONFIGS = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01, "amsgrad": True}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
]
IDS = ["sgd", "sgd-nesterov", "adam-amsgrad", "adamw"]


def make_params(device="cpu", dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [
        mg.tensor(rng.standard_normal(s), dtype=dtype, device=device, requires_grad=True)
        for s in SHAPES
    ]


def grads_at(t, params):
    """A deterministic gradient for step t, depending on the parameters' current values."""
    rng = np.random.default_rng(100 + t)
    store = GradientStore()
    for p in params:
        host = backend.to_numpy(p.data)
        g = (0.3 * host + rng.standard_normal(p.shape)).astype(host.dtype)
        store[p] = backend.to_device(g, p.device)
    return store


def run(opt, params, start, stop):
    for t in range(start, stop):
        opt.step(grads_at(t, params))


def through_a_file(state: OptimizerState) -> OptimizerState:
    """The way a checkpoint stores it: a flat dict of arrays in an .npz file, no pickle."""
    buffer = io.BytesIO()
    np.savez(buffer, **state.to_flat())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        return OptimizerState.from_flat(dict(npz))


@pytest.mark.parametrize("cls, options", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_continue_is_the_uninterrupted_run(cls, options, dtype, device):
    params = make_params(device, dtype)
    opt = cls(params, **options)
    run(opt, params, 0, 10)
    saved_values = [backend.to_numpy(p.data).copy() for p in params]
    state = through_a_file(opt.state_dict())
    run(opt, params, 10, 20)  # the uninterrupted run
    uninterrupted = [backend.to_numpy(p.data) for p in params]
    opt.release()

    fresh = [mg.tensor(v, dtype=dtype, device=device, requires_grad=True) for v in saved_values]
    opt2 = cls(fresh, **{**options, "lr": 123.0})  # the state brings its own lr
    opt2.load_state_dict(state)
    assert opt2.lr == options["lr"]
    run(opt2, fresh, 10, 20)
    for a, e in zip((backend.to_numpy(p.data) for p in fresh), uninterrupted):
        if device == "cpu":
            np.testing.assert_array_equal(a, e)  # bit for bit
        else:
            np.testing.assert_allclose(a, e, rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("cls, options", CONFIGS, ids=IDS)
def test_a_state_saved_before_any_step_loads(cls, options):
    params = make_params()
    state = cls(params, **options).state_dict()
    other = make_params(seed=1)
    opt = cls(other, **options)
    run(opt, other, 0, 3)
    opt.load_state_dict(state)
    assert opt.steps == [0, 0]
    assert all(not a.any() for arrays in opt.state.values() for a in arrays)


def test_the_state_holds_what_the_issue_says():
    params = make_params()
    opt = Adam(params, lr=0.01, amsgrad=True)
    run(opt, params, 0, 3)
    state = opt.state_dict()
    assert state.optimizer_type == "Adam"
    assert state.scalars == {
        "step.0": 3,
        "step.1": 3,
        "lr": 0.01,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": 1.0,
        "maximize": 0.0,
    }
    assert sorted(state.buffers) == [
        f"{n}.{i}" for n in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") for i in (0, 1)
    ]
    m0 = state.get_buffer("exp_avg", 0)
    assert m0.shape == (12,) and m0.dtype == np.float32 and type(m0) is np.ndarray
    np.testing.assert_array_equal(m0, opt.state["exp_avg"][0].reshape(-1))
    assert state.get_scalar("step.1") == 3
    # Host copies: stepping on does not change a saved state.
    before = m0.copy()
    run(opt, params, 3, 4)
    np.testing.assert_array_equal(state.get_buffer("exp_avg", 0), before)
    assert state == through_a_file(state)


def test_state_helpers():
    state = OptimizerState("SGD")
    state.set_scalar("lr", 0.5)
    state.set_buffer("momentum_buffer", 2, np.ones((2, 2)))
    assert state.get_scalar("lr") == 0.5
    assert state.get_buffer("momentum_buffer", 2).shape == (4,)
    with pytest.raises(KeyError, match="no scalar 'momentum'"):
        state.get_scalar("momentum")
    with pytest.raises(KeyError, match="no buffer 'momentum_buffer.0'"):
        state.get_buffer("momentum_buffer", 0)
    flat = state.to_flat()
    assert set(flat) == {"optimizer_type", "scalar.lr", "buffer.momentum_buffer.2"}
    assert flat["optimizer_type"].dtype.kind == "U"  # loads without pickle


def test_buffers_go_to_each_parameters_device(device):
    params = make_params()
    opt = Adam(params)
    run(opt, params, 0, 2)
    state = opt.state_dict()
    opt.release()
    moved = make_params(device)
    opt2 = Adam(moved)
    opt2.load_state_dict(state)
    for arrays in opt2.state.values():
        assert all(backend.device_of(a) == device and a.shape == p.shape
                   for a, p in zip(arrays, moved))  # fmt: skip


# ---------------------------------------------------------------- bad states change nothing


def snapshot(opt):
    return (
        list(opt.steps),
        repr(opt),
        {n: [backend.to_numpy(a).copy() for a in arrays] for n, arrays in opt.state.items()},
    )


def assert_unchanged(opt, before):
    steps, text, buffers = before
    assert opt.steps == steps and repr(opt) == text
    for name, arrays in buffers.items():
        for a, b in zip(opt.state[name], arrays):
            np.testing.assert_array_equal(backend.to_numpy(a), b)


def edit(change):
    """A state edit for the table below: change(state) mutates a copy of a good Adam state."""
    return change


def _drop(d, key):
    del d[key]


BAD_STATES = [
    (
        edit(lambda s: setattr(s, "optimizer_type", "AdamW")),
        ValueError,
        "saved by AdamW and cannot be loaded into Adam",
    ),
    (
        edit(lambda s: _drop(s.buffers, "exp_avg_sq.1")),
        ValueError,
        "the Adam state is missing 'exp_avg_sq.1'",
    ),
    (
        edit(lambda s: s.buffers.__setitem__("exp_avg.2", np.zeros(3, np.float32))),
        ValueError,
        "unexpected key 'exp_avg.2'",
    ),
    (
        edit(lambda s: s.buffers.__setitem__("exp_avg.0", np.zeros(11, np.float32))),
        ValueError,
        "'exp_avg.0' has 11 elements, but parameter 0 .* has 12",
    ),
    (
        edit(lambda s: s.buffers.__setitem__("exp_avg.1", np.zeros(3, np.float64))),
        ValueError,
        "'exp_avg.1' has dtype float64, but parameter 1 .* float32",
    ),
    (
        edit(lambda s: s.buffers.__setitem__("exp_avg.1", [0.0, 0.0, 0.0])),
        TypeError,
        "'exp_avg.1' is a list, not an array",
    ),
    (edit(lambda s: _drop(s.scalars, "step.1")), ValueError, "missing 'step.1'"),
    (
        edit(lambda s: s.scalars.__setitem__("step.2", 1)),
        ValueError,
        "unexpected key 'step.2'",
    ),
    (
        edit(lambda s: s.scalars.__setitem__("step.0", -1)),
        ValueError,
        "'step.0' must be an integer >= 0",
    ),
    (
        edit(lambda s: s.scalars.__setitem__("step.0", 2.5)),
        ValueError,
        "'step.0' must be an integer",
    ),
    (edit(lambda s: _drop(s.scalars, "beta2")), ValueError, "the Adam state is missing 'beta2'"),
    (edit(lambda s: s.scalars.__setitem__("beta1", 1.5)), ValueError, "beta1 .* must be < 1"),
    (edit(lambda s: s.scalars.__setitem__("lr", -0.1)), ValueError, "lr must be >= 0"),
    (edit(lambda s: s.scalars.__setitem__("eps", float("inf"))), ValueError, "eps must be finite"),
    (edit(lambda s: s.scalars.__setitem__("amsgrad", 0.0)), ValueError, "saved with amsgrad=False"),
]


@pytest.mark.parametrize("change, error, message", BAD_STATES)
def test_a_bad_state_is_refused_and_changes_nothing(change, error, message):
    params = make_params()
    opt = Adam(params, lr=0.01, amsgrad=True)
    run(opt, params, 0, 3)
    state = opt.state_dict()
    run(opt, params, 3, 5)
    change(state)
    before = snapshot(opt)
    with pytest.raises(error, match=message):
        opt.load_state_dict(state)
    assert_unchanged(opt, before)


def test_a_state_for_other_parameters_is_refused():
    opt = SGD(make_params(), lr=0.1, momentum=0.9)
    smaller = SGD([mg.zeros(4, 3, requires_grad=True)], lr=0.1, momentum=0.9).state_dict()
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"missing 'step.1' \(this SGD has 2 parameters"):
        opt.load_state_dict(smaller)
    assert_unchanged(opt, before)


@pytest.mark.parametrize(
    "saved, mine, message",
    [
        ({"momentum": 0.0}, {"momentum": 0.9}, "saved with momentum=0, this optimizer has"),
        ({"momentum": 0.9}, {"momentum": 0.0}, "saved with momentum=0.9"),
    ],
)
def test_sgd_momentum_on_and_off_do_not_mix(saved, mine, message):
    state = SGD(make_params(), lr=0.1, **saved).state_dict()
    opt = SGD(make_params(), lr=0.1, **mine)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    assert_unchanged(opt, before)


def test_sgd_restores_nonstructural_hyperparameters():
    state = SGD(make_params(), lr=0.3, momentum=0.5, dampening=0.1, maximize=True).state_dict()
    opt = SGD(make_params(), lr=0.1, momentum=0.9, nesterov=True)
    opt.load_state_dict(state)
    assert (opt.lr, opt.momentum, opt.dampening, opt.nesterov, opt.maximize) == (
        0.3,
        0.5,
        0.1,
        False,
        True,
    )


def test_not_a_state_is_refused():
    opt = Adam(make_params())
    with pytest.raises(TypeError, match="takes an OptimizerState"):
        opt.load_state_dict([1, 2])
    with pytest.raises(ValueError, match="'optimizer_type' is missing"):
        opt.load_state_dict({"lr": np.array(0.1)})
    flat = opt.state_dict().to_flat()
    flat["weights.0"] = np.zeros(3)
    with pytest.raises(ValueError, match="unexpected key 'weights.0'"):
        opt.load_state_dict(flat)
    flat = opt.state_dict().to_flat()
    flat["scalar.lr"] = np.zeros(3)
    with pytest.raises(ValueError, match="'scalar.lr' must be a single number"):
        opt.load_state_dict(flat)


def test_the_flat_form_loads_directly():
    params = make_params()
    opt = AdamW(params)
    run(opt, params, 0, 2)
    flat = opt.state_dict().to_flat()
    assert flat["scalar.step.0"].dtype == np.int64 and flat["scalar.lr"].dtype == np.float64
    opt.load_state_dict(flat)
    assert opt.steps == [2, 2]


# ---------------------------------------------------------------- check, then apply


def test_check_state_dict_changes_nothing_and_apply_assigns_it():
    params = make_params()
    opt = Adam(params, lr=0.01, amsgrad=True)
    run(opt, params, 0, 3)
    state = opt.state_dict()
    run(opt, params, 3, 5)
    before = snapshot(opt)
    prepared = opt.check_state_dict(state)
    assert_unchanged(opt, before)
    opt.apply_state_dict(prepared)
    assert opt.steps == [3, 3] and opt.state_dict() == state
    other = Adam(make_params(seed=2), amsgrad=True)
    with pytest.raises(TypeError, match="what this optimizer's check_state_dict"):
        other.apply_state_dict(prepared)  # prepared for another optimizer
    with pytest.raises(TypeError, match="use load_state_dict"):
        other.apply_state_dict(state)


def test_optimizer_state_lives_in_its_own_module():
    from minigrad.optim import state as state_module

    assert OptimizerState is state_module.OptimizerState
    assert mg.optim.OptimizerState is OptimizerState


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("exp_avg.0", np.nan, r"buffer 'exp_avg.0' holds nan at element 5: every value must be"),
        ("exp_avg.1", np.inf, "buffer 'exp_avg.1' holds inf"),
        ("exp_avg_sq.0", -1.0, "buffer 'exp_avg_sq.0' holds -1.0 at element 5: .* >= 0"),
        ("max_exp_avg_sq.1", -1e-3, "buffer 'max_exp_avg_sq.1' holds -0.001"),
    ],
)
def test_a_state_with_impossible_values_is_refused(key, value, message):
    params = make_params()
    opt = Adam(params, lr=0.01, amsgrad=True)
    run(opt, params, 0, 3)
    state = opt.state_dict()
    state.buffers[key] = state.buffers[key].copy()
    state.buffers[key][min(5, state.buffers[key].size - 1)] = value
    if key.endswith(".1"):
        message = message.replace("at element 5", "at element 2")
    before = snapshot(opt)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    assert_unchanged(opt, before)


def test_eps_is_checked_against_the_parameters_on_load_too():
    half = [mg.zeros(3, dtype=np.float16, requires_grad=True)]
    opt = Adam(half)  # eps=1e-8 is fine for float16: the update computes in float32
    state = Adam([mg.zeros(3, dtype=np.float16, requires_grad=True)]).state_dict()
    state.scalars["eps"] = 1e-50
    with pytest.raises(ValueError, match="eps=1e-50 underflows to 0 in float32"):
        opt.load_state_dict(state)
    assert opt.eps == 1e-8
