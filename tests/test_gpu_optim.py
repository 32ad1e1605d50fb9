"""The fused GPU optimizer kernels against the NumPy path (run on a machine with a GPU).

Every test here is marked `gpu` and skipped where CuPy or a CUDA device is missing.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim

pytestmark = pytest.mark.gpu

SHAPES = [(7, 5), (5,), (3, 4, 2), (1,), (300,)]

OPTIONS = [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02, maximize=True)),
    (optim.Adam, dict(lr=1e-2)),
    (optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    (optim.Adam, dict(lr=1e-2, maximize=True, eps=1e-6)),
    (optim.AdamW, dict(lr=1e-2)),
    (optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for cls, kw in OPTIONS]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def make_params(device, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [
        mg.tensor(rng.standard_normal(s), dtype=dtype, device=device, requires_grad=True)
        for s in SHAPES
    ]


def host_gradients(step, dtype, seed=1):
    rng = np.random.default_rng(seed + 1000 * step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def store_of(params, arrays):
    store = mg.GradientStore()
    for p, g in zip(params, arrays):
        store[p] = mg.backend.to_device(g, p.device)
    return store


def run(cls, kwargs, device, dtype, steps=100, fused=True, skip_every=0):
    params = make_params(device, dtype)
    opt = cls(params, **kwargs)
    opt.fused = fused
    for t in range(steps):
        grads = host_gradients(t, dtype)
        store = store_of(params, grads)
        if skip_every and t % skip_every == 0:
            store.pop(params[1])  # a parameter without gradient is skipped entirely
        opt.step(store)
    return opt, [p.numpy() for p in params]


def assert_close(actual, expected, rtol):
    for a, e in zip(actual, expected):
        scale = np.maximum(np.abs(e), 1.0)
        assert np.all(np.abs(a - e) <= rtol * scale), np.max(np.abs(a - e) / scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", OPTIONS, ids=IDS)
def test_gpu_matches_cpu_over_100_steps(cls, kwargs, dtype):
    cpu_opt, cpu = run(cls, kwargs, "cpu", dtype, skip_every=7)
    gpu_opt, gpu = run(cls, kwargs, "gpu", dtype, skip_every=7)
    assert_close(gpu, cpu, TOLERANCE[dtype])
    cpu_state, gpu_state = cpu_opt.state_dict(), gpu_opt.state_dict()
    assert cpu_state.scalars == gpu_state.scalars
    for key, value in cpu_state.buffers.items():
        assert_close([gpu_state.buffers[key]], [value], TOLERANCE[dtype])


@pytest.mark.parametrize("cls,kwargs", OPTIONS, ids=IDS)
def test_one_dispatch_path_matches_per_parameter_kernels(cls, kwargs):
    _, fused = run(cls, kwargs, "gpu", np.float32, steps=20, fused=True)
    _, per_parameter = run(cls, kwargs, "gpu", np.float32, steps=20, fused=False)
    for a, b in zip(fused, per_parameter):
        np.testing.assert_array_equal(a, b)  # the same device function: identical bits


def test_fused_step_is_one_kernel_launch_and_reuses_its_table():
    cupy = pytest.importorskip("cupy")
    params = make_params("gpu", np.float32)
    opt = optim.AdamW(params, lr=1e-3)
    grads = [cupy.asarray(g) for g in host_gradients(0, np.float32)]
    for _ in range(3):
        store = mg.GradientStore({p.id: g.copy() for p, g in zip(params, grads)})
        opt.step(store)
    uploads = opt._pointer_tables.uploads
    same = mg.GradientStore({p.id: g for p, g in zip(params, grads)})
    opt.step(same)
    again = mg.GradientStore({p.id: g for p, g in zip(params, grads)})
    opt.step(again)
    assert opt._pointer_tables.uploads == uploads + 1  # the first set is new, then reused


@pytest.mark.parametrize("cls,kwargs", OPTIONS, ids=IDS)
def test_step_makes_no_host_round_trip_under_stream_capture(cls, kwargs):
    """A synchronize or a device-to-host read is illegal while a stream is being captured."""
    cupy = pytest.importorskip("cupy")
    params = make_params("gpu", np.float32)
    opt = cls(params, **kwargs)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        warm = [cupy.asarray(g) for g in host_gradients(0, np.float32)]
        opt.step(mg.GradientStore({p.id: g for p, g in zip(params, warm)}))  # compile, build
        reused = [cupy.asarray(g) for g in host_gradients(1, np.float32)]
        fresh = [cupy.asarray(g) for g in host_gradients(2, np.float32)]
        stream.synchronize()
        stream.begin_capture()
        try:
            opt.step(mg.GradientStore({p.id: g for p, g in zip(params, warm)}))  # cached table
            opt.step(mg.GradientStore({p.id: g for p, g in zip(params, fresh)}))  # new table
        finally:
            graph = stream.end_capture()
        assert graph is not None
        del reused


@pytest.mark.parametrize("cls,kwargs", OPTIONS, ids=IDS)
def test_state_moves_between_devices_and_training_continues_identically(cls, kwargs):
    for first, second in (("gpu", "cpu"), ("cpu", "gpu")):
        params = make_params(first, np.float64)
        opt = cls(params, **kwargs)
        for t in range(5):
            opt.step(store_of(params, host_gradients(t, np.float64)))
        state = opt.state_dict()
        values = [p.numpy() for p in params]
        opt.release()

        moved = [mg.tensor(v, dtype=np.float64, device=second, requires_grad=True) for v in values]
        resumed = cls(moved, **kwargs)
        resumed.load_state_dict(state)
        for t in range(5, 10):
            resumed.step(store_of(moved, host_gradients(t, np.float64)))

        _, straight = run(cls, kwargs, "cpu", np.float64, steps=10)
        assert_close([p.numpy() for p in moved], straight, 1e-12)
        resumed.release()


def test_model_moved_to_gpu_after_the_optimizer_was_made():
    params = make_params("cpu", np.float32)
    opt = optim.Adam(params, lr=1e-2)
    opt.step(store_of(params, host_gradients(0, np.float32)))
    for p in params:
        p.data = mg.backend.to_device(p.data, "gpu")
    opt.step(store_of(params, host_gradients(1, np.float32)))
    _, expected = run(optim.Adam, dict(lr=1e-2), "cpu", np.float32, steps=2)
    assert_close([p.numpy() for p in params], expected, 1e-5)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-parameter"])
@pytest.mark.parametrize("cls,kwargs", OPTIONS, ids=IDS)
def test_float16_gpu_and_cpu_agree_bit_for_bit(cls, kwargs, fused):
    """float16 storage, float32 arithmetic on both paths: the kernel's compute type C and the
    NumPy twin's widened blocks, so the parameters and the state agree to the last bit."""
    gpu_opt, gpu = run(cls, kwargs, "gpu", np.float16, steps=30, fused=fused, skip_every=4)
    cpu_opt, cpu = run(cls, kwargs, "cpu", np.float16, steps=30, skip_every=4)
    for a, e in zip(gpu, cpu):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, e)
    assert gpu_opt.state_dict() == cpu_opt.state_dict()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", OPTIONS, ids=IDS)
