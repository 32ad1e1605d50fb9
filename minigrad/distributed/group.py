"""The process group: N processes, one per GPU (or CPU worker), that train one model together.

    import minigrad.distributed as dist
    dist.init_process_group()              # reads RANK, WORLD_SIZE, ... set by the launcher
    dist.broadcast_parameters(model)       # every rank starts from rank 0's weights
    for xb, yb in loader:                  # a DistributedSampler gives each rank its shard
        grads = cross_entropy(model(xb), yb).backward()
        dist.all_reduce(grads)             # grads = (grads_0 + ... + grads_{N-1}) / N, in place
        opt.step(grads)                    # every rank applies the same update

With equal shards of B examples and a mean loss, the average of the N ranks' gradients is
the gradient of the mean loss over all N*B examples: N ranks with batch B take the step one
process takes with batch N*B, and since every rank receives the same averaged bytes, the
parameters stay bit-identical across ranks.

Every collective waits at most `timeout` seconds. If it does not finish, the error names the
rank that is behind or gone (rank 0 keeps a board of everyone's progress, see rendezvous.py),
the group is broken, and every later collective refuses to run.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from .. import backend
from ..gradients import GradientStore
from ..tensor import Tensor
from . import bucketing, rendezvous, wire
from .env import LaunchEnv, from_environment
from .errors import DistributedError, DistributedTimeoutError
from .transports import NcclTransport, SocketTransport, nccl_unique_id

BACKENDS = ("nccl", "cpu")
DEFAULT_TIMEOUT = 300.0  # seconds

_default_group: ProcessGroup | None = None


class ProcessGroup:
    """This process's membership of a data-parallel job (made by init_process_group).

    Attributes: rank, world_size, local_rank, backend ("nccl" or "cpu"), device ("gpu" or
    "cpu": where the arrays it reduces live), timeout (seconds per collective).
    """

    def __init__(self, env: LaunchEnv, backend_name: str, timeout: float, bucket_cap_mb=25.0):
        self.rank, self.world_size, self.local_rank = env.rank, env.world_size, env.local_rank
        self.backend = backend_name
        self.device = backend.GPU if backend_name == "nccl" else backend.CPU
        self.timeout = timeout
        self.bucket_cap_bytes = int(bucket_cap_mb * 1024 * 1024)
        self._count = 0  # collectives entered so far: the progress rank 0's board watches
        self._broken: str | None = None
        self._plans: dict[tuple, list[bucketing.Bucket]] = {}
        self._links = None
        self._transport = None
        if backend_name == "nccl":
            cupy = _use_local_gpu(env.local_rank)
        if env.world_size == 1:
            return  # alone: every collective is the identity
        if backend_name == "nccl":
            self._links = rendezvous.connect(env, timeout, lambda: {"nccl_id": nccl_unique_id()})
            self._transport = NcclTransport(
                env.rank, env.world_size, self._links.welcome["nccl_id"], cupy
            )
        else:
            self._links = rendezvous.connect(env, timeout)
            self._transport = SocketTransport(self._links)

    @property
    def is_main_process(self) -> bool:
        """True on rank 0: the rank that prints, writes checkpoints and saves files."""
        return self.rank == 0

    # ------------------------------------------------------------ collectives on arrays
    def all_reduce_(self, arrays, op: str = "sum") -> None:
        """In place on every rank: each array becomes op over the ranks' arrays ("sum" or "max").

        arrays: contiguous arrays on this group's device, the same shapes on every rank.
        """
        if op not in ("sum", "max"):
            raise ValueError(f"all_reduce_: op must be 'sum' or 'max', got {op!r}")
        flats = self._flat_views(arrays, "all_reduce_")
        self._collective(f"all_reduce ({op})", lambda d: self._transport.all_reduce(flats, op, d))

    def broadcast_(self, arrays, src: int = 0) -> None:
        """In place on every rank: each array becomes rank `src`'s array."""
        if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < self.world_size:
            raise ValueError(
                f"broadcast_: src must be a rank 0..{self.world_size - 1}, got {src!r}"
            )
        flats = self._flat_views(arrays, "broadcast_")
        self._collective(
            f"broadcast from rank {src}", lambda d: self._transport.broadcast(flats, src, d)
        )

    def barrier(self) -> None:
        """Return once every rank has called barrier() (a one-number all-reduce)."""
        self.all_reduce_([backend.xp_for(self.device).zeros(1, dtype=np.float32)])

    def _flat_views(self, arrays, what: str) -> list:
        flats = []
        for array in arrays:
            if backend.device_of(array) != self.device:
                raise DistributedError(
                    f"{what}: an array is on {backend.device_of(array)}, but this group "
                    f"(backend={self.backend!r}) reduces arrays on {self.device}: move it, or "
                    f"init_process_group(backend={'cpu' if self.device == 'gpu' else 'nccl'!r})"
                )
            if not array.flags.c_contiguous:
                raise DistributedError(f"{what}: arrays must be contiguous (use .copy())")
            flats.append(array.reshape(-1))  # a view: reducing it changes the array
        return flats

    def _collective(self, what: str, run) -> None:
        if self._broken is not None:
            raise DistributedError(
                f"rank {self.rank}: the process group broke earlier ({self._broken}); "
                "it cannot be used again: restart the job"
            )
        if self.world_size == 1:
            return
        self._count += 1
        self._links.progress.report(self._count)
        try:
            run(time.monotonic() + self.timeout)
        except wire.PeerTimeout:
            reason = rendezvous.describe_missing(
                self.rank, self._count, self._links.progress.snapshot()
            )
            self._fail(
                DistributedTimeoutError,
                f"{what} (collective #{self._count}) did not complete within "
                f"{self.timeout:g} s: {reason}",
            )
        except wire.PeerGone as exc:
            self._fail(
                DistributedError,
                f"{what} (collective #{self._count}) failed: rank {exc.rank} is gone "
                "(its connection closed: did it exit or crash?)",
            )
        except wire.RemoteError as exc:
            self._fail(DistributedError, f"{what} failed, rank 0 reports: {exc}")
        except DistributedError as exc:
            self._fail(DistributedError, str(exc))

    def _fail(self, kind, reason: str):
        message = f"rank {self.rank}: {reason}"
        self._broken = reason
        self._transport.abort(message)
        raise kind(message) from None

    # ------------------------------------------------------------ gradients and parameters
    def average_gradients(self, grads: GradientStore, params=None) -> GradientStore:
        """Average `grads` over the ranks, in place, bucketed; returns `grads`. See all_reduce."""
        if not isinstance(grads, GradientStore):
            raise TypeError(
                f"all_reduce averages a GradientStore (what backward() returns), got a "
                f"{type(grads).__name__}; for plain arrays use group.all_reduce_([array])"
            )
        if self.world_size == 1:
            return grads
        arrays = _gradient_arrays(grads, params)
        if not arrays:
            return grads
        plan = self._plan(arrays, "gradients")
        flats = [bucketing.pack(bucket, arrays) for bucket in plan]
        self.all_reduce_(flats, "sum")
        for bucket, flat in zip(plan, flats):
            flat /= self.world_size  # the sum over ranks -> the average
            bucketing.unpack(bucket, flat, arrays)
        return grads

    def broadcast_parameters(self, module_or_params, src: int = 0) -> None:
        """Copy rank `src`'s parameters (and buffers) into every rank's, in place."""
        arrays = _parameter_arrays(module_or_params)
        if self.world_size == 1 or not arrays:
            return
        plan = self._plan(arrays, "parameters")
        flats = [bucketing.pack(bucket, arrays) for bucket in plan]
        self.broadcast_(flats, src)
        for bucket, flat in zip(plan, flats):
            bucketing.unpack(bucket, flat, arrays)

    def sum_over_ranks(self, *values) -> tuple[float, ...]:
        """The sum over ranks of each value (numbers or one-element arrays), as floats.

        One collective for all of them, e.g. (loss_sum, examples) -> the job's mean loss.
        """
        host = np.array([float(backend.to_numpy(v).reshape(())) for v in values], np.float64)
        if self.world_size == 1:
            return tuple(float(v) for v in host)
        buffer = backend.to_device(host, self.device)
        self.all_reduce_([buffer], "sum")
        return tuple(float(v) for v in backend.to_numpy(buffer))

    def _plan(self, arrays, what: str) -> list[bucketing.Bucket]:
        """The bucket plan for these shapes and dtypes (cached); the first time, check that
        every rank has the same layout, so that a mismatch is an error and not a hang."""
        layout = tuple((tuple(a.shape), a.dtype.str) for a in arrays)
        plan = self._plans.get(layout)
        if plan is None:
            self._check_same_on_every_rank(layout, what)
            plan = bucketing.plan_buckets(
                [a.shape for a in arrays], [a.dtype for a in arrays], self.bucket_cap_bytes
            )
            self._plans[layout] = plan
        return plan

    def _check_same_on_every_rank(self, layout: tuple, what: str) -> None:
        # max over ranks of (h, -h) is (h, -h) on every rank only if every rank has h.
        digest = hashlib.blake2b(repr(layout).encode(), digest_size=7).digest()
        h = int.from_bytes(digest, "big")
        pair = backend.to_device(np.array([h, -h], dtype=np.int64), self.device)
        self.all_reduce_([pair], "max")
        if backend.to_numpy(pair).tolist() != [h, -h]:
            raise DistributedError(
                f"rank {self.rank}: the ranks disagree on the {what} to reduce (this rank has "
                f"{len(layout)} arrays, shapes {[s for s, _ in layout][:4]}...): every rank "
                "must build the same model and pass the same parameters in the same order"
            )

    # ------------------------------------------------------------ the end
    def destroy(self) -> None:
        """Leave the group: close the connections (and the NCCL communicator)."""
        if self._transport is not None and hasattr(self._transport, "close"):
            if self._broken is None:
                self._transport.close()
        if self._links is not None:
            self._links.close()
        self._links = self._transport = None
        self._broken = self._broken or "destroy_process_group() was called"

    def __repr__(self) -> str:
        return (
            f"ProcessGroup(rank={self.rank}, world_size={self.world_size}, "
            f"local_rank={self.local_rank}, backend={self.backend!r}, timeout={self.timeout:g})"
        )


