"""notify.on_success, executed: every successful end goes through one success notification, then Succeed.

Both query languages run in moto's executor. moto's JSONata evaluator is an empty stub (its port leaves
the JVM bridge out), so the JSONata machines here get the reference jsonata (npm, tools/node) plugged in
as that evaluator: moto composes each expression with its variables as JSON, jsonata evaluates it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.differential.receiver import Receiver
from tests.stepfunctions.asl import compile_text, load, validate, with_targets
from tests.stepfunctions.support import history, play_batch_jobs, run_state_machine
from tests.stepfunctions.test_jsonata import EVALUATOR
from tests.support_aws import batch_queue
from tests.support_mlflow import MlflowServer, free_port, play_training

LANGUAGES = ["JSONPath", "JSONata"]


def spec(name: str, hooks: str, language: str) -> str:
    text = (
        f"pipegen: 1\nname: {name}\nparams: {{where: s}}\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"
        "steps:\n"
        f"  - name: ready\n    gate: {{check: partition_exists, path: 's3://{name}-data/dt=${{run.date}}/'}}\n"
        "  - name: train\n    train: {backend: jobs, command: [train], metrics: [score]}\n"
        "  - name: quality\n    evaluate: {run_of: train, thresholds: ['score > 0.5'], on_fail: skip}\n"
        f"  - name: promote\n    promote: {{model: {name}, run_of: train, alias: champion}}\n"
        f"notify:\n  on_failure: [{{webhook: '{hooks}/fail'}}]\n"
        f"  on_success: [{{webhook: '{hooks}/ok/${{params.where}}'}}]\n"
    )
    return with_targets(text, query_language=language) if language == "JSONata" else text


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.stop()


def _reference_jsonata(expression: str) -> Any:
    """What moto's JVM bridge would answer: the expression's value (null when undefined), or its error."""
    from moto.stepfunctions.parser.asl.jsonata.jsonata import JSONataException

    proc = subprocess.run(
        ["node", str(EVALUATOR)],
        input=json.dumps([{"expr": expression, "bindings": {}}]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (result,) = json.loads(proc.stdout)
    if "error" in result:
        raise JSONataException("UNKNOWN", result["error"])
    return result["value"]


@pytest.fixture
def jsonata_in_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.stepfunctions.parser.asl.jsonata.jsonata as moto_jsonata

    monkeypatch.setattr(moto_jsonata, "_eval_jsonata", _reference_jsonata)


def _run(text: str, tmp_path: Path, name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
    outputs, diags = compile_text(text, tmp_path, f"{name}.yaml")
    assert outputs, diags
    assert not [d for d in diags if "PG702" in d], diags  # the target sends both notifications
    definition = outputs[f"stepfunctions/{name}.asl.json"]
    path = tmp_path / f"{name}.asl.json"
    path.write_text(definition, encoding="utf-8")
    checked = validate(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return run_state_machine(definition, name, execution_input, timeout=240)


def _explain(result: dict[str, Any]) -> str:
    failed = [e for e in history(result["executionArn"]) if "Failed" in e["type"]]
    return f"{result['status']}: {result.get('error')} {result.get('cause')}\n{json.dumps(failed, default=str)[:3000]}"


def _world(monkeypatch: pytest.MonkeyPatch, server: MlflowServer, name: str, score: float, data: bool = True) -> None:
    """Today's partition in the test's own bucket (unless not data), the Batch queue, a job that logs score."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    batch_queue("ml-cpu-64", "pricing-train:3")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=f"{name}-data")  # moto's server outlives the test: a bucket of its own
    if data:
        s3.put_object(Bucket=f"{name}-data", Key=f"dt={datetime.now(UTC).date().isoformat()}/part-0", Body=b"rows")
    play_batch_jobs(
        monkeypatch, lambda env: play_training(env["MLFLOW_TRACKING_URI"], env["MLFLOW_RUN_ID"], {"score": score})
    )


@pytest.mark.usefixtures("jsonata_in_moto")
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("score", "promoted"), [(0.9, True), (0.1, False)])
def test_a_run_that_succeeds_posts_one_success_message(
    sfn: list[dict[str, Any]],
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    receiver: Receiver,
    language: str,
    score: float,
    promoted: bool,
) -> None:
    """Promoted, or promotion skipped by `on_fail: skip` (the run succeeds, as `pipegen run` says): told once."""
    _world(monkeypatch, mlflow_server, name, score)
    result = _run(spec(name, receiver.url("sfn"), language), tmp_path, name, {"params": {"where": "x"}})
    assert result["status"] == "SUCCEEDED", _explain(result)
    kinds = [e["args"]["kind"] for e in sfn]
    assert kinds == ["gate", "prepare", "close_run", "evaluate", *(["promote"] if promoted else []), "notify"]
    assert receiver.take("sfn") == [
        {"path": "/ok/x", "body": {"pipeline": name, "event": "succeeded", "run": f"{name}-run"}}
    ]


