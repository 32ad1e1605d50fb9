"""minigrad: a small, readable autograd and optimizer framework on NumPy (CPU) and CuPy (GPU).

import minigrad as mg
x = mg.tensor([[1.0, 2.0]], requires_grad=True)
loss = (x * x).sum()
grads = loss.backward()      # a GradientStore
grads[x]                     # array([[2., 4.]], dtype=float32)
"""

__version__ = "0.1.0"

from . import (
    _malloc,  # first: keeps freed memory between steps (see _malloc.py)
    backend,
    data,
    nn,
    optim,
    random,
)
from .backend import (
    DeviceError,
    get_default_device,
    gpu_available,
    set_default_device,
)
from .checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    export_safetensors,
    load,
    read_info,
    save,
)
from .gradcheck import GradcheckError, gradcheck
from .gradients import GradientStore
from .ops import (
    abs,
    clip,
    concatenate,
    exp,
    log,
    logsumexp,
    matmul,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    stack,
    tanh,
    where,
)
from .random import manual_seed
from .tensor import (
    Tensor,
    arange,
    full,
    is_grad_enabled,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .viz import to_dot
