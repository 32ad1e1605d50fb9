"""The cases that bench_cpu.py measures, each one computation written three ways.

    minigrad  the library, used the way the README and the examples use it;
    torch     PyTorch on the CPU, written the way a PyTorch user would (None where PyTorch
              is not installed);
    numpy     the same computation by hand in plain NumPy: no graph, no checks, in-place
              updates where they are natural. No framework built on NumPy can beat it, so it
              is the floor that minigrad is measured against.

A case builder returns {contender: Contender}. `Contender.run()` is one timed call.
`Contender.before()`, where set, runs untimed before every call: the optimizer cases use it
to hand each step a fresh gradient, as backward() would, because an update may overwrite it.

All three start from the same numbers (weights, batches, gradients), so that they do the
same work; `result()`, where set, returns something to compare afterwards (an accuracy).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import minigrad as mg
from minigrad import data, nn, optim
from minigrad.nn import functional as F

MLP_SIZES = (784, 256, 256, 10)


@dataclass
class Contender:
    run: Callable[[], object]
    before: Callable[[], None] | None = None
    result: Callable[[], object] | None = None


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def linear_init(sizes, seed: int = 0) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] float32, uniform in +-1/sqrt(fan_in) as nn.Linear draws them."""
    r = rng(seed)
    arrays = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        arrays.append(r.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        arrays.append(r.uniform(-bound, bound, fan_out).astype(np.float32))
    return arrays


def minigrad_mlp(weights: list[np.ndarray], dropout: float = 0.0) -> nn.Sequential:
    """Linear, ReLU, (Dropout,) ... Linear, with the given weights."""
    layers = []
    for i in range(0, len(weights), 2):
        out_features, in_features = weights[i].shape
        layer = nn.Linear(in_features, out_features)
        layer.weight.data[...] = weights[i]
        layer.bias.data[...] = weights[i + 1]
        layers.append(layer)
        if i + 2 < len(weights):
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def torch_mlp(torch, weights: list[np.ndarray], dropout: float = 0.0):
    layers = []
    for i in range(0, len(weights), 2):
        out_features, in_features = weights[i].shape
        layer = torch.nn.Linear(in_features, out_features)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weights[i]))
            layer.bias.copy_(torch.from_numpy(weights[i + 1]))
        layers.append(layer)
        if i + 2 < len(weights):
            layers.append(torch.nn.ReLU())
            if dropout:
                layers.append(torch.nn.Dropout(dropout))
    return torch.nn.Sequential(*layers)


# ---------------------------------------------------------------- plain-NumPy optimizers
# In-place and blocked: each update runs chunk by chunk, so that the chunk's slices of the
# parameter, gradient, state and scratch stay in the core's L2 cache through all the passes
# of the update instead of streaming from memory once per pass. The order of operations is
# minigrad's (and PyTorch's), so the results are the same to the last bit.

BLOCK = 32768  # elements: 5 arrays x 4 bytes x 32768 = 640 KB, inside a 2 MB L2 (fastest here)


def blocks(n: int):
    return (slice(start, min(start + BLOCK, n)) for start in range(0, n, BLOCK))


def sgd_momentum_numpy(p, g, buf, scratch, *, lr, momentum, first_step):
    """buf <- momentum * buf + g (buf <- g on the first step);  p <- p - lr * buf."""
    for b in blocks(p.size):
        p_, g_, buf_, s = p[b], g[b], buf[b], scratch[: b.stop - b.start]
        if first_step:
            np.copyto(buf_, g_)
        else:
            np.multiply(buf_, momentum, out=buf_)
            np.multiply(g_, 1.0, out=s)  # (1 - dampening) * g, dampening = 0
            np.add(buf_, s, out=buf_)
        np.multiply(buf_, lr, out=s)
        np.subtract(p_, s, out=p_)


