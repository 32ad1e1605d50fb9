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
    cuda,
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
    amax,
    amin,
    argmax,
    argmin,
    cat,
    chunk,
    clamp,
    clip,
    clone,
    concatenate,
    cos,
    cumsum,
    exp,
    flatten,
    flip,
    gather,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    pad,
    permute,
    prod,
    relu,
    reshape,
    sigmoid,
    sin,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from .random import manual_seed
from .tensor import (
    Tensor,
    arange,
    bool_,
    double,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    half,
    int32,
    int64,
    is_grad_enabled,
    long,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    set_grad_enabled,
    tensor,
    zeros,
    zeros_like,
)
from .viz import to_dot
