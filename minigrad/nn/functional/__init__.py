"""Activations, softmax and losses as functions of tensors (the layers in layers.py call these).

Shapes: N = batch size, C = number of classes. Logits are (N, C) float tensors; class targets
are (N,) integer arrays or tensors with values in [0, C).

Most functions are compositions of the differentiable ops in `minigrad.ops`, so their
backward comes for free. Three are single fused ops with a hand-written backward, because
they sit on the hot path of every training step or because the composition is unstable:

    linear(x, W, b)       y = x @ W.T + b                 dx = g @ W,  dW = g.T @ x,  db = sum(g)
    log_softmax(x)        x - logsumexp(x)                dx = g - softmax(x) * sum(g)
    cross_entropy(z, t)   -log_softmax(z)[t]              dz = (softmax(z) - onehot(t)) / N

    >>> logits = mg.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    >>> loss = F.cross_entropy(logits, [0])
    >>> loss.backward()[logits]      # softmax - onehot
    array([[-0.2037,  0.1800,  0.0237]], dtype=float32)
"""

from __future__ import annotations

from ...ops import pad  # F.pad, as in PyTorch (the op lives with the shape ops)
from ._common import _as_tensor, _check_reduction, _reduce, _same_device
from .activations import (
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from .attention import scaled_dot_product_attention
from .conv import conv2d
from .embedding import embedding
from .linear import linear
from .losses import cross_entropy, nll_loss
from .normalization import batch_norm, layer_norm
from .pointwise_losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
)
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .regularization import accuracy, dropout

__all__ = [
    "linear",
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "gelu",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "dropout",
    "pad",
    "accuracy",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "batch_norm",
    "layer_norm",
    "embedding",
    "silu",
    "elu",
    "softplus",
    "scaled_dot_product_attention",
]
