"""The pricing spec's state machine runs in moto's ASL interpreter against a real MLflow server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.cases import GOLDEN
from tests.stepfunctions.support import batch_queue, history, play_batch_jobs, run_state_machine
from tests.support_mlflow import MlflowServer, play_training

PRICING = GOLDEN / "stepfunctions" / "pricing.asl.json"


def _pricing_world(
    monkeypatch: pytest.MonkeyPatch, server: MlflowServer, metrics: dict[str, float]
) -> list[dict[str, Any]]:
    """The AWS resources the pricing spec names, today's partition, and a Batch job that logs metrics."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    batch_queue("ml-cpu-64", "pricing-train:3")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pricing-data")
    today = datetime.now(UTC).date().isoformat()
    s3.put_object(Bucket="pricing-data", Key=f"quotes/dt={today}/part-0.parquet", Body=b"rows")

    def train(env: dict[str, str]) -> None:
        play_training(env["MLFLOW_TRACKING_URI"], env["MLFLOW_RUN_ID"], metrics)

    return play_batch_jobs(monkeypatch, train)


def _versions_of(server: MlflowServer, run_id: str) -> list[Any]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=server.uri)
    return list(client.search_model_versions(f"name = 'pricing' and run_id = '{run_id}'"))


def _explain(result: dict[str, Any]) -> str:
    events = history(result["executionArn"])
    failed = [e for e in events if "Failed" in e["type"]]
    return f"{result['status']}: {result.get('error')} {result.get('cause')}\n{json.dumps(failed, default=str)[:3000]}"


def test_pricing_runs_and_promotes(
    sfn: list[dict[str, Any]], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    jobs = _pricing_world(monkeypatch, mlflow_server, {"mae": 10.5, "model_size_mb": 120.0})
    result = run_state_machine(PRICING.read_text(), name, {"params": {"max_depth": 12}})
    assert result["status"] == "SUCCEEDED", (jobs, _explain(result))

    # The job got the rendered command and the pipeline's MLflow run.
    (job,) = jobs
    today = datetime.now(UTC).date().isoformat()
    assert job["command"] == ["python", "-m", "pricing.train", "--date", today, "--max-depth", "12"]
    run_id = job["environment"]["MLFLOW_RUN_ID"]
    assert job["environment"]["MLFLOW_TRACKING_URI"] == mlflow_server.uri

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    run = client.get_run(run_id)
    assert run.data.tags["pipegen.target"] == "stepfunctions"
    assert run.data.tags["pipegen.pipeline"] == "pricing"
    assert json.loads(run.data.tags["pipegen.params"]) == {"max_depth": 12}
    champion = client.get_model_version_by_alias("pricing", "champion")
    assert champion.run_id == run_id
    assert [v.version for v in _versions_of(mlflow_server, run_id)] == [champion.version]
    # Every runtime call went through the Lambda handler's one action.
    assert {e["action"] for e in sfn} == {"step"}
    assert [e["args"]["kind"] for e in sfn] == ["gate_check", "prepare", "evaluate", "promote"]


def test_pricing_failing_thresholds_end_without_promotion(
    sfn: list[dict[str, Any]], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    jobs = _pricing_world(monkeypatch, mlflow_server, {"mae": 20.0, "model_size_mb": 120.0})
    result = run_state_machine(PRICING.read_text(), name, {})
    # on_fail: fail -> the Fail state, with the evaluation's reasons as the cause.
    assert result["status"] == "FAILED", _explain(result)
    assert result["error"] == "pipegen.PipelineFailed"
    assert "mae" in result["cause"]
    (job,) = jobs
    assert _versions_of(mlflow_server, job["environment"]["MLFLOW_RUN_ID"]) == []
    assert [e["args"]["kind"] for e in sfn] == ["gate_check", "prepare", "evaluate"]
