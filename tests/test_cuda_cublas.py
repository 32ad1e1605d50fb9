"""minigrad's own cuBLAS matrix product (minigrad/cuda/cublas.py) against cupy.matmul.

Both layouts (row-contiguous and transposed views), padded and strided views that need a
copy, batches with and without broadcasting, 1-D operands, float16/32/64, and the product
recorded into a CUDA graph and replayed. Marked `gpu`.
"""

import numpy as np
import pytest

import minigrad as mg

pytestmark = pytest.mark.gpu

TOLERANCE = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-14}


def cublas():
    from minigrad.cuda import cublas

    return cublas


def random(shape, dtype, seed):
    cupy = mg.backend.cupy_module()
    rng = np.random.default_rng(seed)
    return cupy.asarray(rng.standard_normal(shape).astype(dtype))


def assert_agrees(ours, a, b):
    """Our product agrees with cupy.matmul, and with float64, to the dtype's rounding."""
    cupy = mg.backend.cupy_module()
    theirs = cupy.matmul(a, b)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    exact = np.matmul(a.get().astype(np.float64), b.get().astype(np.float64))
    k = a.shape[-1]
    scale = np.sqrt(k) * np.abs(a.get()).max(initial=1) * np.abs(b.get()).max(initial=1)
    tolerance = TOLERANCE[np.dtype(a.dtype).type] * scale
    np.testing.assert_allclose(ours.get().astype(np.float64), exact, rtol=0, atol=tolerance)
    np.testing.assert_allclose(
        ours.get().astype(np.float64), theirs.get().astype(np.float64), rtol=0, atol=tolerance
    )


LAYOUTS = {
    "plain": lambda x: x,
    "transposed": lambda x: x.T.copy().T,  # column-contiguous: the T flag, no copy
    "padded": lambda x: _padded(x),  # rows longer than the matrix: ld > cols
    "strided": lambda x: _strided(x),  # every other column: needs a copy
}


def _padded(x):
    cupy = mg.backend.cupy_module()
    wide = cupy.zeros((x.shape[0], x.shape[1] + 3), dtype=x.dtype)
    wide[:, : x.shape[1]] = x
    return wide[:, : x.shape[1]]


def _strided(x):
    cupy = mg.backend.cupy_module()
    wide = cupy.zeros((x.shape[0], 2 * x.shape[1]), dtype=x.dtype)
    wide[:, ::2] = x
    return wide[:, ::2]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("layout_a", list(LAYOUTS))
@pytest.mark.parametrize("layout_b", list(LAYOUTS))
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 5, 3), (64, 33, 17), (1, 40, 9), (9, 40, 1)])
def test_2d_products_agree_with_cupy(m, k, n, layout_a, layout_b, dtype):
    a = LAYOUTS[layout_a](random((m, k), dtype, 0))
    b = LAYOUTS[layout_b](random((k, n), dtype, 1))
    assert_agrees(cublas().matmul(a, b), a, b)


@pytest.mark.parametrize(
    "shape_a,shape_b",
    [
        ((4, 6, 5), (4, 5, 3)),  # one batch dimension
        ((2, 3, 6, 5), (2, 3, 5, 7)),  # two
        ((6, 5), (4, 5, 3)),  # the left matrix shared by every batch (stride 0)
        ((4, 6, 5), (5, 3)),  # the right one shared
        ((2, 1, 6, 5), (1, 3, 5, 7)),  # partial broadcasting: materialized
        ((1, 6, 5), (4, 5, 3)),
        ((5,), (5,)),  # vector . vector -> 0-d
        ((5,), (4, 5, 3)),  # vector @ batch
        ((4, 6, 5), (5,)),  # batch @ vector
        ((0, 6, 5), (0, 5, 3)),  # an empty batch
        ((6, 0), (0, 3)),  # k = 0: zeros
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_and_broadcast_products_agree_with_cupy(shape_a, shape_b, dtype):
    a, b = random(shape_a, dtype, 2), random(shape_b, dtype, 3)
    assert_agrees(cublas().matmul(a, b), a, b)


def test_transposed_and_permuted_batches():
    a = random((4, 5, 6), np.float32, 4).transpose(0, 2, 1)  # (4, 6, 5), each matrix a .T
    b = random((5, 4, 7), np.float32, 6).transpose(1, 0, 2)  # (4, 5, 7), batch not outermost
    assert_agrees(cublas().matmul(a, b), a, b)


def test_mismatched_inner_dimensions_are_refused():
    with pytest.raises(ValueError, match="inner dimensions"):
        cublas().matmul(random((3, 4), np.float32, 0), random((5, 2), np.float32, 1))


def test_backend_matmul_takes_this_path_on_the_gpu():
    a, b = random((8, 9), np.float32, 7), random((9, 10), np.float32, 8)
    np.testing.assert_array_equal(mg.backend.matmul(a, b).get(), cublas().matmul(a, b).get())


def test_mixed_dtypes_fall_back_to_cupy():
    a, b = random((3, 4), np.float32, 0), random((4, 2), np.float64, 1)
    assert cublas().matmul(a, b).dtype == np.float64


def test_tf32_is_off_unless_asked_for():
    """1 + 2**-20 needs 20 mantissa bits: TF32 (10 bits) rounds it to 1, and the sum of 256
    of them would be exactly 256; float32 arithmetic keeps part of the excess."""
    cupy = mg.backend.cupy_module()
    a = cupy.full((1, 256), 1 + 2**-20, dtype=cupy.float32)
    b = cupy.ones((256, 1), dtype=cupy.float32)
    assert float(cublas().matmul(a, b)[0, 0]) > 256.0


@pytest.mark.parametrize("batched", [False, True])
def test_products_are_captured_into_a_graph_and_replay_the_eager_bits(batched):
    cupy = mg.backend.cupy_module()
    shape_a, shape_b = ((3, 16, 24), (3, 24, 8)) if batched else ((16, 24), (24, 8))
    a = cupy.empty(shape_a, dtype=np.float32)
    b = cupy.empty(shape_b, dtype=np.float32)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        a[...] = random(shape_a, np.float32, 9)
        b[...] = random(shape_b, np.float32, 10)
        cublas().matmul(a, b.swapaxes(-1, -2).copy().swapaxes(-1, -2))  # warm up this stream
        stream.synchronize()
        stream.begin_capture()
        try:
            out = cublas().matmul(a, b) * 2  # a product and an elementwise kernel
        finally:
            graph = stream.end_capture()
        for seed in (11, 12):
            a[...] = random(shape_a, np.float32, seed)
            graph.launch()
            stream.synchronize()
            expected = cublas().matmul(a, b) * 2
            np.testing.assert_array_equal(out.get(), expected.get())
