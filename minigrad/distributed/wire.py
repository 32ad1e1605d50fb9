"""Frames over TCP with a deadline: the few lines every socket in minigrad.distributed uses.

A frame is a kind byte, a length (8 bytes, network order) and that many bytes of payload:

    b"D" data (an array's bytes)   b"H" hello   b"W" welcome   b"E" an error text from rank 0

Every receive and send waits at most until `deadline` (a time.monotonic() value); a peer
that is too slow raises PeerTimeout, one whose connection closed raises PeerGone, so the
caller can name the rank instead of blocking forever.
"""

from __future__ import annotations

import json
import socket
import struct
import time

_HEADER = struct.Struct("!cQ")


class PeerTimeout(Exception):
    """`rank` did not send or receive in time."""

    def __init__(self, rank: int):
        super().__init__(f"rank {rank} did not answer in time")
        self.rank = rank


class PeerGone(Exception):
    """The connection to `rank` closed (its process exited, crashed, or gave up)."""

    def __init__(self, rank: int):
        super().__init__(f"the connection to rank {rank} closed")
        self.rank = rank


class RemoteError(Exception):
    """Rank 0 sent an error frame: the text says what went wrong and where."""


def _wait_at_most(sock: socket.socket, deadline: float) -> None:
    sock.settimeout(max(deadline - time.monotonic(), 1e-3))


def send_frame(sock: socket.socket, kind: bytes, payload, peer: int, deadline: float) -> None:
    view = memoryview(payload).cast("B")
    try:
        _wait_at_most(sock, deadline)
        sock.sendall(_HEADER.pack(kind, view.nbytes))
        sock.sendall(view)
    except TimeoutError:
        raise PeerTimeout(peer) from None
    except OSError:
        raise PeerGone(peer) from None


def _recv_into(sock: socket.socket, view: memoryview, peer: int, deadline: float) -> None:
    got = 0
    try:
        while got < view.nbytes:
            _wait_at_most(sock, deadline)
            n = sock.recv_into(view[got:])
            if n == 0:
                raise PeerGone(peer)
            got += n
    except TimeoutError:
        raise PeerTimeout(peer) from None
    except OSError:
        raise PeerGone(peer) from None


def recv_header(sock: socket.socket, peer: int, deadline: float) -> tuple[bytes, int]:
    """(kind, payload length) of the next frame; an error frame raises RemoteError."""
    header = bytearray(_HEADER.size)
    _recv_into(sock, memoryview(header), peer, deadline)
    kind, length = _HEADER.unpack(header)
    if kind == b"E":
        text = bytearray(length)
        _recv_into(sock, memoryview(text), peer, deadline)
        raise RemoteError(text.decode("utf-8", "replace"))
    return kind, length


def recv_payload_into(sock, out, peer: int, deadline: float) -> None:
    _recv_into(sock, memoryview(out).cast("B"), peer, deadline)


def send_json(sock, kind: bytes, value, peer: int, deadline: float) -> None:
    send_frame(sock, kind, json.dumps(value).encode(), peer, deadline)


def recv_json(sock, kind: bytes, peer: int, deadline: float):
    got, length = recv_header(sock, peer, deadline)
    if got != kind:
        raise PeerGone(peer)  # not minigrad's protocol: treat like a broken connection
    payload = bytearray(length)
    recv_payload_into(sock, payload, peer, deadline)
    return json.loads(payload)


def send_error(sock, text: str) -> None:
    """Best effort: tell a peer why this rank gives up (it may be gone already)."""
    try:
        sock.settimeout(1.0)
        data = text.encode()
        sock.sendall(_HEADER.pack(b"E", len(data)) + data)
    except OSError:
        pass
