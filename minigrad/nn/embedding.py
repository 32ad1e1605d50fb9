"""Embedding: a learned vector for each of num_embeddings ids (the computation is
`functional.embedding`).

    emb = nn.Embedding(27, 10)      # 27 characters, each a vector of 10 numbers
    emb(ids).shape                  # ids (N, T) ints -> (N, T, 10)
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from . import functional as F
from . import init
from .module import Module, Parameter


class Embedding(Module):
    """A table weight (num_embeddings, embedding_dim), initialized N(0, 1) as in PyTorch.

    padding_idx: an id whose row starts at zero and receives no gradient (for padding
    tokens); negative values count from the end. max_norm, scale_grad_by_freq and sparse
    are not supported (the error says so rather than ignoring them).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm=None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        device: str | None = None,
        dtype=np.float32,
    ):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise ValueError(
                "Embedding: max_norm, scale_grad_by_freq and sparse are not supported in "
                "minigrad; leave them at their defaults"
            )
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {value!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                    f"({num_embeddings})"
                )
            padding_idx = int(padding_idx) % num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        init.normal_(self.weight)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0
        self.to(backend.resolve_device(device))

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else text + f", padding_idx={self.padding_idx}"
