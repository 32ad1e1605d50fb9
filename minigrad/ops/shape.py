"""Shape ops: the same values, arranged differently (reshape, permute, expand, cat, pad...).

Their backward moves g back to where each input value came from: reshape it back, permute
it back, sum it over copies (expand, repeat), or cut it into the inputs' pieces (cat).
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._helpers import _check_devices, _input, _normalize_axis, _pick, _shape_args, _unary


def reshape(a, *shape) -> Tensor:
    """The same values in a new shape (-1 allowed once);  d/da = g reshaped back.

    `view` is the same op: minigrad has no strides to share, so view never needs contiguity.
    """
    shape = _shape_args(shape)
    return _unary(
        "reshape", a, lambda x, xp: x.reshape(shape), lambda g, x, out, xp: g.reshape(x.shape)
    )


view = reshape


def unsqueeze(a, dim: int) -> Tensor:
    """A new axis of length 1 at `dim` (-1: the end).  (2, 3).unsqueeze(1) -> (2, 1, 3)."""
    a = _input(a)
    (d,) = _normalize_axis(dim, a.ndim + 1) or (0,)
    return reshape(a, a.shape[:d] + (1,) + a.shape[d:])


def squeeze(a, dim=None) -> Tensor:
    """Axes of length 1 removed: all of them, or only those in `dim` (an int or a tuple).

    As in PyTorch, naming an axis whose length is not 1 leaves it (no error).
    """
    a = _input(a)
    dims = range(a.ndim) if dim is None else _normalize_axis(dim, a.ndim)
    drop = {d for d in dims if a.shape[d] == 1}
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if i not in drop))


def flatten(a, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Axes start_dim..end_dim merged into one.  (2, 3, 4).flatten(1) -> (2, 12);
    a 0-d tensor becomes shape (1,), as PyTorch."""
    a = _input(a)
    if a.ndim == 0:
        _normalize_axis((start_dim, end_dim), 0)
        return reshape(a, (1,))
    start, end = _normalize_axis(start_dim, a.ndim)[0], _normalize_axis(end_dim, a.ndim)[0]
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(a.shape[start : end + 1]))
    return reshape(a, a.shape[:start] + (merged,) + a.shape[end + 1 :])


def permute(a, *dims) -> Tensor:
    """The axes reordered: out.shape[i] = a.shape[dims[i]] (PyTorch's permute);
    d/da = g permuted back by the inverse order.

        >>> mg.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
    """
    a = _input(a)
    dims = _shape_args(dims)
    if len(dims) != a.ndim:
        raise ValueError(
            f"permute: a tensor with {a.ndim} dimensions needs {a.ndim} dims, got {dims}; "
            "to swap just two axes use transpose(dim0, dim1)"
        )
    # Negative dims made non-negative first: argsort of (0, -1, -2) is not the inverse.
    dims = _normalize_axis(dims, a.ndim) if dims else ()
    inverse = tuple(int(i) for i in np.argsort(dims))
    return _unary(
        "permute",
        a,
        lambda x, xp: xp.transpose(x, dims),
        lambda g, x, out, xp: xp.transpose(g, inverse),
    )


