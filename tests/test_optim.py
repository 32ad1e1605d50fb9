"""Optimizers against plain-NumPy float64 references written from the published formulas,
then the step() contract: draining, skipping, mismatches, ownership, construction errors.
"""

import gc
import json

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.gradients import GradientStore
from minigrad.optim import SGD, Adam, AdamW, Optimizer

SHAPES = [(3, 4), (5,), ()]  # a matrix, a vector and a 0-d parameter
STEPS = 100
TOL = {np.float64: 1e-12, np.float32: 1e-5}


# ---------------------------------------------------------------- the problem both sides solve


def make_problem(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    noise = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    return init, noise


def gradient(p, noise, maximize):
    """d/dp of 0.25 p^2 + noise . p (minimizing), or of its negative (maximizing), in float64.

    Either way the iteration contracts, so rounding differences stay small over 100 steps.
    """
    return (-0.5 if maximize else 0.5) * p + noise


def skip_some(t, i):
    """Parameter 1 has no gradient at steps 0, 3, 6, ...: its own step count lags."""
    return i == 1 and t % 3 == 0


def run_minigrad(cls, options, dtype, device, skip=None, steps=STEPS):
    init, noise = make_problem(steps=steps)
    params = [mg.tensor(x, dtype=dtype, device=device, requires_grad=True) for x in init]
    opt = cls(params, **options)
    maximize = options.get("maximize", False)
    for t in range(steps):
        grads = GradientStore()
        for i, p in enumerate(params):
            if skip is None or not skip(t, i):
                g = gradient(backend.to_numpy(p.data).astype(np.float64), noise[t][i], maximize)
                grads[p] = backend.to_device(g.astype(dtype), device)
        opt.step(grads)
        assert len(grads) == 0
    return [backend.to_numpy(p.data) for p in params], opt


def reference_sgd(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                  maximize=False, skip=None, steps=STEPS):  # fmt: skip
    init, noise = make_problem(steps=steps)
    params = [x.copy() for x in init]
    bufs = [None] * len(params)
    for t in range(steps):
        for i, p in enumerate(params):
            if skip is not None and skip(t, i):
                continue
            g = gradient(p, noise[t][i], maximize)
            if maximize:
                g = -g
            g = g + weight_decay * p
            if momentum != 0:
                if bufs[i] is None:
                    bufs[i] = g.copy()
                else:
                    bufs[i] = momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = p - lr * g
    return params


def reference_adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                   maximize=False, decoupled=False, skip=None, steps=STEPS):  # fmt: skip
    b1, b2 = betas
    init, noise = make_problem(steps=steps)
    params = [x.copy() for x in init]
    m = [np.zeros_like(x) for x in init]
    v = [np.zeros_like(x) for x in init]
    vmax = [np.zeros_like(x) for x in init]
    t_of = [0] * len(params)
    for t in range(steps):
        for i, p in enumerate(params):
            if skip is not None and skip(t, i):
                continue
            t_of[i] += 1
            step = t_of[i]
            g = gradient(p, noise[t][i], maximize)
            if maximize:
                g = -g
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vmax[i] = np.maximum(vmax[i], v[i])
            second = vmax[i] if amsgrad else v[i]
            bc1, bc2 = 1 - b1**step, 1 - b2**step
            params[i] = p - (lr / bc1) * m[i] / (np.sqrt(second) / np.sqrt(bc2) + eps)
    return params


def assert_trajectory_close(actual, expected, dtype):
    tol = TOL[dtype]
    for a, e in zip(actual, expected):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol * max(1.0, np.abs(e).max()))


# ---------------------------------------------------------------- the algorithms