@pytest.mark.usefixtures("jsonata_in_moto")
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_failing_run_posts_only_its_failure(
    sfn: list[dict[str, Any]],
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    receiver: Receiver,
    language: str,
) -> None:
    _world(monkeypatch, mlflow_server, name, 0.9, data=False)  # the gate finds no partition: the run fails
    result = _run(spec(name, receiver.url("sfn"), language), tmp_path, name, {})
    assert result["status"] == "FAILED", _explain(result)
    assert [e["args"]["kind"] for e in sfn] == ["gate", "notify"]
    (message,) = receiver.take("sfn")
    assert message["path"] == "/fail"
    assert message["body"]["event"] == "failed" and message["body"]["run"] == f"{name}-run"


@pytest.mark.usefixtures("jsonata_in_moto")
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_success_webhook_that_cannot_be_told_leaves_the_run_succeeded(
    sfn: list[dict[str, Any]],
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    receiver: Receiver,
    language: str,
) -> None:
    """As `pipegen run` (it logs the failed notification) and Airflow (a callback cannot fail its run)."""
    _world(monkeypatch, mlflow_server, name, 0.9)
    nobody = f"http://127.0.0.1:{free_port()}"
    result = _run(spec(name, nobody, language), tmp_path, name, {})
    assert result["status"] == "SUCCEEDED", _explain(result)
    events = history(result["executionArn"])
    # The notification ran and failed (its error is in the history), and the run still ended in Succeed.
    assert [e["args"]["kind"] for e in sfn][-1] == "notify"
    assert any(e["type"] == "TaskFailed" for e in events)
    assert [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "SucceedStateEntered"] == [
        "pipegen.done"
    ]
    assert receiver.take("sfn") == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_successful_end_goes_through_the_one_notification(language: str, tmp_path: Path) -> None:
    """A skip that ends the run and a last Parallel reach notify_success too (the tests above end in a step)."""
    text = (
        "pipegen: 1\nname: ends\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: q, job_definition: d}\n"
        "steps:\n"
        "  - name: train_a\n    after: []\n    train: {backend: jobs, command: [a], metrics: [score]}\n"
        "  - name: train_b\n    after: []\n    train: {backend: jobs, command: [b], metrics: [score]}\n"
        "  - name: quality\n    after: [train_a, train_b]\n"
        "    evaluate: {run_of: train_a, thresholds: ['score > 0.5'], on_fail: skip}\n"
        "  - name: promote\n    promote: {model: m, run_of: train_a, alias: champion}\n"
        "  - name: ready\n    after: [promote]\n"
        "    gate: {check: partition_exists, path: 's3://b/k/', wait: {timeout: 2s, interval: 1s}}\n"
        "  - name: x\n    after: [ready]\n    task: {backend: jobs, command: [x]}\n"
        "  - name: y\n    after: [ready]\n    task: {backend: jobs, command: [y]}\n"
        "notify:\n  on_success: [{webhook: 'https://example.com/ok'}]\n"
    )
    text = with_targets(text, query_language=language) if language == "JSONata" else text
    outputs, diags = compile_text(text, tmp_path, "ends.yaml")
    assert outputs, diags
    path = tmp_path / "ends.asl.json"
    path.write_text(outputs["stepfunctions/ends.asl.json"], encoding="utf-8")
    checked = validate(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    states = load(path.read_text(encoding="utf-8"))["States"]
    into = sorted(
        name
        for name, state in states.items()
        if state.get("Next") == "pipegen.notify_success"
        or state.get("Default") == "pipegen.notify_success"
        or any(c.get("Next") == "pipegen.notify_success" for c in state.get("Choices", []))
    )
    assert into == ["quality.passed", "x.parallel"]  # the skip that ends the run, the last Parallel
    # Nothing else ends the run: no top-level End, and Succeed is reached only after the notification.
    assert not [n for n, s in states.items() if s.get("End")]
    reaching_done = sorted(n for n, s in states.items() if json.dumps(s).count('"pipegen.done"'))
    assert reaching_done == ["pipegen.notify_success"]
    assert states["pipegen.notify_success"]["Catch"][0]["Next"] == "pipegen.done"
