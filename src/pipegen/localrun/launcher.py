"""A torch-free stand-in for `torchrun` on one node of a `pipegen run` (python -m pipegen.localrun.launcher).

It does what torchrun's agent does for a fixed-size job with static rendezvous (`torchrun --nnodes N
--nproc-per-node P --node-rank R --master-addr A --master-port M --max-restarts 0 --no-python CMD...`): it waits until
every node has joined at MASTER_ADDR:MASTER_PORT (node 0 listens), then starts P workers running CMD, each with the
variables torchrun's LocalElasticAgent gives its workers (torch/distributed/elastic/agent/server/
local_elastic_agent.py, `_start_workers`): LOCAL_RANK, RANK, GROUP_RANK, ROLE_RANK, ROLE_NAME, LOCAL_WORLD_SIZE,
WORLD_SIZE, GROUP_WORLD_SIZE, ROLE_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT,
TORCHELASTIC_MAX_RESTARTS, TORCHELASTIC_RUN_ID, TORCHELASTIC_USE_AGENT_STORE, TORCH_NCCL_ASYNC_ERROR_HANDLING, and
OMP_NUM_THREADS (torchrun's run.py sets it to 1 when it starts more than one worker per node and it is unset).
A worker that exits non-zero stops the others and the node exits with its code, as torchrun does with no restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

# How long nodes wait for each other to join (torchrun's default rendezvous join timeout is 600 s).
JOIN_TIMEOUT_SECONDS = 600.0
# After a worker fails, how long the others get to exit on SIGTERM before SIGKILL.
GRACE_SECONDS = 10.0


def worker_env(
    *, nnodes: int, nproc: int, node_rank: int, local_rank: int, master_addr: str, master_port: int, run_id: str
) -> dict[str, str]:
    """The variables torchrun sets for one worker (one role, 'default', no restarts)."""
    world = nnodes * nproc
    rank = node_rank * nproc + local_rank
    env = {
        "LOCAL_RANK": str(local_rank),
        "RANK": str(rank),
        "GROUP_RANK": str(node_rank),
        "ROLE_RANK": str(rank),
        "ROLE_NAME": "default",
        "LOCAL_WORLD_SIZE": str(nproc),
        "WORLD_SIZE": str(world),
        "GROUP_WORLD_SIZE": str(nnodes),
        "ROLE_WORLD_SIZE": str(world),
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "TORCHELASTIC_RESTART_COUNT": "0",
        "TORCHELASTIC_MAX_RESTARTS": "0",
        "TORCHELASTIC_RUN_ID": run_id,
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "TORCH_NCCL_ASYNC_ERROR_HANDLING": os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
    }
    if "OMP_NUM_THREADS" in os.environ:
        env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
    elif nproc > 1:
        env["OMP_NUM_THREADS"] = "1"
    return env


def rendezvous(nnodes: int, node_rank: int, addr: str, port: int, timeout: float = JOIN_TIMEOUT_SECONDS) -> None:
    """Block until all nodes have joined: node 0 accepts the others at addr:port, then releases them together."""
    if nnodes == 1:
        return
    deadline = time.monotonic() + timeout
    if node_rank == 0:
        with socket.create_server((addr, port)) as server:
            server.settimeout(max(0.1, deadline - time.monotonic()))
            peers: list[socket.socket] = []
            try:
                while len(peers) < nnodes - 1:
                    conn, _ = server.accept()
                    conn.recv(16)  # the joining node's rank (only its arrival counts)
                    peers.append(conn)
                for conn in peers:
                    conn.sendall(b"go\n")
            finally:
                for conn in peers:
                    conn.close()
        return
    while True:
        try:
            with socket.create_connection((addr, port), timeout=max(0.1, deadline - time.monotonic())) as conn:
                conn.sendall(f"{node_rank}\n".encode())
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                if conn.recv(16).startswith(b"go"):
                    return
                raise ConnectionError("node 0 closed the rendezvous")
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"node 0 did not open the rendezvous at {addr}:{port}") from None
            time.sleep(0.1)


def run_workers(command: Sequence[str], envs: Sequence[dict[str, str]]) -> int:
    """Start one worker per env; the first non-zero exit stops the rest and is returned (0 when all succeed).

    Each worker's output is copied line by line, prefixed with its global rank (as torchrun's --tee prefixes it),
    so the lines of workers sharing this node's output stay whole.
    """
    workers = []
    copiers = []
    lock = threading.Lock()
    for env in envs:
        worker = subprocess.Popen(
            list(command), env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        workers.append(worker)
        copier = threading.Thread(target=_copy, args=(worker, f"[rank{env['RANK']}]: ".encode(), lock), daemon=True)
        copier.start()
        copiers.append(copier)
    try:
        return _wait(workers)
    finally:
        for copier in copiers:
            copier.join(5.0)


def _copy(worker: subprocess.Popen[bytes], prefix: bytes, lock: threading.Lock) -> None:
    assert worker.stdout is not None
    out = sys.stdout.buffer
    for line in iter(worker.stdout.readline, b""):
        with lock:
            out.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
            out.flush()
    worker.stdout.close()


def _wait(workers: Sequence[subprocess.Popen[bytes]]) -> int:
    # SIGTERM (the step ended from outside) stops the workers first, as torchrun's agent does.
    def stop_all(signum: int, _frame: object) -> None:
        _terminate(workers)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop_all)
    try:
        while True:
            codes = [w.poll() for w in workers]
            failed = next((c for c in codes if c not in (None, 0)), None)
            if failed is not None:
                _terminate(workers)
                return failed
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.05)
    except KeyboardInterrupt:
        _terminate(workers)
        return 130


def _terminate(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for w in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.wait(timeout=max(0.0, deadline - time.monotonic()))
        if w.poll() is None:
            w.kill()
            w.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Rendezvous with the other nodes, run this node's workers, exit with the first failure's code."""
    parser = argparse.ArgumentParser(prog="python -m pipegen.localrun.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--nnodes", type=int, required=True)
    parser.add_argument("--nproc-per-node", type=int, required=True)
    parser.add_argument("--node-rank", type=int, required=True)
    parser.add_argument("--master-addr", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, required=True)
    parser.add_argument("--run-id", default="none")  # torchrun's default --rdzv-id
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    try:
        rendezvous(args.nnodes, args.node_rank, args.master_addr, args.master_port)
    except (OSError, TimeoutError) as exc:
        print(f"pipegen launcher: node {args.node_rank}: rendezvous failed: {exc}", file=sys.stderr, flush=True)
        return 1
    envs = [
        worker_env(
            nnodes=args.nnodes,
            nproc=args.nproc_per_node,
            node_rank=args.node_rank,
            local_rank=local,
            master_addr=args.master_addr,
            master_port=args.master_port,
            run_id=args.run_id,
        )
        for local in range(args.nproc_per_node)
    ]
    try:
        return run_workers(command, envs)
    except FileNotFoundError:
        print(f"pipegen launcher: command not found: {command[0]}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main())