SGD_OPTIONS = [
    {},
    {"weight_decay": 0.1},
    {"maximize": True},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.3},
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
    {"momentum": 0.5, "dampening": 0.5, "weight_decay": 0.01, "maximize": True},
]
ADAM_OPTIONS = [
    {"amsgrad": amsgrad, "weight_decay": wd, "maximize": maximize}
    for amsgrad in (False, True)
    for wd in (0.0, 0.1)
    for maximize in (False, True)
] + [{"betas": (0.8, 0.99), "eps": 1e-6, "lr": 0.05, "weight_decay": 0.05}]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=str)
def test_sgd_matches_reference(options, dtype, device):
    actual, _ = run_minigrad(SGD, {"lr": 0.05, **options}, dtype, device)
    assert_trajectory_close(actual, reference_sgd(lr=0.05, **options), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=str)
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_matches_reference(cls, options, dtype, device):
    options = {"lr": 0.01, **options}
    actual, _ = run_minigrad(cls, options, dtype, device)
    expected = reference_adam(decoupled=cls is AdamW, **options)
    assert_trajectory_close(actual, expected, dtype)


def test_adamw_default_weight_decay_is_decoupled():
    p = mg.tensor([1.0], requires_grad=True)
    opt = AdamW([p], lr=0.1)
    assert opt.weight_decay == 1e-2 and Adam.__init__.__defaults__[3] == 0.0
    opt.step(GradientStore({p.id: np.zeros(1, np.float32)}))
    # Zero gradient: m = v = 0, the update is 0; only the decay moved p.
    assert p.data[0] == np.float32(1.0) * np.float32(1 - 0.1 * 1e-2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "cls, options, reference",
    [
        (SGD, {"lr": 0.05, "momentum": 0.9}, reference_sgd),
        (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, reference_sgd),
        (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}, reference_adam),
        (AdamW, {"lr": 0.01, "weight_decay": 0.1}, reference_adam),
    ],
    ids=["sgd-momentum", "sgd-nesterov", "adam-amsgrad", "adamw"],
)
def test_parameters_without_gradients_keep_their_own_step_count(
    cls, options, reference, dtype, device
):
    actual, opt = run_minigrad(cls, options, dtype, device, skip=skip_some)
    extra = {"decoupled": True} if cls is AdamW else {}
    assert_trajectory_close(actual, reference(skip=skip_some, **options, **extra), dtype)
    assert opt.steps == [STEPS, STEPS - 34, STEPS]


def test_state_is_allocated_eagerly_like_each_parameter(device):
    w = mg.zeros(3, 4, device=device, requires_grad=True)
    b = mg.zeros(4, dtype=np.float64, device=device, requires_grad=True)
    opt = Adam([w, b], amsgrad=True)
    assert opt.state_names == ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    for name in opt.state_names:
        for p, buf in zip((w, b), opt.state[name]):
            assert buf.shape == p.shape and buf.dtype == p.dtype
            assert backend.device_of(buf) == device and not buf.any()
    assert opt.steps == [0, 0]
    assert SGD([mg.zeros(2, requires_grad=True)], lr=0.1).state_names == ()
    assert SGD([mg.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9).state_names == (
        "momentum_buffer",
    )


def test_a_step_allocates_no_new_state_or_scratch():
    w = mg.randn(50, 20, requires_grad=True)
    b = mg.randn(20, requires_grad=True)
    opt = Adam([w, b], amsgrad=True)
    before = {name: [id(a) for a in arrays] for name, arrays in opt.state.items()}
    scratch = dict(opt._scratch)
    data = (id(w.data), id(b.data))
    for _ in range(3):
        opt.step(GradientStore({w.id: np.ones_like(w.data), b.id: np.ones_like(b.data)}))
    assert {name: [id(a) for a in arrays] for name, arrays in opt.state.items()} == before
    assert opt._scratch.keys() == scratch.keys()
    assert all(opt._scratch[k] is scratch[k] for k in scratch)
    assert scratch[("cpu", np.dtype(np.float32))].size == 50 * 20  # the largest parameter
    assert (id(w.data), id(b.data)) == data  # updated in place


# ---------------------------------------------------------------- draining the store


def two_params(device="cpu"):
    w = mg.tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True, name="w")
    b = mg.tensor([1.0, -1.0, 0.5], device=device, requires_grad=True, name="b")
    return w, b


