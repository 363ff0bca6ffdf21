"""Time in executed state machines: waiting gates, the run date in the schedule's timezone, what is retried.

JSONPath machines run in moto's ASL interpreter; JSONata machines' expressions run in the reference
jsonata (moto cannot execute JSONata), with the runtime's own Lambda handler between them.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from pipegen.runtime.lambda_handler import handler
from tests.stepfunctions.asl import compile_text, load, validate
from tests.stepfunctions.support import history, play_batch_jobs, run_state_machine
from tests.stepfunctions.test_jsonata import evaluate
from tests.support_aws import batch_queue

JOBS = "backends:\n  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"


def _compile(text: str, tmp_path: Path, name: str) -> str:
    outputs, diags = compile_text(text, tmp_path, f"{name}.yaml")
    assert outputs, diags
    definition = outputs[f"stepfunctions/{name}.asl.json"]
    (tmp_path / f"{name}.asl.json").write_text(definition, encoding="utf-8")
    checked = validate(tmp_path / f"{name}.asl.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return definition


def _explain(result: dict[str, Any]) -> str:
    failed = [e for e in history(result["executionArn"]) if "Failed" in e["type"]]
    return f"{result['status']}: {result.get('error')} {result.get('cause')}\n{json.dumps(failed, default=str)[:3000]}"


# ---- waiting gates -------------------------------------------------------------------------------


def test_data_landing_after_the_step_timeout_but_within_the_wait_passes(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="late-data")
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = play_batch_jobs(monkeypatch, lambda env: None)
    text = (
        f"pipegen: 1\nname: late\ndefaults: {{retries: 0, timeout: 3s}}\n{JOBS}steps:\n"
        "  - name: ready\n    gate:\n      check: partition_exists\n"
        "      path: s3://late-data/quotes/dt=${run.date}/\n      wait: {timeout: 30s, interval: 1s}\n"
        "  - name: after\n    task: {backend: jobs, command: [train]}\n"
    )
    definition = _compile(text, tmp_path, "late")
    # No overall TimeoutSeconds could end the execution during a wait.
    assert "TimeoutSeconds" not in load(definition)
    today = datetime.now(UTC).date().isoformat()

    def land() -> None:
        time.sleep(6)
        s3.put_object(Bucket="late-data", Key=f"quotes/dt={today}/part-0", Body=b"rows")

    writer = threading.Thread(target=land, daemon=True)
    writer.start()
    started = time.monotonic()
    result = run_state_machine(definition, name, {})
    writer.join()
    assert result["status"] == "SUCCEEDED", _explain(result)
    assert time.monotonic() - started > 6
    # Checked until the data came, well past the step's 3 s (each check has 3 s).
    assert [e["args"]["kind"] for e in sfn].count("gate_check") >= 2
    assert len(jobs) == 1


def test_a_check_retried_after_an_error_does_not_reset_the_gates_check_count(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """The count of checks lives in the state data; a Retry of the check Task re-runs only that Task."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    boto3.client("s3").create_bucket(Bucket="never-data")
    text = (
        f"pipegen: 1\nname: flaky\ndefaults: {{retries: 2, retry_delay: 1s, backoff: fixed, timeout: 3s}}\n"
        f"{JOBS}steps:\n"
        "  - name: ready\n    gate:\n      check: partition_exists\n"
        "      path: s3://never-data/x/\n      wait: {timeout: 2s, interval: 1s}\n"
        "  - name: after\n    task: {backend: jobs, command: [train]}\n"
    )
    routed = LambdaSimpleBackend.invoke
    calls: list[str] = []

    def flaky(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> Any:
        calls.append(json.loads(body)["args"]["kind"])
        if len(calls) == 2:  # the second check: what AWS Lambda answers for a function's unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ConnectionError", "errorMessage": "S3 unreachable"}).encode()
        return routed(self, function_name, qualifier, body, headers, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", flaky)
    result = run_state_machine(_compile(text, tmp_path, "flaky"), name, {})
    assert result["status"] == "FAILED", _explain(result)
    # 3 counted checks (timeout // interval + 1), plus the retry of the one that raised.
    assert calls == ["gate_check"] * 4
    timed_out = [e for e in history(result["executionArn"]) if e["type"] == "PassStateEntered"]
    assert any(e["stateEnteredEventDetails"]["name"] == "ready.timed_out" for e in timed_out)


# ---- ${run.date} in the schedule's timezone ------------------------------------------------------

LA_SPEC = (
    "pipegen: 1\nname: dated\nschedule: {cron: '0 20 * * *', timezone: America/Los_Angeles}\n"
    f"{JOBS}steps:\n  - name: train\n    task: {{backend: jobs, command: [train, --date, '${{run.date}}']}}\n"
)


def test_run_date_is_the_date_in_the_schedules_timezone(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """The 20:00 Los Angeles run of 15 Jan starts at 04:00Z on the 16th: ${run.date} is 2026-01-15."""
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = play_batch_jobs(monkeypatch, lambda env: None)
    definition = _compile(LA_SPEC, tmp_path, "dated")
    scheduled = run_state_machine(definition, name, {"scheduled_time": "2026-01-16T04:00:00Z"})
    assert scheduled["status"] == "SUCCEEDED", _explain(scheduled)
    assert jobs[-1]["command"] == ["train", "--date", "2026-01-15"]
    # A manual run (no scheduled time): the day it starts, in Los Angeles.
    manual = run_state_machine(definition, name + "-manual", {})
    assert manual["status"] == "SUCCEEDED", _explain(manual)
    assert jobs[-1]["command"] == ["train", "--date", datetime.now(ZoneInfo("America/Los_Angeles")).date().isoformat()]
    assert [e["action"] for e in sfn] == ["run_date", "run_date"]


def test_a_utc_schedule_needs_no_lambda_for_the_run_date(tmp_path: Path) -> None:
    text = LA_SPEC.replace("America/Los_Angeles", "UTC")
    states = load(_compile(text, tmp_path, "dated"))["States"]
    assert "pipegen.run_date" not in states
    assert states["pipegen.context"]["Parameters"]["pipegen"]["run_date.$"].startswith("States.ArrayGetItem(")


def test_run_date_in_jsonata_is_the_date_in_the_schedules_timezone(tmp_path: Path) -> None:
    """The JSONata machine's expressions, in the reference jsonata, with the runtime handler between them."""
    text = LA_SPEC + "targets:\n  stepfunctions: {query_language: JSONata}\n"
    states = load(_compile(text, tmp_path, "dated"))["States"]
    first = states["pipegen.run_date"]
    assert first["Resource"] == "arn:aws:states:::lambda:invoke"
    assert first["Next"] == "pipegen.context"
    args = first["Arguments"]["Payload"]["args"]
    start = {"Execution": {"Name": "x", "StartTime": "2026-01-16T05:00:00.000Z"}}
    inputs = [{"scheduled_time": "2026-01-16T04:00:00Z"}, {}]
    times = evaluate(
        [{"expr": args["scheduled_time"][2:-2], "bindings": {"states": {"input": i, "context": start}}} for i in inputs]
    )
    results = [handler({"action": "run_date", "args": {**args, "scheduled_time": t["value"]}}) for t in times]
    assigned = first["Assign"]["local_run_date"][2:-2]
    dates = evaluate([{"expr": assigned, "bindings": {"states": {"result": {"Payload": r}}}} for r in results])
    context = states["pipegen.context"]["Assign"]["pipegen"]["run_date"][2:-2]
    read = evaluate([{"expr": context, "bindings": {"local_run_date": d["value"]}} for d in dates])
    # Scheduled 04:00Z on the 16th is the 15th in Los Angeles; a manual start at 05:00Z too.
    assert [r["value"] for r in read] == ["2026-01-15", "2026-01-15"]


# ---- evaluation: a failed judgement is final, an error while judging is retried -------------------

JUDGED = (
    "pipegen: 1\nname: judged\n"
    "defaults: {retries: 2, retry_delay: 1s, backoff: fixed, timeout: 10m}\n"
    "mlflow: {tracking_uri: '${env.MLFLOW_TRACKING_URI}', experiment: judged}\n"
    f"{JOBS}steps:\n"
    "  - name: train\n    train: {backend: jobs, command: [train], metrics: [mae]}\n"
    "  - name: quality\n    evaluate: {run_of: train, thresholds: ['mae < 12'], on_fail: fail}\n"
)


@pytest.mark.parametrize(("mae", "tracking_fails", "evaluations"), [(20.0, False, 1), (5.0, True, 3)])
def test_a_failed_judgement_is_final_and_an_error_is_retried(
    sfn: list[dict[str, Any]],
    mlflow_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    mae: float,
    tracking_fails: bool,
    evaluations: int,
) -> None:
    import os

    from tests.support_mlflow import free_port, play_training

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    batch_queue("ml-cpu-64", "pricing-train:3")

    def train(env: dict[str, str]) -> None:
        play_training(env["MLFLOW_TRACKING_URI"], env["MLFLOW_RUN_ID"], {"mae": mae})
        if tracking_fails:  # from now on the Lambda's tracking server is unreachable
            os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"

    play_batch_jobs(monkeypatch, train)
    result = run_state_machine(_compile(JUDGED.replace("judged", name), tmp_path, name), name, {})
    assert result["status"] == "FAILED", _explain(result)
    assert [e["args"]["kind"] for e in sfn] == ["prepare", "close_run"] + ["evaluate"] * evaluations
    if not tracking_fails:
        assert "mae" in result["cause"]
