"""01 - Autograd basics: tensors, the graph they record, and gradients as values.

A minigrad Tensor is an array (NumPy on the CPU, CuPy on the GPU) that remembers how it was
made. Each op on tensors that require gradients records its inputs and a small backward
rule, so an expression builds a graph:

    x = 2, y = 3
    z = x * y + x.exp()       z = 6 + e^2

`z.backward()` walks that graph from z back to the leaves, applying the chain rule one op
at a time, and *returns* the gradients in a GradientStore (minigrad has no `.grad` field):

    dz/dx = y + e^x = 3 + e^2,      dz/dy = x = 2

Run it:  python examples/01_autograd_basics.py
It prints the gradients, checks them against the formulas above and against finite
differences, and prints the graph as Graphviz DOT text. Where Graphviz is installed (the
`dot` program: `apt install graphviz`, `brew install graphviz`) it also draws the graph to
runs/autograd/graph.png (--out changes the folder); without it, paste the text into any
online Graphviz viewer to see the picture.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.viz import to_dot


def draw(dot_text: str, out: Path) -> None:
    """Render the DOT text to a PNG with Graphviz's `dot`, where it is installed."""
    dot = shutil.which("dot")
    if dot is None:
        print("   (Graphviz's `dot` is not installed: the text above is the picture's source)")
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "graph.dot").write_text(dot_text)
    subprocess.run([dot, "-Tpng", str(out / "graph.dot"), "-o", str(out / "graph.png")], check=True)
    print(f"   drew the graph to {out / 'graph.png'}")


def scalar_example(out: Path) -> None:
    print("1. A scalar expression: z = x * y + exp(x) at x = 2, y = 3")
    x = mg.tensor(2.0, requires_grad=True, name="x")
    y = mg.tensor(3.0, requires_grad=True, name="y")
    z = x * y + x.exp()
    grads = z.backward()  # a GradientStore: parameter -> gradient array
    # float32 by default: about 7 significant digits.
    print(f"   z      = {z.item():.5f}   (6 + e^2 = {6 + math.exp(2):.5f})")
    print(f"   dz/dx  = {grads[x].item():.5f}   (y + e^x = {3 + math.exp(2):.5f})")
    print(f"   dz/dy  = {grads[y].item():.5f}    (x = 2)")

    # The same number from the definition of a derivative, without any graph:
    eps = 1e-3

    def f(xv):
        return xv * 3.0 + math.exp(xv)

    numeric = (f(2 + eps) - f(2 - eps)) / (2 * eps)
    print(f"   finite difference (f(x+h) - f(x-h)) / 2h = {numeric:.5f}")
    print("\n   The graph that backward() walked, as DOT text:")
    dot_text = to_dot(z)
    print("   " + dot_text.replace("\n", "\n   "))
    draw(dot_text, out)


def array_example() -> None:
    print("2. Arrays and broadcasting: loss = mean((X @ w + b - t)^2)")
    X = mg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # (3, 2) data: no gradient needed
    t = mg.tensor([1.0, 0.0, 1.0])  # (3,)
    w = mg.tensor([0.5, -0.5], requires_grad=True, name="w")  # (2,)
    b = mg.tensor(0.1, requires_grad=True, name="b")  # () broadcast over the 3 rows
    residual = X @ w + b - t  # (3,)
    loss = (residual * residual).mean()
    grads = loss.backward()
    # By hand: dloss/dw = 2/N X^T r,  dloss/db = 2/N sum(r)  (b was broadcast: its gradient sums)
    r = residual.numpy()
    print(f"   loss      = {loss.item():.4f}")
    print(f"   dloss/dw  = {grads[w]}   by hand {2 / 3 * X.numpy().T @ r}")
    print(f"   dloss/db  = {grads[b].item():.4f}       by hand {2 / 3 * r.sum():.4f}")
    print(f"   X needs no gradient, so the store has none for it: {X.id in grads}")


def reuse_example() -> None:
    print("3. A tensor used twice gets the sum of both paths: d(x * x)/dx = 2x")
    x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    grads = (x * x).sum().backward()
    print(f"   {grads[x]}  (2x = {2 * x.numpy()})")
    with mg.no_grad():  # evaluation: no graph is recorded, nothing to differentiate
        y = x * x
    print(f"   under no_grad() the result does not require gradients: {y.requires_grad}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(nothing to shorten here)")
    parser.add_argument("--out", default="runs/autograd", help="folder for graph.png")
    args = parser.parse_args(argv)
    np.set_printoptions(precision=4, suppress=True)
    scalar_example(Path(args.out))
    array_example()
    reuse_example()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
