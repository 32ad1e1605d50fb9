"""The one dtype rule of the layers: an input meets parameters of its own dtype.

A float64 batch fed to a float32 model would otherwise compute silently in float64 (twice the
memory and time, and results that differ from the float32 run); PyTorch refuses it too.
"""

from __future__ import annotations


def check_same_dtype(fn: str, input, **params) -> None:
    """Raise a TypeError naming both dtypes when a parameter's dtype differs from the input's."""
    for name, param in params.items():
        if param is not None and param.dtype != input.dtype:
            raise TypeError(
                f"{fn}: the input is {input.dtype} but the {name} is {param.dtype}; convert "
                f"the input, e.g. x.astype('{param.dtype}'), or the model to the input's dtype"
            )
