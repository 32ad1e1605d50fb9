"""Who am I among the processes? The variables torchrun sets, read and checked in one place.

    RANK          this process's number among all processes, 0 .. WORLD_SIZE-1
    WORLD_SIZE    how many processes train together
    LOCAL_RANK    its number on this machine: the GPU it uses (cupy.cuda.Device(LOCAL_RANK))
    MASTER_ADDR   the host of rank 0, reachable from every rank
    MASTER_PORT   a port on that host
    MINIGRAD_PORT the port of minigrad's own rendezvous (optional)

Rank 0 serves minigrad's rendezvous (a small TCP server that hands out NCCL's unique id and
watches every rank's progress). Under torchrun, torch's own store already listens on
MASTER_PORT, so minigrad listens on MINIGRAD_PORT when it is set, else on MASTER_PORT + 1.
`python -m minigrad.distributed.run` sets both.

Without any of these variables (a plain `python train.py`) the group is one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import DistributedError

LAUNCH_HINT = (
    "start the script with `python -m minigrad.distributed.run --nproc-per-node N script.py` "
    "or `torchrun --nproc-per-node N script.py`"
)


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place in the job, as the launcher described it."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    port: int  # minigrad's rendezvous port (not torch's MASTER_PORT)


def rendezvous_port(environ) -> int:
    """MINIGRAD_PORT when set, else MASTER_PORT + 1 (MASTER_PORT itself is torch's store)."""
    if environ.get("MINIGRAD_PORT"):
        return _integer(environ, "MINIGRAD_PORT", low=1, high=65535)
    return _integer(environ, "MASTER_PORT", low=1, high=65534) + 1


def from_environment(environ=None) -> LaunchEnv:
    """The LaunchEnv described by `environ` (default: os.environ); a clear error if it is
    incomplete or inconsistent. No variables at all means one process on its own."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ and "WORLD_SIZE" not in environ:
        local = _integer(environ, "LOCAL_RANK", low=0) if "LOCAL_RANK" in environ else 0
        return LaunchEnv(rank=0, world_size=1, local_rank=local, master_addr="", port=0)
    world_size = _integer(environ, "WORLD_SIZE", low=1)
    rank = _integer(environ, "RANK", low=0)
    if rank >= world_size:
        raise DistributedError(f"RANK={rank} must be smaller than WORLD_SIZE={world_size}")
    local_rank = _integer(environ, "LOCAL_RANK", low=0) if "LOCAL_RANK" in environ else rank
    if world_size == 1:
        return LaunchEnv(rank=0, world_size=1, local_rank=local_rank, master_addr="", port=0)
    addr = environ.get("MASTER_ADDR", "").strip()
    if not addr:
        raise DistributedError(
            "MASTER_ADDR is not set: it must name the host of rank 0 (127.0.0.1 on one "
            f"machine); {LAUNCH_HINT}"
        )
    return LaunchEnv(rank, world_size, local_rank, addr, rendezvous_port(environ))


def _integer(environ, name: str, low: int, high: int | None = None) -> int:
    text = environ.get(name)
    if text is None or not text.strip():
        raise DistributedError(f"environment variable {name} is not set; {LAUNCH_HINT}")
    try:
        value = int(text)
    except ValueError:
        raise DistributedError(f"environment variable {name}={text!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise DistributedError(f"environment variable {name}={value} must be {bounds}")
    return value