def transpose(a, dim0: int, dim1: int) -> Tensor:
    """Axes dim0 and dim1 swapped (PyTorch's meaning, not NumPy's); d/da = g swapped back.

    >>> mg.zeros(2, 3).transpose(0, 1).shape      # (3, 2); x.T and x.mT say the same
    """
    a = _input(a)
    if a.ndim == 0:  # a 0-d tensor has one "axis" to name (0 or -1), as in PyTorch
        _normalize_axis((dim0,), 0), _normalize_axis((dim1,), 0)
        return permute(a)
    d0, d1 = (_normalize_axis(d, a.ndim)[0] for d in (dim0, dim1))
    dims = list(range(a.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(a, dims)


def _transpose_method(self: Tensor, *dims) -> Tensor:
    if len(dims) != 2:
        raise TypeError(
            f"transpose takes two dims, as in PyTorch: x.transpose(dim0, dim1) swaps them "
            f"(got {dims}); to reorder every axis use x.permute(*dims)"
        )
    return transpose(self, *dims)


def _T(self: Tensor) -> Tensor:
    """x.T: the axes reversed (for a matrix, its transpose), as in PyTorch."""
    return permute(self, tuple(reversed(range(self.ndim))))


def _mT(self: Tensor) -> Tensor:
    """x.mT: the last two axes swapped (a batch of matrices, each transposed)."""
    if self.ndim < 2:
        raise ValueError(f"x.mT needs at least 2 dimensions, got a tensor of shape {self.shape}")
    return transpose(self, -2, -1)


def expand(a, *sizes) -> Tensor:
    """Axes of length 1 repeated to `sizes` without copying (-1 keeps an axis; new axes may
    be added in front).  (3, 1).expand(2, 3, 4) -> (2, 3, 4);  d/da = g summed over copies."""
    from ._helpers import unbroadcast

    a = _input(a)
    sizes = _shape_args(sizes)
    if len(sizes) < a.ndim:
        raise ValueError(f"expand: {sizes} has fewer dims than the tensor's shape {a.shape}")
    lead = len(sizes) - a.ndim
    shape = tuple((a.shape[i - lead] if n == -1 and i >= lead else n) for i, n in enumerate(sizes))
    if any(n < 0 for n in shape):
        raise ValueError(f"expand: -1 is only allowed for existing dims, got {sizes}")
    return _unary(
        "expand",
        a,
        lambda x, xp: xp.broadcast_to(x, shape),
        lambda g, x, out, xp: unbroadcast(g, x.shape),
    )


def repeat(a, *repeats) -> Tensor:
    """The tensor tiled `repeats[i]` times along each axis (PyTorch's repeat, NumPy's tile).

    (2, 3).repeat(2, 1, 2) -> (2, 2, 6). d/da = the sum of g over the tiles: g reshaped to
    (r0, n0, r1, n1, ...) and summed over the r axes.
    """
    a = _input(a)
    repeats = _shape_args(repeats)
    if len(repeats) < a.ndim:
        raise ValueError(f"repeat: give at least one count per dim ({a.ndim}), got {repeats}")
    shape = (1,) * (len(repeats) - a.ndim) + a.shape  # leading axes added, as PyTorch

    def backward(g, x, out, xp):
        tiles = [n for pair in zip(repeats, shape) for n in pair]
        summed = g.reshape(tiles).sum(axis=tuple(range(0, 2 * len(shape), 2)))
        return summed.reshape(x.shape)

    return _unary("repeat", a, lambda x, xp: xp.tile(x.reshape(shape), repeats), backward)


def flip(a, dims) -> Tensor:
    """The order of the elements reversed along `dims`;  d/da = g flipped back."""
    a = _input(a)
    axes = _normalize_axis(dims, a.ndim)
    return _unary("flip", a, lambda x, xp: xp.flip(x, axes), lambda g, x, out, xp: xp.flip(g, axes))


def split(a, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces along `dim`: of `split_size` each (the last may be shorter), or of the listed
    sizes. Each piece is a slice, so each gets its part of the gradient."""
    from .indexing import getitem

    a = _input(a)
    (d,) = _normalize_axis(dim, a.ndim) or (0,)
    length = a.shape[d] if a.ndim else 1
    if isinstance(split_size_or_sections, numbers.Integral):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [builtins.min(size, length - s) for s in range(0, length, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != length or builtins.min(sizes, default=0) < 0:
            raise ValueError(f"split: sizes {sizes} must add up to dim {dim}'s length {length}")
    starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    lead = (slice(None),) * d
    return tuple(getitem(a, lead + (slice(s, e),)) for s, e in zip(starts, starts[1:]))


def chunk(a, chunks: int, dim: int = 0) -> tuple:
    """`chunks` pieces along `dim`, each ceil(length / chunks) long (fewer if it runs out)."""
    a = _input(a)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    (d,) = _normalize_axis(dim, a.ndim) or (0,)
    length = a.shape[d] if a.ndim else 1
    return split(a, builtins.max(-(-length // chunks), 1), dim)


def concatenate(tensors, dim=None, *, axis=None) -> Tensor:
    """Join tensors along an existing dim (0 by default);  each input gets its slice of g.
    PyTorch's name is `cat`: mg.cat([a, b], dim=1)."""
    tensors = [_input(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate/cat: need at least one tensor")
    dim = _pick("dim (or axis)", dim, axis, 0)
    arrays = [t.data for t in tensors]
    _check_devices("concatenate", *arrays)
    (ax,) = _normalize_axis(dim, tensors[0].ndim)
    xp = backend.xp_of(arrays[0])
    out = xp.concatenate(arrays, axis=ax)
    boundaries = np.cumsum([x.shape[ax] for x in arrays])[:-1].tolist()

    def backward(g):
        return xp.split(g, boundaries, axis=ax)

    return Tensor._from_op(out, tuple(tensors), backward, "concatenate")


cat = concatenate


def stack(tensors, dim=None, *, axis=None) -> Tensor:
    """Join same-shaped tensors along a new dim (0 by default);  each input gets its slice."""
    tensors = [_input(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    dim = _pick("dim (or axis)", dim, axis, 0)
    arrays = [t.data for t in tensors]
    _check_devices("stack", *arrays)
    (ax,) = _normalize_axis(dim, tensors[0].ndim + 1)
    xp = backend.xp_of(arrays[0])
    out = xp.stack(arrays, axis=ax)

    def backward(g):
        return [xp.take(g, i, axis=ax) for i in range(len(tensors))]

    return Tensor._from_op(out, tuple(tensors), backward, "stack")


def pad(a, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding as PyTorch's F.pad: `pad` lists (before, after) pairs from the LAST
    dim backwards.  pad(x, (1, 2)) pads the last dim with 1 value before and 2 after;
    pad(x, (1, 1, 0, 3)) also pads the dim before it with 3 after. Negative amounts crop.

    d/da = g with the padding cut off.
    """
    a = _input(a)
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: needs (before, after) pairs for at most {a.ndim} dims, got {pad}")
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    # Negative amounts crop first; then np.pad adds the positive ones.
    crop = tuple(slice(-builtins.min(b, 0), n + builtins.min(e, 0) if e < 0 else None)
                 for (b, e), n in zip(widths, a.shape))  # fmt: skip
    grow = [(builtins.max(b, 0), builtins.max(e, 0)) for b, e in widths]
    inner = tuple(slice(b, b + n) for (b, _), n in zip(grow, a.data[crop].shape))

    def forward(x, xp):
        return xp.pad(x[crop], grow, mode="constant", constant_values=value)

    def backward(g, x, out, xp):
        grad = xp.zeros_like(x)
        grad[crop] = g[inner]
        return grad

    return _unary("pad", a, forward, backward)
