"""A whole training step as one CUDA graph: record the kernels once, replay them each step.

Why: a small model's step on the GPU is bound by the host. Every op is a Python call that
launches a kernel (a few microseconds each); the GPU finishes each kernel faster than Python
sends the next. A CUDA graph records the kernels of one step (forward, loss, backward,
clipping, the optimizers' fused updates) once, and then one `cudaGraphLaunch` sends them all:
the host cost of a step becomes one launch, whatever the number of kernels.

    def train_step(x, y):
        loss = F.cross_entropy(model(x), y)
        grads = loss.backward()
        clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
        opt.step(grads)
        return loss

    step = mg.cuda.graph(train_step, x0, y0)   # one real step on (x0, y0), then the capture
    for x, y in batches:
        loss = step(x, y)                       # copy the batch in, replay: one more step

What a replay can and cannot see. A graph replays the recorded kernels with the recorded
arguments and the recorded memory addresses. So:

* Inputs are copied into static buffers (the addresses the graph reads) on each call; the
  outputs (`loss` above) are the same arrays each call, overwritten by the next replay.
* Temporaries live in a private memory pool that lives as long as the graph, so no later
  allocation can take an address the graph writes to.
* Whatever changes between steps must live on the device. The optimizers' kernels read their
  per-step numbers (learning rate, bias corrections) from a small device array; before each
  replay the host computes the next step's numbers exactly as an eager step would and queues
  them there. So a scheduler's new lr is seen by the next replay, nothing is recaptured, and
  a replay gives the bits of an eager step. The host-side step counts advance as eagerly.
* Python runs only during the capture. Anything that needs the host inside the step, such as
  `.item()`, `.numpy()`, `float(t)` or `if loss > 0:`, cannot be replayed: the capture fails
  with a CaptureError naming the operation and the line.

A batch of another shape (the last, shorter batch of an epoch) gets its own graph, built the
same way, on its first call (`new_shapes="capture"`, the default), or runs eagerly
(`new_shapes="eager"`). Either way every call is exactly one step.
"""

from __future__ import annotations

import linecache
import os
import traceback

import numpy as np

from .. import backend, random
from ..optim import _kernels
from ..tensor import Tensor

_MINIGRAD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CaptureError(RuntimeError):
    """The step did something a CUDA graph cannot replay (a host read, a sync, ...)."""


def graph(step_fn, *example_inputs, new_shapes: str = "capture") -> CapturedStep:
    """Run `step_fn(*example_inputs)` once eagerly, then capture it as a CUDA graph.

    step_fn: a function of GPU tensors (the batch) that runs one training step and returns
        anything made of tensors (typically the loss).
    example_inputs: GPU tensors (or CuPy/NumPy arrays) shaped like the batches to come; the
        step runs on them for real first (that warm-up compiles every kernel and sizes every
        buffer), so they should be the first batch.
    new_shapes: "capture" (a batch of an unseen shape gets its own graph) or "eager" (it runs
        step_fn eagerly).

    Returns a CapturedStep: call it with a batch to run one step; it returns step_fn's outputs
    (the same tensors every call, overwritten by the next one).
    """
    return CapturedStep(step_fn, example_inputs, new_shapes)


