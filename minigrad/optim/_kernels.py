"""Kernel cache and launch machinery for the fused GPU optimizer updates.

Each optimizer file writes its update rule twice, side by side: NumPy code and a CUDA
`__device__` function that updates one element. This module turns that device function into
two `cupy.ElementwiseKernel`s, built lazily once per dtype and option set, then cached:

* the per-parameter kernel: one launch per parameter, its arrays passed as kernel arguments.
  The clearest way to see what runs on the GPU.
* the fused kernel: ONE launch for all parameters of an optimizer. Thread i updates slot i
  of the concatenation of every parameter (a slot: 16 bytes of one parameter's elements). It
  finds which parameter that is in a table of offsets, then reads and writes through that
  parameter's base pointers.

    table = [first_0=0, first_1, ..., first_n=slots,          (each parameter's first slot)
             size_0, ..., size_{n-1},                         (its number of elements)
             p_ptr_0 .. p_ptr_{n-1}, g_ptr_0 .., m_ptr_0 ..,  (a row of pointers per role)
             hint_0, hint_1, ...]                           (per chunk of 4096 slots:
                                                              the parameter holding its first)

A slot is 16 bytes of consecutive elements of one parameter (4 floats), moved with one
16-byte load or store per array; the hints make "which parameter holds slot i" a lookup and
a step or two. (One element per thread and a binary search of log2(n) dependent loads left a
200-tensor AdamW step, captured, at 63% of the copy bandwidth on an H200.)

Why a table of pointers and not one flat buffer? Gradients arrive as separate arrays from
backward(); copying them into a flat buffer would move 8 more bytes per element every step.

No host round trip: hyperparameters and bias corrections are kernel *arguments* (so changing
the learning rate never recompiles), and the table lives on the device. It is rebuilt only
when the set of pointers changes; CuPy's memory pool hands the same blocks to each step's
gradients, so in steady state a step is a single kernel launch and nothing else. A new
table is sent with an asynchronous copy from pinned host memory (no synchronization).

Under CUDA stream capture (a step recorded into a CUDA graph) the rule is stricter: a graph
may depend on nothing outside it. A table uploaded by an eager step may still be in flight on
another stream, and waiting for its event from inside a capture is illegal
(cudaErrorStreamCaptureIsolation). So a captured step never uses an eager table: it gets its
own, written at once (through a stream of its own, which the host waits for) into memory
outside every pool, kept for good and apart from the eager tables. The graph then only reads
it: no copy per replay.

A graph also replays its kernel arguments as recorded, so a captured step cannot take its
numbers (lr, bias corrections) as arguments: each replay needs those of its own step. Captured
kernels read them from a small float64 array on the device instead (the same doubles, so the
same bits), and before each replay minigrad/cuda/graphs.py computes the next step's numbers on
the host, exactly as an eager step would, and queues them into that array with a one-thread
kernel. Changing the learning rate (a scheduler) between replays therefore just works.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..cuda.memory import unpooled_array, write_now

# Scalars arrive as float64 and are used in the compute type C: float for float16 and
# float32 parameters (so float16 is computed in float32 and stored as float16), double for
# float64. --fmad=false keeps a*b+c as two rounded operations, exactly as NumPy does them,
# so GPU and CPU agree to the last bit in practice rather than only to rounding noise.
_COMMON_PREAMBLE = r"""
template <typename T> struct minigrad_compute { typedef float type; };
template <> struct minigrad_compute<double> { typedef double type; };
"""
_OPTIONS = ("--fmad=false",)
CHUNK_BITS = 12  # the table holds one hint per 2**12 elements (see the module docstring)


@dataclass(frozen=True)
class UpdateRule:
    """An update rule as the kernels see it.

    name:    the kernel's name, e.g. "adamw_update_amsgrad" (shows up in profilers)
    source:  CUDA C: the `__device__` function(s) the call uses
    inputs:  arrays only read, e.g. ("g",)
    outputs: arrays updated in place, e.g. ("p", "m", "v")
    scalars: float64 arguments, e.g. ("step_size", "eps")
    call:    one statement using the names above, T (storage type) and C (compute type)
    """

    name: str
    source: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    scalars: tuple[str, ...]
    call: str

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


def _scalar_params(rule: UpdateRule, from_memory: bool) -> tuple[list[str], list[str]]:
    """(kernel parameters, body lines) that give the call its scalars: float64 arguments, or
    (in a captured step) doubles read from the device array `scalars` in rule order."""
    if not from_memory:
        return [f"float64 {s}" for s in rule.scalars], []
    # The same address in every thread: one load, served from the cache.
    reads = [f"const double {s} = scalars[{j}];" for j, s in enumerate(rule.scalars)]
    return ["raw float64 scalars"], reads


def per_parameter_kernel(rule: UpdateRule, from_memory: bool = False):
    """ElementwiseKernel updating one parameter: inputs, scalars -> outputs (in place)."""

    def build():
        cupy = backend.cupy_module()
        params, reads = _scalar_params(rule, from_memory)
        in_params = ", ".join([f"T {a}" for a in rule.inputs] + params)
        out_params = ", ".join(f"T {a}" for a in rule.outputs)
        lines = ["typedef typename minigrad_compute<T>::type C;", *reads, f"{rule.call};"]
        return cupy.ElementwiseKernel(
            in_params,
            out_params,
            "\n".join(lines),
            name=f"minigrad_{rule.name}",
            preamble=_COMMON_PREAMBLE + rule.source,
            options=_OPTIONS,
            no_return=True,
        )

    return _cached(("per_parameter", rule, from_memory), build)


def fused_kernel(rule: UpdateRule, from_memory: bool = False):
    """ElementwiseKernel updating every parameter of a group in one launch (see module doc).

    Thread i updates the i-th *slot* of `vec` consecutive elements (vec = 16 bytes' worth,
    4 floats, when every array is 16-byte aligned; else 1), with one 16-byte load or store per
    array, and the update rule once per element: the same arithmetic, element by element, as
    the per-parameter kernel. Each parameter starts a new slot, so a slot never spans two
    parameters; a parameter's last slot may be short, and is done element by element.

    `like` is the first parameter, passed only so that CuPy knows the element type T (and
    defines float16 for it); every array is reached through the table.
    """

    def build():
        cupy = backend.cupy_module()
        params, reads = _scalar_params(rule, from_memory)
        in_params = ", ".join(
            ["raw T like", "raw uint64 table", "int32 n_tensors", "int32 vec"] + params
        )
        rows = len(rule.arrays)
        lines = [
            "typedef typename minigrad_compute<T>::type C;",
            "struct __align__(16) Vec { T v[16 / sizeof(T)]; };  // 16 bytes of T",
            "const int full = 16 / sizeof(T);",
            *reads,
            "// Which parameter holds slot i? The last one whose first slot is <= i. The hint",
            "// of i's chunk names the parameter holding the chunk's first slot; step on from",
            "// there (no steps when parameters are longer than a chunk).",
            f"int lo = (int)table[{rows + 2} * n_tensors + 1 + (i >> {CHUNK_BITS})];",
            "while ((long long)table[lo + 1] <= (long long)i) lo++;",
            "const long long length = (long long)table[n_tensors + 1 + lo];  // its elements",
            "const long long k = ((long long)i - (long long)table[lo]) * vec;  // first one here",
            "const unsigned long long* ptrs = &table[2 * n_tensors + 1];",
        ]
        for row, name in enumerate(rule.arrays):
            const = "const " if name in rule.inputs else ""
            pointer = f"reinterpret_cast<{const}T*>(ptrs[{row} * n_tensors + lo]) + k"
            lines.append(f"{const}T* {name}_at = {pointer};")
        # The whole slot: one 16-byte load per array, the rule per element, one store each.
        lines.append("if (vec == full && k + full <= length) {")
        for name in rule.arrays:
            lines.append(f"    Vec {name}_vec = *reinterpret_cast<const Vec*>({name}_at);")
        lines.append("    for (int e = 0; e < full; e++) {")
        for name in rule.arrays:
            const, ref = ("const ", "") if name in rule.inputs else ("", "&")
            lines.append(f"        {const}T{ref} {name} = {name}_vec.v[e];")
        lines.append(f"        {rule.call};")
        lines.append("    }")
        for name in rule.outputs:
            lines.append(f"    *reinterpret_cast<Vec*>({name}_at) = {name}_vec;")
        # A short last slot (or vec == 1): element by element, in place.
        lines.append("} else {")
        lines.append("    const long long here = length - k < vec ? length - k : vec;")
        lines.append("    for (int e = 0; e < here; e++) {")
        for name in rule.arrays:
            const, ref = ("const ", "") if name in rule.inputs else ("", "&")
            lines.append(f"        {const}T{ref} {name} = {name}_at[e];")
        lines.append(f"        {rule.call};")
        lines.append("    }")
        lines.append("}")
        return cupy.ElementwiseKernel(
            in_params,
            "",
            "\n".join(lines),
            name=f"minigrad_fused_{rule.name}",
            preamble=_COMMON_PREAMBLE + rule.source,
            options=_OPTIONS,
            no_return=True,
        )

    return _cached(("fused", rule, from_memory), build)


def _set_scalars_kernel(count: int):
    """RawKernel (one thread): out[0..count) = its `count` double arguments."""

    def build():
        params = "".join(f", const double s{j}" for j in range(count))
        stores = " ".join(f"out[{j}] = s{j};" for j in range(count))
        name = f"minigrad_set_{count}_scalars"
        source = f'extern "C" __global__ void {name}(double* out{params}) {{ {stores} }}'
        return backend.cupy_module().RawKernel(source, name)

    return _cached(("set_scalars", count), build)


# ---------------------------------------------------------------- the per-step scalars

# graphs.py sets this to a list while it captures a step: every captured optimizer group adds
# a CapturedGroup, so that the graph can keep the host's step counts and the scalars
# in step with its replays.
recording: list | None = None


def capturing() -> bool:
    """Is the current stream being captured into a CUDA graph?"""
    return backend.cupy_module().cuda.get_current_stream().is_capturing()


class ScalarSlot:
    """The device array a captured group's kernels read their scalars from.

    `values` mirrors what the device will hold once the queued work is done, so that the host
    writes only numbers that changed.
    """

    __slots__ = ("array", "values")

    def __init__(self, count: int):
        self.array = unpooled_array((count,), np.float64)
        self.values = None

    def write_now(self, values: tuple) -> None:
        write_now(self.array, values)
        self.values = values

    def write(self, values: tuple, stream) -> None:
        """Queue the values into the array on `stream` (in order with the replays)."""
        args = (self.array, *(np.float64(v) for v in values))
        with stream:
            _set_scalars_kernel(len(values))((1,), (1,), args)
        self.values = values


class CapturedGroup:
    """One optimizer group stepped inside a captured graph: how a replay advances it."""

    __slots__ = ("owner", "rule", "members", "step", "slot")

    def __init__(self, owner, rule, members: tuple, step: int, slot: ScalarSlot):
        self.owner, self.rule, self.members, self.step, self.slot = owner, rule, members, step, slot

    def undo_capture_count(self) -> None:
        """The capture counted a step that did not run: take it back."""
        for i in self.members:
            self.owner.steps[i] = self.step - 1

    def before_replay(self, stream) -> None:
        """Queue the numbers of the step this replay takes: the eager step's, to the bit."""
        numbers = self.owner._kernel_scalars(self.owner.steps[self.members[0]] + 1)
        values = tuple(numbers[s] for s in self.rule.scalars)
        if values != self.slot.values:
            self.slot.write(values, stream)

    def after_replay(self) -> None:
        for i in self.members:
            self.owner.steps[i] += 1


