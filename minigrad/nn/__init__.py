"""minigrad.nn: layers, Module/Parameter, initialization and losses.

Layers by file: layers.py (Linear, activations, Dropout, Flatten), conv.py (Conv2d),
pooling.py, norm.py (BatchNorm, LayerNorm), embedding.py, attention.py; docs/layers.md.

from minigrad import nn
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
loss = nn.functional.cross_entropy(model(x), y)
"""

from . import functional, init
from .attention import MultiheadAttention
from .conv import Conv2d
from .embedding import Embedding
from .layers import (
    ELU,
    GELU,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .module import Module, ModuleDict, ModuleList, Parameter, StateDictError
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