def store_for(*params, value=1.0):
    return GradientStore(
        {p.id: backend.xp_of(p.data).full(p.shape, value, p.dtype) for p in params}
    )


def test_two_optimizers_share_one_store(device):
    w, b = two_params(device)
    x = mg.tensor([[1.0, 2.0]], device=device, requires_grad=True)  # not in any optimizer
    opt_w, opt_b = SGD([w], lr=0.1), Adam([b], lr=0.1)
    grads = ((x @ w) * b).sum().backward()
    assert set(grads) == {w.id, b.id, x.id}
    gb = grads[b].copy()
    opt_w.step(grads)
    assert set(grads) == {b.id, x.id}  # only w's gradient was taken
    assert backend.to_numpy(grads[b]).tolist() == backend.to_numpy(gb).tolist()
    opt_b.step(grads)
    assert set(grads) == {x.id}
    assert opt_w.steps == [1] and opt_b.steps == [1]


def test_stepping_twice_says_the_store_holds_none_and_changes_nothing(device):
    w, b = two_params(device)
    opt = SGD([w, b], lr=0.1, momentum=0.9)
    grads = store_for(w, b)
    opt.step(grads)
    before = [backend.to_numpy(p.data).copy() for p in (w, b)]
    with pytest.raises(ValueError, match="holds none of this optimizer's 2 parameters"):
        opt.step(grads)
    assert all(np.array_equal(backend.to_numpy(p.data), v) for p, v in zip((w, b), before))
    assert opt.steps == [1, 1]


def test_a_parameter_without_gradient_is_skipped_entirely(device):
    w, b = two_params(device)
    opt = AdamW([w, b], lr=0.1, weight_decay=0.5)
    opt.step(store_for(w, b))
    b_before = backend.to_numpy(b.data).copy()
    m_before = backend.to_numpy(opt.state["exp_avg"][1]).copy()
    opt.step(store_for(w))  # no gradient for b: no decay, no moment update, no count
    assert np.array_equal(backend.to_numpy(b.data), b_before)
    assert np.array_equal(backend.to_numpy(opt.state["exp_avg"][1]), m_before)
    assert opt.steps == [2, 1]


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda g: g[:, :2].copy(), r"has shape \(2, 2\), the parameter has shape \(2, 3\)"),
        (lambda g: g.astype(np.float64), "has dtype float64, the parameter has dtype float32"),
        (lambda g: g.tolist(), "is a list"),
    ],
    ids=["shape", "dtype", "not-an-array"],
)
def test_a_bad_gradient_changes_no_parameter(bad, message, device):
    w, b = two_params(device)
    opt = Adam([b, w], lr=0.1)  # b first: it would be updated before w is looked at
    grads = store_for(w, b)
    grads[w] = bad(grads[w])
    before = {p.id: backend.to_numpy(p.data).copy() for p in (w, b)}
    with pytest.raises((ValueError, TypeError), match=message) as info:
        opt.step(grads)
    assert "'w' (parameter 1" in str(info.value)
    assert set(grads) == {w.id, b.id}  # nothing was drained
    assert all(np.array_equal(backend.to_numpy(p.data), before[p.id]) for p in (w, b))
    assert opt.steps == [0, 0] and not backend.to_numpy(opt.state["exp_avg"][0]).any()


