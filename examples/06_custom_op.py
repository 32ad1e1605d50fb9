"""06 - Write your own differentiable op, and check its backward with gradcheck.

An op in minigrad is two functions side by side: the forward on arrays, and the backward
rule that turns the gradient of the output, g = dL/dout, into the gradient of each input.
`Tensor._from_op(out, parents, backward, name)` records both in the graph.

The op here is softplus, a smooth ReLU:

    softplus(x) = log(1 + e^x)                        forward
                = max(x, 0) + log(1 + e^-|x|)         the same, but e^x never overflows
    d softplus / dx = e^x / (1 + e^x) = sigmoid(x)    so backward: dL/dx = g * sigmoid(x)

A backward rule is easy to get subtly wrong, so every op is checked against finite
differences: gradcheck nudges each input element by +-eps and compares
(f(x + eps) - f(x - eps)) / 2 eps with what backward() returned. It runs in float64, where
that difference is accurate to ~1e-10 (in float32 it would be noise).

    python examples/06_custom_op.py
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from minigrad import backend, nn
from minigrad.gradcheck import GradcheckError, gradcheck


def softplus(x: mg.Tensor) -> mg.Tensor:
    """log(1 + exp(x)), elementwise, any shape, stable for large |x|."""
    data = x.data
    xp = backend.xp_of(data)  # numpy or cupy: the same code runs on both devices
    out = xp.maximum(data, 0) + xp.log1p(xp.exp(-xp.abs(data)))

    def backward(g):
        # One gradient per parent, in the order of `parents` below.
        sigmoid = 0.5 * xp.tanh(0.5 * data) + 0.5  # = 1 / (1 + e^-x), without overflow
        return (g * sigmoid,)

    return mg.Tensor._from_op(out, (x,), backward, "softplus")


def softplus_wrong(x: mg.Tensor) -> mg.Tensor:
    """The same forward with a classic mistake in backward: e^x instead of sigmoid(x)."""
    data = x.data
    xp = backend.xp_of(data)
    out = xp.maximum(data, 0) + xp.log1p(xp.exp(-xp.abs(data)))
    return mg.Tensor._from_op(out, (x,), lambda g: (g * xp.exp(data),), "softplus_wrong")


class Softplus(nn.Module):
    """The op as a layer, usable in nn.Sequential like ReLU."""

    def forward(self, x):
        return softplus(x)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(nothing to shorten here)")
    parser.parse_args(argv)
    np.set_printoptions(precision=4, suppress=True)

    x = mg.tensor([[-30.0, -1.0, 0.0], [0.5, 2.0, 40.0]], dtype="float64", requires_grad=True)
    print("1. Forward, stable at both ends (float64):")
    print(f"   softplus({x.numpy().ravel()}) =\n   {softplus(x).numpy().ravel()}")
    with np.errstate(over="ignore"):  # the overflow is the point being shown
        naive = np.log1p(np.exp(np.float32(100)))
    print(f"   the naive log(1 + exp(x)) overflows in float32 at x = 100: {naive}")

    print("2. gradcheck of the correct backward:")
    print(f"   gradcheck(softplus, x) -> {gradcheck(softplus, [x])}")

    print("3. gradcheck catches the wrong one:")
    try:
        gradcheck(softplus_wrong, [x])
        print("   (not caught?!)")
        return 1
    except GradcheckError as exc:
        print(f"   GradcheckError: {exc}")

    print("4. The op as a layer in a model, checked end to end:")
    mg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 4, dtype=np.float64), Softplus(), nn.Linear(4, 1, dtype=np.float64)
    )
    inputs = mg.tensor(np.random.default_rng(0).standard_normal((5, 3)), dtype="float64")
    params = model.parameters()
    ok = gradcheck(lambda *ps: (model(inputs) ** 2).mean(), params)
    print(f"   gradcheck over all {len(params)} parameters of {len(model)} layers -> {ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
