"""The two ways arrays travel between ranks: NCCL on GPUs, and TCP sockets on the CPU.

Both do the same two collectives, in place, on a list of flat contiguous arrays:

    all_reduce(arrays, op, deadline)   every rank ends with op(array of rank 0, of rank 1, ...)
    broadcast(arrays, root, deadline)  every rank ends with root's arrays

and raise wire.PeerTimeout / wire.PeerGone when a peer is late or gone, or wire.RemoteError
when rank 0 reports a failure. The ProcessGroup turns those into errors that name the rank.
"""

from __future__ import annotations

import time

import numpy as np

from . import wire
from .errors import DistributedError

_COMBINE = {"sum": np.add, "max": np.maximum}


class SocketTransport:
    """The CPU backend: a star through rank 0, for tests and teaching (the role of gloo).

    all-reduce: every rank sends its array to rank 0; rank 0 adds them in rank order,
    ((a0 + a1) + a2) + ..., and sends the result back. Every rank receives the very same
    bytes, so the ranks stay bit-identical. (Rank 0 moves (N-1) arrays each way: fine for
    teaching and tests; NCCL's ring moves about 2 arrays per rank, whatever N.)
    """

    def __init__(self, links):
        self.rank, self.world_size, self.peers = links.rank, links.world_size, links.data

    def all_reduce(self, arrays, op: str, deadline: float) -> None:
        for array in arrays:
            if self.rank == 0:
                incoming = np.empty_like(array)
                for peer in range(1, self.world_size):
                    self._receive(peer, incoming, deadline)
                    _COMBINE[op](array, incoming, out=array)
                for peer in range(1, self.world_size):
                    wire.send_frame(self.peers[peer], b"D", array, peer, deadline)
            else:
                wire.send_frame(self.peers[0], b"D", array, 0, deadline)
                self._receive(0, array, deadline)

    def broadcast(self, arrays, root: int, deadline: float) -> None:
        for array in arrays:
            if self.rank == root and root != 0:
                wire.send_frame(self.peers[0], b"D", array, 0, deadline)
            elif self.rank == 0:
                if root != 0:
                    self._receive(root, array, deadline)
                for peer in range(1, self.world_size):
                    if peer != root:
                        wire.send_frame(self.peers[peer], b"D", array, peer, deadline)
            if self.rank not in (0, root):
                self._receive(0, array, deadline)

    def _receive(self, peer: int, out: np.ndarray, deadline: float) -> None:
        _, length = wire.recv_header(self.peers[peer], peer, deadline)
        if length != out.nbytes:
            raise DistributedError(
                f"rank {peer} sent {length} bytes where rank {self.rank} expected "
                f"{out.nbytes}: the ranks called different collectives, or with different "
                "arrays (every rank must run the same steps on the same model)"
            )
        wire.recv_payload_into(self.peers[peer], out, peer, deadline)

    def abort(self, reason: str) -> None:
        """Rank 0 tells every other rank why it gives up, so each can say so."""
        if self.rank == 0:
            for sock in self.peers.values():
                wire.send_error(sock, reason)


class NcclTransport:
    """The GPU backend: NCCL's collectives through CuPy (cupy.cuda.nccl), on the current stream.

    NCCL runs asynchronously on the GPU; to notice a rank that never joins, each call records
    an event after its collectives and polls it until `deadline`; if the deadline passes,
    the communicator is aborted (ncclCommAbort), which stops the waiting kernels.
    """

    def __init__(self, rank: int, world_size: int, unique_id, cupy):
        from cupy.cuda import nccl

        self.cupy, self.nccl = cupy, nccl
        self.rank, self.world_size = rank, world_size
        self.comm = nccl.NcclCommunicator(world_size, _from_json(unique_id), rank)
        self._types = {
            np.dtype(np.float16): nccl.NCCL_FLOAT16,
            np.dtype(np.float32): nccl.NCCL_FLOAT32,
            np.dtype(np.float64): nccl.NCCL_FLOAT64,
            np.dtype(np.int32): nccl.NCCL_INT32,
            np.dtype(np.int64): nccl.NCCL_INT64,
            np.dtype(np.uint8): nccl.NCCL_UINT8,
        }
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX}

    def all_reduce(self, arrays, op: str, deadline: float) -> None:
        stream = self.cupy.cuda.get_current_stream()
        for a in arrays:
            self.comm.allReduce(
                a.data.ptr, a.data.ptr, a.size, self._type(a), self._ops[op], stream.ptr
            )
        self._wait(stream, deadline)

    def broadcast(self, arrays, root: int, deadline: float) -> None:
        stream = self.cupy.cuda.get_current_stream()
        for a in arrays:
            self.comm.bcast(a.data.ptr, a.size, self._type(a), root, stream.ptr)
        self._wait(stream, deadline)

    def _type(self, array) -> int:
        try:
            return self._types[array.dtype]
        except KeyError:
            raise DistributedError(f"NCCL cannot carry dtype {array.dtype}") from None

    def _wait(self, stream, deadline: float) -> None:
        # Poll instead of synchronize(): a blocking wait could never time out. The event
        # also waits for the backward pass queued before the collectives (tens of ms for a
        # big model), so nap between polls, briefly: each nap may delay the next step.
        done = stream.record()
        while not done.done:
            if time.monotonic() > deadline:
                raise wire.PeerTimeout(-1)  # the board tells which rank is missing
            time.sleep(5e-5)

    def abort(self, reason: str) -> None:
        self.comm.abort()

    def close(self) -> None:
        self.comm.destroy()


def nccl_unique_id() -> dict:
    """A fresh NCCL unique id, JSON-able (rank 0 makes it, the rendezvous hands it out)."""
    from cupy.cuda import nccl

    unique_id = nccl.get_unique_id()  # bytes since CuPy 14, a tuple of 128 chars before
    return {"values": list(unique_id), "bytes": isinstance(unique_id, bytes)}


def _from_json(unique_id: dict):
    """The unique id in the form this CuPy's NcclCommunicator takes (rank 0 has the same)."""
    values = unique_id["values"]
    return bytes(values) if unique_id["bytes"] else tuple(values)
