"""gradcheck: test a backward rule against finite differences, the way to trust a new op.

The analytic gradient (what `backward()` computes) is compared with a numeric one from
central differences. For a scalar function f and one input element x_j:

    df/dx_j  ~=  (f(x + eps * e_j) - f(x - eps * e_j)) / (2 * eps)

where e_j is 1 at element j and 0 elsewhere. The error of this estimate has two parts:
truncation, about eps**2 * f''' / 6 (the Taylor terms the formula drops), and rounding,
about u * |f| / eps, with u the machine epsilon of the dtype. In float64 (u ~ 2.2e-16) and
eps = 1e-6 both are tiny (~1e-12 and ~1e-10). In float32 (u ~ 1.2e-7) the rounding part
alone is ~0.1: the numeric gradient would be noise. So the inputs must be float64.

    >>> from minigrad.gradcheck import gradcheck
    >>> x = mg.tensor([[0.5, -1.0], [2.0, 0.3]], dtype="float64", requires_grad=True)
    >>> gradcheck(lambda t: (t * t).tanh(), [x])
    True

Choose inputs away from kinks (relu and abs at 0, ties in max): there the function has no
derivative and the two sides of the difference disagree.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor, no_grad

# A fixed seed: the projection is "random" but the same on every run, so a failure repeats.
_PROJECTION_SEED = 1234


class GradcheckError(AssertionError):
    """The analytic gradient of an input element differs from its finite-difference estimate."""


def _project(out: Tensor, r: np.ndarray) -> float:
    """sum(out * r) in float64 on the host: the scalar whose gradient is checked."""
    return float(np.sum(backend.to_numpy(out.data).astype(np.float64) * r))


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """Check `fn`'s backward against central differences; True, or raise GradcheckError.

    fn: takes the inputs as positional arguments and returns a Tensor.
    inputs: a Tensor or a sequence of them (plain values are passed through). Every tensor
        with requires_grad=True is checked, element by element, and must be float64.
    For a non-scalar output the checked scalar is L = sum(out * r), with r a random but fixed
    array of out's shape: dL/dx = r^T dout/dx mixes every output element into every
    checked derivative, so a wrong gradient of any output element shows up.

    An element passes when |analytic - numeric| <= atol + rtol * |numeric|. Inputs are
    perturbed in place and always restored, on the GPU too (values go to the host there).
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    if eps <= 0:
        raise ValueError(f"gradcheck: eps must be positive, got {eps}")
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError(
            "gradcheck: no input has requires_grad=True, so there is nothing to check; "
            "create the inputs you want checked with requires_grad=True"
        )
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}, but finite differences need "
                f"float64: with eps={eps} the rounding error of f(x+eps)-f(x-eps) is about "
                "u*|f|/eps, ~0.1 in float32 (u~1e-7) and ~1e-10 in float64 (u~2e-16); "
                "create it with dtype='float64'"
            )

    out = fn(*inputs)
    if not isinstance(out, Tensor):
        hint = ""
        if hasattr(out, "values"):  # the (values, indices) pair of x.max(dim) or x.min(dim)
            hint = " (x.max(dim) gives (values, indices): return its .values)"
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}{hint}")
    if out.dtype != np.float64:
        raise ValueError(
            f"gradcheck: fn returned dtype {out.dtype}; the output must stay float64 for the "
            "finite differences to be accurate (does fn convert to float32 somewhere?)"
        )
    if out.size == 1:
        r = np.ones(out.shape)
    else:
        r = np.random.default_rng(_PROJECTION_SEED).standard_normal(out.shape)

    # Analytic: the vector-Jacobian product r^T dout/dx for every checked input.
    grads = out.backward(backend.to_device(r, out.device))

    for i in checked:
        x = inputs[i]
        analytic = grads.get(x)
        analytic = np.zeros(x.shape) if analytic is None else backend.to_numpy(analytic)
        if analytic.shape != x.shape:
            raise GradcheckError(
                f"gradcheck: the gradient of input {i} has shape {analytic.shape}, "
                f"but the input has shape {x.shape}"
            )
        numeric = np.empty(x.shape)
        data = x.data
        with no_grad():
            for index in np.ndindex(*x.shape):
                original = float(data[index])
                try:
                    data[index] = original + eps
                    f_plus = _project(fn(*inputs), r)
                    data[index] = original - eps
                    f_minus = _project(fn(*inputs), r)
                finally:
                    data[index] = original
                numeric[index] = (f_plus - f_minus) / (2 * eps)

        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            first = tuple(int(k) for k in np.argwhere(bad)[0])
            name = f" ({x.name!r})" if x.name else ""
            raise GradcheckError(
                f"gradcheck: input {i}{name}, element {first}: analytic gradient "
                f"{analytic[first]:.8g} but numeric {numeric[first]:.8g} "
                f"(difference {abs(analytic[first] - numeric[first]):.3g}, allowed "
                f"{atol + rtol * abs(numeric[first]):.3g}); {int(bad.sum())} of {bad.size} "
                "elements of this input disagree"
            )
    return True
