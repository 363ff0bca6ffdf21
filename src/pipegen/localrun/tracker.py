"""How a local run reaches MLflow: through the tracking worker, so that this process never imports `mlflow`.

Importing MLflow costs seconds, and opening a sqlite store as many again (creating a new one, minutes of
alembic migrations on a busy machine). A run of a spec with MLflow steps asks for the worker as soon as it
starts, so the worker warms up while the spec's first steps run, and holds a lease on it until the end.

- A local sqlite store: the worker outlives the run, for `PIPEGEN_RUN_WORKER_IDLE` seconds (default 300)
  after the last run ends, and the next run in the same directory, with the same store, the same pipegen and
  the same MLFLOW_* settings, finds it warm. The store is a file, so nothing else in the environment
  changes what the worker does.
- Any other store (a tracking server): a worker of this run only, with this run's environment (credentials),
  gone when the run ends.
- `PIPEGEN_RUN_WORKER_IDLE=0`, or a platform without fork and unix sockets: the runtime in this process.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from pipegen.localrun import worker
from pipegen.runtime.errors import RuntimeFailure

IDLE_ENV = "PIPEGEN_RUN_WORKER_IDLE"
DEFAULT_IDLE = 300.0
_START_TIMEOUT = 60.0
_PACKAGE = Path(__file__).resolve().parent.parent


class Tracker(Protocol):
    """Runs one of the runtime's MLflow actions (start_run, close_run, evaluate, promote)."""

    def call(self, action: str, **kwargs: Any) -> dict[str, Any]:
        """The action's result; its failure raised as the runtime raised it."""
        ...

    def close(self) -> None:
        """The run has ended."""
        ...


class InProcess:
    """The runtime's actions called in this process (imports MLflow on first use)."""

    def call(self, action: str, **kwargs: Any) -> dict[str, Any]:
        """Call the runtime function directly."""
        result: dict[str, Any] = worker._actions()[action](**kwargs)
        return result

    def close(self) -> None:
        """Nothing to release."""


class RemoteError(Exception):
    """A failure the worker reported; the subclass carries the original exception's type name."""


_remote_types: dict[str, type[RemoteError]] = {}


def _remote(type_name: str, message: str) -> Exception:
    if type_name == "RuntimeFailure":
        return RuntimeFailure(message)
    # A step's failure reads "<type>: <message>": the worker's failure reads as the in-process one did.
    cls = _remote_types.setdefault(type_name, type(type_name, (RemoteError,), {}))
    return cls(message)


