"""The demo deployment, deployed for real: `prefect server start`, a process work pool, `prefect deploy`, a worker.

One test, on the session's `prefect server start` (begun in the background as the session starts): the
compiled prefect.yaml is deployed with `prefect --no-prompt deploy --all` from the output directory, a run of
demo/demo is created, and one `prefect worker start --run-once` runs it in a subprocess, as production would;
the run completes and promotes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.cases import REPO
from tests.prefect.support import PREFECT, PrefectServer, compile_prefect, demo_variant

POOL = "pipegen-process"


def _prefect(env: dict[str, str], cwd: Path, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [str(PREFECT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"prefect {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _flow_run(env: dict[str, str], flow_run_id: str) -> Any:
    """The flow run as that server recorded it."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        return client.read_flow_run(flow_run_id)


def test_the_demo_deployment_runs_on_a_process_worker_and_promotes(
    prefect_server: PrefectServer, tmp_path: Path, tracking: str, name: str
) -> None:
    import mlflow

    spec = demo_variant(
        tmp_path / "spec", name, replace={"targets:\n": f"targets:\n  prefect:\n    work_pool: {{name: {POOL}}}\n"}
    )
    folder = compile_prefect(tmp_path / "out", spec)
    # The deployment's working directory holds the project's files, as a checkout beside the flow would.
    shutil.copytree(REPO / "examples", folder / "examples")
    env = prefect_server.env

    _prefect(env, folder, "work-pool", "create", POOL, "--type", "process")
    deployed = _prefect(env, folder, "--no-prompt", "deploy", "--all")
    assert "Deployment 'demo/demo' successfully created" in deployed, deployed
    created = _prefect(env, folder, "deployment", "run", "demo/demo")
    [flow_run_id] = re.findall(r"UUID: ([0-9a-f-]{36})", created)
    # The worker's environment carries the tracking URI, as for the other targets' workers.
    worker = _prefect(
        {**env, "MLFLOW_TRACKING_URI": tracking}, tmp_path, "worker", "start", "--pool", POOL, "--run-once"
    )

    run = _flow_run(env, flow_run_id)
    assert run.state is not None and run.state.is_completed(), (run.state, worker[-5000:])
    client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    version = client.get_model_version_by_alias(name, "champion")
    assert str(version.version) == "1"
    assert client.get_run(version.run_id).data.tags["pipegen.run_key"] == flow_run_id
