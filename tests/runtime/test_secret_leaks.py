"""A failed `pipegen run` whose webhook, gate connection and job env hold secrets leaks none of them.

Real everything: the `pipegen` command in a subprocess, a sqlite gate, a job that prints its whole
environment and fails, a failure webhook at a port nobody listens on, and the run's sqlite MLflow store.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import pytest

from tests.support_mlflow import free_port

pytestmark = pytest.mark.xdist_group("local_run")


def test_failed_run_leaks_no_secret(tmp_path: Path) -> None:
    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in ("api_token", "db_token", "hook_path", "hook_token")}
    with sqlite3.connect(tmp_path / "data.db") as db:
        db.execute("CREATE TABLE events (id INTEGER)")
        db.execute("INSERT INTO events VALUES (1)")
    port = free_port()
    experiment = f"leaks-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "leaky.yaml"
    spec.write_text(
        f"""pipegen: 1
name: leaky
defaults: {{retries: 1, retry_delay: 1s, timeout: 2m}}
mlflow: {{experiment: {experiment}}}
backends:
  laptop:
    type: local
    env: {{API_TOKEN: "${{secret.api_token}}"}}
steps:
  - name: data_ready
    gate:
      check: row_count
      connection: "sqlite:///file:{tmp_path}/data.db?mode=ro&token=${{secret.db_token}}&uri=true"
      table: events
  - name: train
    train:
      backend: laptop
      command: [python, -c, "import os, sys; print(dict(os.environ)); print('token', os.environ['API_TOKEN']); sys.exit(3)"]
      metrics: [auc]
  - name: quality
    evaluate: {{run_of: train, thresholds: ["auc > 0.5"]}}
notify:
  on_failure:
    - webhook: "http://127.0.0.1:{port}/hooks/${{secret.hook_path}}/rebuild?token=${{secret.hook_token}}"
"""
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIPEGEN_SECRET_")},
        **{f"PIPEGEN_SECRET_{name.upper()}": value for name, value in secrets.items()},
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    # It ran as meant: the gate passed on the connection that holds a secret, the job failed twice,
    # the notification was attempted and failed, each saying so with the secrets masked.
    assert proc.returncode == 1, proc.stderr
    assert "/data.db?mode=ro&token=***&uri=true has 1 row (minimum 1)" in proc.stderr, proc.stderr
    assert "train: attempt 1 failed (exit code 3: token *** (log: " in proc.stderr, proc.stderr
    assert (
        f"pipeline notification failed: webhook notification failed after 4 retries: "
        f"http://127.0.0.1:{port}/hooks/***/rebuild?token=***: ConnectionError"
    ) in proc.stderr
    (log,) = (tmp_path / ".pipegen" / "logs").rglob("train.log")
    assert "'API_TOKEN': '***'" in log.read_text()

    outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
    outputs |= {str(p): p.read_text(errors="replace") for p in (tmp_path / ".pipegen").rglob("*") if p.is_file()}
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert runs, "the train step started its MLflow run"
    for run in runs:
        outputs[f"run {run.info.run_id}"] = repr((run.data.tags, run.data.params, run.info.run_name))
    for name, value in secrets.items():
        for where, text in outputs.items():
            assert value not in text, f"secret {name} leaked into {where}"
