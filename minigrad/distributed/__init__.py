"""minigrad.distributed: data-parallel training on several GPUs (NCCL) or CPU processes.

The idea in four lines. N processes each hold a full copy of the model; each reads its own
shard of every batch; after backward the N GradientStores are averaged, so every process
holds the gradient of the whole batch; every process then applies the same update:

    dist.init_process_group()                        # who am I? (RANK, WORLD_SIZE, ...)
    dist.broadcast_parameters(model)                 # start from rank 0's weights
    grads = loss_fn(model(xb), yb).backward()        # xb: this rank's shard (DistributedSampler)
    dist.all_reduce(grads); opt.step(grads)          # average, then the same step everywhere

Start N copies of the script with the launcher (or torchrun):

    python -m minigrad.distributed.run --nproc-per-node 2 train.py

Files: env.py (the launcher's variables), rendezvous.py (finding rank 0; who is behind),
wire.py (frames over TCP with deadlines), transports.py (NCCL, and TCP for the CPU),
bucketing.py (gradients packed into flat buckets), group.py (the process group and its
collectives), sampler.py (each rank's shard of an epoch), run.py (the launcher).
docs/distributed.md says more.
"""

from .bucketing import Bucket, pack, plan_buckets, unpack
from .errors import DistributedError, DistributedTimeoutError
from .group import (
    ProcessGroup,
    all_reduce,
    barrier,
    broadcast_parameters,
    default_group,
    destroy_process_group,
    get_rank,
    get_world_size,
    init_process_group,
    is_initialized,
    save_checkpoint,
)
from .sampler import DistributedSampler

__all__ = [
    "Bucket",
    "DistributedError",
    "DistributedSampler",
    "DistributedTimeoutError",
    "ProcessGroup",
    "all_reduce",
    "barrier",
    "broadcast_parameters",
    "default_group",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_initialized",
    "pack",
    "plan_buckets",
    "save_checkpoint",
    "unpack",
]
