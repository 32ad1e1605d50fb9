"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay.

The algorithm is PyTorch's (torch.optim.SGD, _single_tensor_sgd), term by term:

    g <- -g                              if maximize
    g <- g + weight_decay * p            if weight_decay != 0
    if momentum != 0:
        b <- g                           on the parameter's first step
        b <- momentum * b + (1 - dampening) * g      afterwards
        g <- g + momentum * b            if nesterov, else  g <- b
    p <- p - lr * g
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from .. import backend
from ..checks import check_flag, check_number
from ._kernels import UpdateRule
from .optimizer import Optimizer, _count

# ---------------------------------------------------------------- the optimizer


class SGD(Optimizer):
    """SGD(params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0, maximize=False)

    State: "momentum_buffer" per parameter when momentum != 0 (none otherwise).

        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        >>> opt.step(loss.backward())
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        # Hyperparameters are checked before super().__init__ takes ownership of the params.
        hyper = _check_sgd(lr, momentum, dampening, nesterov, weight_decay, maximize)
        self.momentum, self.dampening, self.nesterov, self.weight_decay, self.maximize = hyper
        self.state_names = ("momentum_buffer",) if self.momentum != 0 else ()
        super().__init__(params, lr)

    # ------------------------------------------------------------ state: saving and loading
    def _hyperparameters(self) -> dict[str, float]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": float(self.nesterov),
            "weight_decay": self.weight_decay,
            "maximize": float(self.maximize),
        }

    def _check_hyperparameters(self, scalars: Mapping) -> dict:
        lr, momentum, dampening, nesterov, wd, maximize = (
            scalars[k]
            for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay", "maximize")
        )
        hyper = _check_sgd(lr, momentum, dampening, nesterov, wd, maximize)
        if (hyper[0] != 0) != (self.momentum != 0):
            raise ValueError(
                f"the state was saved with momentum={hyper[0]:g}, this optimizer has "
                f"momentum={self.momentum:g}: one keeps a momentum buffer and the other does "
                "not; make the optimizer with a momentum that is zero exactly when the saved "
                "one is"
            )
        names = ("momentum", "dampening", "nesterov", "weight_decay", "maximize")
        return {"_lr": float(lr), **dict(zip(names, hyper))}

    # ------------------------------------------------------------ step: the NumPy update
    def _update_options(self, i: int) -> dict:
        return dict(
            lr=self.lr,
            momentum=self.momentum,
            dampening=self.dampening,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
            maximize=self.maximize,
            first_step=self.steps[i] == 1,  # steps[i] already counts this step
        )

    def _update_block(self, arrays: dict, scratch, options: dict) -> None:
        # One block of one parameter (the base class cuts the arrays, see Optimizer._update).
        buf = arrays.get("momentum_buffer")  # none without momentum
        sgd_update_numpy(arrays["p"], arrays["g"], buf, scratch, **options)

    # ------------------------------------------------------------ its GPU twin
    def _update_rule(self) -> UpdateRule:
        """SGD_UPDATE_CUDA as a kernel for this optimizer's options (compiled once each)."""
        return _sgd_rule(self.momentum != 0, self.nesterov, self.maximize)

    def _kernel_scalars(self, step: int) -> dict[str, float]:
        """The kernel's arguments for parameters at step `step` (1 on their first update)."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "one_minus_dampening": 1 - self.dampening,
            "weight_decay": self.weight_decay,
            "first_step": 1.0 if step == 1 else 0.0,
        }

    def __repr__(self) -> str:
        return (
            f"SGD({_count(self.params)}, lr={self.lr:g}, momentum={self.momentum:g}, "
            f"dampening={self.dampening:g}, nesterov={self.nesterov}, "
            f"weight_decay={self.weight_decay:g}, maximize={self.maximize})"
        )


# ---------------------------------------------------------------- the update rule, in NumPy
# One parameter, as 1-D views of equal length (p, g, buf, scratch); every operation writes in
# place (out=), so a step allocates nothing, and the same function can run on any slice.
#
#   g <- -g                                       (maximize)
#   g <- g + weight_decay * p
#   buf <- g  (first step)  |  buf <- momentum * buf + (1 - dampening) * g
#   g <- g + momentum * buf  (nesterov)  |  g <- buf
#   p <- p - lr * g


def sgd_update_numpy(
    p,
    g,
    buf,
    scratch,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool,
    first_step: bool,
) -> None:
    """One SGD step for one parameter, in place. `g` and `scratch` are overwritten.

    p, g, scratch (and buf, unused and may be None when momentum == 0): 1-D arrays of one
    length and dtype (NumPy, or CuPy: the module is taken from `p`).
    The dtype is the compute type: float16 parameters arrive widened to float32 (see
    Optimizer._update), exactly as the CUDA twin below computes them.
    """
    xp = backend.xp_of(p)
    if maximize:
        xp.negative(g, out=g)
    if weight_decay != 0:
        xp.multiply(p, weight_decay, out=scratch)
        xp.add(g, scratch, out=g)
    if momentum != 0:
        if first_step:
            xp.copyto(buf, g)
        else:
            xp.multiply(buf, momentum, out=buf)
            xp.multiply(g, 1 - dampening, out=scratch)
            xp.add(buf, scratch, out=buf)
        if nesterov:
            xp.multiply(buf, momentum, out=scratch)
            xp.add(g, scratch, out=g)
        else:
            g = buf
    xp.multiply(g, lr, out=scratch)
    xp.subtract(p, scratch, out=p)


# ---------------------------------------------------------------- its GPU twin, in CUDA C
# The same rule in CUDA C, for one element: the body of the GPU kernels (see _kernels.py).
# Scalars are host floats in float64 (one_minus_dampening = 1 - dampening), so each rounding
# step is the one the NumPy code above makes; C is the compute type (float or double).
#
#   g <- -g                                       (maximize)
#   g <- g + weight_decay * p
#   buf <- g  (first step)  |  buf <- momentum * buf + (1 - dampening) * g
#   g <- g + momentum * buf  (nesterov)  |  g <- buf
#   p <- p - lr * g
SGD_UPDATE_CUDA = r"""
template <typename T, typename C>
__device__ __forceinline__ void sgd_update(
    T& p_, const T g_, T* buf_,
    const C lr, const C momentum, const C one_minus_dampening, const C weight_decay,
    const bool first_step, const bool use_momentum, const bool nesterov, const bool maximize)
{
    C g = maximize ? -(C)g_ : (C)g_;
    const C p = (C)p_;
    if (weight_decay != 0) g = g + p * weight_decay;
    if (use_momentum) {
        const C buf = first_step ? g : (C)*buf_ * momentum + g * one_minus_dampening;
        *buf_ = (T)buf;
        g = nesterov ? g + buf * momentum : buf;
    }
    p_ = (T)(p - g * lr);
}
"""


@functools.cache
def _sgd_rule(use_momentum: bool, nesterov: bool, maximize: bool) -> UpdateRule:
    """The UpdateRule of one option set; cached, so a step builds no strings."""
    flags = ", ".join("true" if f else "false" for f in (use_momentum, nesterov, maximize))
    name = "sgd_update" + ("_momentum" if use_momentum else "")
    name += ("_nesterov" if nesterov else "") + ("_maximize" if maximize else "")
    return UpdateRule(
        name=name,
        source=SGD_UPDATE_CUDA,
        inputs=("g",),
        outputs=("p",) + (("momentum_buffer",) if use_momentum else ()),
        scalars=("lr", "momentum", "one_minus_dampening", "weight_decay", "first_step"),
        call=(
            "sgd_update<T, C>(p, g, "
            + ("&momentum_buffer" if use_momentum else "(T*)0")
            + ", (C)lr, (C)momentum, (C)one_minus_dampening, (C)weight_decay, "
            f"first_step != 0, {flags})"
        ),
    )


def _check_sgd(lr, momentum, dampening, nesterov, weight_decay, maximize) -> tuple:
    check_number("lr", lr, low=0.0)
    momentum = check_number("momentum", momentum, low=0.0)
    dampening = check_number("dampening", dampening)
    nesterov = check_flag("nesterov", nesterov)
    weight_decay = check_number("weight_decay", weight_decay, low=0.0)
    maximize = check_flag("maximize", maximize)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"Nesterov momentum needs momentum > 0 and dampening = 0, got momentum={momentum:g} "
            f"and dampening={dampening:g}"
        )
    return momentum, dampening, nesterov, weight_decay, maximize