class CapturedHostValues:
    """Numbers the host draws anew for each replay (a dropout call's seed, say)."""

    __slots__ = ("slot", "produce")

    def __init__(self, slot: ScalarSlot, produce):
        self.slot, self.produce = slot, produce

    def undo_capture_count(self) -> None:
        pass  # graphs.py restores the random generator that produced the captured values

    def before_replay(self, stream) -> None:
        self.slot.write(self.produce(), stream)

    def after_replay(self) -> None:
        pass


def captured_host_values(values: tuple, produce):
    """A device float64 array holding `values` now, that a captured kernel reads; before each
    replay of a graph made by mg.cuda.graph, `produce()` gives the values to write there."""
    slot = ScalarSlot(len(values))
    slot.write_now(values)
    if recording is not None:
        recording.append(CapturedHostValues(slot, produce))
    return slot.array


def captured_scalars(rule: UpdateRule, numbers: dict, owner, members: tuple, step: int):
    """The device array a captured step of group `members` reads its scalars from.

    Written now with this step's numbers, so that a graph replayed by hand takes this step;
    mg.cuda.graph rewrites it before every replay (see CapturedGroup).
    """
    slots = owner._pointer_tables.slots
    slot = slots.get(members)
    if slot is None:
        slot = slots[members] = ScalarSlot(len(rule.scalars))
    slot.write_now(tuple(numbers[s] for s in rule.scalars))
    if recording is not None:
        recording.append(CapturedGroup(owner, rule, members, step, slot))
    return slot.array