def _read_only(array):
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("what", ["gradient", "parameter"])
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_read_only_array_is_found_before_anything_changes(what, cls):
    """The second parameter's problem is found before the first is updated, any step count
    advances or the store is drained (also for an array that passed the check before)."""
    w, b = two_params()
    opt = cls([w, b], lr=0.1)
    opt.step(store_for(w, b))  # both arrays fully checked: the next step takes the fast path
    grads = store_for(w, b)
    if what == "gradient":
        _read_only(grads[b])
    else:
        _read_only(b.data)
    before = [p.data.copy() for p in (w, b)]
    state = opt.state_dict()
    with pytest.raises(ValueError, match=f"'b' .*read-only|{what} of 'b' .*read-only"):
        opt.step(grads)
    assert set(grads) == {w.id, b.id}
    assert all(np.array_equal(p.data, v) for p, v in zip((w, b), before))
    assert opt.steps == [1, 1] and opt.state_dict() == state


def test_a_gradient_in_fortran_order_gives_the_c_order_result(device):
    """Every path reads the gradient with its own layout (the GPU kernels through a base
    pointer, in C order), so a transposed-layout gradient gives the same update."""
    results = []
    for order in ("C", "F"):
        w, _ = two_params(device)
        opt = Adam([w], lr=0.1)
        g = np.asarray(np.arange(6.0).reshape(2, 3) - 2.5, dtype=np.float32, order=order)
        opt.step(GradientStore({w.id: backend.to_device(g, device)}))
        results.append(backend.to_numpy(w.data))
    np.testing.assert_array_equal(results[0], results[1])


def test_zero_grad_and_grad_explain_why_they_are_not_needed():
    w, _ = two_params()
    opt = Adam([w])
    with pytest.raises(
        AttributeError, match=r"need none.*step\(\) takes .*opt.step\(loss.backward"
    ):
        opt.zero_grad()
    with pytest.raises(AttributeError, match=r"loss.backward\(\) returns the gradients"):
        opt.grad  # noqa: B018
    assert not hasattr(opt, "zero_grad")


# ---------------------------------------------------------------- float16: computed in float32


def run_rounded_float32(cls, options, init, grads16):
    """The float16 rule written out: float32 arithmetic on float16 values, then every stored
    array (parameter and state) rounded to float16 after each step."""
    params = [mg.tensor(x.astype(np.float16).astype(np.float32), requires_grad=True) for x in init]
    opt = cls(params, **options)
    for step in grads16:
        opt.step(GradientStore({p.id: g.astype(np.float32) for p, g in zip(params, step)}))
        for array in [p.data for p in params] + [b for bs in opt.state.values() for b in bs]:
            array[...] = array.astype(np.float16)
    return [p.data.astype(np.float16) for p in params], opt


FLOAT16_CASES = [
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
]


@pytest.mark.parametrize("cls, options", FLOAT16_CASES, ids=str)
def test_float16_parameters_compute_in_float32_on_the_cpu(cls, options):
    init, noise = make_problem(steps=30)
    # Small gradients: in float16 arithmetic (1 - beta2) * g * g underflows to 0.
    grads16 = [[np.asarray(1e-3 * n, dtype=np.float16) for n in step] for step in noise]
    expected, _ = run_rounded_float32(cls, options, init, grads16)
    params = [mg.tensor(x, dtype=np.float16, requires_grad=True) for x in init]
    opt = cls(params, **options)  # Adam's default eps=1e-8 is fine: it is used in float32
    for step in grads16:
        opt.step(GradientStore({p.id: g.copy() for p, g in zip(params, step)}))
    for p, e in zip(params, expected):
        assert p.dtype == np.float16
        np.testing.assert_array_equal(p.data, e)  # bit for bit


def test_a_float16_step_on_big_arrays_uses_blocks_of_float32():
    from minigrad.optim.optimizer import CPU_BLOCK

    rng = np.random.default_rng(0)
    init = [rng.standard_normal(CPU_BLOCK + 100)]
    grads16 = [[(0.01 * rng.standard_normal(CPU_BLOCK + 100)).astype(np.float16)]]
    expected, _ = run_rounded_float32(Adam, {"lr": 0.01}, init, grads16)
    p = mg.tensor(init[0], dtype=np.float16, requires_grad=True)
    Adam([p], lr=0.01).step(GradientStore({p.id: grads16[0][0].copy()}))
    np.testing.assert_array_equal(p.data, expected[0])


