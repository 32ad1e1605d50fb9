"""The fused optimizer step under CUDA stream capture (issue 12: the pointer-table cache).

A captured step must work after any number of earlier eager steps, whichever stream those
ran on, with the gradient arrays of an earlier step or with new ones; and a capture must
leave the eager steps after it exactly as they would have been. Each captured step is
replayed once and compared bit for bit with the same steps run eagerly.

Marked `gpu`: skipped where CuPy or a CUDA device is missing.
"""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim

pytestmark = pytest.mark.gpu

SHAPES = [(7, 5), (5,), (300,), (3, 4, 2)]

OPTIMIZERS = [
    (optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.Adam, dict(lr=1e-2, amsgrad=True)),
    (optim.AdamW, dict(lr=1e-2)),
]
IDS = ["sgd-momentum", "sgd-nesterov", "adam-amsgrad", "adamw"]


def make_params():
    rng = np.random.default_rng(0)
    return [mg.tensor(rng.standard_normal(s), device="gpu", requires_grad=True) for s in SHAPES]


def host_gradients(step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def device_gradients(step):
    cupy = mg.backend.cupy_module()
    return [cupy.asarray(g) for g in host_gradients(step)]


def store(params, arrays):
    return mg.GradientStore({p.id: g for p, g in zip(params, arrays)})


def eager_reference(cls, kwargs, steps):
    """Parameters and optimizer state after `steps` plain eager steps on the default stream."""
    params = make_params()
    opt = cls(params, **kwargs)
    for t in range(steps):
        opt.step(store(params, device_gradients(t)))
    result = [p.numpy() for p in params], opt.state_dict()
    opt.release()
    return result


def assert_same(params, opt, expected):
    values, state = expected
    for got, want in zip(params, values):
        np.testing.assert_array_equal(got.numpy(), want)
    mine = opt.state_dict()
    assert mine.scalars == state.scalars
    for key, want in state.buffers.items():
        np.testing.assert_array_equal(mine.buffers[key], want)


def capture_one_step(opt, params, gradients, stream):
    """Record opt.step(gradients) into a CUDA graph on `stream` (nothing runs yet)."""
    with stream:
        stream.begin_capture()
        try:
            opt.step(store(params, gradients))
        finally:
            graph = stream.end_capture()
    return graph


def streams(kind):
    """(stream of the earlier eager steps, stream of the capture)."""
    cupy = mg.backend.cupy_module()
    capture = cupy.cuda.Stream(non_blocking=True)
    earlier = {
        "default": cupy.cuda.Stream.null,
        "other": cupy.cuda.Stream(non_blocking=True),
        "same": capture,
    }[kind]
    return earlier, capture


CASES = [
    (earlier, kind, grads)
    for earlier in (0, 1, 3)
    for kind in ("default", "other", "same")
    for grads in ("new", "reused")
    if not (earlier == 0 and grads == "reused")
]


@pytest.mark.parametrize("earlier,stream_kind,grads", CASES)
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_capture_after_earlier_steps(cls, kwargs, earlier, stream_kind, grads):
    """Before the fix: a cached table from another stream made the capture wait on an event
    recorded outside it (cudaErrorStreamCaptureIsolation)."""
    cupy = mg.backend.cupy_module()
    params = make_params()
    opt = cls(params, **kwargs)
    eager_stream, capture_stream = streams(stream_kind)
    last = None
    with eager_stream:
        for t in range(earlier):
            last = device_gradients(t)
            opt.step(store(params, last))
    eager_stream.synchronize()
    if grads == "reused":
        static = last  # the very arrays of the last eager step: its table is cached
    else:
        static = [cupy.empty(s, dtype=np.float32) for s in SHAPES]
    graph = capture_one_step(opt, params, static, capture_stream)
    with capture_stream:
        for array, values in zip(static, host_gradients(earlier)):
            array.set(values, stream=capture_stream)
        graph.launch()
    capture_stream.synchronize()
    assert_same(params, opt, eager_reference(cls, kwargs, earlier + 1))
    opt.release()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_eager_steps_after_a_capture_use_their_own_tables(cls, kwargs):
    """A capture records its table upload into the graph; until the graph runs, that device
    table holds nothing. Before the fix it entered the eager cache, and an eager step with
    the same gradient arrays read the unwritten table."""
    cupy = mg.backend.cupy_module()
    params = make_params()
    opt = cls(params, **kwargs)
    opt.step(store(params, device_gradients(0)))
    static = [cupy.empty(s, dtype=np.float32) for s in SHAPES]
    stream = cupy.cuda.Stream(non_blocking=True)
    steps_before = list(opt.steps)
    graph = capture_one_step(opt, params, static, stream)
    del graph  # never replayed
    opt.steps = steps_before  # the capture counted a step that never ran
    for array, values in zip(static, host_gradients(1)):
        array.set(values)
    opt.step(store(params, static))  # eager, with the captured arrays
    opt.step(store(params, device_gradients(2)))
    assert_same(params, opt, eager_reference(cls, kwargs, 3))
    opt.release()


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_two_captures_of_the_same_arrays_share_one_table(cls, kwargs):
    cupy = mg.backend.cupy_module()
    params = make_params()
    opt = cls(params, **kwargs)
    opt.step(store(params, device_gradients(0)))
    static = [cupy.empty(s, dtype=np.float32) for s in SHAPES]
    stream = cupy.cuda.Stream(non_blocking=True)
    steps_before = list(opt.steps)
    first = capture_one_step(opt, params, static, stream)
    uploads = opt._pointer_tables.uploads
    opt.steps = list(steps_before)
    second = capture_one_step(opt, params, static, stream)
    assert opt._pointer_tables.uploads == uploads  # the second capture reused the table
    del first
    with stream:
        for array, values in zip(static, host_gradients(1)):
            array.set(values, stream=stream)
        second.launch()
    stream.synchronize()
    assert_same(params, opt, eager_reference(cls, kwargs, 2))
    opt.release()
