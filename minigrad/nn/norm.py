"""Normalization layers: BatchNorm1d, BatchNorm2d and LayerNorm (the computation is in
`functional.normalization`).

BatchNorm keeps running averages of each channel's mean and variance as *buffers*: saved in
state_dict() and checkpoints, moved by to(), never touched by an optimizer. In training mode
(`model.train()`) it normalizes with the batch's statistics and updates the running averages;
in evaluation mode (`model.eval()`) it normalizes with the running averages, so that one
sample's output does not depend on the rest of its batch.

    bn = nn.BatchNorm2d(16)         # weight (16,) = 1, bias (16,) = 0
    y = bn(x)                       # x (N, 16, H, W); running_mean/var updated (training)
    bn.eval(); y = bn(x)            # uses running_mean/var, updates nothing
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..checks import check_flag, check_number
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input shapes allowed."""

    _dims: tuple = ()  # the input ndims this layer accepts

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: str | None = None,
        dtype=np.float32,
    ):
        super().__init__()
        if not isinstance(num_features, numbers.Integral) or num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int")
        self.num_features = int(num_features)
        self.eps = check_number("eps", eps, low=0.0)
        # momentum=None: the running averages are the plain mean over every batch seen so far
        self.momentum = None if momentum is None else check_number("momentum", momentum, low=0.0)
        self.affine = check_flag("affine", affine)
        self.track_running_stats = check_flag("track_running_stats", track_running_stats)
        if self.affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.to(backend.resolve_device(device))

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects input of "
                f"{' or '.join(f'{d}-D' for d in self._dims)} shape with {self.num_features} "
                f"channels on axis 1, got {x.shape}"
            )
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # cumulative average: the k-th batch weighs 1/k
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics in training mode, and always when there are no running averages.
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=0.0 if momentum is None else momentum,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L), one mean and variance per channel C."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of images (N, C, H, W), one mean and variance per channel C."""

    _dims = (4,)


class LayerNorm(Module):
    """Normalize each sample over its last axes (normalized_shape), then scale and shift.

    weight (normalized_shape) = 1, bias = 0 (elementwise_affine=False: neither; bias=False:
    no bias). The same in training and evaluation: no running statistics.
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: str | None = None,
        dtype=np.float32,
    ):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps = check_number("eps", eps, low=0.0)
        self.elementwise_affine = check_flag("elementwise_affine", elementwise_affine)
        self.weight = self.bias = None
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
        self.to(backend.resolve_device(device))

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )
