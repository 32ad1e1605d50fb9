"""02 - Linear regression, first by hand and then with nn.Linear and an optimizer.

The data: N points on a line with noise, y = 3 x - 2 + noise. The model: y_hat = w x + b.
The loss is the mean squared error

    L(w, b) = mean((w x + b - y)^2),   dL/dw = mean(2 (y_hat - y) x),  dL/db = mean(2 (y_hat - y))

Gradient descent repeats: compute L, get its gradients with backward(), step downhill:

    w <- w - lr * dL/dw,   b <- b - lr * dL/db

Part 1 does exactly that with two tensors. Part 2 does the same with the pieces a real model
uses: nn.Linear holds w and b, F.mse_loss computes L, and optim.SGD (with momentum) applies
the update. Both land next to the least-squares solution, which is printed for comparison.

    python examples/02_linear_regression.py
"""

from __future__ import annotations

import argparse

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F


def make_data(n: int):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(n, 1)).astype(np.float32)
    y = (3 * x - 2 + 0.3 * rng.standard_normal((n, 1))).astype(np.float32)
    return x, y


def by_hand(x, y, steps: int, lr: float = 0.1):
    print("1. By hand: two tensors, backward(), and w.data -= lr * grad")
    X, Y = mg.tensor(x), mg.tensor(y)
    w = mg.tensor([[0.0]], requires_grad=True)
    b = mg.tensor([0.0], requires_grad=True)
    for step in range(steps + 1):
        loss = ((X @ w + b - Y) ** 2).mean()
        grads = loss.backward()
        # Update the arrays in place; the tensors (and their ids) stay the same.
        w.data -= lr * grads[w]
        b.data -= lr * grads[b]
        if step % max(1, steps // 5) == 0:
            print(
                f"   step {step:3d}  loss {loss.item():.4f}  w {w.item():+.3f}  b {b.item():+.3f}"
            )
    return w.item(), b.item()


def with_optimizer(x, y, steps: int):
    print("2. With nn.Linear, F.mse_loss and optim.SGD(momentum=0.9)")
    mg.manual_seed(0)
    model = nn.Linear(1, 1)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    X, Y = mg.tensor(x), mg.tensor(y)
    for step in range(steps + 1):
        loss = F.mse_loss(model(X), Y)
        opt.step(loss.backward())  # takes the gradients of its parameters out of the store
        if step % max(1, steps // 5) == 0:
            w, b = model.weight.item(), model.bias.item()
            print(f"   step {step:3d}  loss {loss.item():.4f}  w {w:+.3f}  b {b:+.3f}")
    return model.weight.item(), model.bias.item()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a few steps, for the tests")
    args = parser.parse_args(argv)
    steps = 10 if args.quick else args.steps

    x, y = make_data(200)
    w1, b1 = by_hand(x, y, steps)
    w2, b2 = with_optimizer(x, y, steps)
    # Least squares: solve [x 1] [w b]^T = y directly (what gradient descent approaches).
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    (w_ls, b_ls), *_ = np.linalg.lstsq(design, y[:, 0].astype(np.float64), rcond=None)
    print(f"\nby hand: w {w1:+.3f} b {b1:+.3f} | SGD: w {w2:+.3f} b {b2:+.3f} | "
          f"least squares: w {w_ls:+.3f} b {b_ls:+.3f} | truth: w +3 b -2")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
