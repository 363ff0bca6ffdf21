"""Where the servers tests start come from: this environment, or the one PIPEGEN_TEST_TOOLS names.

The runtime-only environment (`.venv-runtime`, `make test-runtime`) holds what workers install,
`pipegen-ml[runtime,aws,sql]`: mlflow-skinny, which has no `mlflow server`, and no moto. Its tests
start both servers as commands of another environment's bin directory (the core `.venv`'s), named by
PIPEGEN_TEST_TOOLS, so the environment under test never gains their dependencies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOOLS_VARIABLE = "PIPEGEN_TEST_TOOLS"
STARTUP_SECONDS = 120


def tool(name: str) -> Path:
    """The executable `name` from the tools environment (PIPEGEN_TEST_TOOLS), else from this one."""
    folder = os.environ.get(TOOLS_VARIABLE) or str(Path(sys.executable).parent)
    path = Path(folder) / name
    if not path.exists():
        raise RuntimeError(f"{path} does not exist: set {TOOLS_VARIABLE} to a bin directory that has {name}")
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server_process() -> Iterator[str]:
    """moto's standalone server (`moto_server`) on a free port as a separate process; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(tool("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer in {STARTUP_SECONDS}s") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def interruptible() -> None:
    """preexec_fn for a process a test will Ctrl-C: SIGINT back to its default.

    A shell runs a background job (`make test &` without job control, as CI runners may) with SIGINT and SIGQUIT
    ignored, every process below inherits that, and Python then installs no KeyboardInterrupt handler.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
