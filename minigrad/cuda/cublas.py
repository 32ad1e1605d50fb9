"""A capturable GPU matrix product: cuBLAS through a handle minigrad owns.

Why not cupy.matmul? CuPy refuses every cuBLAS call while a stream is being captured into a
CUDA graph (its setStream raises NotImplementedError), so a training step that multiplies
matrices could never become a graph. cuBLAS itself can be captured when two rules hold:

1. it must not allocate memory during the capture: we give each stream its own preset
   workspace (cublasSetWorkspace), allocated once, outside any capture;
2. the stream is set on every call that changes it (cublasSetStream, which also resets the
   workspace, so the workspace is set again right after).

We call the library CuPy already loaded, through ctypes, with our own handle: the same code
runs eagerly and under capture, so a graph replays exactly the bits of an eager step.

Row-major arrays, column-major cuBLAS. A row-major (m, n) matrix is, byte for byte, the
column-major (n, m) matrix C^T. So C = A @ B is computed as C^T = B^T @ A^T, which needs no
copy at all: each operand is passed as "itself" (N) or "transposed" (T), whichever matches
its strides. A transposed view (x.T) is just the other flag; only a view that is neither
row- nor column-contiguous is copied first.

    (..., m, k) @ (..., k, n) -> (..., m, n)

Batches go to one strided batched GEMM (cublasGemmStridedBatchedEx): an operand that is the
same for every batch gets stride 0; one whose batch dimensions broadcast otherwise is
materialized. float32 and float64 compute in their own precision (no TF32 unless
`allow_tf32(True)`), float16 stores float16 and accumulates in float32. Other dtypes fall back
to cupy.matmul (not capturable).

    >>> import cupy
    >>> a, b = cupy.ones((2, 3), cupy.float32), cupy.ones((3, 4), cupy.float32)
    >>> matmul(a, b)[0, 0]
    array(3., dtype=float32)
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

from .. import backend
from .memory import unpooled_array

# cuBLAS / CUDA enums (cublas_api.h, library_types.h)
_OP_N, _OP_T = 0, 1
_CUDA_R_16F, _CUDA_R_32F, _CUDA_R_64F = 2, 0, 1
_COMPUTE_32F, _COMPUTE_32F_FAST_TF32, _COMPUTE_64F = 68, 77, 70
_GEMM_DEFAULT = -1
WORKSPACE_BYTES = 32 * 1024 * 1024  # cuBLAS's recommendation for Hopper

# dtype -> (cuda data type, compute type, ctypes type of alpha and beta)
_TYPES = {
    np.dtype(np.float16): (_CUDA_R_16F, _COMPUTE_32F, ctypes.c_float),
    np.dtype(np.float32): (_CUDA_R_32F, _COMPUTE_32F, ctypes.c_float),
    np.dtype(np.float64): (_CUDA_R_64F, _COMPUTE_64F, ctypes.c_double),
}
_tf32 = False


def allow_tf32(enabled: bool) -> None:
    """Let float32 products use TF32 tensor cores (about 10 bits of mantissa): off by default."""
    global _tf32
    _tf32 = bool(enabled)


# ---------------------------------------------------------------- the library and the handle
_lib = None


def _library():
    """libcublas as CuPy loaded it (the same file, so the same version), through ctypes."""
    global _lib
    if _lib is not None:
        return _lib
    backend.cupy_module().cuda.device.get_cublas_handle()  # makes CuPy load libcublas
    path = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            name = line.rsplit(None, 1)[-1]
            if "/libcublas.so" in name:
                path = name
                break
    lib = ctypes.CDLL(path or "libcublas.so")
    p, i, ll, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong, ctypes.c_size_t
    signatures = {
        "cublasCreate_v2": [ctypes.POINTER(p)],
        "cublasSetStream_v2": [p, p],
        "cublasSetWorkspace_v2": [p, p, sz],
        "cublasGemmStridedBatchedEx": [
            p, i, i, i, i, i, p,  # handle, transa, transb, m, n, k, alpha
            p, i, i, ll,  # A, Atype, lda, strideA
            p, i, i, ll,  # B, Btype, ldb, strideB
            p,  # beta
            p, i, i, ll,  # C, Ctype, ldc, strideC
            i, i, i,  # batchCount, computeType, algo
        ],
    }  # fmt: skip
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = ctypes.c_int
    _lib = lib
    return lib


class CublasError(RuntimeError):
    """A cuBLAS call returned an error status."""


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasError(f"{what} failed with cuBLAS status {status}")


class _Handle:
    """Our cuBLAS handle on one device, with one workspace per stream."""

    def __init__(self):
        self.lib = _library()
        self.ptr = ctypes.c_void_p()
        _check(self.lib.cublasCreate_v2(ctypes.byref(self.ptr)), "cublasCreate")
        self.workspaces: dict[int, object] = {}
        self.stream = None  # the stream last set
        self.one = {t: t(1.0) for t in (ctypes.c_float, ctypes.c_double)}
        self.zero = {t: t(0.0) for t in (ctypes.c_float, ctypes.c_double)}

    def use_stream(self, stream) -> None:
        """Point the handle at `stream` and at that stream's own workspace."""
        if stream.ptr == self.stream:
            return
        workspace = self.workspaces.get(stream.ptr)
        if workspace is None:
            if stream.is_capturing():
                raise RuntimeError(
                    "a matrix product ran for the first time on a stream while it was being "
                    "captured, so cuBLAS has no workspace for it yet: run the step once "
                    "eagerly on that stream first (minigrad.cuda.graph does this for you)"
                )
            # Memory of its own, outside CuPy's pools: a graph keeps pointing at it.
            workspace = unpooled_array((WORKSPACE_BYTES,), np.uint8).data
            self.workspaces[stream.ptr] = workspace
        _check(self.lib.cublasSetStream_v2(self.ptr, stream.ptr), "cublasSetStream")
        # cublasSetStream resets the workspace to cuBLAS's own pool: set ours again.
        _check(
            self.lib.cublasSetWorkspace_v2(self.ptr, workspace.ptr, WORKSPACE_BYTES),
            "cublasSetWorkspace",
        )
        self.stream = stream.ptr


