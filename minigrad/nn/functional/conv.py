"""conv2d: a 2-D convolution as im2col + one matrix product (the way DeZero and Caffe teach it).

A convolution slides a (C, KH, KW) filter over the input and takes a dot product at every
position. Written as loops that is six nested loops; written as linear algebra it is one
matrix product, once every input patch is laid out as a row ("image to columns"):

    input   x      (N, C, H, W)
    columns cols   (N*OH*OW, C*KH*KW)   one row per output pixel: the patch it sees, flattened
    weight  W      (OC, C, KH, KW)  ->  (OC, C*KH*KW)
    product cols @ W.T              ->  (N*OH*OW, OC)
    output  y      (N, OC, OH, OW)      the rows put back as pixels, OC as the channel axis

(The code keeps the columns transposed, (C*KH*KW, N*OH*OW), and computes W @ cols.T: the same
product, laid out so that the copies run long; see "Memory layout" below.)

with OH = (H + pad_top + pad_bottom - dilation*(KH-1) - 1) // stride + 1 (OW the same way).
The columns are first a *strided view* of the padded input (no copy: each patch is the same
memory seen through different strides), copied once when reshaped for the product.

Backward, with gmat = g as (N*OH*OW, OC):
    dW    = gmat.T @ cols                   (OC, C*KH*KW) -> (OC, C, KH, KW)
    db    = gmat summed over rows
    dcols = gmat @ W                        (N*OH*OW, C*KH*KW)
    dx    = col2im(dcols): each patch row added back onto the pixels it was read from (a pixel
            in several patches gets the sum), one strided add per kernel offset (KH*KW adds).

Memory layout: batch last. The arrays are (N, C, H, W) to the reader, but conv2d stores its
padded input, its columns and its output with the batch as the innermost axis of memory,
(C, H, W, N), and hands out (N, C, H, W) views of them (a transpose is free: only strides
change). Why: the images of a small CNN are small (28 pixels wide, 10 after two layers), and
an im2col or col2im copy along an image row moves only OW numbers before it jumps to the
next row. With the batch innermost, the N numbers at one pixel sit side by side, so every
copy moves runs of OW*N numbers (640 instead of 10 for LeNet's second conv at batch 64):
measured 3-6x faster copies. The product W @ cols is the same. (This is cuda-convnet's
CHWN layout; with N = 1 it is the same memory as (N, C, H, W).) ReLU and pooling keep
whatever layout they are given, so the layers after a conv run batch-last too.

    >>> x = mg.randn(8, 1, 28, 28)
    >>> w = mg.randn(6, 1, 5, 5, requires_grad=True)
    >>> F.conv2d(x, w, padding=2).shape
    (8, 6, 28, 28)
"""

from __future__ import annotations

import numbers

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor
from ._dtypes import check_same_dtype


def _pair(fn: str, name: str, value, low: int) -> tuple[int, int]:
    """An int or a pair of ints as (height, width), each >= low."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low for v in pair
    ):
        raise ValueError(f"{fn}: {name} must be an int >= {low} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _output_size(fn: str, size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """(size + pad - dilation*(kernel-1) - 1) // stride + 1, where `pad` counts both sides."""
    span = dilation * (kernel - 1) + 1
    if size + pad < span:
        raise ValueError(
            f"{fn}: the kernel spans {span} pixels but the padded input has only {size + pad}; "
            "use a smaller kernel or dilation, or more padding"
        )
    return (size + pad - span) // stride + 1


def _pad(x, top: int, bottom: int, left: int, right: int, value: float = 0.0):
    """x (N, C, H, W) with `value` added around the two image axes, stored batch-last (C, H, W, N)
    in memory (see "Memory layout" above). No copy when there is no padding and x is already
    stored that way (the output of a conv, a ReLU or a pool of it); otherwise one copy, which
    also reorders the batch to the back."""
    if not (top or bottom or left or right) and _is_batch_last(x):
        return x
    xp = backend.xp_of(x)
    n, c, h, w = x.shape
    out = xp.full((c, top + h + bottom, left + w + right, n), value, dtype=x.dtype)
    out = out.transpose(3, 0, 1, 2)  # a view (N, C, H, W) of the batch-last memory
    out[:, :, top : top + h, left : left + w] = x
    return out


