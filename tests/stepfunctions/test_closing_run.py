"""Train steps whose Batch job ends without ending its MLflow run, executed in moto against a real MLflow server.

The job is played in this process (tests.support_aws.batch_jobs_run_here): it does what a training script does
with the run the state machine started, then ends as a killed container or a clean exit does. The state machine
must end the run as the job ended, and a failed job's error must still be what the run fails with.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.stepfunctions.asl import compile_text
from tests.stepfunctions.support import history, run_state_machine
from tests.support_aws import batch_jobs_run_here, batch_queue
from tests.support_mlflow import MlflowServer

QUEUE, DEFINITION = "closing-q", "closing-train:1"
KILLED = "OutOfMemoryError: Container killed due to memory usage"
# A job: given the moto job and its environment, logs what it logs and returns whether it succeeded.
Job = Callable[[Any, dict[str, str]], bool]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        type(self).received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    """A webhook for notify.on_failure; what it received is _Receiver.received."""
    _Receiver.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture
def jobs(
    sfn: list[dict[str, Any]], mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Job]]:
    """Batch jobs that run the test's Job for their step (by MLFLOW_RUN_ID's run name), RUNNING until it returns."""
    from moto.moto_api import state_manager

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    batch_queue(QUEUE, DEFINITION)
    played: dict[str, Job] = {}

    def run(job: Any) -> None:
        env = {e["name"]: e["value"] for e in job.container_overrides.get("environment", [])}
        step = job.job_name.rsplit("-", 1)[-1]
        ok = played[step](job, env)
        if not ok:
            job.exit_code = 137
            job.job_stopped_reason = KILLED
        job._mark_stopped(success=ok)

    # The job's status moves when the Job returns, not as moto's describe calls progress it.
    state_manager.set_transition("batch::job", {"progression": "manual", "times": 10**9})
    batch_jobs_run_here(monkeypatch, run)
    yield played
    state_manager.unset_transition("batch::job")


def _spec(steps: str, hook: str = "") -> str:
    text = (
        "pipegen: 1\nname: closing\nmlflow: {experiment: closing-run}\n"
        f"backends:\n  batch: {{type: aws_batch, job_queue: {QUEUE}, job_definition: '{DEFINITION}'}}\n"
        f"steps:\n{steps}"
    )
    return text + (f"notify:\n  on_failure: [{{webhook: '{hook}'}}]\n" if hook else "")


TRAIN_A = "  - name: train_a\n    train: {backend: batch, command: [python, a.py], metrics: [auc]}\n"
TRAIN_B = "  - name: train_b\n    after: []\n    train: {backend: batch, command: [python, b.py], metrics: [auc]}\n"


def _run(tmp_path: Path, name: str, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    outputs, diags = compile_text(text, tmp_path, "closing.yaml")
    assert outputs, diags
    result = run_state_machine(outputs["stepfunctions/closing.asl.json"], name, {})
    return result, history(result["executionArn"])


def _status(server: MlflowServer, run_id: str) -> str:
    import mlflow

    return str(mlflow.MlflowClient(tracking_uri=server.uri).get_run(run_id).info.status)


def _job_failure(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The error the Batch Task failed with (the one the run must fail with)."""
    failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    (batch,) = [f for f in failed if f["resourceType"] == "batch"]
    return dict(batch)


def _crash(runs: dict[str, str]) -> Job:
    """A job that logs a metric into its run and is killed: MLflow never hears that it ended."""

    def job(moto_job: Any, env: dict[str, str]) -> bool:
        import mlflow

        runs[moto_job.job_name] = env["MLFLOW_RUN_ID"]
        mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]).log_metric(env["MLFLOW_RUN_ID"], "auc", 0.9)
        return False

    return job


def test_a_killed_training_job_ends_its_run_failed_and_the_run_fails_with_its_error(
    jobs: dict[str, Job], mlflow_server: MlflowServer, tmp_path: Path, name: str, hook: str
) -> None:
    runs: dict[str, str] = {}
    jobs["train_a"] = _crash(runs)
    evaluate = "  - name: quality\n    evaluate: {run_of: train_a, thresholds: ['auc > 0.5']}\n"
    result, events = _run(tmp_path, name, _spec(TRAIN_A + evaluate, hook))
    assert result["status"] == "FAILED", result
    (run_id,) = runs.values()
    assert _status(mlflow_server, run_id) == "FAILED"
    # The job's error, not the closing's, is what the execution and its failure notification say.
    failure = _job_failure(events)
    assert result["cause"] == failure["cause"] and KILLED in failure["cause"]
    (message,) = _Receiver.received
    assert message["event"] == "failed" and message["error"] == failure["error"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert "quality" not in entered and "train_a.closing" in entered


def test_a_training_job_that_exits_cleanly_without_mlflow_ends_its_run_finished(
    jobs: dict[str, Job], mlflow_server: MlflowServer, tmp_path: Path, name: str
) -> None:
    runs: dict[str, str] = {}

    def quiet(moto_job: Any, env: dict[str, str]) -> bool:
        runs[moto_job.job_name] = env["MLFLOW_RUN_ID"]
        return True  # exit 0, and never a word to MLflow

    jobs["train_a"] = quiet
    result, _ = _run(tmp_path, name, _spec(TRAIN_A))
    assert result["status"] == "SUCCEEDED", result
    (run_id,) = runs.values()
    assert _status(mlflow_server, run_id) == "FINISHED"


def test_a_run_the_job_ended_itself_keeps_its_status(
    jobs: dict[str, Job], mlflow_server: MlflowServer, tmp_path: Path, name: str
) -> None:
    runs: dict[str, str] = {}

    def killed_after_ending(moto_job: Any, env: dict[str, str]) -> bool:
        import mlflow

        runs[moto_job.job_name] = env["MLFLOW_RUN_ID"]
        mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]).set_terminated(env["MLFLOW_RUN_ID"], "KILLED")
        return False

    jobs["train_a"] = killed_after_ending
    result, _ = _run(tmp_path, name, _spec(TRAIN_A))
    assert result["status"] == "FAILED", result
    (run_id,) = runs.values()
    assert _status(mlflow_server, run_id) == "KILLED"