_handles: dict[int, _Handle] = {}


def _handle() -> _Handle:
    cupy = backend.cupy_module()
    device = cupy.cuda.runtime.getDevice()
    handle = _handles.get(device)
    if handle is None:
        handle = _handles[device] = _Handle()
    handle.use_stream(cupy.cuda.get_current_stream())
    return handle


# ---------------------------------------------------------------- operands
def _layout(x):
    """(op, ld) such that op(the column-major matrix at x.data.ptr, ld) is x^T; None if no flag
    fits (a view neither row- nor column-contiguous).

    x is a 2-D row-major view (rows, cols). Row-contiguous: its bytes *are* x^T in column-major
    order (N). Column-contiguous (e.g. a .T view): its bytes are x in column-major order, so
    cuBLAS is told to transpose it (T).
    """
    rows, cols = x.shape
    s0, s1 = (s // x.itemsize for s in x.strides)
    if (cols == 1 or s1 == 1) and (rows == 1 or s0 >= cols):
        return _OP_N, max(s0 if rows > 1 else cols, 1)
    if (rows == 1 or s0 == 1) and (cols == 1 or s1 >= rows):
        return _OP_T, max(s1 if cols > 1 else rows, 1)
    return None


def _operand(x, batch: tuple):
    """(3-D array (count, r, c), batch stride, op, ld) for x broadcast to `batch`.

    The same matrix for every batch gets stride 0; a batch that reshapes to one stride is a
    view; partial broadcasting, negative strides and layouts no flag fits are copied
    (C-contiguous). Every matrix of the batch shares the first one's layout.
    """
    cupy = backend.cupy_module()
    r, c = x.shape[-2:]
    if math.prod(x.shape[:-2]) == 1:
        x3, stride = x.reshape(1, r, c), 0
    else:
        if tuple(x.shape[:-2]) != batch:
            x = cupy.broadcast_to(x, batch + (r, c))
        x3 = x.reshape(-1, r, c)
        stride = x3.strides[0] // x3.itemsize
    layout = _layout(x3[0])
    if layout is None or stride < 0 or (stride == 0 and x3.shape[0] > 1):
        x3 = cupy.ascontiguousarray(x3)
        stride = r * c if x3.shape[0] > 1 else 0
        layout = _layout(x3[0])
    return x3, stride, *layout


# ---------------------------------------------------------------- the product
def matmul(a, b):
    """a @ b for CuPy arrays, with numpy.matmul's rules (1-D operands, broadcast batches)."""
    cupy = backend.cupy_module()
    if a.dtype != b.dtype or a.dtype not in _TYPES or a.ndim == 0 or b.ndim == 0:
        return cupy.matmul(a, b)  # mixed or unsupported dtypes: CuPy's (not capturable)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    (m, k), (k2, n) = a2.shape[-2:], b2.shape[-2:]
    if k != k2:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not match (inner dimensions "
            f"{k} and {k2} differ)"
        )
    batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    out = cupy.empty(batch + (m, n), dtype=a.dtype)
    if out.size:
        if k == 0:
            out.fill(0)
        else:
            _gemm(a2, b2, out, batch, m, n, k)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _gemm(a, b, out, batch, m, n, k) -> None:
    """out (batch..., m, n), C-contiguous <- a @ b, as out^T = b^T @ a^T in column-major."""
    a3, stride_a, op_a, ld_a = _operand(a, batch)
    b3, stride_b, op_b, ld_b = _operand(b, batch)
    data_type, compute, scalar = _TYPES[np.dtype(out.dtype)]
    if _tf32 and out.dtype == np.float32:
        compute = _COMPUTE_32F_FAST_TF32
    handle = _handle()
    status = handle.lib.cublasGemmStridedBatchedEx(
        handle.ptr, op_b, op_a, n, m, k,
        ctypes.byref(handle.one[scalar]),
        b3.data.ptr, data_type, ld_b, stride_b,
        a3.data.ptr, data_type, ld_a, stride_a,
        ctypes.byref(handle.zero[scalar]),
        out.data.ptr, data_type, n, m * n,
        max(math.prod(batch), 1), compute, _GEMM_DEFAULT,
    )  # fmt: skip
    _check(status, "cublasGemmStridedBatchedEx")
