"""Pooling: max and average over sliding windows, and adaptive average to a fixed output size.

A pooling window is a convolution's patch without the weights. The loops below go over the
KH*KW offsets of the window (4 for a 2x2 pool), each time reading one strided (N, C, OH, OW)
slice of the padded input (`_offset_slices` in conv.py), never over batch or pixels.
The padded input is stored batch-last, as conv2d's is (see "Memory layout" in conv.py): with
the batch innermost, each of those slices is made of long contiguous runs of N numbers.

    max_pool2d  y = max over the window;    dx: g goes to the (first) largest pixel of each window
    avg_pool2d  y = sum over the window / divisor;    dx: g / divisor to every pixel of it
    adaptive_avg_pool2d(x, (OH, OW))   windows chosen so that the output has that size:
                y = Ph @ x @ Pw.T   Ph (OH, H), Pw (OW, W) averaging matrices;  dx = Ph.T @ g @ Pw

Sizes follow PyTorch: OH = floor((H + 2p - d*(k-1) - 1) / s) + 1 (ceil with ceil_mode=True,
where a window must still start inside the input or its left padding).
"""

from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...tensor import Tensor
from ._common import _as_tensor
from .conv import _offset_slices, _pad, _pair


def _pool_size(fn, size, kernel, stride, pad, dilation, ceil_mode) -> int:
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        raise ValueError(
            f"{fn}: the window spans {span} pixels, the padded input has {size + 2 * pad}"
        )
    rounding = math.ceil if ceil_mode else math.floor
    out = rounding((size + 2 * pad - span) / stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window would start in the right padding: PyTorch drops it
    return out


def _pool_setup(fn, input, kernel_size, stride, padding, dilation, ceil_mode):
    x = input.data
    if x.ndim != 4:
        raise ValueError(f"{fn}: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    kernel = _pair(fn, "kernel_size", kernel_size, 1)
    # stride=None means stride = kernel_size, as in PyTorch
    stride = kernel if stride is None else _pair(fn, "stride", stride, 1)
    padding = _pair(fn, "padding", padding, 0)
    dilation = _pair(fn, "dilation", dilation, 1)
    for p, k, d in zip(padding, kernel, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(
                f"{fn}: padding {padding} must be at most half the window {kernel} (as in PyTorch)"
            )
    h, w = x.shape[2:]
    oh = _pool_size(fn, h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = _pool_size(fn, w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    # Extra pixels at the bottom/right that ceil_mode's last window reaches past the padding.
    extra_h = max(0, (oh - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - h - 2 * padding[0])
    extra_w = max(0, (ow - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - w - 2 * padding[1])
    pads = (padding[0], padding[0] + extra_h, padding[1], padding[1] + extra_w)
    return x, kernel, stride, padding, dilation, oh, ow, pads


def _unbatched(fn, input, *args, **kwargs):
    """Run a pool written for (N, C, H, W) on one (C, H, W) image."""
    out = fn(input.reshape((1,) + input.shape), *args, **kwargs)
    if isinstance(out, tuple):
        return tuple(o.reshape(o.shape[1:]) for o in out)
    return out.reshape(out.shape[1:])


def max_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """The largest value of each window.  (N, C, H, W) -> (N, C, OH, OW).

    Padding counts as -inf (it never wins). Backward: each output's gradient goes to the
    input pixel that won its window; on a tie, to the first in row-major order (as PyTorch).
    A window holding NaN outputs NaN (as PyTorch) and passes no gradient back.
    return_indices=True also returns each winner's flat index into its H*W input plane.
    """
    input = _as_tensor(input)
    if input.ndim == 3:
        return _unbatched(
            max_pool2d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
        )
    x, kernel, stride, padding, dilation, oh, ow, pads = _pool_setup(
        "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode
    )
    xp = backend.xp_of(x)
    xpad = _pad(x, *pads, value=-np.inf)
    offsets = [(u, v) for u in range(kernel[0]) for v in range(kernel[1])]

    def window_slice(k):  # the (N, C, OH, OW) pixels that kernel offset k reads
        return (slice(None), slice(None)) + _offset_slices(*offsets[k], oh, ow, stride, dilation)

    # copy(order="K") keeps the input's memory layout: after a conv that is batch-last (see
    # conv.py), where each of these passes runs over long contiguous runs of the batch.
    out = xp.copy(xpad[window_slice(0)], order="K")
    for k in range(1, len(offsets)):
        xp.maximum(out, xpad[window_slice(k)], out=out)  # NaN propagates, as in PyTorch

    def first_winners():
        """For each offset k, a mask of the windows where offset k holds the first maximum."""
        unclaimed = None  # windows whose winner is not found yet (None: all of them)
        for k in range(len(offsets)):
            wins = xpad[window_slice(k)] == out
            if unclaimed is None:
                unclaimed = ~wins
            else:
                wins &= unclaimed
                unclaimed ^= wins  # wins is a subset of unclaimed: this removes them
            yield k, wins

    # Windows that do not overlap: each pixel gets at most one gradient, so it can be
    # assigned rather than added; windows that also cover every pixel need no zeros first.
    disjoint = all(s >= d * (k - 1) + 1 for s, k, d in zip(stride, kernel, dilation))
    covering = disjoint and stride == kernel and xpad.shape[2:] == (oh * kernel[0], ow * kernel[1])

    def backward(g):
        # The winners are found again here rather than stored in forward: forward then does
        # only the maxima, and a pass of compares costs about what storing them would.
        # *_like keeps the padded input's memory layout (batch-last, see conv.py's "Memory
        # layout"), so that the gradient flowing on to a conv needs no reordering copy.
        dxpad = (xp.empty_like if covering else xp.zeros_like)(xpad, dtype=g.dtype)
        if g.strides != out.strides:  # e.g. from a Flatten: one reordering copy of g here
            g = _copy_in_layout_of(out, g)  # makes the four passes below run in one layout
        for k, wins in first_winners():
            if disjoint:
                xp.multiply(g, wins, out=dxpad[window_slice(k)])
            else:
                dxpad[window_slice(k)] += g * wins
        top, left = pads[0], pads[2]
        return (dxpad[:, :, top : top + x.shape[2], left : left + x.shape[3]],)

    result = Tensor._from_op(out, (input,), backward, "max_pool2d")
    if not return_indices:
        return result
    winner = xp.zeros(out.shape, dtype=np.int64)  # which offset won each window
    for k, wins in first_winners():
        winner[wins] = k
    # Row and column of each winner in the unpadded input -> flat index row * W + col.
    rows = (
        xp.arange(oh).reshape(oh, 1) * stride[0] - padding[0] + (winner // kernel[1]) * dilation[0]
    )
    cols = xp.arange(ow) * stride[1] - padding[1] + (winner % kernel[1]) * dilation[1]
    return result, Tensor((rows * x.shape[3] + cols).astype(np.int64))


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
) -> Tensor:
    """The mean of each window.  (N, C, H, W) -> (N, C, OH, OW).

    The divisor is the window's size, counting the zero padding when count_include_pad
    (PyTorch's default) and only real pixels otherwise; divisor_override replaces it.
    Backward: g / divisor added to every pixel of the window.
    """
    input = _as_tensor(input)
    if input.ndim == 3:
        return _unbatched(
            avg_pool2d,
            input,
            kernel_size,
            stride,
            padding,
            ceil_mode,
            count_include_pad,
            divisor_override,
        )
    x, kernel, stride, padding, dilation, oh, ow, pads = _pool_setup(
        "avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode
    )
    xp = backend.xp_of(x)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must not be 0")
        divisor = np.asarray(float(divisor_override))
    else:
        divisor = np.outer(
            _window_sizes(x.shape[2], oh, kernel[0], stride[0], padding[0], count_include_pad),
            _window_sizes(x.shape[3], ow, kernel[1], stride[1], padding[1], count_include_pad),
        )
    scale = backend.to_device((1.0 / divisor).astype(x.dtype), backend.device_of(x))
    xpad = _pad(x, *pads)
    offsets = [(u, v) for u in range(kernel[0]) for v in range(kernel[1])]
    windows = [xpad[(slice(None), slice(None)) + _offset_slices(u, v, oh, ow, stride, dilation)]
               for u, v in offsets]  # fmt: skip
    total = xp.copy(windows[0], order="K")  # in the input's memory layout, as in max_pool2d
    for window in windows[1:]:
        total += window
    out = total * scale

    def backward(g):
        share = g * scale
        dxpad = xp.zeros_like(xpad, dtype=g.dtype)  # in the input's memory layout
        for u, v in offsets:
            rs, cs = _offset_slices(u, v, oh, ow, stride, dilation)
            dxpad[:, :, rs, cs] += share
        top, left = pads[0], pads[2]
        return (dxpad[:, :, top : top + x.shape[2], left : left + x.shape[3]],)

    return Tensor._from_op(out, (input,), backward, "avg_pool2d")


def _copy_in_layout_of(like, a):
    """A copy of `a` stored in the same memory order as `like` (same shape and dtype)."""
    out = backend.xp_of(a).empty_like(like, dtype=a.dtype)
    out[...] = a
    return out


def _window_sizes(size, out, kernel, stride, pad, count_include_pad) -> np.ndarray:
    """How many pixels each of `out` windows along one axis divides by (PyTorch's rule)."""
    start = np.arange(out) * stride - pad
    end = np.minimum(start + kernel, size + pad)  # padding counts, ceil_mode's overhang not
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return (end - start).astype(np.float64)


def _adaptive_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size): row i averages input [floor(i*size/out), ceil((i+1)*size/out))."""
    rows = np.arange(out)[:, None]
    start, end = (rows * size) // out, -(-(rows + 1) * size // out)
    inside = (np.arange(size) >= start) & (np.arange(size) < end)
    return (inside / (end - start)).astype(dtype)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling whose windows are chosen to give output (OH, OW) for any input size.

    output_size: int or (OH, OW), None keeps that input size. (N, C, H, W) -> (N, C, OH, OW).
    Windows along H: [floor(i*H/OH), ceil((i+1)*H/OH)), as in PyTorch. Averaging over such
    a window is separable, so the pool is two small matrix products: y = Ph @ x @ Pw.T with
    Ph (OH, H) and Pw (OW, W) holding 1/window size; backward dx = Ph.T @ g @ Pw.
    output_size 1 is global average pooling.
    """
    input = _as_tensor(input)
    if input.ndim == 3:
        return _unbatched(adaptive_avg_pool2d, input, output_size)
    x = input.data
    if x.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: input must be (N, C, H, W), got {x.shape}")
    h, w = x.shape[2:]
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = (output_size[0] or h, output_size[1] or w)  # None keeps the input size
    oh, ow = _pair("adaptive_avg_pool2d", "output_size", output_size, 1)
    if oh == 1 and ow == 1:  # global average pooling: one mean
        out = x.mean(axis=(2, 3), keepdims=True)
        count = h * w
        return Tensor._from_op(
            out,
            (input,),
            lambda g: (backend.xp_of(g).broadcast_to(g / count, x.shape),),
            "adaptive_avg_pool2d",
        )
    device = backend.device_of(x)
    ph = backend.to_device(_adaptive_matrix(h, oh, x.dtype), device)
    pw = backend.to_device(_adaptive_matrix(w, ow, x.dtype), device)
    out = backend.matmul(ph, backend.matmul(x, pw.T))

    def backward(g):
        return (backend.matmul(ph.T, backend.matmul(g, pw)),)

    return Tensor._from_op(out, (input,), backward, "adaptive_avg_pool2d")
