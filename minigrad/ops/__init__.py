"""Every differentiable op: its forward on arrays and its backward rule, side by side.

One module per family, each small enough to read in one sitting:

    _helpers.py     the two op shapes (_unary, _binary), broadcasting, dims, type promotion
    elementwise.py  + - * / ** exp log sin tanh relu ... maximum clamp where, comparisons
    reductions.py   sum mean var std prod cumsum max min argmax logsumexp softmax
    shape.py        reshape view permute transpose squeeze flatten expand repeat flip
                    split chunk cat stack pad
    indexing.py     a[index], gather, masked_fill
    linalg.py       matmul (through backend.matmul, the one seam for matrix products)
    conversions.py  .to() .float() .double() .clone()
    inplace.py      += -= *= /= add_ sub_ mul_ div_ zero_ fill_ copy_

Importing this package installs the ops as Tensor methods and operators (`a + b`, `a @ b`,
`a.sum()`), which is why `minigrad/__init__.py` imports it. `from minigrad import ops;
ops.exp(x)` reaches every op by name.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import inplace
from ._helpers import _check_devices, _normalize_axis, unbroadcast
from .conversions import clone, to, to_double, to_float, to_half, to_long
from .elementwise import (
    abs,
    add,
    astype,
    clamp,
    clip,
    cos,
    div,
    equal,
    exp,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    maximum,
    minimum,
    mul,
    neg,
    not_equal,
    pow,
    relu,
    sigmoid,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from .indexing import gather, getitem, masked_fill
from .linalg import check_same_dtype, matmul
from .reductions import (
    MaxResult,
    MinResult,
    amax,
    amin,
    argmax,
    argmin,
    cumsum,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    prod,
    softmax,
    std,
    sum,
    var,
)
from .shape import (
    _T,
    _mT,
    _transpose_method,
    cat,
    chunk,
    concatenate,
    expand,
    flatten,
    flip,
    pad,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
    view,
)


def _install_tensor_methods() -> None:
    methods = {
        "__add__": add,
        "__radd__": lambda self, other: add(other, self),
        "__sub__": sub,
        "__rsub__": lambda self, other: sub(other, self),
        "__mul__": mul,
        "__rmul__": lambda self, other: mul(other, self),
        "__truediv__": div,
        "__rtruediv__": lambda self, other: div(other, self),
        "__pow__": pow,
        "__rpow__": lambda self, other: pow(other, self),
        "__matmul__": matmul,
        "__rmatmul__": lambda self, other: matmul(other, self),
        "__neg__": neg,
        "__getitem__": getitem,
        "__lt__": less,
        "__le__": less_equal,
        "__gt__": greater,
        "__ge__": greater_equal,
        "__eq__": equal,
        "__ne__": not_equal,
        "__iadd__": inplace.add_,  # x += y: the same tensor, changed
        "__isub__": inplace.sub_,  # x -= y: the same tensor, changed
        "__imul__": inplace.mul_,  # x *= y: the same tensor, changed
        "__itruediv__": inplace.div_,
        "add_": inplace.add_,
        "sub_": inplace.sub_,
        "mul_": inplace.mul_,
        "div_": inplace.div_,
        "zero_": inplace.zero_,
        "fill_": inplace.fill_,
        "copy_": inplace.copy_,
        "add": add,
        "sub": sub,
        "mul": mul,
        "div": div,
        "pow": pow,
        "exp": exp,
        "log": log,
        "sqrt": sqrt,
        "sin": sin,
        "cos": cos,
        "tanh": tanh,
        "sigmoid": sigmoid,
        "relu": relu,
        "abs": abs,
        "astype": astype,
        "clip": clip,
        "clamp": clamp,
        "maximum": maximum,
        "minimum": minimum,
        "sum": sum,
        "mean": mean,
        "var": var,
        "std": std,
        "prod": prod,
        "cumsum": cumsum,
        "max": max,
        "min": min,
        "amax": amax,
        "amin": amin,
        "argmax": argmax,
        "argmin": argmin,
        "logsumexp": logsumexp,
        "softmax": softmax,
        "log_softmax": log_softmax,
        "reshape": reshape,
        "view": view,
        "unsqueeze": unsqueeze,
        "squeeze": squeeze,
        "flatten": flatten,
        "transpose": _transpose_method,
        "permute": permute,
        "expand": expand,
        "repeat": repeat,
        "flip": flip,
        "split": split,
        "chunk": chunk,
        "gather": gather,
        "masked_fill": masked_fill,
        "matmul": matmul,
        "clone": clone,
        "to": to,
        "float": to_float,
        "double": to_double,
        "half": to_half,
        "long": to_long,
        "T": property(_T),
        "mT": property(_mT),
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.__hash__ = object.__hash__  # defining __eq__ must not make tensors unhashable


_install_tensor_methods()
