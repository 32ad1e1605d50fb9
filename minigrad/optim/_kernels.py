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

No host round trip: hyperparameters and bias corrections are kernel *arguments* (so changing
the learning rate never recompiles), and the table lives on the device. It is rebuilt only
when the set of pointers changes; CuPy's memory pool hands the same blocks to each step's
gradients, so in steady state a step is a single kernel launch and nothing else. A new
table is sent with an asynchronous copy from pinned host memory (no synchronization).
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


def per_parameter_kernel(rule: UpdateRule):
    """ElementwiseKernel updating one parameter: inputs, scalars -> outputs (in place)."""

    def build():
        cupy = backend.cupy_module()
        in_params = ", ".join(
            [f"T {a}" for a in rule.inputs] + [f"float64 {s}" for s in rule.scalars]
        )
        out_params = ", ".join(f"T {a}" for a in rule.outputs)
        body = f"typedef typename minigrad_compute<T>::type C;\n{rule.call};"
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
        scalars = [f"float64 {s}" for s in rule.scalars]
        in_params = ", ".join(["raw T like", "raw uint64 table", "int32 n_tensors"] + scalars)
        lines = [
            "typedef typename minigrad_compute<T>::type C;",
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


# ---------------------------------------------------------------- launching
def launch_per_parameter(rule: UpdateRule, arrays: dict, scalars: dict) -> None:
    """One launch for one parameter. `arrays` maps each role to an array, `scalars` each name."""
    kernel = per_parameter_kernel(rule)
    args = [arrays[a] for a in rule.inputs] + [float(scalars[s]) for s in rule.scalars]
    kernel(*args, *[arrays[a] for a in rule.outputs])


def launch_fused(
    rule: UpdateRule, arrays: dict, scalars: dict, tables: PointerTables, layout
) -> None:
    """One launch for many parameters. `arrays` maps each role to a list (one per parameter).

    `layout` is a hashable name for every array except the inputs (the gradients): the
    caller promises those arrays are the same objects whenever it passes the same layout.
    """
    params = arrays[rule.arrays[0]]
    table, total = tables.table_for([arrays[a] for a in rule.arrays], layout, rule.inputs)
    if total == 0:
        return
    args = [float(scalars[s]) for s in rule.scalars]
    fused_kernel(rule)(params[0], table, np.int32(len(params)), *args, size=total)


class _Entry:
    __slots__ = ("device", "host", "event", "stream")


class PointerTables:
    """Device-side tables of offsets and pointers, one per distinct set of arrays (LRU cache).

    A table is uploaded once with an asynchronous host-to-device copy from pinned memory.
    The pinned buffer must outlive that copy, so an evicted entry's buffer is kept until the
    copy is known to be done (queried without blocking).
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._retiring: list[_Entry] = []
        self.uploads = 0  # how many tables were sent: tests check the steady state sends none

    def table_for(self, rows: list[list], layout, inputs: tuple):
        """(device table, total element count) for arrays[role][param] laid out as rows.

        The key: `layout` (naming the first rows) and the pointers of the last
        len(inputs) rows, the gradients, which are new arrays every step.
        """
        key = (layout,) + tuple(a.data.ptr for row in rows[-len(inputs) :] for a in row)
        entry = self._entries.get(key)
        cupy = backend.cupy_module()
        stream = cupy.cuda.get_current_stream()
        sizes = [a.size for a in rows[0]]
        if entry is None:
            entry = self._upload(key, sizes, rows, stream)
        else:
            self._entries.move_to_end(key)
            if entry.stream != stream.ptr and entry.event is not None:
                stream.wait_event(entry.event)  # a device-side wait: the host does not block
        return entry.device, int(sum(sizes))

    def _upload(self, key, sizes, rows, stream) -> _Entry:
        import cupyx

        cupy = backend.cupy_module()
        n = len(sizes)
        host = cupyx.empty_pinned(n + 1 + n * len(rows), dtype=np.uint64)
        host[0] = 0
        host[1 : n + 1] = np.cumsum(sizes, dtype=np.uint64)
        host[n + 1 :] = [a.data.ptr for row in rows for a in row]
        entry = _Entry()
        entry.host = host
        entry.device = cupy.empty(host.shape, dtype=np.uint64)
        entry.stream = stream.ptr
        # A raw asynchronous copy: CuPy's ndarray.set() refuses to run under stream capture,
        # but a pinned-memory copy is legal there and never makes the host wait.
        cupy.cuda.runtime.memcpyAsync(
            entry.device.data.ptr,
            host.ctypes.data,
            host.nbytes,
            cupy.cuda.runtime.memcpyHostToDevice,
            stream.ptr,
        )
        capturing = stream.is_capturing()
        entry.event = None if capturing else stream.record()
        self.uploads += 1
        self._entries[key] = entry
        if len(self._entries) > self.max_entries:
            self._retiring.append(self._entries.popitem(last=False)[1])
        if not capturing:
            # Keep a retired pinned buffer while its copy may still be pending; a buffer
            # uploaded during a capture has no real event and is kept for good.
            self._retiring = [e for e in self._retiring if e.event is None or not e.event.done]
        return entry
