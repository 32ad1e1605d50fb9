"""minigrad's launcher: start N copies of a training script, one per GPU, and watch them.

    python -m minigrad.distributed.run --nproc-per-node 2 train.py --epochs 10

It does what `torchrun` does for a script on one machine, with nothing but the standard
library: each copy gets the variables init_process_group() reads,

    RANK=node_rank*N+i  WORLD_SIZE=nnodes*N  LOCAL_RANK=i  LOCAL_WORLD_SIZE=N
    MASTER_ADDR  MASTER_PORT  MINIGRAD_PORT  (free ports on this machine when not given)
    OMP_NUM_THREADS=1 with several processes, unless it is set (as torchrun does)

and the rest of the environment as it is (NCCL_* settings pass through untouched). Then:

- a signal to the launcher (Ctrl-C, SIGTERM) is passed on to every rank;
- when a rank fails (exits non-zero or is killed), the launcher stops the others (SIGTERM,
  then SIGKILL after --grace seconds) and exits non-zero, naming the rank;
- when every rank exits 0, so does the launcher.

On several machines, run it once per machine with the same --nnodes, --master-addr and
--master-port, and --node-rank 0, 1, ... (see docs/distributed.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

NAME = "minigrad.distributed.run"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=f"python -m {NAME}",
        description="Start N copies of a training script with RANK, WORLD_SIZE, LOCAL_RANK, "
        "MASTER_ADDR and MASTER_PORT set, as torchrun does.",
    )
    parser.add_argument(
        "--nproc-per-node",
        "--nproc_per_node",
        type=int,
        default=1,
        help="processes on this machine: one per GPU (default 1)",
    )
    parser.add_argument("--nnodes", type=int, default=1, help="machines in the job (default 1)")
    parser.add_argument(
        "--node-rank",
        "--node_rank",
        type=int,
        default=0,
        help="this machine's number, 0..nnodes-1 (default 0)",
    )
    parser.add_argument(
        "--master-addr",
        "--master_addr",
        default="127.0.0.1",
        help="address of the machine that runs rank 0 (default 127.0.0.1)",
    )
    parser.add_argument(
        "--master-port",
        "--master_port",
        type=int,
        default=None,
        help="its port (default: a free one on one machine, 29500 on several)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when stopping ranks",
    )
    parser.add_argument("script", help="the training script")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    if args.nproc_per_node < 1 or args.nnodes < 1:
        parser.error("--nproc-per-node and --nnodes must be >= 1")
    if not 0 <= args.node_rank < args.nnodes:
        parser.error(f"--node-rank must be in 0..{args.nnodes - 1}")
    return args


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def rank_environments(args, base: dict) -> list[dict]:
    """The environment of each local rank: `base` plus the variables torchrun would set."""
    single_machine = args.nnodes == 1
    master_port = args.master_port or (free_port() if single_machine else 29500)
    shared = {
        "WORLD_SIZE": str(args.nnodes * args.nproc_per_node),
        "LOCAL_WORLD_SIZE": str(args.nproc_per_node),
        "MASTER_ADDR": args.master_addr,
        "MASTER_PORT": str(master_port),
    }
    if args.nproc_per_node > 1 and "OMP_NUM_THREADS" not in base:
        # As torchrun: N processes each running as many BLAS threads as there are cores
        # would fight over the cores (and spin-waiting BLAS threads make that very slow).
        shared["OMP_NUM_THREADS"] = "1"
    if single_machine and "MINIGRAD_PORT" not in base and args.master_port is None:
        shared["MINIGRAD_PORT"] = str(free_port())  # else: MASTER_PORT + 1 (env.py)
    envs = []
    for local_rank in range(args.nproc_per_node):
        env = dict(base, **shared)
        env["RANK"] = str(args.node_rank * args.nproc_per_node + local_rank)
        env["LOCAL_RANK"] = str(local_rank)
        envs.append(env)
    return envs


class Launcher:
    """The running ranks: start them, pass signals on, stop them all when one fails."""

    def __init__(self, command: list[str], envs: list[dict], grace: float):
        self.grace = grace
        self.signalled: int | None = None
        self.procs = [subprocess.Popen(command, env=env) for env in envs]
        self.ranks = [int(env["RANK"]) for env in envs]
        self._rank_of = {proc.pid: rank for proc, rank in zip(self.procs, self.ranks)}
        self._order: list[int] = []  # ranks in the order they ended

    def forward(self, signum, _frame=None) -> None:
        self.signalled = signum
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self) -> int:
        """Wait for the ranks; the launcher's exit code."""
        while True:
            self._next_exit()
            codes = [proc.poll() for proc in self.procs]
            failed = [(r, code) for r, code in zip(self.ranks, codes) if code not in (None, 0)]
            if failed:
                rank, code = min(failed, key=lambda f: self._order.index(f[0]))
                running = sum(code is None for code in codes)
                if self.signalled is None:
                    print(
                        f"{NAME}: rank {rank} {describe_exit(code)}; stopping the other "
                        f"{running} running rank(s)",
                        file=sys.stderr,
                        flush=True,
                    )
                self.stop()
                if self.signalled is not None:
                    return 128 + self.signalled
                return code if 0 < code < 256 else 1
            if all(code == 0 for code in codes):
                return 0

    def _next_exit(self) -> None:
        """Block until a rank ends (or a signal comes), and note the order ranks end in, so
        that the rank that failed first is the one named (the others may fail because of it)."""
        if hasattr(os, "waitid"):
            try:  # WNOWAIT: leave the ended child for Popen to collect
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                info = None
            rank = self._rank_of.get(info.si_pid) if info is not None else None
            if rank is not None and rank not in self._order:
                self.procs[self.ranks.index(rank)].wait()
                self._order.append(rank)
        else:
            time.sleep(0.05)
        for rank, proc in zip(self.ranks, self.procs):
            if proc.poll() is not None and rank not in self._order:
                self._order.append(rank)

    def stop(self) -> None:
        """SIGTERM to every rank still running; SIGKILL to those alive `grace` s later."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + self.grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = [sys.executable, args.script, *args.script_args]
    launcher = Launcher(command, rank_environments(args, dict(os.environ)), args.grace)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, launcher.forward)
    return launcher.wait()


if __name__ == "__main__":
    sys.exit(main())
