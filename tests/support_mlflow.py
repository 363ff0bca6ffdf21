"""A real `mlflow server` on 127.0.0.1 for tests, and helpers that play a training job's part."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipegen.runtime.redacted_output import end_group
from tests.support_tools import free_port, tool

STARTUP_SECONDS = 180


@dataclass
class MlflowServer:
    """A running `mlflow server` with a sqlite backend store."""

    uri: str
    root: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the server and every process it started (uvicorn, job runners), and wait for it."""
        # The server runs in its own process group: its uvicorn and huey children must not outlive it.
        end_group(self.process, grace=20)


def start_mlflow_server(root: Path | None = None, port: int | None = None) -> MlflowServer:
    """Start `mlflow server` (sqlite store, served artifacts) and wait until /health answers."""
    root = root or Path(tempfile.mkdtemp(prefix="pipegen-mlflow-"))
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # Full mlflow's command: the runtime-only environment (mlflow-skinny) has no server of its own.
    mlflow_bin = tool("mlflow")
    log = (root / "server.log").open("ab")
    process = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        # No job runner: MLflow 3 starts ~7 huey consumers per server (each importing mlflow, then polling
        # at ~2% of a core) for GenAI jobs pipegen never submits; with 4-5 servers in a session that was
        # half a core of 2 for nothing.
        env={**os.environ, "MLFLOW_TRACKING_URI": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited with {process.returncode}: {(root / 'server.log').read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return MlflowServer(uri, root, process)
        except OSError:
            time.sleep(0.5)
    end_group(process, grace=20)
    raise RuntimeError(f"mlflow server did not become healthy in {STARTUP_SECONDS}s")


def play_training(tracking_uri: str, run_id: str, metrics: dict[str, float], artifact: str = "model") -> None:
    """Do what a training job does inside a started run: log metrics and a model directory (MLmodel file)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / artifact
        model_dir.mkdir()
        (model_dir / "MLmodel").write_text(f"artifact_path: {artifact}\nflavors: {{}}\nrun_id: {run_id}\n")
        client.log_artifacts(run_id, str(model_dir), artifact)
    client.set_terminated(run_id)
