"""The two errors of minigrad.distributed.

DistributedError: the process group cannot be set up or used (a bad variable, a rank that
    disagrees, a group already broken by an earlier failure).
DistributedTimeoutError: a collective did not finish in time; the message names the rank
    that is behind or gone, so that a hung job says *who* hung instead of waiting forever.
"""

from __future__ import annotations


class DistributedError(RuntimeError):
    """The process group cannot be set up or used; the message says why and what to do."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """A collective did not complete within the group's timeout; the message names the rank."""