# ---------------------------------------------------------------- launching
def _scalar_args(rule: UpdateRule, scalars) -> tuple[bool, list]:
    """(from_memory, kernel arguments) for `scalars`: a dict of numbers, or the device array
    of a captured step (captured_scalars)."""
    if isinstance(scalars, dict):
        return False, [float(scalars[s]) for s in rule.scalars]
    return True, [scalars]


def launch_per_parameter(rule: UpdateRule, arrays: dict, scalars) -> None:
    """One launch for one parameter. `arrays` maps each role to an array, `scalars` each name."""
    from_memory, args = _scalar_args(rule, scalars)
    kernel = per_parameter_kernel(rule, from_memory)
    kernel(*[arrays[a] for a in rule.inputs], *args, *[arrays[a] for a in rule.outputs])


def launch_fused(rule: UpdateRule, arrays: dict, scalars, tables: PointerTables, layout) -> None:
    """One launch for many parameters. `arrays` maps each role to a list (one per parameter).

    `layout` is a hashable name for every array except the inputs (the gradients): the
    caller promises those arrays are the same objects whenever it passes the same layout.
    """
    params = arrays[rule.arrays[0]]
    entry = tables.table_for([arrays[a] for a in rule.arrays], layout, rule.inputs)
    if entry.slots == 0:
        return
    from_memory, args = _scalar_args(rule, scalars)
    kernel = fused_kernel(rule, from_memory)
    n, vec = np.int32(len(params)), np.int32(entry.vec)
    kernel(params[0], entry.device, n, vec, *args, size=entry.slots)


