"""Conv2d: a learned 2-D convolution layer (the computation is `functional.conv2d`).

conv = nn.Conv2d(1, 6, kernel_size=5, padding=2)   # weight (6, 1, 5, 5), bias (6,)
y = conv(x)                                        # x (N, 1, 28, 28) -> y (N, 6, 28, 28)
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from . import functional as F
from . import init
from .functional.conv import _pair
from .module import Module, Parameter


class Conv2d(Module):
    """y = conv2d(x, W, b): (N, C, H, W) -> (N, OC, OH, OW), PyTorch's arguments and defaults.

    weight: (out_channels, in_channels // groups, KH, KW); bias: (out_channels,).
    Initialized as PyTorch does: W ~ kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/groups * KH * KW,
    drawn on the host from the seeded generator (weight first, then bias).
    padding: int, (h, w), "valid" or "same"; only zero padding (padding_mode="zeros").
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: str | None = None,
        dtype=np.float32,
    ):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(
                f"Conv2d: padding_mode={padding_mode!r} is not supported, only 'zeros'; "
                "pad the input yourself for reflect/replicate/circular padding"
            )
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(
                f"Conv2d needs positive channel counts, got in_channels={in_channels}, "
                f"out_channels={out_channels}"
            )
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: groups={groups} must divide in_channels ({in_channels}) and "
                f"out_channels ({out_channels})"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = _pair("Conv2d", "stride", stride, 1)
        self.padding = (
            padding if isinstance(padding, str) else _pair("Conv2d", "padding", padding, 0)
        )
        self.dilation = _pair("Conv2d", "dilation", dilation, 1)
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError("Conv2d: padding='same' needs stride 1 (as in PyTorch)")
        self.groups = int(groups)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if bias:
            fan_in, _ = init.fan_in_and_fan_out(shape)
            self.bias = Parameter(np.empty((out_channels,), dtype=dtype))
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None
        self.to(backend.resolve_device(device))

    def forward(self, x):
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