def _use_local_gpu(local_rank: int):
    """Make GPU LOCAL_RANK this process's device (every CuPy array is made there)."""
    cupy = backend.cupy_module()
    count = cupy.cuda.runtime.getDeviceCount()
    if local_rank >= count:
        raise DistributedError(
            f"LOCAL_RANK={local_rank}, but this machine has {count} GPU(s): start at most "
            f"{count} processes per machine (--nproc-per-node {count})"
        )
    cupy.cuda.Device(local_rank).use()
    from cupy.cuda import nccl

    if not getattr(nccl, "available", False):
        raise DistributedError(
            "this CuPy has no NCCL: install NCCL for your CUDA (pip install nvidia-nccl-cu13, "
            "or -cu12), or use init_process_group(backend='cpu')"
        )
    return cupy


def _gradient_arrays(grads: GradientStore, params) -> list:
    """The arrays to average, in an order every rank agrees on.

    With params (the model's parameters, as every rank builds them): in that order; a
    parameter without a gradient on this rank gets zeros, so that every rank reduces the
    same arrays. Without: every gradient in the store, by parameter id.
    """
    if params is None:
        return [grads[key] for key in sorted(grads.keys())]
    arrays, seen = [], set()
    for p in params.parameters() if hasattr(params, "parameters") else params:
        if p.id in seen:
            continue
        seen.add(p.id)
        g = grads.get(p)
        if g is None:
            g = grads[p] = backend.xp_of(p.data).zeros_like(p.data)
        arrays.append(g)
    return arrays


