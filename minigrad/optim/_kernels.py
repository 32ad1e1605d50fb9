"""Kernel cache and launch machinery for the fused GPU optimizer updates.

Each optimizer file writes its update rule twice, side by side: NumPy code and a CUDA
`__device__` function that updates one element. This module turns that device function into
two `cupy.ElementwiseKernel`s, built lazily once per dtype and option set, then cached:

* the per-parameter kernel: one launch per parameter, its arrays passed as kernel arguments.
  The clearest way to see what runs on the GPU.
* the fused kernel: ONE launch for all parameters of an optimizer. Thread i updates element
  i of the concatenation of every parameter. It finds which parameter that is with a binary
  search in a table of offsets, then reads and writes through that parameter's base pointers.

    table = [offset_0=0, offset_1, ..., offset_n=total,       (n + 1 element offsets)
             p_ptr_0 .. p_ptr_{n-1}, g_ptr_0 .., m_ptr_0 ..]   (a row of pointers per role)

Why a table of pointers and not one flat buffer? Gradients arrive as separate arrays from
backward(); copying them into a flat buffer would move 8 more bytes per element every step.

No host round trip, and nothing recompiles when a number changes. The per-step numbers (the
learning rate, Adam's bias corrections, SGD's first-step flag) are computed on the device by a
one-thread "prologue" kernel from the step count t, the learning rate and the constant
hyperparameters (kernel arguments), into a small float64 array that the update kernels read.
Eagerly, t and lr are arguments of the prologue; in a captured step (a CUDA graph) they are
read from a device "clock" [t, lr] that the prologue advances, so every replay takes the next
step with the current learning rate (minigrad/cuda/graphs.py writes a new lr there before a
replay). One prologue for both, so a replay computes exactly the bits of an eager step. The
table of pointers lives on the device too. It is rebuilt only
when the set of pointers changes; CuPy's memory pool hands the same blocks to each step's
gradients, so in steady state a step is a single kernel launch and nothing else. A new
table is sent with an asynchronous copy from pinned host memory (no synchronization).

Under CUDA stream capture (a step recorded into a CUDA graph) the rule is stricter: a graph
may depend on nothing outside it. A table uploaded by an eager step may still be in flight on
another stream, and waiting for its event from inside a capture is illegal
(cudaErrorStreamCaptureIsolation). So a captured step never uses an eager table: it records
its own upload into the graph (a copy of a few hundred bytes from a pinned buffer that is kept
for good, since every replay reads it again), and keeps those tables apart from the eager
ones, whose contents a captured upload never writes until the graph is replayed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .. import backend

# Scalars arrive as float64 and are used in the compute type C: float for float16 and
# float32 parameters (so float16 is computed in float32 and stored as float16), double for
# float64. --fmad=false keeps a*b+c as two rounded operations, exactly as NumPy does them,
# so GPU and CPU agree to the last bit in practice rather than only to rounding noise.
_COMMON_PREAMBLE = r"""
template <typename T> struct minigrad_compute { typedef float type; };
template <> struct minigrad_compute<double> { typedef double type; };
"""
_OPTIONS = ("--fmad=false",)


@dataclass(frozen=True)
class UpdateRule:
    """An update rule as the kernels see it.

    name:      the kernel's name, e.g. "adamw_update_amsgrad" (shows up in profilers)
    source:    CUDA C: the `__device__` function(s) the call uses
    inputs:    arrays only read, e.g. ("g",)
    outputs:   arrays updated in place, e.g. ("p", "m", "v")
    scalars:   the float64 numbers the call uses, e.g. ("step_size", "eps")
    call:      one statement using the names above, T (storage type) and C (compute type)
    constants: float64 hyperparameters passed to the prologue, e.g. ("beta1", "eps")
    prologue:  CUDA statements defining every scalar that is not a constant as a `double`,
               from t (the step count, counting this step), lr and the constants
    """

    name: str
    source: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    scalars: tuple[str, ...]
    call: str
    constants: tuple[str, ...] = ()
    prologue: str = ""

    @property
    def arrays(self) -> tuple[str, ...]:
        """Array roles in table order: the outputs (p first) then the inputs."""
        return self.outputs + self.inputs


# ---------------------------------------------------------------- building kernels (cached)
_kernels: dict = {}


def _cached(key, build):
    kernel = _kernels.get(key)
    if kernel is None:
        kernel = _kernels[key] = build()
    return kernel


def per_parameter_kernel(rule: UpdateRule):
    """ElementwiseKernel updating one parameter: inputs, scalars -> outputs (in place)."""

    def build():
        cupy = backend.cupy_module()
        in_params = ", ".join([f"T {a}" for a in rule.inputs] + ["raw float64 scalars"])
        out_params = ", ".join(f"T {a}" for a in rule.outputs)
        lines = ["typedef typename minigrad_compute<T>::type C;", *_read_scalars(rule)]
        body = "\n".join(lines + [f"{rule.call};"])
        return cupy.ElementwiseKernel(
            in_params,
            out_params,
            body,
            name=f"minigrad_{rule.name}",
            preamble=_COMMON_PREAMBLE + rule.source,
            options=_OPTIONS,
            no_return=True,
        )

    return _cached(("per_parameter", rule), build)


def fused_kernel(rule: UpdateRule):
    """ElementwiseKernel updating every parameter of a group in one launch (see module doc).

    `like` is the first parameter, passed only so that CuPy knows the element type T (and
    defines float16 for it); every array is reached through the table.
    """

    def build():
        cupy = backend.cupy_module()
        in_params = "raw T like, raw uint64 table, int32 n_tensors, raw float64 scalars"
        lines = [
            "typedef typename minigrad_compute<T>::type C;",
            *_read_scalars(rule),
            "// Which parameter holds element i? Binary search in offsets table[0..n_tensors].",
            "int lo = 0, hi = n_tensors;",
            "while (hi - lo > 1) {",
            "    const int mid = (lo + hi) / 2;",
            "    if ((long long)table[mid] <= (long long)i) lo = mid; else hi = mid;",
            "}",
            "const long long k = (long long)i - (long long)table[lo];  // index inside it",
            "const unsigned long long* ptrs = &table[n_tensors + 1];",
        ]
        for row, name in enumerate(rule.arrays):
            const = "const " if name in rule.inputs else ""
            ref = "" if name in rule.inputs else "&"
            pointer = f"reinterpret_cast<{const}T*>(ptrs[{row} * n_tensors + lo])"
            lines.append(f"{const}T{ref} {name} = {pointer}[k];")
        lines.append(f"{rule.call};")
        return cupy.ElementwiseKernel(
            in_params,
            "",
            "\n".join(lines),
            name=f"minigrad_fused_{rule.name}",
            preamble=_COMMON_PREAMBLE + rule.source,
            options=_OPTIONS,
            no_return=True,
        )

    return _cached(("fused", rule), build)


def _read_scalars(rule: UpdateRule) -> list[str]:
    # The same address in every thread: one load, served from the cache.
    return [f"const double {name} = scalars[{j}];" for j, name in enumerate(rule.scalars)]


def prologue_kernel(rule: UpdateRule):
    """RawKernel (one thread): the rule's scalars for step t into `out` (see module doc).

    from_clock = 0: t and lr are the arguments t_in and lr_in (an eager step).
    from_clock = 1: t = clock[0] + 1 is stored back, lr = clock[1] (a captured step).
    """

    def build():
        cupy = backend.cupy_module()
        constants = "".join(f", const double {c}" for c in rule.constants)
        stores = "\n    ".join(f"out[{j}] = {name};" for j, name in enumerate(rule.scalars))
        source = f"""