class CapturedStep:
    """step(*inputs): copy the inputs into the graph's buffers and replay one step."""

    def __init__(self, step_fn, example_inputs, new_shapes: str = "capture"):
        if not callable(step_fn):
            raise TypeError(f"graph() needs the step function first, got {step_fn!r}")
        if new_shapes not in ("capture", "eager"):
            raise ValueError(f"new_shapes must be 'capture' or 'eager', got {new_shapes!r}")
        if not example_inputs:
            raise ValueError(
                "graph() needs example inputs shaped like the batches (e.g. the first x, y): "
                "the graph is recorded for their shapes and dtypes"
            )
        _check_inputs(example_inputs)
        self.step_fn = step_fn
        self.new_shapes = new_shapes
        self._graphs: dict[tuple, _Graph] = {}
        self.warmup_output = None
        self._graph_for(_signature(example_inputs), example_inputs)
        self.replays = 0

    def __call__(self, *inputs):
        _check_inputs(inputs)
        signature = _signature(inputs)
        captured = self._graphs.get(signature)
        if captured is None:
            if self.new_shapes == "eager":
                return self.step_fn(*(_as_gpu_tensor(x) for x in inputs))
            captured = self._graph_for(signature, inputs)
            return self.warmup_output  # this call's step ran eagerly, as the warm-up
        captured.replay(inputs)
        self.replays += 1
        return captured.outputs

    def _graph_for(self, signature, inputs) -> _Graph:
        captured = _Graph(self.step_fn, inputs)
        self.warmup_output = captured.warmup_output
        captured.warmup_output = None
        self._graphs[signature] = captured
        return captured

    def node_counts(self) -> dict[str, int]:
        """What the graph of the example inputs' shape holds: {"kernel": 41, "memset": 3, ...}.

        Each node is one launch (or copy, or memset) that an eager step sends from Python."""
        return _node_counts(next(iter(self._graphs.values())).graph.graph)

    @property
    def shapes(self) -> list[tuple]:
        """The input shapes a graph was captured for."""
        return [tuple(shape for shape, _ in signature) for signature in self._graphs]

    def __repr__(self) -> str:
        name = getattr(self.step_fn, "__name__", "step")
        return f"CapturedStep({name}, graphs for shapes {self.shapes}, replays={self.replays})"


# ---------------------------------------------------------------- one graph, one shape


class _Graph:
    """The graph of one input signature: static inputs, private pool, outputs, and the
    optimizer groups it steps."""

    def __init__(self, step_fn, inputs):
        cupy = backend.cupy_module()
        caller = cupy.cuda.get_current_stream()
        # A stream of our own: capture is illegal on the legacy default stream, and the
        # cuBLAS workspace of this stream then belongs to this graph alone.
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.static = [_as_gpu_tensor(x, copy=True) for x in inputs]
        self.stream.wait_event(caller.record())
        with self.stream:
            # 1. Warm-up: a real step, eagerly. Compiles kernels, loads cuBLAS, gives the
            #    stream its cuBLAS workspace and the optimizers their state on the device.
            self.warmup_output = step_fn(*self.static)
            # 2. Capture: record the same step; nothing runs. Temporaries come from a pool
            #    of the graph's own.
            self.pool = cupy.cuda.MemoryPool()
            self.stream.synchronize()
            notes: list = []
            previous, _kernels.recording = _kernels.recording, notes
            random_state = random.get_state()  # what the capture draws (dropout seeds) ...
            try:
                with cupy.cuda.using_allocator(self.pool.malloc):
                    self.graph, self.outputs = _capture(self.stream, step_fn, self.static)
            finally:
                _kernels.recording = previous
                random.set_state(random_state)  # ... each replay draws again, as eagerly
                _undo_host_counts(notes)  # the capture ran no step: its counts go back
        self.groups = notes
        caller.wait_event(self.stream.record())

    def replay(self, inputs) -> None:
        cupy = backend.cupy_module()
        stream = cupy.cuda.get_current_stream()
        for static, x in zip(self.static, inputs):
            _copy_into(static.data, x, stream)
        for group in self.groups:
            group.before_replay(stream)
        self.graph.launch(stream=stream)
        for group in self.groups:
            group.after_replay()


def _capture(stream, step_fn, static):
    """(graph, outputs) of step_fn recorded on `stream`; a CaptureError if it can't be."""
    stream.begin_capture()
    try:
        outputs = step_fn(*static)
    except BaseException as error:
        try:
            stream.end_capture()
        except Exception:
            pass  # the capture was invalidated by the error: nothing to keep
        raise _explain(error) from error
    return stream.end_capture(), outputs


def _undo_host_counts(notes) -> None:
    for note in notes:
        note.undo_capture_count()


# ---------------------------------------------------------------- inputs


def _check_inputs(inputs) -> None:
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        if not (hasattr(data, "shape") and hasattr(data, "dtype")):
            raise TypeError(
                f"graph inputs must be tensors or arrays (the batch), got {type(x).__name__}: "
                "pass numbers the step needs as constants inside the step function"
            )


def _signature(inputs) -> tuple:
    return tuple((tuple(x.shape), np.dtype(x.dtype).str) for x in inputs)