def _is_batch_last(x) -> bool:
    """Whether x (N, C, H, W) is stored contiguously as (C, H, W, N)."""
    return x.transpose(1, 2, 3, 0).flags.c_contiguous


def _patches(xpad, kh: int, kw: int, oh: int, ow: int, stride, dilation):
    """A view (N, C, OH, OW, KH, KW) of the padded input: [n, c, i, j, u, v] is the pixel at
    row i*stride + u*dilation, column j*stride + v*dilation. No copy: only strides change."""
    xp = backend.xp_of(xpad)
    sn, sc, sh, sw = xpad.strides
    n, c = xpad.shape[:2]
    return xp.lib.stride_tricks.as_strided(
        xpad,
        shape=(n, c, oh, ow, kh, kw),
        strides=(sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
    )


def _offset_slices(u: int, v: int, oh: int, ow: int, stride, dilation):
    """The (rows, cols) slices of the padded input that kernel offset (u, v) reads: a strided
    slice of OH x OW pixels. Loops over the KH*KW offsets use these, never over pixels."""
    top, left = u * dilation[0], v * dilation[1]
    return (
        slice(top, top + stride[0] * (oh - 1) + 1, stride[0]),
        slice(left, left + stride[1] * (ow - 1) + 1, stride[1]),
    )


def _padding(fn: str, padding, kh: int, kw: int, stride, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, "valid" or "same" (as PyTorch)."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{fn}: padding='same' needs stride 1 (as in PyTorch), got {stride}")
        # The total padding d*(k-1) split with the extra pixel at the end, as PyTorch does.
        th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    if isinstance(padding, str):
        raise ValueError(
            f"{fn}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}"
        )
    ph, pw = _pair(fn, "padding", padding, 0)
    return ph, ph, pw, pw


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) as im2col + one matrix product.

    input (N, C, H, W) or (C, H, W); weight (OC, C // groups, KH, KW); bias (OC,) or None;
    stride, dilation: int or (h, w); padding: int, (h, w), "valid" or "same" (zeros).
    Returns (N, OC, OH, OW). With groups > 1 the channels split into `groups` independent
    convolutions (one batched product); groups == C == OC is a depthwise convolution.
    """
    input = _as_tensor(input)
    if input.ndim == 3:  # one image: PyTorch's unbatched form
        out = conv2d(
            input.reshape((1,) + input.shape), weight, bias, stride, padding, dilation, groups
        )
        return out.reshape(out.shape[1:])
    x, w = input.data, weight.data
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(
            f"conv2d: input must be (N, C, H, W) and weight (OC, C/groups, KH, KW), got "
            f"{x.shape} and {w.shape}"
        )
    if backend.device_of(x) != backend.device_of(w):
        raise backend.DeviceError(
            f"conv2d: the input is on {backend.device_of(x)} but the weight is on "
            f"{backend.device_of(w)}; move the batch or the model (model.to(...))"
        )
    check_same_dtype("conv2d", x, weight=w, bias=None if bias is None else bias.data)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    if not isinstance(groups, numbers.Integral) or groups < 1 or c % groups or oc % groups:
        raise ValueError(
            f"conv2d: groups={groups!r} must be a positive int dividing both the input channels "
            f"({c}) and the output channels ({oc})"
        )
    if cg * groups != c:
        raise ValueError(
            f"conv2d: the input has {c} channels, the weight of shape {w.shape} expects "
            f"{cg * groups} (weight.shape[1] * groups)"
        )
    stride = _pair("conv2d", "stride", stride, 1)
    dilation = _pair("conv2d", "dilation", dilation, 1)
    top, bottom, left, right = _padding("conv2d", padding, kh, kw, stride, dilation)
    oh = _output_size("conv2d", h, kh, stride[0], top + bottom, dilation[0])
    ow = _output_size("conv2d", wd, kw, stride[1], left + right, dilation[1])
    xp = backend.xp_of(x)

    # im2col. The columns matrix is stored transposed, as cols[k, m] (C*KH*KW, N*OH*OW), and its
    # pixel index m runs (OH, OW, N) with the batch fastest (see "Memory layout" above): the
    # copy out of the strided view then writes runs of OW*N numbers, and W @ cols comes out
    # as (OC, OH, OW, N), the output already batch-last. The same numbers, laid out faster.
    xpad = _pad(x, top, bottom, left, right)  # (N, C, Hp, Wp), stored as (C, Hp, Wp, N)
    patches = _patches(xpad, kh, kw, oh, ow, stride, dilation)  # (N, C, OH, OW, KH, KW)
    rows, k = n * oh * ow, cg * kh * kw
    cols = patches.transpose(1, 4, 5, 2, 3, 0).reshape(c * kh * kw, rows)  # the one copy
    wmat = w.reshape(oc, k)
    if groups == 1:
        out = backend.matmul(wmat, cols)  # (OC, OH*OW*N): the one product
    else:  # one product per group, batched: (G, OC/G, k) @ (G, k, rows)
        cols_g = cols.reshape(groups, k, rows)
        w_g = wmat.reshape(groups, oc // groups, k)
        out = backend.matmul(w_g, cols_g).reshape(oc, rows)
    if bias is not None:
        out += bias.data[:, None]
    # Columns back to pixels: (OC, OH, OW, N) seen as (N, OC, OH, OW), a view, not a copy.
    y = out.reshape(oc, oh, ow, n).transpose(3, 0, 1, 2)
    parents = (input, weight) if bias is None else (input, weight, bias)

    def backward(g):
        gmat = g.transpose(1, 2, 3, 0).reshape(oc, rows)  # free when g is laid out as y
        if groups == 1:
            dw = backend.matmul(gmat, cols.T) if weight.requires_grad else None
            dcols = backend.matmul(wmat.T, gmat) if input.requires_grad else None
        else:
            g_g = gmat.reshape(groups, oc // groups, rows)
            dw = backend.matmul(g_g, cols_g.transpose(0, 2, 1)) if weight.requires_grad else None
            dcols = None
            if input.requires_grad:
                dcols = backend.matmul(w_g.transpose(0, 2, 1), g_g).reshape(c * kh * kw, rows)
        dx = None
        if dcols is not None:
            # col2im: add each kernel offset's (C, OH, OW, N) block back where it was read,
            # into a batch-last buffer (runs of OW*N numbers again), seen as (N, C, H, W).
            dcols6 = dcols.reshape(c, kh, kw, oh, ow, n)
            hp, wp = h + top + bottom, wd + left + right
            dxpad = xp.zeros((c, hp, wp, n), dtype=x.dtype)
            for u in range(kh):
                for v in range(kw):
                    rs, cs = _offset_slices(u, v, oh, ow, stride, dilation)
                    dxpad[:, rs, cs] += dcols6[:, u, v]
            dx = dxpad[:, top : top + h, left : left + wd].transpose(3, 0, 1, 2)
        grads = [dx, None if dw is None else dw.reshape(w.shape)]
        if bias is not None:
            # db: each channel's sum over its N*OH*OW pixels, as gmat @ ones, one BLAS call
            # (NumPy's row sums: 42 us on LeNet's (6, 50176) gradient; the product: 17 us).
            ones = xp.ones(rows, dtype=g.dtype)
            grads.append(backend.matmul(gmat, ones) if bias.requires_grad else None)
        return grads

    return Tensor._from_op(y, parents, backward, "conv2d")
