"""The tracking worker of `pipegen run`: one process that holds MLflow imported and the store open.

`python -m pipegen.localrun.worker SOCKET URI IDLE` detaches (fork, new session: a Ctrl-C in the terminal
is not for it), listens on the unix socket SOCKET, imports MLflow and opens (creating or migrating once) the
store at URI, then runs the runtime's MLflow actions for every `pipegen run` that asks. Importing MLflow and
opening a sqlite store take seconds; a run that finds the worker of an earlier run pays neither.

Protocol, one request per connection: the client sends one JSON line {"action": NAME, "kwargs": {...}} and
reads JSON lines back: {"log": {...}} for each record the runtime logged meanwhile, then {"result": ...} or
{"error": {"type": ..., "message": ...}}, or {"stale": true} when the sqlite file it opened is gone (the
run then starts a new worker). A "lease" request is held open by a run for its whole length: the
worker counts idle time (IDLE seconds, then it exits) only while no run holds a lease.

Only the standard library is imported before the fork, so the launching run waits milliseconds for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

LEASE = "lease"
STOP = "stop"
PID = "pid"  # which process answers; unlike a run's requests, it does not restart the idle clock
RUNTIME_LOGGER = "pipegen.runtime"


def _actions() -> dict[str, Callable[..., Any]]:
    """The runtime functions a local run calls with the tracking store, exactly as every target calls them."""
    from pipegen.runtime.evaluate import evaluate
    from pipegen.runtime.promote import promote
    from pipegen.runtime.start_run import close_run, start_run

    return {"start_run": start_run, "close_run": close_run, "evaluate": evaluate, "promote": promote}


class _Forward(logging.Handler):
    """Sends each runtime log record to the connection whose request the logging thread is serving."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sinks: dict[int, Callable[[dict[str, Any]], None]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record to its request's client, if any."""
        sink = self.sinks.get(record.thread or 0)
        if sink is not None:
            with contextlib.suppress(OSError):
                sink({"log": {"name": record.name, "level": record.levelno, "message": record.getMessage()}})


class Worker:
    """The accept loop: a thread per connection, a lease count, and the idle clock."""

    def __init__(self, listener: socket.socket, path: str, uri: str, idle: float) -> None:
        self.listener = listener
        self.path = path
        self.uri = uri
        self.idle = idle
        self.db: str | None = None  # the sqlite file, once open: a run must not write into a deleted one
        self.db_id: tuple[int, int] | None = None
        self.actions = _actions()
        self.forward = _Forward()
        self._lock = threading.Lock()
        self._busy = 0  # leases held and requests running
        self._last = time.monotonic()
        self._stopping = threading.Event()

    def warm(self) -> None:
        """Import MLflow and open the tracking and registry stores once (a new sqlite DB is migrated here)."""
        from pipegen.localrun.store_seed import seed
        from pipegen.runtime.tracking import client

        db = _sqlite_file(self.uri)
        if db is not None:
            seed(db)  # a new store: a copy of one migrated before, not every migration again
        c = client(self.uri)
        c.search_experiments(max_results=1)
        c.search_registered_models(max_results=1)
        self.db = _sqlite_file(self.uri)
        self.db_id = _file_id(self.db)

    def serve(self) -> None:
        """Answer requests until idle for self.idle seconds with no lease held, or told to stop."""
        logger = logging.getLogger(RUNTIME_LOGGER)
        logger.addHandler(self.forward)
        logger.setLevel(logging.INFO)
        self.listener.settimeout(0.5)
        with self._lock:
            self._last = time.monotonic()  # idle from now: warming up may take longer than the idle time
        while not self._stopping.is_set():
            with self._lock:
                # Checked on every turn: probes arriving more often than the accept timeout must not keep it alive.
                idle = self._busy == 0 and time.monotonic() - self._last > self.idle
            try:
                if idle:  # only what already waits in the backlog (a run that just asked), then the end
                    self.listener.settimeout(0.0)
                conn, _ = self.listener.accept()
            except (TimeoutError, BlockingIOError):
                if idle:
                    return
                continue
            finally:
                self.listener.settimeout(0.5)
            with self._lock:
                self._busy += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        used = False  # whether a run used the worker: probes and PID leave the idle clock alone
        try:
            with conn, conn.makefile("rwb") as stream:
                line = stream.readline()
                if not line:  # a liveness probe
                    return
                request = json.loads(line)
                used = request["action"] != PID

                def send(message: dict[str, Any]) -> None:
                    stream.write(json.dumps(message, default=str).encode() + b"\n")
                    stream.flush()

                if request["action"] == LEASE:
                    send({"result": {"pid": os.getpid()}})
                    stream.read()  # held until the run ends (or dies: its end of the socket closes)
                    return
                if request["action"] in (STOP, PID):
                    if request["action"] == STOP:
                        self._stopping.set()
                    send({"result": {"pid": os.getpid()}})
                    return
                if self.db_id is not None and _file_id(self.db) != self.db_id:
                    # The store was deleted or replaced (`rm mlflow.db` to start afresh): this worker's open
                    # connections reach the old file. It leaves; the run starts a worker for the new one.
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                    self._stopping.set()
                    send({"stale": True})
                    return
                send(self._run(request["action"], request.get("kwargs", {}), send))
        except (OSError, ValueError):
            pass  # the client went away mid-request: nothing to answer
        finally:
            with self._lock:
                self._busy -= 1
                if used:
                    self._last = time.monotonic()

    def _run(self, name: str, kwargs: dict[str, Any], send: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        from pipegen.runtime.errors import RuntimeFailure

        ident = threading.get_ident()
        self.forward.sinks[ident] = send
        try:
            return {"result": self.actions[name](**kwargs)}
        except RuntimeFailure as exc:
            return {"error": {"type": "RuntimeFailure", "message": str(exc)}}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the step that asked, as in-process
            return {"error": {"type": type(exc).__name__, "message": str(exc)}}
        finally:
            self.forward.sinks.pop(ident, None)


def _sqlite_file(uri: str) -> str | None:
    """The file of a sqlite store URI (relative to this directory, as SQLAlchemy opens it), else None."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _file_id(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def main(argv: list[str]) -> int:
    """Detach, listen on the socket, warm up, serve; remove the socket on the way out."""
    path, uri, idle = argv[0], argv[1], float(argv[2])
    if os.fork():  # the launching run waits for this parent only: the worker lives on in the child
        return 0
    os.setsid()
    # `kill PID` ends it as an idle timeout does: the socket is removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a worker that died without cleaning up (the launcher holds the lock)
    listener.bind(path)
    listener.listen(64)
    # Connections made while the store warms up wait in the backlog: a run may lease the worker at once.
    bound = os.stat(path).st_ino
    try:
        worker = Worker(listener, path, uri, idle)
        try:
            worker.warm()
        except Exception as exc:  # noqa: BLE001 - each request then fails as it would have in-process, and says why
            print(f"warming up the store failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        worker.serve()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == bound:  # not a successor's socket
                os.unlink(path)
        log = os.path.splitext(path)[0] + ".log"  # the launcher's (see tracker.py): kept only if it says something
        with contextlib.suppress(OSError):
            if os.stat(log).st_size == 0:
                os.unlink(log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
