"""Device memory that lives outside CuPy's pools, and writes that finish before returning.

Memory written outside a CUDA graph and read inside it (an optimizer's captured scalars, its
pointer tables, cuBLAS's workspace) must not come from a graph's private pool: the graph may
hand the same block to one of its own temporaries, which would overwrite what was written.
"""

from __future__ import annotations

import numpy as np

from .. import backend


def unpooled_array(shape, dtype):
    """A device array in memory of its own (cudaMalloc), outside every CuPy memory pool.

    For memory written outside a graph and read inside it (captured scalars, a cuBLAS workspace):
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