def _as_gpu_tensor(x, copy: bool = False) -> Tensor:
    data = x.data if isinstance(x, Tensor) else x
    gpu = backend.to_device(data, backend.GPU)
    if copy and gpu is data:
        gpu = gpu.copy()
    return Tensor(gpu)


def _copy_into(static, x, stream) -> None:
    data = x.data if isinstance(x, Tensor) else x
    if backend.is_gpu_array(data):
        if data.flags.c_contiguous and static.flags.c_contiguous:
            cupy = backend.cupy_module()
            cupy.cuda.runtime.memcpyAsync(
                static.data.ptr,
                data.data.ptr,
                static.nbytes,
                cupy.cuda.runtime.memcpyDeviceToDevice,
                stream.ptr,
            )
        else:
            static[...] = data
    else:
        static.set(np.ascontiguousarray(data), stream=stream)


# ---------------------------------------------------------------- counting nodes

_NODE_TYPES = {0: "kernel", 1: "memcpy", 2: "memset", 3: "host", 4: "graph", 5: "empty"}


def _node_counts(graph_handle: int) -> dict[str, int]:
    """Nodes of a cudaGraph_t by type, through the CUDA runtime CuPy loaded (ctypes)."""
    import ctypes

    backend.cupy_module()
    path = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            name = line.rsplit(None, 1)[-1]
            if "/libcudart.so" in name:
                path = name
                break
    cudart = ctypes.CDLL(path or "libcudart.so")
    count = ctypes.c_size_t(0)
    handle = ctypes.c_void_p(graph_handle)
    if cudart.cudaGraphGetNodes(handle, None, ctypes.byref(count)) != 0:
        raise RuntimeError("cudaGraphGetNodes failed")
    nodes = (ctypes.c_void_p * count.value)()
    cudart.cudaGraphGetNodes(handle, nodes, ctypes.byref(count))
    counts: dict[str, int] = {}
    for node in nodes:
        kind = ctypes.c_int(-1)
        cudart.cudaGraphNodeGetType(ctypes.c_void_p(node), ctypes.byref(kind))
        name = _NODE_TYPES.get(kind.value, f"type {kind.value}")
        counts[name] = counts.get(name, 0) + 1
    return counts


# ---------------------------------------------------------------- errors


def _in_cupy(filename: str) -> bool:
    parts = filename.replace("\\", "/").split("/")
    return filename.endswith(".pyx") or "cupy" in parts or "cupy_backends" in parts


def _explain(error: BaseException) -> BaseException:
    """A CaptureError naming the operation and the line, for errors the capture caused."""
    text = f"{type(error).__name__}: {error}"
    capture_related = (
        "StreamCapture" in text
        or "stream capture" in text.lower()
        or "capturing" in text.lower()
        or "cudaErrorNotPermitted" in text
    )
    if not capture_related:
        return error
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _in_cupy(f.filename)]
    if not frames:
        return CaptureError(f"the step cannot be captured into a CUDA graph: {text}")
    op = frames[-1]
    user = next((f for f in reversed(frames) if not f.filename.startswith(_MINIGRAD_DIR)), op)
    code = (user.line or linecache.getline(user.filename, user.lineno)).strip()
    where = f"{user.filename}:{user.lineno}: {code}"
    what = f"'{op.name}' ({os.path.basename(op.filename)}:{op.lineno})"
    if "cuBLAS" in text:
        return CaptureError(
            f"the step cannot be captured into a CUDA graph: {what} calls CuPy's own cuBLAS "
            f"(cupy.dot, cupy.matmul, ...), which refuses stream capture. Called from {where}. "
            "Use minigrad's matrix products (@, mg.matmul, backend.matmul) instead."
        )
    return CaptureError(
        f"the step cannot be captured into a CUDA graph: {what} needs the host while the "
        f"GPU work is only being recorded (a device-to-host read such as .item(), .numpy(), "
        f"float(t) or `if t > 0:`, or a synchronization). Called from {where}. A graph "
        "replays GPU work only: read values after the step returns (for example the loss "
        f"every N steps), or run this step eagerly. (CUDA said: {text})"
    )
