"""The pricing spec's state machine runs in moto's ASL interpreter against a real MLflow server."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from tests.cases import GOLDEN
from tests.hostile import HOSTILE, literal_value
from tests.stepfunctions.asl import compile_text
from tests.stepfunctions.support import history, play_batch_jobs, run_state_machine
from tests.support_aws import batch_queue
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

    client = mlflow.MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)
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

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    run = client.get_run(run_id)
    assert run.data.tags["pipegen.target"] == "stepfunctions"
    assert run.data.tags["pipegen.pipeline"] == "pricing"
    assert json.loads(run.data.tags["pipegen.params"]) == {"max_depth": 12}
    champion = client.get_model_version_by_alias("pricing", "champion")
    assert champion.run_id == run_id
    assert [v.version for v in _versions_of(mlflow_server, run_id)] == [champion.version]
    # Every runtime call went through the Lambda handler's one action.
    assert {e["action"] for e in sfn} == {"step"}
    assert [e["args"]["kind"] for e in sfn] == ["gate_check", "prepare", "close_run", "evaluate", "promote"]


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
    assert [e["args"]["kind"] for e in sfn] == ["gate_check", "prepare", "close_run", "evaluate"]


# ---- literal text, waiting gates and failure notifications, executed ------------------------------

JOBS = "backends:\n  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"


def _compile(text: str, tmp_path: Path, name: str) -> str:
    outputs, diags = compile_text(text, tmp_path, f"{name}.yaml")
    assert outputs, diags
    return outputs[f"stepfunctions/{name}.asl.json"]


def test_user_text_reaches_the_job_as_written(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """Hostile text, and text that looks like JSONPath, intrinsics or JSONata, arrives literally."""
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = play_batch_jobs(monkeypatch, lambda env: None)
    q = json.dumps(HOSTILE, ensure_ascii=False)
    lookalikes = ["$.pipegen.run_id", "States.Format('{}', $.x)", "{% $states.input %}", "$$.Execution.Name"]
    native_lookalikes = ["$.pipegen.run_id", "States.Format(x, $.y)", "States.Array(1), $.x", "$$.Execution.Name"]
    text = (
        f"pipegen: 1\nname: literal\nparams: {{p: 7, flag: true}}\n{JOBS}steps:\n"
        f"  - name: templated\n    task:\n      backend: jobs\n"
        f"      command: [{q}, '${{run.date}}', {json.dumps(HOSTILE + '${params.p}', ensure_ascii=False)}]\n"
        f"      env: {{B_VAR: {q}, C_VAR: '${{run.id}}'}}\n"
        f"  - name: literal\n    task:\n      backend: jobs\n"
        f"      command: {json.dumps([*lookalikes, HOSTILE], ensure_ascii=False)}\n"
        f"      env: {{D_VAR: '$$.Execution.Name'}}\n"
        f"  - name: native\n    task:\n      backend: jobs\n"
        f"      command: {json.dumps([*native_lookalikes, '--date=${run.date}', '${params.p}', 'run ${run.id}, ${params.flag}'])}\n"
    )
    definition = _compile(text, tmp_path, "literal")
    # Text without ' { } \\ rides inside the state machine's own States.Array: no Lambda renders it.
    assert json.loads(definition)["States"]["native"]["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    result = run_state_machine(definition, name, {})
    assert result["status"] == "SUCCEEDED", _explain(result)
    today = datetime.now(UTC).date().isoformat()
    meant = literal_value(HOSTILE)
    templated, literal, native = jobs
    assert templated["command"] == [meant, today, meant + "7"]
    assert templated["environment"]["B_VAR"] == meant
    assert templated["environment"]["C_VAR"] == f"{name}-run"
    # No ${...} in this step, but HOSTILE's line break (which asl-validator refuses in a JSONPath list): the
    # prepare Lambda renders the command from the request's spec_json, and the job gets the strings unchanged.
    assert literal["command"] == [*lookalikes, meant]
    assert literal["environment"]["D_VAR"] == "$$.Execution.Name"
    assert native["command"] == [*native_lookalikes, f"--date={today}", "7", f"run {name}-run, true"]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_waiting_gate_times_out_notifies_and_fails(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    boto3.client("s3").create_bucket(Bucket="waiting-data")
    text = (
        f"pipegen: 1\nname: waiting\n{JOBS}steps:\n"
        "  - name: ready\n    gate:\n      check: partition_exists\n"
        "      path: s3://waiting-data/quotes/dt=${run.date}/\n      wait: {timeout: 2s, interval: 1s}\n"
        "  - name: after\n    task: {backend: jobs, command: [x]}\n"
        f"notify:\n  on_failure: [{{webhook: '{hook}'}}]\n"
    )
    try:
        result = run_state_machine(_compile(text, tmp_path, "waiting"), name, {})
    finally:
        server.shutdown()
    assert result["status"] == "FAILED", _explain(result)
    assert result["error"] == "pipegen.PipelineFailed"
    assert "quotes/dt=" in result["cause"]
    # Checks at 0 s, 1 s and 2 s (timeout // interval + 1), then the notification.
    assert [e["args"]["kind"] for e in sfn] == ["gate_check", "gate_check", "gate_check", "notify"]
    (message,) = _Receiver.received
    assert message["pipeline"] == "waiting" and message["event"] == "failed"
    assert message["error"] == "pipegen.GateTimeout"
    assert message["run"] == f"{name}-run"
