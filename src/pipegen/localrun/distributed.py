"""A multi-node step (`distributed:`) on this machine: N node processes on 127.0.0.1, as a cluster would start them.

Each node gets what the Kubernetes objects give a pod (pipegen.k8s.distributed): NNODES, NODE_RANK,
NPROC_PER_NODE, MASTER_ADDR (127.0.0.1) and MASTER_PORT (a free port), and the step's environment, the MLflow run's
variables among them (every rank sees MLFLOW_RUN_ID: only global rank 0 should log to it). With launcher `torchrun`
each node runs the torch-free stand-in `python -m pipegen.localrun.launcher` (pipegen.localrun.launcher), which
meets the other nodes at MASTER_ADDR:MASTER_PORT and starts procs_per_node workers with the variables torchrun gives
its workers; with launcher `none` each node runs the command itself. The first node to fail stops the others and
fails the step; the step's timeout, or an interrupt of the run, stops every node.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from pipegen.localrun.outcome import StepFailed, Stop
from pipegen.resolve import ResolvedStep
from pipegen.runtime.redacted_output import run_redacted
from pipegen.spec import procs_per_node_of

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (node 0 binds it for the rendezvous a moment later)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def node_argvs(step: ResolvedStep, command: list[str], port: int, run_id: str) -> list[list[str]]:
    """The command line of each node process, in node rank order."""
    dist = step.body.distributed
    resources = step.body.resources
    procs = procs_per_node_of(dist, resources.gpu if resources is not None else None)
    if dist.launcher == "none":
        return [list(command) for _ in range(dist.nodes)]
    launcher = [sys.executable, "-m", "pipegen.localrun.launcher", "--nnodes", str(dist.nodes)]
    launcher += ["--nproc-per-node", str(procs), "--master-addr", LOCALHOST, "--master-port", str(port)]
    launcher += ["--run-id", run_id]
    return [[*launcher, "--node-rank", str(rank), "--", *command] for rank in range(dist.nodes)]


def node_env(step: ResolvedStep, rank: int, port: int) -> dict[str, str]:
    """The rendezvous variables of node `rank`, as pipegen.k8s.distributed gives them to pod `rank`."""
    dist = step.body.distributed
    resources = step.body.resources
    return {
        "NNODES": str(dist.nodes),
        "NODE_RANK": str(rank),
        "NPROC_PER_NODE": str(procs_per_node_of(dist, resources.gpu if resources is not None else None)),
        "MASTER_ADDR": LOCALHOST,
        "MASTER_PORT": str(port),
    }


def run_nodes(
    step: ResolvedStep,
    command: list[str],
    env: Mapping[str, str],
    cwd: str | None,
    log_path: Path,
    stop: Stop,
    run_id: str,
) -> None:
    """Run every node of the step to the end; StepFailed naming the first node that failed, or the timeout."""
    port = free_port()
    argvs = node_argvs(step, command, port, run_id)
    halt = threading.Event()  # set: every node is ended (one failed, the timeout passed, the run was interrupted)
    failures: list[tuple[int, int]] = []  # (node rank, exit code) in the order they ended
    lock = threading.Lock()

    def node(rank: int, argv: list[str], log: BinaryIO) -> None:
        try:
            code = run_redacted(argv, cwd=cwd, env={**env, **node_env(step, rank, port)}, output=log, stop=halt)
        except FileNotFoundError:
            code = 127
        if code != 0:
            with lock:
                failures.append((rank, code))
            halt.set()

    timeout = step.policy.timeout
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        started = time.monotonic()
        threads = [
            threading.Thread(target=node, args=(rank, argv, log), daemon=True) for rank, argv in enumerate(argvs)
        ]
        for thread in threads:
            thread.start()
        timed_out = False
        while any(t.is_alive() for t in threads):
            if stop.is_set() or (timeout is not None and time.monotonic() - started >= timeout):
                timed_out = not stop.is_set()
                halt.set()
            time.sleep(0.05)
        for thread in threads:
            thread.join()
    first = failures[0] if failures else None
    timing = {
        "exit_code": first[1] if first else 0,
        "seconds": round(time.monotonic() - started, 3),
        "nodes": len(argvs),
    }
    log_path.with_suffix(".command.json").write_text(json.dumps(timing) + "\n")
    stop.check()  # the run was interrupted: the nodes were ended for that, not by their own failure
    if timed_out:
        raise StepFailed(f"timed out after {timeout}s: every node was stopped (log: {log_path})")
    if first is not None:
        from pipegen.localrun.jobs import last_line

        said = last_line(log_path)[:200]
        raise StepFailed(
            f"node {first[0]} of {len(argvs)} exited with code {first[1]}; every node was stopped"
            f"{': ' + said if said else ''} (log: {log_path})"
        )