def test_gpu_and_cpu_agree_bit_for_bit(cls, kwargs, dtype):
    _, gpu = run(cls, kwargs, "gpu", dtype, steps=30)
    _, cpu = run(cls, kwargs, "cpu", dtype, steps=30)
    for a, e in zip(gpu, cpu):
        np.testing.assert_array_equal(a, e)


def test_float16_takes_adams_default_eps():
    """1e-8 rounds to 0 in float16 but not in float32, the type float16 is computed in."""
    half = make_params("gpu", np.float16)
    optim.Adam(half, lr=1e-3, eps=1e-8).step(store_of(half, host_gradients(0, np.float16)))
    assert all(np.isfinite(p.numpy()).all() for p in half)
    with pytest.raises(ValueError, match="eps=1e-50 underflows to 0 in float32"):
        optim.Adam(half, lr=1e-3, eps=1e-50)


def test_changing_the_learning_rate_never_recompiles():
    from minigrad.optim import _kernels

    params = make_params("gpu", np.float32)
    opt = optim.AdamW(params, lr=1e-3)
    opt.step(store_of(params, host_gradients(0, np.float32)))
    built = len(_kernels._kernels)
    for lr in (1e-2, 3e-4, 0.5):
        opt.lr = lr
        opt.step(store_of(params, host_gradients(1, np.float32)))
    assert len(_kernels._kernels) == built
