"""The model cases of bench_cpu.py: one training step of a small CNN and of a tiny GPT.

    LeNet-5     lesson 08's network on 1x28x28 images, batch 64, Adam
    tiny GPT    lesson 11's model (2 blocks, 4 heads, C = 64, 32 characters of context,
                vocabulary 59), batch 32, AdamW, gradients clipped at norm 1

A step is forward, cross-entropy, backward and the optimizer step, the same computation in
minigrad and in PyTorch, from the same weights and the same batch. The models are the
lessons' own (imported from examples/), so the benchmark measures what a student runs.
There is no plain-NumPy floor here: a convolution or attention by hand is a program of its
own, and the MLP cases already measure the distance to NumPy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from cpu_cases import Contender, rng

import minigrad as mg
from minigrad import optim
from minigrad.nn import functional as F

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GPT = dict(vocab=59, block=32, n_embd=64, n_head=4, n_layer=2, batch=32)


def lesson(filename: str):
    """Import examples/<filename> (a script whose name starts with a digit) as a module."""
    spec = importlib.util.spec_from_file_location(filename[:-3], EXAMPLES / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_weights(torch, mg_model, torch_model) -> None:
    """Give the PyTorch model minigrad's weights (the parameter names are the same)."""
    mine = dict(mg_model.named_parameters())
    with torch.no_grad():
        for name, p in torch_model.named_parameters():
            p.copy_(torch.from_numpy(mine[name].numpy()))


# ---------------------------------------------------------------- LeNet-5


def lenet_step(torch, batch: int = 64) -> dict[str, Contender | None]:
    """One Adam step of LeNet-5 on a batch of 1x28x28 images."""
    r = rng(5)
    x = r.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = r.integers(0, 10, batch)
    mg.manual_seed(0)
    model = lesson("08_cnn_digits.py").lenet5()
    return {
        "minigrad": _lenet_minigrad(model, x, y),
        "torch": _lenet_torch(torch, model, x, y) if torch else None,
        "numpy": None,
    }


def _lenet_minigrad(model, x, y) -> Contender:
    opt = optim.Adam(model.parameters(), lr=1e-3)
    xb, losses = mg.tensor(x), []

    def run():
        loss = F.cross_entropy(model(xb), y)
        opt.step(loss.backward())
        losses.append(loss.detach())  # the value only: keeping `loss` would keep its graph

    return Contender(run, result=lambda: [t.item() for t in losses])


def _lenet_torch(torch, mg_model, x, y) -> Contender:
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    copy_weights(torch, mg_model, model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xb, yb, losses = torch.from_numpy(x), torch.from_numpy(y), []

    def run():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    return Contender(run, result=lambda: [t.item() for t in losses])


# ---------------------------------------------------------------- the tiny GPT


def gpt_step(torch) -> dict[str, Contender | None]:
    """One AdamW step of lesson 11's GPT on 32 windows of 32 characters."""
    r = rng(6)
    tokens = r.integers(0, GPT["vocab"], (GPT["batch"], GPT["block"] + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    mg.manual_seed(0)
    model = lesson("11_tiny_gpt.py").GPT(
        GPT["vocab"], GPT["block"], GPT["n_embd"], GPT["n_head"], GPT["n_layer"]
    )
    return {
        "minigrad": _gpt_minigrad(model, x, y),
        "torch": _gpt_torch(torch, model, x, y) if torch else None,
        "numpy": None,
    }


def _gpt_minigrad(model, x, y) -> Contender:
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    xb, yb, losses = mg.tensor(x), y.reshape(-1), []

    def run():
        loss = F.cross_entropy(model(xb).reshape(-1, GPT["vocab"]), yb)
        grads = loss.backward()
        optim.clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
        opt.step(grads)
        losses.append(loss.detach())  # the value only: keeping `loss` would keep its graph

    return Contender(run, result=lambda: [t.item() for t in losses])


def _gpt_torch(torch, mg_model, x, y) -> Contender:
    model = torch_gpt(torch)
    copy_weights(torch, mg_model, model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    xb, yb, losses = torch.from_numpy(x), torch.from_numpy(y.reshape(-1)), []

    def run():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xb).reshape(-1, GPT["vocab"]), yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.detach())

    return Contender(run, result=lambda: [t.item() for t in losses])


def torch_gpt(torch):
    """Lesson 11's GPT written in PyTorch, with the same parameter names."""
    nn, F = torch.nn, torch.nn.functional
    c, h = GPT["n_embd"], GPT["n_head"]

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
            self.proj = nn.Linear(c, c)

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = (f(x).reshape(b, n, h, c // h).transpose(1, 2)
                       for f in (self.query, self.key, self.value))  # fmt: skip
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).reshape(b, n, c))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attention = nn.LayerNorm(c), CausalSelfAttention()
            self.ln2 = nn.LayerNorm(c)
            self.mlp = nn.Sequential(nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c))

        def forward(self, x):
            x = x + self.attention(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(GPT["vocab"], c)
            self.pos_emb = nn.Embedding(GPT["block"], c)
            self.blocks = nn.Sequential(*[Block() for _ in range(GPT["n_layer"])])
            self.ln_f, self.head = nn.LayerNorm(c), nn.Linear(c, GPT["vocab"])

        def forward(self, idx):
            x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1], device=idx.device))
            return self.head(self.ln_f(self.blocks(x)))

    return TorchGPT()