def test_a_killed_job_in_a_parallel_branch_fails_its_branch_with_its_own_error(
    jobs: dict[str, Job], mlflow_server: MlflowServer, tmp_path: Path, name: str, hook: str
) -> None:
    runs: dict[str, str] = {}
    done = threading.Event()

    def quick(moto_job: Any, env: dict[str, str]) -> bool:
        runs[moto_job.job_name] = env["MLFLOW_RUN_ID"]
        done.set()
        return True

    crash = _crash(runs)

    def crash_after_b(moto_job: Any, env: dict[str, str]) -> bool:
        done.wait(30)  # so the other branch's job ended too, and its close is not what is tested here
        return crash(moto_job, env)

    jobs["train_a"], jobs["train_b"] = crash_after_b, quick
    result, events = _run(tmp_path, name, _spec(TRAIN_A + TRAIN_B, hook))
    assert result["status"] == "FAILED", result
    assert _status(mlflow_server, runs["closing-train_a"]) == "FAILED"
    failure = _job_failure(events)
    told = f"{failure['error']}: {failure['cause']}"
    # The branch's Fail state carried the job's Error and Cause out of the Parallel, to the notification.
    assert KILLED in told and result["cause"] == told
    (message,) = _Receiver.received
    assert message["error"] == "pipegen.StepFailed" and message["cause"] == told


def test_an_unreachable_tracking_server_does_not_replace_the_jobs_error(
    jobs: dict[str, Job], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, hook: str
) -> None:
    runs: dict[str, str] = {}
    crash = _crash(runs)

    def crash_and_lose_mlflow(moto_job: Any, env: dict[str, str]) -> bool:
        ok = crash(moto_job, env)
        # The runtime Lambda (this process) now reaches no tracking server: closing the run fails.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        return ok

    jobs["train_a"] = crash_and_lose_mlflow
    result, events = _run(tmp_path, name, _spec(TRAIN_A, hook))
    assert result["status"] == "FAILED", result
    failure = _job_failure(events)
    # The closing state failed (after the Lambda's own retries) and its Catch went on to the failure route.
    failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert [f["resourceType"] for f in failed] == ["batch", "lambda"], failed
    assert result["cause"] == failure["cause"]
    (message,) = _Receiver.received
    assert message["error"] == failure["error"]


def test_the_close_run_kind_renders_the_specs_tracking_uri(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The Lambda reaches the server the spec names (here through ${env.X}), as prepare did to start the run."""
    import mlflow

    from pipegen.runtime.lambda_handler import handler

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    run = client.create_run(client.create_experiment(name)).info
    monkeypatch.setenv("CLOSING_TRACKING", mlflow_server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # not this one
    spec = {"status": "FAILED", "tracking_uri": "${env.CLOSING_TRACKING}"}
    context = {"params": {}, "run_id": "r", "run_date": "2026-12-02"}
    mlflow_run = {"run_id": run.run_id, "experiment_id": run.experiment_id}
    args = {"kind": "close_run", "spec_json": json.dumps(spec), "context": context, "mlflow_run": mlflow_run}
    result = handler({"action": "step", "args": args})
    assert result == {"passed": True, "run_id": run.run_id, "status": "FAILED", "closed": True}
    assert _status(mlflow_server, run.run_id) == "FAILED"
    # A second close with the same status changes nothing.
    assert handler({"action": "step", "args": args})["closed"] is False
    # A run the runtime ended and nothing touched since is ended again (a retry succeeded): over HTTP too, where the
    # run's end time and the runtime's pipegen.closed_ms tag round-trip through the REST API.
    again = handler({"action": "step", "args": {**args, "spec_json": json.dumps({**spec, "status": "FINISHED"})}})
    assert again["closed"] is True and _status(mlflow_server, run.run_id) == "FINISHED"