class WorkerTracker:
    """A client of the tracking worker for one run: a lease held open, one connection per call."""

    def __init__(self, cwd: Path, uri: str, idle: float) -> None:
        self.cwd = cwd
        self.uri = uri
        persistent = uri.startswith("sqlite:")
        self.idle = idle if persistent else 0.0
        # A worker for another store holds this run's credentials: it is this run's alone.
        self.socket_path = _socket_path(cwd, uri, [] if persistent else [os.getpid(), secrets.token_hex(8)])
        self.lock_path = self.socket_path.with_suffix(".lock")
        self.log_path = self.socket_path.with_suffix(".log")
        self._lease: socket.socket | None = None
        self._leasing = threading.Lock()
        with contextlib.suppress(RuntimeFailure, OSError):
            self.lease()  # a worker that cannot start fails the first step that calls it, saying why

    def lease(self) -> None:
        """Hold the worker for this run (starting it when no worker answers); it warms up meanwhile."""
        self._ensure()
        lease = self._connect()
        if lease is not None:
            lease.sendall(json.dumps({"action": worker.LEASE}).encode() + b"\n")
        self._lease = lease

    def call(self, action: str, **kwargs: Any) -> dict[str, Any]:
        """Run the action in the worker; its log records are logged here, in the calling thread."""
        request = json.dumps({"action": action, "kwargs": kwargs}).encode() + b"\n"
        for attempt in range(3):
            lease_seen = self._lease
            conn = self._connect()
            if conn is None:  # the worker ended (idle, killed): start another and ask it
                self._ensure()
                continue
            with conn, contextlib.suppress(ConnectionResetError, BrokenPipeError), conn.makefile("rwb") as stream:
                stream.write(request)
                stream.flush()
                for line in stream:
                    message = json.loads(line)
                    if message.get("stale"):  # its store was deleted: a new worker, leased, for the new one
                        break
                    if "log" in message:
                        record = message["log"]
                        logging.getLogger(record["name"]).log(record["level"], "%s", record["message"])
                    elif "error" in message:
                        raise _remote(message["error"]["type"], message["error"]["message"])
                    else:
                        result: dict[str, Any] = message["result"]
                        return result
            # Closed before it answered (it was ending as this run asked), or its store is gone: once more.
            if attempt < 2:
                with self._leasing:  # steps side by side may all find it gone: one new lease is enough
                    if self._lease is lease_seen:
                        self.close()
                        self.lease()
        raise RuntimeFailure(f"the MLflow worker of this run ended without an answer to {action}; {self._log_tail()}")

    def close(self) -> None:
        """Release the lease: the worker's idle time starts (a worker of this run only ends now)."""
        if self._lease is not None:
            self._lease.close()
            self._lease = None

    def _connect(self) -> socket.socket | None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(self.socket_path))
        except OSError as exc:
            conn.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                return None
            raise
        return conn

    def _ensure(self) -> None:
        """Start the worker unless one answers; one run starts it while any other waits on the lock."""
        probe = self._connect()
        if probe is not None:
            probe.close()
            return
        import fcntl  # POSIX only, like fork: tracker_for uses no worker where there is none

        with self.lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            probe = self._connect()
            if probe is not None:
                probe.close()
                return
            env = {k: v for k, v in os.environ.items() if not (self.idle and k.startswith("PIPEGEN_SECRET_"))}
            with self.log_path.open("ab") as log:
                # The launched process forks the worker off and exits at once: nothing here to reap later.
                subprocess.run(
                    [sys.executable, "-m", "pipegen.localrun.worker", str(self.socket_path), self.uri, str(self.idle)],
                    cwd=self.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    check=True,
                )
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline:
                probe = self._connect()
                if probe is not None:
                    probe.close()
                    return
                time.sleep(0.01)
        raise RuntimeFailure(f"the MLflow worker did not start within {_START_TIMEOUT:.0f} s; {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return f"its log ({self.log_path}) ends: {lines[-1]}" if lines else f"its log: {self.log_path}"


def tracker_for(cwd: Path, uri: str) -> Tracker:
    """The tracker of a run in cwd with tracking URI uri (see the module's docstring)."""
    try:
        idle = float(os.environ.get(IDLE_ENV, DEFAULT_IDLE))
    except ValueError:
        idle = DEFAULT_IDLE
    if idle <= 0 or not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX"):
        return InProcess()
    return WorkerTracker(cwd, uri, idle)


def worker_pid(cwd: Path, uri: str) -> int | None:
    """The process id of the persistent worker of a directory and store, if one runs (it answers once warm)."""
    return _ask(_socket_path(cwd, uri, []), worker.PID)


def stop_worker(cwd: Path, uri: str) -> int | None:
    """Stop the persistent worker of a directory and store, if one runs; its process id."""
    return _ask(_socket_path(cwd, uri, []), worker.STOP)


def _ask(path: Path, action: str) -> int | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    with conn, conn.makefile("rwb") as stream:
        stream.write(json.dumps({"action": action}).encode() + b"\n")
        stream.flush()
        line = stream.readline()
    return int(json.loads(line)["result"]["pid"]) if line else None


def _socket_path(cwd: Path, uri: str, nonce: list[Any]) -> Path:
    """Where the worker for this directory, store, code and MLFLOW_* settings listens."""
    # MLflow's settings may change what the store does; its log level (which `pipegen run` sets) does not.
    mlflow_env = sorted(
        (k, v) for k, v in os.environ.items() if k.startswith("MLFLOW_") and k != "MLFLOW_LOGGING_LEVEL"
    )
    key = json.dumps([sys.executable, str(cwd.resolve()), uri, _fingerprint(), mlflow_env, *nonce])
    return _private_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.sock"


def _fingerprint() -> list[Any]:
    """What the worker's code is: a worker of older pipegen or MLflow code is not reused (an edit, an upgrade)."""
    files = sorted([*(_PACKAGE / "runtime").glob("*.py"), *(_PACKAGE / "localrun").glob("*.py")])
    spec = importlib.util.find_spec("mlflow")
    if spec is not None and spec.origin:
        files.append(Path(spec.origin))
    marks: list[Any] = []
    for path in files:
        with contextlib.suppress(OSError):
            st = path.stat()
            marks.append([path.name, st.st_mtime_ns, st.st_size])
    return marks


def _private_dir() -> Path:
    """A directory only this user can enter: the worker's socket answers whoever can reach it."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    home = Path(base) / f"pipegen-{os.getuid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    st = home.stat()
    if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise RuntimeFailure(f"{home} must belong to this user alone (mode 700) to hold pipegen's worker socket")
    return home
