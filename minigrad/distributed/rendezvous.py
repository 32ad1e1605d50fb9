"""Rendezvous: how N processes find each other, and how they tell which one is missing.

Rank 0 listens on (MASTER_ADDR, port); every other rank connects to it twice:

    data     the CPU backend's arrays travel here; at start, rank 0's welcome (with NCCL's
             unique id, the 128 bytes every NCCL rank needs to join the same communicator)
    control  one short line each time the rank enters a collective ("S 17"): rank 0 keeps a
             board of how far every rank has got, and answers "Q" with that board

When a collective times out, the rank that noticed asks the board: a rank whose count is
behind has not reached the collective (hung, or slower than the timeout); a rank whose
control connection closed is gone. That is how the error can name the rank.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from . import wire
from .env import LaunchEnv
from .errors import DistributedError


class Links:
    """The sockets of one rank after the rendezvous, and its view of everyone's progress."""

    def __init__(self, rank: int, world_size: int, data: dict, progress, welcome: dict):
        self.rank = rank
        self.world_size = world_size
        self.data = data  # peer rank -> socket (rank 0: every other rank; others: {0: ...})
        self.progress = progress  # ProgressBoard on rank 0, ProgressReporter elsewhere
        self.welcome = welcome  # what rank 0 sent every rank at the start

    def close(self) -> None:
        self.progress.close()
        for sock in self.data.values():
            sock.close()


def connect(env: LaunchEnv, timeout: float, welcome=None) -> Links:
    """Meet the other ranks within `timeout` seconds. `welcome` (rank 0 only): a function
    returning a JSON-able dict sent to every rank once all have arrived."""
    deadline = time.monotonic() + timeout
    if env.rank == 0:
        return _serve(env, deadline, welcome or dict)
    return _join(env, deadline)


# ---------------------------------------------------------------- rank 0
def _serve(env: LaunchEnv, deadline: float, welcome) -> Links:
    try:
        server = socket.create_server(("", env.port))
    except OSError as exc:
        raise DistributedError(
            f"rank 0 cannot listen on port {env.port} ({exc}): set MINIGRAD_PORT to a free "
            "port (minigrad uses MINIGRAD_PORT, else MASTER_PORT + 1)"
        ) from None
    data: dict[int, socket.socket] = {}
    control: dict[int, socket.socket] = {}
    try:
        while len(data) + len(control) < 2 * (env.world_size - 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [r for r in range(1, env.world_size) if r not in data or r not in control]
                raise DistributedError(
                    f"rank 0 waited for the other ranks on port {env.port}; ranks {missing} "
                    "never joined (did they start? do they see MASTER_ADDR and the same port?)"
                )
            server.settimeout(remaining)
            try:
                sock, _ = server.accept()
            except TimeoutError:
                continue
            _tune(sock)
            try:
                hello = wire.recv_json(sock, b"H", -1, deadline)
            except (wire.PeerGone, wire.PeerTimeout, ValueError):
                sock.close()  # not one of ours (a port scanner, a stale client): ignore it
                continue
            problem = _check_hello(hello, env, data, control)
            if problem:
                wire.send_error(sock, problem)
                sock.close()
                raise DistributedError(problem)
            (data if hello["channel"] == "data" else control)[hello["rank"]] = sock
    except BaseException:
        for sock in [*data.values(), *control.values()]:
            sock.close()
        raise
    finally:
        server.close()
    message = welcome()
    for rank, sock in data.items():
        wire.send_json(sock, b"W", message, rank, deadline)
    board = ProgressBoard(env.world_size, control)
    return Links(0, env.world_size, data, board, message)


def _check_hello(hello, env: LaunchEnv, data: dict, control: dict) -> str | None:
    if not isinstance(hello, dict) or hello.get("channel") not in ("data", "control"):
        return f"rank 0 got a malformed hello: {hello!r}"
    rank, world = hello.get("rank"), hello.get("world_size")
    if world != env.world_size:
        return (
            f"rank {rank} says WORLD_SIZE={world}, rank 0 says {env.world_size}: every "
            "process must be started with the same WORLD_SIZE"
        )
    if not isinstance(rank, int) or not 0 < rank < env.world_size:
        return f"a process joined with RANK={rank!r}; expected 1..{env.world_size - 1}"
    if rank in (data if hello["channel"] == "data" else control):
        return f"two processes joined as RANK={rank}: every process needs its own RANK"
    return None


# ---------------------------------------------------------------- every other rank
def _join(env: LaunchEnv, deadline: float) -> Links:
    data = _dial(env, "data", deadline)
    control = _dial(env, "control", deadline)
    try:
        message = wire.recv_json(data, b"W", 0, deadline)
    except wire.RemoteError as exc:
        raise DistributedError(f"rank 0 refused rank {env.rank}: {exc}") from None
    except (wire.PeerGone, wire.PeerTimeout):
        raise DistributedError(
            f"rank {env.rank} reached rank 0 at {env.master_addr}:{env.port}, but the other "
            "ranks did not all join in time"
        ) from None
    return Links(env.rank, env.world_size, {0: data}, ProgressReporter(control), message)


def _dial(env: LaunchEnv, channel: str, deadline: float) -> socket.socket:
    """Connect to rank 0, retrying until `deadline` (rank 0 may start after us)."""
    while True:
        try:
            sock = socket.create_connection((env.master_addr, env.port), timeout=5.0)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"rank {env.rank} could not reach rank 0 at {env.master_addr}:{env.port} "
                    f"({exc}): is rank 0 running, and is MASTER_ADDR its address?"
                ) from None
            time.sleep(0.05)
    _tune(sock)
    hello = {"channel": channel, "rank": env.rank, "world_size": env.world_size}
    wire.send_json(sock, b"H", hello, 0, deadline)
    return sock