def test_eps_is_checked_in_the_compute_type():
    half = mg.zeros(3, dtype=np.float16, requires_grad=True)
    Adam([half], eps=1e-8)  # float32 holds 1e-8
    with pytest.raises(ValueError, match="eps=1e-50 underflows to 0 in float32"):
        Adam([half], eps=1e-50)
    Adam([mg.zeros(3, dtype=np.float64, requires_grad=True)], eps=1e-50)  # float64 holds it


@pytest.mark.gpu
def test_a_gradient_on_another_device_changes_no_parameter():
    w, b = two_params("gpu")
    opt = SGD([w, b], lr=0.1)
    grads = store_for(w, b)
    grads[b] = backend.to_numpy(grads[b])
    before = [backend.to_numpy(p.data).copy() for p in (w, b)]
    with pytest.raises(backend.DeviceError, match="'b' .* is on cpu but the parameter is on gpu"):
        opt.step(grads)
    assert set(grads) == {w.id, b.id}
    assert all(np.array_equal(backend.to_numpy(p.data), v) for p, v in zip((w, b), before))


@pytest.mark.gpu
@pytest.mark.parametrize("cls, options", [(SGD, {"momentum": 0.9}), (Adam, {"amsgrad": True})])
def test_parameters_moved_to_the_gpu_after_construction_keep_working(cls, options):
    def run(move_at):
        init, noise = make_problem(steps=6)
        params = [mg.tensor(x, requires_grad=True) for x in init]
        opt = cls(params, lr=0.05, **options)
        for t in range(6):
            if t == move_at:
                for p in params:
                    p.data = backend.to_device(p.data, "gpu")  # what model.to("gpu") does
            grads = GradientStore()
            for i, p in enumerate(params):
                g = gradient(backend.to_numpy(p.data).astype(np.float64), noise[t][i], False)
                grads[p] = backend.to_device(g.astype(np.float32), p.device)
            opt.step(grads)
        assert all(backend.device_of(a) == params[0].device for a in opt.state[opt.state_names[0]])
        return [backend.to_numpy(p.data) for p in params]

    for a, e in zip(run(move_at=3), run(move_at=None)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_step_wants_a_gradient_store():
    w, _ = two_params()
    opt = SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="GradientStore that loss.backward"):
        opt.step({w.id: np.ones((2, 3), np.float32)})


def test_the_drained_gradients_of_others_are_not_touched():
    w, b = two_params()
    opt = SGD([w], lr=0.1, weight_decay=0.1, maximize=True)
    grads = store_for(w, b, value=2.0)
    gb = grads[b]
    opt.step(grads)
    assert grads[b] is gb and (gb == 2.0).all()


# ---------------------------------------------------------------- construction


