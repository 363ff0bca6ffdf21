"""start_run and prepare hand on the run's ids, never the tracking URI; each task renders the URI itself (issue 15).

start_run's result becomes a KFP output parameter (ML Metadata, the UI) and prepare's a Step Functions state
output (the execution history): both once held the rendered URI, ${secret.X} credentials included. Against a
real `mlflow server`, with the password in the URI's userinfo (an MLflow server without auth ignores it).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import mlflow
import pytest

from pipegen.runtime.step import run_step
from tests.support_mlflow import MlflowServer

pytestmark = pytest.mark.xdist_group("mlflow")

# A plain `mlflow.start_run()`, as a user's training script does it, logging into the run pipegen made;
# it writes down the URI it was given, for the test to compare.
TRAIN = (
    "import os, sys, mlflow\n"
    "open(sys.argv[1], 'w').write(os.environ['MLFLOW_TRACKING_URI'])\n"
    "with mlflow.start_run():\n"
    "    mlflow.log_metric('auc', 0.91)\n"
)


def secret_uri(server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """(spec string, rendered URI, password): the server's URI with a password from ${secret.mlflow_pw}."""
    password = f"PW-{uuid.uuid4().hex}"
    monkeypatch.setenv("PIPEGEN_SECRET_MLFLOW_PW", password)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rest = server.uri.removeprefix("http://")
    return f"http://pipegen:${{secret.mlflow_pw}}@{rest}", f"http://pipegen:{password}@{rest}", password


def start_spec(name: str) -> dict[str, str]:
    return {"pipeline": "p", "step": "train", "spec_sha256": "a" * 64, "experiment": name}


def test_start_run_returns_no_tracking_uri_and_training_still_logs_into_the_run(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    spec_uri, rendered, password = secret_uri(mlflow_server, monkeypatch)
    run = run_step("start_run", {**start_spec(name), "tracking_uri": spec_uri}, params={}, run_id=f"{name}-r")
    assert set(run) == {"passed", "run_id", "experiment_id"}
    assert password not in json.dumps(run)

    # The training task (a KFP runtime component) renders the URI itself and gives it to the job.
    seen = tmp_path / "uri.txt"
    step = {"command": [sys.executable, "-c", TRAIN, str(seen)], "env": {}, "tracking_uri": spec_uri}
    mlflow_run = {"run_id": run["run_id"], "experiment_id": run["experiment_id"]}
    result = run_step("local", step, params={}, run_id=f"{name}-r", mlflow_run=mlflow_run)
    assert password not in json.dumps(result)
    assert seen.read_text() == rendered
    logged = mlflow.MlflowClient(mlflow_server.uri).get_run(run["run_id"])
    assert logged.data.metrics == {"auc": 0.91}


def test_prepare_puts_a_plain_uri_in_the_job_and_none_in_its_result(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = {
        "service": "batch",
        "command": ["python", "-m", "train"],
        "env": {},
        "start_run": start_spec(name),
        "tracking_uri": mlflow_server.uri,
    }
    out = run_step("prepare", spec, params={}, run_id=f"{name}-r", target="stepfunctions")
    assert set(out["run"]) == {"run_id", "experiment_id"}
    environment = {e["Name"]: e["Value"] for e in out["job"]["Environment"]}
    assert environment == {
        "MLFLOW_TRACKING_URI": mlflow_server.uri,
        "MLFLOW_EXPERIMENT_ID": out["run"]["experiment_id"],
        "MLFLOW_RUN_ID": out["run"]["run_id"],
    }


def test_prepare_for_a_pod_reads_a_secret_uri_from_the_kubernetes_secret(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    spec_uri, _, password = secret_uri(mlflow_server, monkeypatch)
    # As the Step Functions target writes it for tracking_uri: ${secret.mlflow_pw} on an eks:runJob step.
    monkeypatch.setenv("PIPEGEN_SECRET_MLFLOW_URI", spec_uri.replace("${secret.mlflow_pw}", password))
    spec = {
        "service": "eks",
        "command": ["python", "-m", "train"],
        "env": {"MLFLOW_TRACKING_URI": "ignored: the spec's tracking_uri wins"},
        "secret_env": {"MLFLOW_TRACKING_URI": {"secret": "mlflow-uri", "key": "mlflow_uri"}},
        "start_run": start_spec(name),
        "tracking_uri": "${secret.mlflow_uri}",
    }
    out = run_step("prepare", spec, params={}, run_id=f"{name}-r", target="stepfunctions")
    assert password not in json.dumps(out)
    env = out["job"]["env"]
    assert [e for e in env if e["name"] == "MLFLOW_TRACKING_URI"] == [
        {"name": "MLFLOW_TRACKING_URI", "valueFrom": {"secretKeyRef": {"name": "mlflow-uri", "key": "mlflow_uri"}}}
    ]
    assert {"name": "MLFLOW_RUN_ID", "value": out["run"]["run_id"]} in env
    # The run was made on the server the secret named.
    made = mlflow.MlflowClient(mlflow_server.uri).get_run(out["run"]["run_id"])
    assert made.info.experiment_id == out["run"]["experiment_id"]