extern "C" __global__ void minigrad_{rule.name}_scalars(
    double* clock, double* out, const double t_in, const double lr_in, const int from_clock
    {constants})
{{
    double t = t_in, lr = lr_in;
    if (from_clock) {{
        t = clock[0] + 1.0;
        clock[0] = t;
        lr = clock[1];
    }}
    {rule.prologue}
    {stores}
}}
"""
        return cupy.RawKernel(source, f"minigrad_{rule.name}_scalars", options=_OPTIONS)

    return _cached(("prologue", rule), build)


def _set_clock_kernel():
    def build():
        source = r"""
extern "C" __global__ void minigrad_set_clock(double* clock, const double t, const double lr)
{
    clock[0] = t;
    clock[1] = lr;
}
"""
        return backend.cupy_module().RawKernel(source, "minigrad_set_clock")

    return _cached(("set_clock",), build)


# ---------------------------------------------------------------- the per-step scalars

# graphs.py sets this to a list while it captures a step: every captured optimizer group adds
# a CapturedGroup, so that the graph can keep the host's step counts and the device clocks
# in step with its replays.
recording: list | None = None


def unpooled_array(shape, dtype):
    """A device array in memory of its own (cudaMalloc), outside every CuPy memory pool.

    For memory written outside a graph and read inside it (a clock, a cuBLAS workspace):
    memory from a graph's private pool may be a block that the graph itself also uses for a
    temporary, which would overwrite what was written.
    """
    cupy = backend.cupy_module()
    nbytes = max(int(np.prod(shape)) * np.dtype(dtype).itemsize, 1)
    pointer = cupy.cuda.memory.MemoryPointer(cupy.cuda.memory.Memory(nbytes), 0)
    return cupy.ndarray(shape, dtype=dtype, memptr=pointer)


_side_stream = None


def write_now(array, values) -> None:
    """array[:] = values (float64), finished before returning, even during a capture.

    The copy goes through a stream of its own, which is not being captured (CuPy captures in
    relaxed mode, where that is allowed), and the host waits for it.
    """
    import cupyx

    global _side_stream
    cupy = backend.cupy_module()
    if _side_stream is None:
        _side_stream = cupy.cuda.Stream(non_blocking=True)
    host = cupyx.empty_pinned(array.shape, dtype=array.dtype)
    host[...] = values
    cupy.cuda.runtime.memcpyAsync(
        array.data.ptr,
        host.ctypes.data,
        host.nbytes,
        cupy.cuda.runtime.memcpyHostToDevice,
        _side_stream.ptr,
    )
    _side_stream.synchronize()


class Clock:
    """[t, lr] of one optimizer group on the device, read by its captured steps.

    `t` and `lr` mirror what the device will hold once the queued work is done, so that the
    host writes the clock only when the values differ. A capture sets it to the step count
    before the captured step and the current lr, at once (so a graph replayed by hand takes
    the right next step); mg.cuda.graph keeps it in step with every replay.
    """

    __slots__ = ("array", "t", "lr")

    def __init__(self):
        self.array = unpooled_array((2,), np.float64)
        self.t = self.lr = None

    def set_now(self, t: float, lr: float) -> None:
        write_now(self.array, (t, lr))
        self.t, self.lr = t, lr

    def set(self, t: float, lr: float, stream) -> None:
        """Queue [t, lr] into the clock on `stream` (in order with the replays)."""
        with stream:
            _set_clock_kernel()((1,), (1,), (self.array, np.float64(t), np.float64(lr)))
        self.t, self.lr = t, lr


class CapturedGroup:
    """One optimizer group stepped inside a captured graph: how a replay advances it."""

    __slots__ = ("owner", "members", "step", "clock")

    def __init__(self, owner, members: tuple, step: int, clock: Clock):
        self.owner, self.members, self.step, self.clock = owner, members, step, clock

    def undo_capture_count(self) -> None:
        """The capture counted a step that did not run: take it back."""
        for i in self.members:
            self.owner.steps[i] = self.step - 1

    def before_replay(self, stream) -> None:
        t, lr = self.owner.steps[self.members[0]], self.owner.lr
        if t != self.clock.t or lr != self.clock.lr:
            self.clock.set(t, lr, stream)

    def after_replay(self) -> None:
        self.clock.t += 1
        for i in self.members:
            self.owner.steps[i] += 1


def step_scalars(rule: UpdateRule, constants: dict, step: int, lr: float, owner, members):
    """A device float64 array of the rule's scalars for this step, from the prologue.

    owner: the optimizer (its PointerTables keep the clocks); members: the group's parameter
    indices. Under stream capture the prologue reads and advances the group's clock instead
    of taking step and lr as arguments.
    """
    cupy = backend.cupy_module()
    stream = cupy.cuda.get_current_stream()
    values = tuple(np.float64(constants[c]) for c in rule.constants)
    tables = owner._pointer_tables
    if stream.is_capturing():
        # Written by the prologue inside the graph before each use: any memory will do.
        out = cupy.empty(len(rule.scalars), dtype=np.float64)
        clock = tables.clocks.get(members)
        if clock is None:
            clock = tables.clocks[members] = Clock()
        clock.set_now(step - 1, lr)
        if recording is not None:
            recording.append(CapturedGroup(owner, members, step, clock))
        args = (clock.array, out, np.float64(0), np.float64(0), np.int32(1)) + values
    else:
        # One array per group and stream, reused: allocating one per step would shift the
        # addresses the pool gives the next step's gradients, and with them the table keys.
        out = tables.scalars.get((members, stream.ptr))
        if out is None:
            out = tables.scalars[members, stream.ptr] = cupy.empty(len(rule.scalars), np.float64)
        args = (out, out, np.float64(step), np.float64(lr), np.int32(0)) + values
    prologue_kernel(rule)((1,), (1,), args)
    return out


# ---------------------------------------------------------------- launching
def launch_per_parameter(rule: UpdateRule, arrays: dict, scalars) -> None:
    """One launch for one parameter. `arrays` maps each role to an array; `scalars` is the
    device array from step_scalars()."""
    kernel = per_parameter_kernel(rule)
    kernel(*[arrays[a] for a in rule.inputs], scalars, *[arrays[a] for a in rule.outputs])


def launch_fused(rule: UpdateRule, arrays: dict, scalars, tables: PointerTables, layout) -> None:
    """One launch for many parameters. `arrays` maps each role to a list (one per parameter).

    `layout` is a hashable name for every array except the inputs (the gradients): the
    caller promises those arrays are the same objects whenever it passes the same layout.
    """
    params = arrays[rule.arrays[0]]
    table, total = tables.table_for([arrays[a] for a in rule.arrays], layout, rule.inputs)
    if total == 0:
        return
    fused_kernel(rule)(params[0], table, np.int32(len(params)), scalars, size=total)


class _Entry:
    __slots__ = ("device", "host", "event", "stream")


class PointerTables:
    """Device-side tables of offsets and pointers, one per distinct set of arrays.

    Eager steps use an LRU cache of `max_entries` tables. A table is uploaded once with an
    asynchronous host-to-device copy from pinned memory; the pinned buffer must outlive that
    copy, so an evicted entry's buffer is kept until the copy is known to be done (queried
    without blocking). A step used on another stream than the upload's waits for it on the
    device.

    Captured steps use their own tables (see the module docstring): uploaded inside the
    capture, never evicted (a graph that reads them may live on), reused by a later capture of
    the same arrays.
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._captured: dict = {}
        self._retiring: list[_Entry] = []
        # For step_scalars: group members -> Clock (captured steps); (members, stream) ->
        # the device array of an eager step's scalars.
        self.clocks: dict = {}
        self.scalars: dict = {}
        self.uploads = 0  # how many tables were sent: tests check the steady state sends none

    def table_for(self, rows: list[list], layout, inputs: tuple):
        """(device table, total element count) for arrays[role][param] laid out as rows.

        The key: `layout` (naming the first rows) and the pointers of the last
        len(inputs) rows, the gradients, which are new arrays every step.
        """
        key = (layout,) + tuple(a.data.ptr for row in rows[-len(inputs) :] for a in row)
        sizes = [a.size for a in rows[0]]
        total = int(sum(sizes))
        stream = backend.cupy_module().cuda.get_current_stream()
        if stream.is_capturing():
            entry = self._captured.get(key)
            if entry is None:
                entry = self._captured[key] = self._upload(sizes, rows, stream, unpooled=True)
            else:
                self._copy(entry, stream)  # into the graph: the same bytes, written again
            return entry.device, total
        entry = self._entries.get(key)
        if entry is None:
            entry = self._upload(sizes, rows, stream)
            entry.event = stream.record()
            self._entries[key] = entry
            if len(self._entries) > self.max_entries:
                self._retiring.append(self._entries.popitem(last=False)[1])
            # Keep a retired pinned buffer while its copy may still be pending.
            self._retiring = [e for e in self._retiring if not e.event.done]
        else:
            self._entries.move_to_end(key)
            if entry.stream != stream.ptr:
                stream.wait_event(entry.event)  # a device-side wait: the host does not block
        return entry.device, total

    def _upload(self, sizes, rows, stream, unpooled: bool = False) -> _Entry:
        """A new table: pinned host buffer, device array, and the copy between them queued.

        A captured table's device array gets memory of its own (unpooled): it is kept for good
        and may be shared by the graphs of several captures.
        """
        import cupyx

        n = len(sizes)
        host = cupyx.empty_pinned(n + 1 + n * len(rows), dtype=np.uint64)
        host[0] = 0
        host[1 : n + 1] = np.cumsum(sizes, dtype=np.uint64)
        host[n + 1 :] = [a.data.ptr for row in rows for a in row]
        entry = _Entry()
        entry.host = host
        if unpooled:
            entry.device = unpooled_array(host.shape, np.uint64)
        else:
            entry.device = backend.cupy_module().empty(host.shape, dtype=np.uint64)
        entry.event = None
        self._copy(entry, stream)
        self.uploads += 1
        return entry

    @staticmethod
    def _copy(entry: _Entry, stream) -> None:
        # A raw asynchronous copy: CuPy's ndarray.set() refuses to run under stream capture,
        # but a pinned-memory copy is legal there and never makes the host wait.
        cupy = backend.cupy_module()
        entry.stream = stream.ptr
        cupy.cuda.runtime.memcpyAsync(
            entry.device.data.ptr,
            entry.host.ctypes.data,
            entry.host.nbytes,
            cupy.cuda.runtime.memcpyHostToDevice,
            stream.ptr,
        )
