"""One Prefect API server for a whole differential session (the Prefect engine runs each scenario's flow on it).

Prefect's test harness starts an API server of its own for each flow run: on a busy 2-core machine that
server's start (uvicorn, Prefect's app, its SQLite schema) was 20 to 30 s of CPU of each scenario's ~40 s on
Prefect. The session starts the same server once, the way the harness starts it (Prefect's
SubprocessASGIServer: `uvicorn --factory prefect.server.api.server:create_app`, ephemeral, so no UI and no
background services), on its own SQLite database; flow runs are told apart by their ids.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipegen.runtime.redacted_output import end_group
from tests.support_tools import free_port

# Prefect's server takes 25-40 s to start on a busy 2-core machine.
STARTUP_SECONDS = 240


@dataclass
class PrefectServer:
    """A running Prefect API server: its URL (what PREFECT_API_URL names) and its process group."""

    api_url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the server and wait for it."""
        end_group(self.process, grace=10)


def start_prefect_server(python: Path, root: Path) -> PrefectServer:
    """Start Prefect's API server with `python` (the Prefect venv's) on a database under root; wait for /health."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(root / "home"),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="0",
        # What Prefect's SubprocessASGIServer sets: an ephemeral server runs no background services.
        PREFECT__SERVER_EPHEMERAL="1",
        PREFECT__SERVER_FINAL="1",
    )
    log = (root / "server.log").open("ab")
    process = subprocess.Popen(
        [
            str(python), "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True,
    )  # fmt: skip
    api_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with {process.returncode}: see {root / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return PrefectServer(api_url, process)
        except OSError:
            time.sleep(0.3)
    end_group(process, grace=10)
    raise RuntimeError(f"the Prefect server did not answer /health in {STARTUP_SECONDS}s: see {root / 'server.log'}")