def test_construction_errors_name_the_problem():
    w, b = two_params()
    y = w * 2.0
    frozen = mg.tensor([1.0])
    cases = [
        (lambda: SGD([], lr=0.1), ValueError, "empty list of parameters"),
        (lambda: SGD([w, b, w], lr=0.1), ValueError, "'w' .* appears twice .*parameter 0"),
        (lambda: SGD([y], lr=0.1), ValueError, "not a leaf tensor"),
        (lambda: SGD([frozen], lr=0.1), ValueError, "does not require gradients"),
        (lambda: SGD(w, lr=0.1), TypeError, "not a single tensor"),
        (lambda: SGD([w.data], lr=0.1), TypeError, "ndarray, not a minigrad Tensor"),
        (lambda: SGD(3, lr=0.1), TypeError, "iterable of tensors"),
        (lambda: SGD([w], lr=-0.1), ValueError, "lr must be >= 0"),
        (lambda: SGD([w], lr=float("nan")), ValueError, "lr must be finite"),
        (lambda: SGD([w], lr="0.1"), TypeError, "lr must be a real number"),
        (lambda: SGD([w], lr=0.1, momentum=-1), ValueError, "momentum must be >= 0"),
        (lambda: SGD([w], lr=0.1, weight_decay=-1), ValueError, "weight_decay must be >= 0"),
        (lambda: SGD([w], lr=0.1, nesterov=True), ValueError, "Nesterov .* momentum > 0"),
        (
            lambda: SGD([w], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            "dampening = 0",
        ),
        (lambda: Adam([w], eps=-1e-8), ValueError, "eps must be >= 0"),
        (lambda: Adam([w], betas=(1.0, 0.999)), ValueError, r"beta1 \(betas\[0\]\) must be < 1"),
        (lambda: Adam([w], betas=(0.9, -0.1)), ValueError, r"beta2 \(betas\[1\]\) must be >= 0"),
        (lambda: Adam([w], betas=0.9), TypeError, "betas must be a pair"),
        (lambda: AdamW([w], amsgrad="yes"), TypeError, "amsgrad must be True or False"),
    ]
    for make, error, message in cases:
        with pytest.raises(error, match=message):
            make()
    # None of the failed constructions kept the parameters.
    SGD([w, b], lr=0.1).release()


def test_params_may_be_a_generator():
    w, b = two_params()
    opt = SGD((p for p in (w, b)), lr=0.1)
    assert opt.params == [w, b]


def test_a_non_contiguous_parameter_is_refused():
    p = mg.Tensor(np.ones((3, 4), np.float32).T, requires_grad=True)
    with pytest.raises(ValueError, match="not C-contiguous"):
        SGD([p], lr=0.1)


# ---------------------------------------------------------------- ownership


def test_a_newer_optimizer_takes_the_parameters_over():
    """Re-running `opt = Adam(model.parameters())` in a notebook: the new one owns them."""
    w, b = two_params()
    first = SGD([w, b], lr=0.1)
    second = Adam([b], lr=0.1)  # no error: b moves to the newer optimizer
    before = w.data.copy()
    with pytest.raises(RuntimeError, match=r"SGD\(2 parameters.* no longer owns 'b' \(parameter 1"):
        first.step(store_for(w, b))
    with pytest.raises(RuntimeError, match=r"Adam\(1 parameter, lr=0.1.*took it over"):
        first.step(store_for(w))  # refused even for w, which nobody else took
    np.testing.assert_array_equal(w.data, before)
    second.step(store_for(b))
    assert second.steps == [1] and first.steps == [0, 0]


def test_rerunning_the_notebook_cell_just_works():
    w, b = two_params()
    for _ in range(3):
        opt = Adam([w, b], lr=0.1)
        opt.step(store_for(w, b))
    assert opt.steps == [1, 1]


def test_two_live_optimizers_never_update_one_parameter():
    w, b = two_params()
    old, new = SGD([w, b], lr=0.1), SGD([w], lr=0.1)
    grads = store_for(w, b)
    with pytest.raises(RuntimeError, match="no longer owns 'w'"):
        old.step(grads)
    assert set(grads) == {w.id, b.id}  # the refused step took nothing
    new.step(grads)
    assert set(grads) == {b.id}


def test_a_released_optimizer_refuses_to_step():
    w, b = two_params()
    first = SGD([w, b], lr=0.1)
    first.release()
    with pytest.raises(RuntimeError, match="was released"):
        first.step(store_for(w))
    second = Adam([b])
    del second
    gc.collect()
    Adam([b]).step(store_for(b))


def test_disjoint_optimizers_coexist():
    w, b = two_params()
    opt_w = SGD([w], lr=0.1)
    opt_b = SGD([b], lr=0.1)
    grads = store_for(w, b)
    opt_w.step(grads)
    opt_b.step(grads)
    assert opt_w.steps == [1] and opt_b.steps == [1]


def test_release_is_idempotent_and_only_frees_its_own():
    w, b = two_params()
    opt_w = SGD([w], lr=0.1)
    opt_b = SGD([b], lr=0.1)
    opt_w.release()
    opt_w.release()
    opt_b.step(store_for(b))  # still owns b
    assert opt_b.steps == [1]


# ---------------------------------------------------------------- the learning rate


def test_learning_rate_is_a_settable_float():
    w, _ = two_params()
    opt = SGD([w], lr=0.1)
    assert opt.lr == 0.1 and opt.learning_rate() == 0.1
    opt.lr = 0.5
    assert opt.learning_rate() == 0.5
    opt.set_learning_rate(1)
    assert opt.lr == 1.0 and type(opt.lr) is float
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.lr = -1.0
    assert opt.lr == 1.0
    before = w.data.copy()
    opt.step(store_for(w))
    np.testing.assert_array_equal(w.data, before - np.float32(1.0))


def test_optimizer_is_the_base_class():
    assert issubclass(SGD, Optimizer) and issubclass(AdamW, Adam)
    w, _ = two_params()
    assert "AdamW(1 parameter, lr=0.001" in repr(AdamW([w]))


# ---------------------------------------------------------------- PyTorch's numbers, recorded


def golden_runs():
    """(optimizer name, dtype, run index) of every run in tests/golden/optim.npz."""
    from golden import load

    cases = load("optim")
    runs = []
    for case in cases.cases():
        if case.startswith("inputs"):
            continue
        name, dtype = case.split(".")
        count = len(json.loads(str(cases[f"{case}/options"])))
        runs += [(name, dtype, n) for n in range(count)]
    return runs


# PyTorch computes m with lerp and v with addcmul (each rounds once where minigrad's rule,
# written term by term, rounds twice), so float64 and float32 agree to about one ulp (measured:
# 4e-16 and 1.2e-7 at most). float16: PyTorch's CPU computes in float16, op by op, where
# minigrad (as its CUDA kernels) computes in float32 and rounds once per step; after 8 steps
# they differ by up to 0.005 (measured 0.0049, about 5 float16 ulps at 1, where ulp = 2**-10).
GOLDEN_TOL = {"float64": 1e-14, "float32": 1e-6, "float16": 8e-3}


@pytest.mark.parametrize("name, dtype, run", golden_runs(), ids=lambda v: str(v))
def test_trajectories_match_pytorch(name, dtype, run, device):
    from golden import load

    cases = load("optim")
    case = f"{name}.{dtype}"
    options = json.loads(str(cases[f"{case}/options"]))[run]
    expected = cases[f"{case}/params"][run]  # (steps, 18): every parameter, flat, end to end
    shapes = [tuple(s) for s in json.loads(str(cases["inputs/shapes"]))]
    skip = cases["inputs/skip"]
    init, grads = cases[f"inputs.{dtype}/init"], cases[f"inputs.{dtype}/grads"]
    cls = {"sgd": SGD, "adam": Adam, "adamw": AdamW}[name]

    sizes = [int(np.prod(s)) for s in shapes]
    cuts = np.cumsum(sizes)[:-1]
    params = [
        mg.tensor(x.reshape(s), dtype=dtype, device=device, requires_grad=True)
        for x, s in zip(np.split(init, cuts), shapes)
    ]
    opt = cls(params, **options)
    tol = GOLDEN_TOL[dtype]
    for t, (step_grads, want) in enumerate(zip(grads, expected)):
        store = GradientStore()
        for k, (p, g) in enumerate(zip(params, np.split(step_grads, cuts))):
            if not skip[t, k]:
                store[p] = backend.to_device(g.reshape(p.shape).copy(), device)
        opt.step(store)
        got = np.concatenate([backend.to_numpy(p.data).reshape(-1) for p in params])
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(
            got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol,
            err_msg=f"{cls.__name__}({options}) in {dtype}, after step {t + 1}",
        )  # fmt: skip