def _tune(sock: socket.socket) -> None:
    # Small messages (a progress line, a hello) should leave at once, not wait for more.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---------------------------------------------------------------- who is behind?
class ProgressBoard:
    """Rank 0's board: how many collectives each rank has entered, and who is gone.

    One thread per control connection reads that rank's lines ("S <n>" progress, "Q" a
    question, "B" goodbye); they keep answering while rank 0's own training code is busy.
    """

    def __init__(self, world_size: int, control: dict):
        self._lock = threading.Lock()
        self.entered = dict.fromkeys(range(world_size), 0)
        self.state = dict.fromkeys(range(world_size), "running")
        self._sockets = control
        for rank, sock in control.items():
            threading.Thread(target=self._listen, args=(rank, sock), daemon=True).start()

    def report(self, count: int) -> None:
        with self._lock:
            self.entered[0] = count

    def snapshot(self) -> dict:
        with self._lock:
            return {"entered": dict(self.entered), "state": dict(self.state)}

    def _listen(self, rank: int, sock: socket.socket) -> None:
        sock.settimeout(None)
        state = "gone"
        try:
            for line in sock.makefile("rb"):
                if line.startswith(b"S "):
                    with self._lock:
                        self.entered[rank] = int(line[2:])
                elif line.startswith(b"Q"):
                    sock.sendall(json.dumps(self.snapshot()).encode() + b"\n")
                elif line.startswith(b"B"):
                    state = "left"
                    break
        except (OSError, ValueError):
            pass
        with self._lock:
            self.state[rank] = state

    def close(self) -> None:
        for sock in self._sockets.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class ProgressReporter:
    """Another rank's end of the control connection: reports progress, asks the board."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._lines = sock.makefile("rb")

    def report(self, count: int) -> None:
        try:
            self._sock.settimeout(5.0)
            self._sock.sendall(b"S %d\n" % count)
        except OSError:
            pass  # rank 0 is gone: the collective itself will find out and say so

    def snapshot(self, timeout: float = 5.0) -> dict | None:
        """The board, or None when rank 0 does not answer (gone, or hung holding its GIL)."""
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(b"Q\n")
            line = self._lines.readline()
            board = json.loads(line)
        except (OSError, ValueError):
            return None
        return {key: {int(r): v for r, v in value.items()} for key, value in board.items()}

    def close(self) -> None:
        try:
            self._sock.settimeout(1.0)
            self._sock.sendall(b"B\n")
        except OSError:
            pass
        self._lines.close()
        self._sock.close()


def describe_missing(me: int, count: int, board: dict | None) -> str:
    """Who kept collective #count from finishing, in words, from rank `me`'s point of view."""
    if board is None:
        return "rank 0 does not answer (its process is gone, or hung)"
    reasons = []
    for rank in sorted(board["state"]):
        if rank == me:
            continue
        state, entered = board["state"][rank], board["entered"][rank]
        if state == "gone":
            reasons.append(f"rank {rank} is gone (its connection closed: did it exit or crash?)")
        elif state == "left":
            reasons.append(f"rank {rank} has left the group (destroy_process_group)")
        elif entered < count:
            reasons.append(
                f"rank {rank} has not reached it (it entered {entered} collectives so far): "
                "it is hung, or slower than the timeout"
            )
    if not reasons:
        return "every rank entered it, yet it did not finish: the transport is stuck"
    return "; ".join(reasons)