class _Entry:
    __slots__ = ("device", "event", "stream", "slots", "vec")


class PointerTables:
    """Device-side tables of offsets and pointers, one per distinct set of arrays.

    Eager steps use an LRU cache of `max_entries` tables. A table is uploaded once with an
    asynchronous host-to-device copy from one pinned staging buffer, reused once its last copy
    is known to be done (queried without blocking). The device tables come from a memory pool
    of their own, reserved at the first upload, so that a new table neither moves the next
    step's gradients to other addresses nor allocates (cudaMalloc and cudaHostAlloc can make
    the host wait for the GPU). A step used on another stream than the upload's waits for it
    on the device.

    Captured steps use their own tables (see the module docstring): written at capture, never
    evicted (a graph that reads them may live on), reused by a later capture of the same
    arrays.
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._captured: dict = {}
        self._pool = None  # the eager tables' own memory pool (see _upload)
        self._staging = None  # pinned host buffer of the eager uploads, and its last copy
        self._staging_event = None
        self.slots: dict = {}  # group members -> ScalarSlot, for captured steps
        self.uploads = 0  # how many tables were sent: tests check the steady state sends none

    def table_for(self, rows: list[list], layout, inputs: tuple) -> _Entry:
        """The table (entry.device, entry.slots, entry.vec) of arrays[role][param] as rows.

        The key: `layout` (naming the first rows) and the pointers of the last
        len(inputs) rows, the gradients, which are new arrays every step.
        """
        key = (layout,) + tuple(a.data.ptr for row in rows[-len(inputs) :] for a in row)
        sizes = [a.size for a in rows[0]]
        stream = backend.cupy_module().cuda.get_current_stream()
        if stream.is_capturing():
            # Written once, now, into memory of its own: a graph reads it on every replay.
            entry = self._captured.get(key)
            if entry is None:
                entry = self._captured[key] = self._upload(sizes, rows, None)
            return entry
        entry = self._entries.get(key)
        if entry is None:
            entry = self._upload(sizes, rows, stream)
            entry.event = self._staging_event = stream.record()
            self._entries[key] = entry
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # its memory goes back to self._pool
        else:
            self._entries.move_to_end(key)
            if entry.stream != stream.ptr:
                stream.wait_event(entry.event)  # a device-side wait: the host does not block
        return entry

    def _upload(self, sizes, rows, stream) -> _Entry:
        """A new table: pinned host buffer, device array, and the copy between them queued on
        `stream`; stream None (a capture): written at once into memory of its own, kept for
        good and possibly shared by the graphs of several captures."""
        n = len(sizes)
        pointers = [a.data.ptr for row in rows for a in row]
        # 16-byte slots when every array starts on a 16-byte boundary (pool blocks do).
        full = max(16 // rows[0][0].itemsize, 1)
        vec = full if all(ptr % 16 == 0 for ptr in pointers) else 1
        firsts = np.zeros(n + 1, dtype=np.uint64)  # each parameter's first slot
        firsts[1:] = np.cumsum([-(-size // vec) for size in sizes], dtype=np.uint64)
        slots = int(firsts[-1])
        chunks = np.arange(0, max(slots, 1), 2**CHUNK_BITS, dtype=np.uint64)
        hints = np.searchsorted(firsts, chunks, side="right") - 1  # the last first <= start
        #   [firsts (n + 1), sizes (n), pointers (a row of n per role), hints (per chunk)]
        count = 2 * n + 1 + len(pointers) + len(chunks)
        if stream is None:
            host = np.empty(count, dtype=np.uint64)  # write_now stages it itself
        else:
            host = self._staging_for(count)
        host[: n + 1] = firsts
        host[n + 1 : 2 * n + 1] = sizes
        host[2 * n + 1 : 2 * n + 1 + len(pointers)] = pointers
        host[2 * n + 1 + len(pointers) :] = np.minimum(hints, n - 1)
        entry = _Entry()
        entry.event = None
        entry.slots, entry.vec = slots, vec
        if stream is None:
            entry.device = unpooled_array(host.shape, np.uint64)
            write_now(entry.device, host)
            entry.stream = None
        else:
            # From a pool of the tables' own: taking blocks from the pool that serves the
            # gradients would move the next step's gradients to other addresses, and so ask
            # for yet another table (a new one each step, where the pool reuses blocks).
            cupy = backend.cupy_module()
            if self._pool is None:
                self._pool = cupy.cuda.MemoryPool()
                # Room for a full cache (and one more) in one block, freed at once: later
                # tables are cut from it, with no cudaMalloc.
                self._pool.malloc((self.max_entries + 2) * max(host.nbytes, 4096))
            memory = self._pool.malloc(host.nbytes)
            entry.device = cupy.ndarray(host.shape, dtype=np.uint64, memptr=memory)
            self._copy(entry, host, stream)
        self.uploads += 1
        return entry

    def _staging_for(self, count: int):
        """The pinned staging buffer, at least `count` long, once its last copy is done."""
        import cupyx

        staging, pending = self._staging, self._staging_event
        if staging is None or staging.size < count or (pending is not None and not pending.done):
            # A new pinned buffer (cudaHostAlloc may wait for the GPU): the first upload, a
            # larger table, or two new tables in a row before the first copy ran.
            self._staging = staging = cupyx.empty_pinned(max(count, 512), dtype=np.uint64)
            self._staging_event = None
        return staging[:count]

    @staticmethod
    def _copy(entry: _Entry, host, stream) -> None:
        # A raw asynchronous copy from pinned memory: it never makes the host wait.
        cupy = backend.cupy_module()
        entry.stream = stream.ptr
        cupy.cuda.runtime.memcpyAsync(
            entry.device.data.ptr,
            host.ctypes.data,
            host.nbytes,
            cupy.cuda.runtime.memcpyHostToDevice,
            stream.ptr,
        )
