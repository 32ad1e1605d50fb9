"""Adam and AdamW: per-element step sizes from running averages of the gradient and its square.

The algorithm is PyTorch's (torch.optim.Adam / AdamW, _single_tensor_adam), term by term,
with t the parameter's own step count (1 on its first update):

    g <- -g                                   if maximize
    p <- p * (1 - lr * weight_decay)          AdamW (decoupled weight decay)
    g <- g + weight_decay * p                 Adam (L2 penalty in the gradient)
    m <- beta1 * m + (1 - beta1) * g          first moment
    v <- beta2 * v + (1 - beta2) * g * g      second moment
    v_max <- max(v_max, v); use v_max for v   if amsgrad
    p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
         with bc1 = 1 - beta1**t, bc2 = 1 - beta2**t  (bias corrections)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

from .. import backend
from ..checks import check_array, check_flag, check_number
from ._kernels import UpdateRule
from .optimizer import Optimizer, _count, compute_dtype, describe_param

# ---------------------------------------------------------------- the optimizers


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    maximize=False)

    Weight decay is the L2 penalty added to the gradient (see AdamW for the decoupled form).
    State: "exp_avg" (m) and "exp_avg_sq" (v) per parameter, plus "max_exp_avg_sq" with amsgrad.

        >>> opt = Adam(model.parameters(), lr=1e-3)
        >>> opt.step(loss.backward())
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        # Hyperparameters are checked before super().__init__ takes ownership of the params.
        self.betas, self.eps, self.weight_decay, self.amsgrad, self.maximize = _check_adam(
            lr, betas, eps, weight_decay, amsgrad, maximize
        )
        names = ("exp_avg", "exp_avg_sq")
        self.state_names = names + ("max_exp_avg_sq",) if self.amsgrad else names
        super().__init__(params, lr)

    def _check_params(self, params: list) -> None:
        for i, p in enumerate(params):
            _check_eps_fits(self.eps, p, i)

    # ------------------------------------------------------------ state: saving and loading
    def _hyperparameters(self) -> dict[str, float]:
        return {
            "lr": self.lr,
            "beta1": self.betas[0],
            "beta2": self.betas[1],
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": float(self.amsgrad),
            "maximize": float(self.maximize),
        }

    def _check_hyperparameters(self, scalars: Mapping) -> dict:
        betas, eps, wd, amsgrad, maximize = _check_adam(
            scalars["lr"],
            (scalars["beta1"], scalars["beta2"]),
            scalars["eps"],
            scalars["weight_decay"],
            scalars["amsgrad"],
            scalars["maximize"],
        )
        for i, p in enumerate(self.params):
            _check_eps_fits(eps, p, i)
        if amsgrad != self.amsgrad:
            raise ValueError(
                f"the state was saved with amsgrad={amsgrad}, this optimizer has "
                f"amsgrad={self.amsgrad}: make the optimizer with amsgrad={amsgrad} to load it"
            )
        return {
            "_lr": float(scalars["lr"]),
            "betas": betas,
            "eps": eps,
            "weight_decay": wd,
            "maximize": maximize,
        }

    def _check_buffer(self, name: str, key: str, host) -> None:
        # v is an average of squares: a negative one would make sqrt(v) NaN on the next step.
        if name in ("exp_avg_sq", "max_exp_avg_sq"):
            check_array(f"buffer {key!r}", host, low=0.0)

    # ------------------------------------------------------------ step: the NumPy update
    def _update_options(self, i: int) -> dict:
        return dict(
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            eps=self.eps,
            weight_decay=self.weight_decay,
            decoupled=self.decoupled_weight_decay,
            amsgrad=self.amsgrad,
            maximize=self.maximize,
            step=self.steps[i],
        )

    def _update_block(self, arrays: dict, scratch, options: dict) -> None:
        # One block of one parameter (the base class cuts the arrays, see Optimizer._update).
        m, v, vmax = arrays["exp_avg"], arrays["exp_avg_sq"], arrays.get("max_exp_avg_sq")
        adam_update_numpy(arrays["p"], arrays["g"], m, v, vmax, scratch, **options)

    # ------------------------------------------------------------ its GPU twin
    def _update_rule(self) -> UpdateRule:
        """ADAM_UPDATE_CUDA as a kernel for this optimizer's options (compiled once each)."""
        name = type(self).__name__.lower()
        return _adam_rule(name, self.decoupled_weight_decay, self.amsgrad, self.maximize)

    def _kernel_scalars(self, step: int) -> dict[str, float]:
        """The kernel's arguments for parameters at step t: the NumPy code's host floats."""
        beta1, beta2 = self.betas
        return {
            "decay": 1 - self.lr * self.weight_decay,
            "weight_decay": self.weight_decay,
            "beta1": beta1,
            "one_minus_beta1": 1 - beta1,
            "beta2": beta2,
            "one_minus_beta2": 1 - beta2,
            "step_size": self.lr / (1 - beta1**step),
            "bc2_sqrt": math.sqrt(1 - beta2**step),
            "eps": self.eps,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({_count(self.params)}, lr={self.lr:g}, "
            f"betas=({self.betas[0]:g}, {self.betas[1]:g}), eps={self.eps:g}, "
            f"weight_decay={self.weight_decay:g}, amsgrad={self.amsgrad}, "
            f"maximize={self.maximize})"
        )


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, p <- p * (1 - lr * weight_decay) each step,
    instead of adding weight_decay * p to the gradient (Loshchilov & Hutter). Default
    weight_decay=1e-2, as in PyTorch.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


# ---------------------------------------------------------------- the update rule, in NumPy
# One parameter, as 1-D views of equal length; every operation writes in place (out=) into
# the parameter, its moments, the gradient (ours after the drain) or one scratch array, so
# a step allocates nothing, and the same function can run on any slice of the arrays.
#
#   g <- -g                                            (maximize)
#   p <- p * (1 - lr * wd)     (AdamW)   |   g <- g + wd * p     (Adam)
#   m <- beta1 * m + (1 - beta1) * g
#   v <- beta2 * v + (1 - beta2) * g * g
#   vmax <- max(vmax, v)                               (amsgrad; vmax replaces v below)
#   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)


def adam_update_numpy(
    p,
    g,
    m,
    v,
    vmax,
    scratch,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
    maximize: bool,
    step: int,
) -> None:
    """One Adam/AdamW step for one parameter, in place. `g` and `scratch` are overwritten.

    p, g, m, v, scratch (and vmax when amsgrad, else None): 1-D arrays of one length and
    dtype (NumPy, or CuPy: the module is taken from `p`). `step` is t, counting this step.
    The dtype is the compute type: float16 parameters arrive widened to float32 (see
    Optimizer._update), exactly as the CUDA twin below computes them.
    """
    xp = backend.xp_of(p)
    if maximize:
        xp.negative(g, out=g)
    if weight_decay != 0:
        if decoupled:
            xp.multiply(p, 1 - lr * weight_decay, out=p)
        else:
            xp.multiply(p, weight_decay, out=scratch)
            xp.add(g, scratch, out=g)

    xp.multiply(m, beta1, out=m)
    xp.multiply(g, 1 - beta1, out=scratch)
    xp.add(m, scratch, out=m)

    xp.multiply(v, beta2, out=v)
    xp.multiply(g, 1 - beta2, out=scratch)
    xp.multiply(scratch, g, out=scratch)
    xp.add(v, scratch, out=v)

    if amsgrad:
        xp.maximum(vmax, v, out=vmax)
        v = vmax

    # The bias corrections are host floats: t is a host int, so they cost nothing per element.
    step_size = lr / (1 - beta1**step)
    bc2_sqrt = math.sqrt(1 - beta2**step)
    xp.sqrt(v, out=scratch)  # scratch <- sqrt(v) / sqrt(bc2) + eps, the denominator
    xp.divide(scratch, bc2_sqrt, out=scratch)
    xp.add(scratch, eps, out=scratch)
    xp.multiply(m, step_size, out=g)  # g is free now: g <- (lr / bc1) * m / denominator
    xp.divide(g, scratch, out=g)
    xp.subtract(p, g, out=p)


# ---------------------------------------------------------------- its GPU twin, in CUDA C
# The same rule in CUDA C, for one element: the body of the GPU kernels (see _kernels.py).
# Scalars arrive precomputed on the host in float64 (decay = 1 - lr * wd, step_size =
# lr / bc1, bc2_sqrt = sqrt(bc2), one_minus_beta1 = 1 - beta1, ...) so that every rounding
# step is the one the NumPy code above makes. C is the compute type: float for float16 and
# float32 parameters, double for float64.
#
#   g <- -g                                            (maximize)
#   p <- p * (1 - lr * wd)     (AdamW)   |   g <- g + wd * p     (Adam)
#   m <- beta1 * m + (1 - beta1) * g
#   v <- beta2 * v + (1 - beta2) * g * g
#   vmax <- max(vmax, v)                               (amsgrad; vmax replaces v below)
#   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
ADAM_UPDATE_CUDA = r"""
template <typename T, typename C>
__device__ __forceinline__ void adam_update(
    T& p_, const T g_, T& m_, T& v_, T* vmax_,
    const C decay, const C weight_decay, const C beta1, const C one_minus_beta1,
    const C beta2, const C one_minus_beta2, const C step_size, const C bc2_sqrt, const C eps,
    const bool decoupled, const bool amsgrad, const bool maximize)
{
    C g = maximize ? -(C)g_ : (C)g_;
    C p = (C)p_;
    if (weight_decay != 0) {
        if (decoupled) p = p * decay;
        else g = g + p * weight_decay;
    }
    const C m = (C)m_ * beta1 + g * one_minus_beta1;
    C v = (C)v_ * beta2 + (g * one_minus_beta2) * g;
    m_ = (T)m;
    v_ = (T)v;
    if (amsgrad) {
        const C vmax = (C)*vmax_;
        v = (vmax > v || vmax != vmax) ? vmax : v;  // max that keeps a NaN, as np.maximum
        *vmax_ = (T)v;
    }
    const C denominator = sqrt(v) / bc2_sqrt + eps;
    p_ = (T)(p - (m * step_size) / denominator);
}
"""


@functools.cache
def _adam_rule(name: str, decoupled: bool, amsgrad: bool, maximize: bool) -> UpdateRule:
    """The UpdateRule of one option set; cached, so a step builds no strings."""
    flags = ", ".join(_cuda_bool(f) for f in (decoupled, amsgrad, maximize))
    state_names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
    return UpdateRule(
        name=name + "_update" + ("_amsgrad" if amsgrad else "") + ("_maximize" if maximize else ""),
        source=ADAM_UPDATE_CUDA,
        inputs=("g",),
        outputs=("p",) + state_names,
        scalars=_ADAM_SCALARS,
        call=(
            "adam_update<T, C>(p, g, exp_avg, exp_avg_sq, "
            + ("&max_exp_avg_sq" if amsgrad else "(T*)0")
            + ", (C)decay, (C)weight_decay, (C)beta1, (C)one_minus_beta1, (C)beta2, "
            f"(C)one_minus_beta2, (C)step_size, (C)bc2_sqrt, (C)eps, {flags})"
        ),
    )


_ADAM_SCALARS = (
    "decay",
    "weight_decay",
    "beta1",
    "one_minus_beta1",
    "beta2",
    "one_minus_beta2",
    "step_size",
    "bc2_sqrt",
    "eps",
)


def _cuda_bool(flag: bool) -> str:
    return "true" if flag else "false"


def _check_eps_fits(eps: float, p, i: int) -> None:
    """eps must not round to 0 in the type the update computes in (float32 for float16 and
    float32 parameters, see compute_dtype): 1e-8 is fine for float16, 1e-50 is not."""
    compute = compute_dtype(p.dtype)
    if eps > 0 and compute.type(eps) == 0:
        raise ValueError(
            f"eps={eps:g} underflows to 0 in {compute}, the type {p.dtype} parameters are "
            f"computed in ({describe_param(p, i)}): the denominator sqrt(v) + eps could then "
            f"be 0; use a larger eps, e.g. 1e-8"
        )


def _check_adam(lr, betas, eps, weight_decay, amsgrad, maximize) -> tuple:
    check_number("lr", lr, low=0.0)
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    beta1 = check_number("beta1 (betas[0])", beta1, low=0.0, high=1.0, high_open=True)
    beta2 = check_number("beta2 (betas[1])", beta2, low=0.0, high=1.0, high_open=True)
    eps = check_number("eps", eps, low=0.0)
    weight_decay = check_number("weight_decay", weight_decay, low=0.0)
    amsgrad = check_flag("amsgrad", amsgrad)
    maximize = check_flag("maximize", maximize)
    return (beta1, beta2), eps, weight_decay, amsgrad, maximize
