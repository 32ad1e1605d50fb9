"""MultiheadAttention: attention split over num_heads heads, with PyTorch's parameters,
arguments and numbers (the computation is `functional.scaled_dot_product_attention`'s).

    x (B, T, E) --in_proj--> q, k, v (B, T, E) each
                --split-->   (B, H, T, E/H) each: H heads, each attending in its own subspace
                --attend-->  softmax(q @ k.mT / sqrt(E/H) + mask) @ v        (B, H, T, E/H)
                --merge-->   (B, T, E) --out_proj--> (B, T, E)

A causal self-attention block for a GPT, with a bool mask where True = *masked out*
(PyTorch's convention for this layer, the opposite of scaled_dot_product_attention's):

    attn = nn.MultiheadAttention(64, 4, batch_first=True)
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)     # True above the diagonal: the future
    y, _ = attn(x, x, x, attn_mask=causal, need_weights=False)
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import functional as F
from . import init
from .functional.attention import _attend, _causal_mask, _mask_array
from .layers import Linear
from .module import Module, Parameter


class MultiheadAttention(Module):
    """Multi-head attention as torch.nn.MultiheadAttention (same parameter names and init).

    in_proj_weight (3E, E) ~ xavier_uniform, in_proj_bias (3E,) = 0: the q, k, v projections
    stacked; out_proj: Linear(E, E) with bias 0. batch_first=False (PyTorch's default) means
    inputs (L, B, E); batch_first=True means (B, L, E).

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
            average_attn_weights=True, is_causal=False) -> (output, weights or None)
    attn_mask (L, S) or (B*H, L, S), key_padding_mask (B, S): bool True = masked out, or
    float, added to the scores. is_causal=True without attn_mask builds the causal mask.
    weights: (B, L, S) averaged over heads (or (B, H, L, S)), None if need_weights=False.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim=None,
        vdim=None,
        batch_first: bool = False,
        device: str | None = None,
        dtype=np.float32,
    ):
        super().__init__()
        if (
            add_bias_kv
            or add_zero_attn
            or kdim not in (None, embed_dim)
            or vdim not in (None, embed_dim)
        ):
            raise ValueError(
                "MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim other than "
                "embed_dim are not supported in minigrad; project keys and values yourself"
            )
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                f"({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        # The order of draws is PyTorch's: in_proj_weight, then out_proj's weight.
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
        init.xavier_uniform_(self.in_proj_weight)
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:
            init.zeros_(self.out_proj.bias)
        self.to(backend.resolve_device(device))

    def _heads(self, x: Tensor, batch: int) -> Tensor:
        """(B, T, E) -> (B, H, T, E/H)."""
        return x.reshape(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)

    def _projections(self, query, key, value):
        """q, k, v = the three input projections; one product when query is key is value."""
        w, b, e = self.in_proj_weight, self.in_proj_bias, self.embed_dim
        if query is key and key is value:  # self-attention: one (3E, E) product
            qkv = F.linear(query, w, b)
            return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
        parts = [
            (w[i * e : (i + 1) * e], None if b is None else b[i * e : (i + 1) * e])
            for i in range(3)
        ]
        return tuple(F.linear(x, wi, bi) for x, (wi, bi) in zip((query, key, value), parts))

    def _masks(self, attn_mask, key_padding_mask, is_causal, batch, length, source, like):
        """(keep, bias) for _attend from PyTorch's masks (bool True = masked out here)."""
        keep = bias = None
        if attn_mask is None and is_causal:
            keep = _causal_mask(length, source, like.data)
        masks = []
        if attn_mask is not None:
            mask = _mask_array("MultiheadAttention", attn_mask, like)
            if mask.ndim == 3:  # (B*H, L, S) -> (B, H, L, S)
                mask = mask.reshape(batch, self.num_heads, length, source)
            masks.append(mask)
        if key_padding_mask is not None:
            mask = _mask_array("MultiheadAttention", key_padding_mask, like)
            masks.append(mask.reshape(batch, 1, 1, source))
        for mask in masks:
            if mask.dtype == bool:
                keep = ~mask if keep is None else keep & ~mask
            else:
                mask = mask.astype(like.dtype)
                bias = mask if bias is None else bias + mask
        return keep, bias

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
            layout = "(B, L, E)" if self.batch_first else "(L, B, E)"
            raise ValueError(
                f"MultiheadAttention expects batched inputs {layout}, got query {query.shape}"
            )
        if not self.batch_first:  # (L, B, E) -> (B, L, E); the identity test survives
            same_kv, same_qk = key is value, query is key
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]
        q, k, v = self._projections(query, key, value)
        keep, bias = self._masks(attn_mask, key_padding_mask, is_causal, batch, length, source, q)
        dropout_p = self.dropout if self.training else 0.0
        scale = 1.0 / math.sqrt(self.head_dim)
        out, weights = _attend(
            self._heads(q, batch),
            self._heads(k, batch),
            self._heads(v, batch),
            keep,
            bias,
            dropout_p,
            scale,
        )
        out = self.out_proj(out.transpose(1, 2).reshape(batch, length, self.embed_dim))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, (weights.mean(axis=1) if average_attn_weights else weights)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
            f"batch_first={self.batch_first}"
        )
