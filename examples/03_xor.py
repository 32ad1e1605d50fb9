"""03 - XOR: the smallest problem a straight line cannot solve, and a tiny MLP that can.

    x1 x2 | x1 XOR x2
     0  0 |  0
     0  1 |  1
     1  0 |  1
     1  1 |  0

No single line separates the 1s from the 0s, so a linear model (logit = w . x + b) is stuck
at 50-75% correct. One hidden layer with a nonlinearity bends the space enough:

    x (4, 2) -> Linear(2, 8) -> Tanh -> Linear(8, 1) -> logit (4, 1)
    loss = binary_cross_entropy_with_logits(logit, target)     p = sigmoid(logit)

The loss takes the logit, not the probability: log(sigmoid(z)) computed in one piece is
exact even when sigmoid(z) rounds to 0 or 1 in float32.

    python examples/03_xor.py
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
T = np.array([[0], [1], [1], [0]], dtype=np.float32)


def train(model, steps: int, lr: float):
    opt = optim.Adam(model.parameters(), lr=lr)
    x, t = mg.tensor(X), mg.tensor(T)
    for step in range(steps + 1):
        loss = F.binary_cross_entropy_with_logits(model(x), t)
        opt.step(loss.backward())
        if step % max(1, steps // 4) == 0:
            print(f"   step {step:4d}  loss {loss.item():.4f}")
    with mg.no_grad():
        return F.sigmoid(model(x)).numpy()[:, 0]


def report(probs) -> None:
    for (a, b), target, p in zip(X.astype(int), T[:, 0].astype(int), probs):
        mark = "ok" if (p > 0.5) == bool(target) else "WRONG"
        print(f"   {a} XOR {b} = {target}   model: p = {p:.3f}  {mark}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="fewer steps, for the tests")
    args = parser.parse_args(argv)
    steps = 100 if args.quick else args.steps
    mg.manual_seed(0)

    print("1. A linear model (no hidden layer) cannot get all four right:")
    report(train(nn.Linear(2, 1), steps, lr=0.1))

    print("\n2. One hidden layer of 8 tanh units:")
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    print("   " + repr(model).replace("\n", "\n   "))
    report(train(model, steps, lr=0.05))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