def adam_numpy(p, g, m, v, scratch, *, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """Adam (L2 weight decay) or AdamW (decoupled), in place; `g` is overwritten."""
    step_size = lr / (1 - beta1**step)
    bc2_sqrt = math.sqrt(1 - beta2**step)
    for b in blocks(p.size):
        p_, g_, m_, v_, s = p[b], g[b], m[b], v[b], scratch[: b.stop - b.start]
        if weight_decay and decoupled:
            np.multiply(p_, 1 - lr * weight_decay, out=p_)
        elif weight_decay:
            np.multiply(p_, weight_decay, out=s)
            np.add(g_, s, out=g_)
        np.multiply(m_, beta1, out=m_)  # m <- beta1 * m + (1 - beta1) * g
        np.multiply(g_, 1 - beta1, out=s)
        np.add(m_, s, out=m_)
        np.multiply(v_, beta2, out=v_)  # v <- beta2 * v + (1 - beta2) * g * g
        np.multiply(g_, 1 - beta2, out=s)
        np.multiply(s, g_, out=s)
        np.add(v_, s, out=v_)
        np.sqrt(v_, out=s)  # p <- p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
        np.divide(s, bc2_sqrt, out=s)
        np.add(s, eps, out=s)
        np.multiply(m_, step_size, out=g_)
        np.divide(g_, s, out=g_)
        np.subtract(p_, g_, out=p_)


class NumpyAdamW:
    """AdamW over a list of arrays, with per-array weight decay (0 for biases, say)."""

    def __init__(self, params, lr, weight_decays, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.weight_decays = params, lr, weight_decays
        self.betas, self.eps = betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.scratch = np.empty(max(p.size for p in params), dtype=np.float32)
        self.t = 0

    def step(self, grads) -> None:
        self.t += 1
        for p, g, m, v, wd in zip(self.params, grads, self.m, self.v, self.weight_decays):
            adam_numpy(
                p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), self.scratch,
                lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                weight_decay=wd, decoupled=True, step=self.t,
            )  # fmt: skip


# ---------------------------------------------------------------- MLP training step


def mlp_batches(batch: int, count: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    r = rng(1)
    return [
        (
            r.standard_normal((batch, MLP_SIZES[0])).astype(np.float32),
            r.integers(0, MLP_SIZES[-1], size=batch),
        )
        for _ in range(count)
    ]


def numpy_mlp_forward(params, x, keep=None):
    """ReLU MLP forward; returns the logits and each layer's input (kept for backward).

    `keep`: a function making each hidden layer's dropout mask (already scaled), or None.
    """
    inputs, masks = [], []
    h = x
    for i in range(0, len(params), 2):
        inputs.append(h)
        z = h @ params[i].T
        z += params[i + 1]
        if i + 2 < len(params):
            np.maximum(z, 0, out=z)
            if keep is not None:
                masks.append(keep(z.shape))
                z *= masks[-1]
        h = z
    return h, inputs, masks


def numpy_cross_entropy(logits, y, label_smoothing: float = 0.0):
    """Mean cross-entropy and its gradient with respect to the logits, (p - q) / N."""
    n, c = logits.shape
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    logp = shifted - np.log(total)
    loss = -(1 - label_smoothing) * logp[rows, y].mean()
    if label_smoothing:
        loss -= label_smoothing / c * logp.sum(axis=1).mean()
    grad = probs
    grad[rows, y] -= 1 - label_smoothing
    if label_smoothing:
        grad -= label_smoothing / c
    grad /= n
    return loss, grad


def numpy_mlp_backward(params, inputs, masks, grad):
    """Gradients [dW1, db1, ...] from dloss/dlogits, walking the layers backwards."""
    grads = [None] * len(params)
    for i in reversed(range(0, len(params), 2)):
        h = inputs[i // 2]
        grads[i] = grad.T @ h
        grads[i + 1] = grad.sum(axis=0)
        if i == 0:
            break
        grad = grad @ params[i]
        if masks:
            grad *= masks[i // 2 - 1]  # dropout scaled the kept units; zero where dropped
        grad *= h > 0  # ReLU: pass where the unit was positive
    return grads


def mlp_step(torch, batch: int) -> dict[str, Contender | None]:
    """Forward, cross-entropy, backward and an AdamW step of a 784-256-256-10 MLP."""
    weights = linear_init(MLP_SIZES)
    batches = mlp_batches(batch)
    lr, wd = 1e-3, 1e-2

    model = minigrad_mlp(weights)
    trainer = optim.Trainer(optim.AdamW(model.parameters(), lr=lr, weight_decay=wd))
    mg_batches = itertools.cycle([(mg.tensor(x), mg.tensor(y)) for x, y in batches])

    def minigrad_run():
        x, y = next(mg_batches)
        trainer.train_step(lambda: F.cross_entropy(model(x), y), batch_size=len(y))

    params = [w.copy() for w in weights]
    adamw = NumpyAdamW(params, lr, [wd] * len(params))
    np_batches = itertools.cycle(batches)

    def numpy_run():
        x, y = next(np_batches)
        logits, inputs, _ = numpy_mlp_forward(params, x)
        _, grad = numpy_cross_entropy(logits, y)
        adamw.step(numpy_mlp_backward(params, inputs, [], grad))

    return {
        "minigrad": Contender(minigrad_run),
        "torch": torch_mlp_step(torch, weights, batches, lr, wd) if torch else None,
        "numpy": Contender(numpy_run),
    }


def torch_mlp_step(torch, weights, batches, lr, wd) -> Contender:
    model = torch_mlp(torch, weights)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    data_ = itertools.cycle([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches])

    def run():
        x, y = next(data_)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return Contender(run)


# ---------------------------------------------------------------- the digits demo, whole run
# examples/04_digits_mlp.py without its printing, plot and checkpoint: 64-256-10 with
# Dropout(0.2), label smoothing 0.1, AdamW (weights decayed, biases not), batches of 64,
# validation accuracy after every epoch and test accuracy at the end.

DIGITS = dict(hidden=256, batch=64, lr=2e-3, weight_decay=1e-2, dropout=0.2, smoothing=0.1)


def digits_data():
    """The demo's splits, standardized by the training statistics (loaded once, untimed)."""
    X, y = data.load_digits()
    X_rest, X_test, y_rest, y_test = data.train_test_split(X, y, test_size=0.2, seed=0)
    X_train, X_val, y_train, y_val = data.train_test_split(X_rest, y_rest, test_size=0.1, seed=0)
    X_train, X_val, X_test = data.standardize(X_train, X_val, X_test)
    return (X_train, y_train), (X_val, y_val), (X_test, y_test)


def digits_run(torch, epochs: int) -> dict[str, Contender | None]:
    """The digits demo's training run, start to finish (the data already in memory)."""
    splits = digits_data()
    weights = linear_init((64, DIGITS["hidden"], 10), seed=2)
    return {
        "minigrad": _digits_minigrad(splits, weights, epochs),
        "torch": _digits_torch(torch, splits, weights, epochs) if torch else None,
        "numpy": _digits_numpy(splits, weights, epochs),
    }


def _digits_minigrad(splits, weights, epochs) -> Contender:
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
    val = (mg.tensor(X_val), mg.tensor(y_val))
    test = (mg.tensor(X_test), mg.tensor(y_test))
    accuracy = {}

    def evaluate(model, X, y) -> float:
        model.eval()
        with mg.no_grad():
            acc = F.accuracy(model(X), y)
        model.train()
        return acc

    def run():
        mg.manual_seed(0)
        loader = data.DataLoader(X_train, y_train, batch_size=DIGITS["batch"], shuffle=True, seed=0)
        model = minigrad_mlp(weights, dropout=DIGITS["dropout"])
        named = list(model.named_parameters())
        opt_w = optim.AdamW(
            [p for n, p in named if n.endswith("weight")],
            lr=DIGITS["lr"],
            weight_decay=DIGITS["weight_decay"],
        )
        opt_b = optim.AdamW(
            [p for n, p in named if n.endswith("bias")], lr=DIGITS["lr"], weight_decay=0.0
        )
        trainer = optim.Trainer(opt_w, opt_b)

        def loss_fn(logits, targets):
            return F.cross_entropy(logits, targets, label_smoothing=DIGITS["smoothing"])

        for _ in range(epochs):
            for xb, yb in loader:
                trainer.train_step(lambda: loss_fn(model(xb), yb), batch_size=len(yb))  # noqa: B023
            trainer.epoch_avg_loss()
            evaluate(model, *val)
        accuracy["test"] = evaluate(model, *test)

    return Contender(run, result=lambda: accuracy.get("test"))


def _digits_torch(torch, splits, weights, epochs) -> Contender:
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
    X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)
    val = (torch.from_numpy(X_val), torch.from_numpy(y_val))
    test = (torch.from_numpy(X_test), torch.from_numpy(y_test))
    accuracy = {}

    def evaluate(model, X, y) -> float:
        model.eval()
        with torch.no_grad():
            acc = (model(X).argmax(dim=1) == y).float().mean().item()
        model.train()
        return acc

    def run():
        torch.manual_seed(0)
        order_rng = rng(0)
        model = torch_mlp(torch, weights, dropout=DIGITS["dropout"])
        named = list(model.named_parameters())
        opt = torch.optim.AdamW(
            [
                {
                    "params": [p for n, p in named if n.endswith("weight")],
                    "weight_decay": DIGITS["weight_decay"],
                },
                {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
            ],
            lr=DIGITS["lr"],
        )
        for _ in range(epochs):
            order = torch.from_numpy(order_rng.permutation(len(y_train)))
            total = torch.zeros((), dtype=torch.float64)
            for start in range(0, len(order), DIGITS["batch"]):
                index = order[start : start + DIGITS["batch"]]
                xb, yb = X_train[index], y_train[index]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(
                    model(xb), yb, label_smoothing=DIGITS["smoothing"]
                )
                loss.backward()
                opt.step()
                total += loss.detach() * len(yb)
            total.item()  # the epoch's average loss, read once as the Trainer does
            evaluate(model, *val)
        accuracy["test"] = evaluate(model, *test)

    return Contender(run, result=lambda: accuracy.get("test"))


def _digits_numpy(splits, weights, epochs) -> Contender:
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
    p = DIGITS["dropout"]
    accuracy = {}

    def evaluate(params, X, y) -> float:
        logits, _, _ = numpy_mlp_forward(params, X)
        return float((logits.argmax(axis=1) == y).mean())

    def run():
        r = rng(0)
        params = [w.copy() for w in weights]
        decays = [DIGITS["weight_decay"] if w.ndim == 2 else 0.0 for w in params]
        adamw = NumpyAdamW(params, DIGITS["lr"], decays)

        def keep(shape):  # inverted dropout: keep with probability 1 - p, scale by 1 / (1 - p)
            return (r.random(shape, dtype=np.float32) >= p) * np.float32(1 / (1 - p))

        for _ in range(epochs):
            order = r.permutation(len(y_train))
            total = 0.0
            for start in range(0, len(order), DIGITS["batch"]):
                index = order[start : start + DIGITS["batch"]]
                xb, yb = X_train[index], y_train[index]
                logits, inputs, masks = numpy_mlp_forward(params, xb, keep)
                loss, grad = numpy_cross_entropy(logits, yb, DIGITS["smoothing"])
                adamw.step(numpy_mlp_backward(params, inputs, masks, grad))
                total += loss * len(yb)
            evaluate(params, X_val, y_val)
        accuracy["test"] = evaluate(params, X_test, y_test)

    return Contender(run, result=lambda: accuracy.get("test"))


# ---------------------------------------------------------------- the optimizer step alone

OPTIMIZERS = {
    "SGD momentum": dict(lr=1e-2, momentum=0.9),
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
}


def optimizer_step(torch, name: str, shapes: list[tuple]) -> dict[str, Contender | None]:
    """One optimizer step over parameters of `shapes`, with a fresh gradient every step."""
    r = rng(3)
    init = [r.standard_normal(s).astype(np.float32) for s in shapes]
    grad_values = [r.standard_normal(s).astype(np.float32) * 1e-2 for s in shapes]
    return {
        "minigrad": _optimizer_minigrad(name, init, grad_values),
        "torch": _optimizer_torch(torch, name, init, grad_values) if torch else None,
        "numpy": _optimizer_numpy(name, init, grad_values),
    }


def _optimizer_minigrad(name, init, grad_values) -> Contender:
    params = [mg.tensor(a, requires_grad=True) for a in init]
    make = {"SGD momentum": optim.SGD, "Adam": optim.Adam, "AdamW": optim.AdamW}[name]
    opt = make(params, **OPTIMIZERS[name])
    grads = [np.empty_like(g) for g in grad_values]
    store = {}

    def before():
        for g, value in zip(grads, grad_values):
            np.copyto(g, value)
        # What backward() returns: a fresh store holding the gradient arrays.
        store["grads"] = mg.GradientStore({p.id: g for p, g in zip(params, grads)})

    return Contender(lambda: opt.step(store["grads"]), before, result=lambda: params)


def _optimizer_torch(torch, name, init, grad_values) -> Contender:
    params = [torch.tensor(a, requires_grad=True) for a in init]
    make = {"SGD momentum": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
    opt = make[name](params, **OPTIMIZERS[name])
    values = [torch.from_numpy(g) for g in grad_values]
    for p, g in zip(params, values):
        p.grad = g.clone()

    def before():
        for p, g in zip(params, values):
            p.grad.copy_(g)

    return Contender(opt.step, before, result=lambda: params)


def _optimizer_numpy(name, init, grad_values) -> Contender:
    params = [a.copy() for a in init]
    grads = [np.empty_like(g) for g in grad_values]
    scratch = np.empty(max(a.size for a in init), dtype=np.float32)
    hyper = OPTIMIZERS[name]
    momentum = [np.zeros_like(a) for a in init]
    m, v = [np.zeros_like(a) for a in init], [np.zeros_like(a) for a in init]
    t = [0]

    def before():
        for g, value in zip(grads, grad_values):
            np.copyto(g, value)

    def run():
        t[0] += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            p, g = p.reshape(-1), g.reshape(-1)
            if name == "SGD momentum":
                sgd_momentum_numpy(
                    p, g, momentum[i].reshape(-1), scratch,
                    lr=hyper["lr"], momentum=hyper["momentum"], first_step=t[0] == 1,
                )  # fmt: skip
            else:
                adam_numpy(
                    p, g, m[i].reshape(-1), v[i].reshape(-1), scratch,
                    lr=hyper["lr"], beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=hyper.get("weight_decay", 0.0), decoupled=name == "AdamW",
                    step=t[0],
                )  # fmt: skip

    return Contender(run, before, result=lambda: params)


# ---------------------------------------------------------------- engine overhead


def tiny_graph(torch) -> dict[str, Contender | None]:
    """loss = sum(tanh(x * w + b) ** 2) on 4-element tensors: five ops, forward and backward."""
    values = [np.array(v, dtype=np.float32) for v in ([1, -2, 3, 0.5], [0.5, 0.1, -1, 2], [0] * 4)]
    x, w, b = (mg.tensor(v, requires_grad=True) for v in values)

    def minigrad_run():
        y = (x * w + b).tanh()
        return (y * y).sum().backward()

    def numpy_run():
        xv, wv, bv = values
        y = np.tanh(xv * wv + bv)
        (y * y).sum()
        dz = 2 * y * (1 - y * y)  # d/dz of tanh(z)**2
        return dz * wv, dz * xv, dz

    return {
        "minigrad": Contender(minigrad_run),
        "torch": _tiny_torch(torch, values) if torch else None,
        "numpy": Contender(numpy_run),
    }


def _tiny_torch(torch, values) -> Contender:
    x, w, b = (torch.tensor(v, requires_grad=True) for v in values)

    def run():
        y = torch.tanh(x * w + b)
        return torch.autograd.grad((y * y).sum(), (x, w, b))

    return Contender(run)


def op_chain(torch, length: int = 1000) -> dict[str, Contender | None]:
    """h <- tanh(h * w), repeated: `length` ops on 4-element tensors, then sum and backward.

    w is used at every other op, so its gradient sums length / 2 contributions.
    """
    values = [np.array(v, dtype=np.float32) for v in ([0.5, -0.25, 1.0, 2.0], [1.1, 0.9, 1.0, 1.2])]
    x, w = (mg.tensor(v, requires_grad=True) for v in values)

    def minigrad_run():
        h = x
        for _ in range(length // 2):
            h = (h * w).tanh()
        return h.sum().backward()

    def numpy_run():
        xv, wv = values
        kept, h = [], xv
        for _ in range(length // 2):
            kept.append(h)
            h = np.tanh(h * wv)
            kept.append(h)
        h.sum()
        g, dw = np.ones_like(h), np.zeros_like(wv)
        for i in range(len(kept) - 1, 0, -2):
            g = g * (1 - kept[i] * kept[i])  # through tanh
            dw += g * kept[i - 1]  # through h * w
            g = g * wv
        return g, dw

    return {
        "minigrad": Contender(minigrad_run),
        "torch": _chain_torch(torch, values, length) if torch else None,
        "numpy": Contender(numpy_run),
    }


def _chain_torch(torch, values, length) -> Contender:
    x, w = (torch.tensor(v, requires_grad=True) for v in values)

    def run():
        h = x
        for _ in range(length // 2):
            h = torch.tanh(h * w)
        return torch.autograd.grad(h.sum(), (x, w))

    return Contender(run)