def _parameter_arrays(module_or_params) -> list:
    """The arrays of a module's parameters and buffers, or of a list of parameters."""
    if hasattr(module_or_params, "parameters"):
        items = list(module_or_params.parameters())
        buffers = getattr(module_or_params, "buffers", None)
        if callable(buffers):
            items += list(buffers())
    else:
        items = list(module_or_params)
    return [item.data if isinstance(item, Tensor) else item for item in items]


# ---------------------------------------------------------------- the default group
def init_process_group(
    backend: str | None = None, timeout: float = DEFAULT_TIMEOUT, bucket_cap_mb: float = 25.0
) -> ProcessGroup:
    """Join the job described by RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
    (set by `python -m minigrad.distributed.run` or torchrun); returns the group and makes
    it the default one.

    backend: "nccl" (GPUs: this process uses GPU LOCAL_RANK) or "cpu" (TCP sockets);
        None picks "nccl" when a GPU is there, else "cpu".
    timeout: seconds any collective (and the start-up) may take before the error that
        names the missing rank.
    bucket_cap_mb: the size of a gradient bucket (PyTorch DDP's default, 25 MB).
    """
    global _default_group
    if _default_group is not None:
        raise DistributedError(
            "init_process_group() was already called in this process; call "
            "destroy_process_group() first to start another group"
        )
    from .. import backend as mg_backend  # the argument `backend` shadows the module here

    if backend is None:
        backend = "nccl" if mg_backend.gpu_available() else "cpu"
    if backend == "gloo":
        raise ValueError("minigrad's CPU backend is backend='cpu' (it plays gloo's part)")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if not bucket_cap_mb > 0:
        raise ValueError(f"bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
    _default_group = ProcessGroup(from_environment(), backend, float(timeout), bucket_cap_mb)
    return _default_group


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave the group (the default one if none is given)."""
    global _default_group
    group = group or _default_group
    if group is None:
        return
    group.destroy()
    if group is _default_group:
        _default_group = None


def is_initialized() -> bool:
    return _default_group is not None


def default_group() -> ProcessGroup:
    if _default_group is None:
        raise DistributedError(
            "no process group: call minigrad.distributed.init_process_group() first"
        )
    return _default_group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank (0 when no group was made: a process alone is rank 0)."""
    group = group or _default_group
    return 0 if group is None else group.rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    group = group or _default_group
    return 1 if group is None else group.world_size


def all_reduce(grads: GradientStore, params=None, group: ProcessGroup | None = None):
    """Average a GradientStore over the ranks, in place: g = (g_0 + ... + g_{N-1}) / N.

    The gradients travel in flat buckets of one dtype (at most bucket_cap_mb each): one
    collective per bucket, then each gradient gets its slice back. Returns `grads`.

    params: the parameters to average (or a module): pass them when a rank's loss may not
        touch every parameter; a missing gradient then counts as zeros. Without it, every
        gradient in the store is averaged, in order of parameter id.
    """
    return (group or default_group()).average_gradients(grads, params)


def broadcast_parameters(module_or_params, src: int = 0, group: ProcessGroup | None = None):
    """Overwrite every rank's parameters (and buffers) with rank `src`'s, in place: call it
    once after building the model, so that every rank starts from the same weights."""
    (group or default_group()).broadcast_parameters(module_or_params, src)


def barrier(group: ProcessGroup | None = None) -> None:
    """Wait until every rank gets here."""
    (group or default_group()).barrier()


def save_checkpoint(path, group: ProcessGroup | None = None, **objects):
    """Rank 0 writes the checkpoint (minigrad.save(path, **objects)); every rank waits for
    it, so that all of them can load it afterwards. Returns the path on rank 0, else None."""
    from ..checkpoint import save

    group = group or default_group()
    written = save(path, **objects) if group.rank == 0 else None
    group.barrier()
    return written
