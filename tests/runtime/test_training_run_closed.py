"""A training step's job that leaves its MLflow run RUNNING (it crashed, or never ended the run) ends it as the job
ended, on every target whose task runs the job through the runtime's step action (KFP's and Prefect's tasks, Argo's
runtime containers), as `pipegen run` does: FAILED when the job failed, FINISHED when it succeeded. A run the job
ended itself keeps its status. Orchestrators that run the job themselves call the close_run action (last test):
Airflow's task callbacks, Step Functions' closing states, Argo's hooks, KFP's closer task."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import mlflow
import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.start_run import start_run
from pipegen.runtime.step import run_step


def started(uri: str, step: str) -> dict[str, str]:
    run = start_run(
        pipeline="closing", step=step, spec_sha256="0" * 64, target="kfp", run_key="k1", experiment="closing",
        tracking_uri=uri,
    )  # fmt: skip
    return {k: str(v) for k, v in run.items()}


def local(command: list[str], uri: str) -> dict[str, object]:
    return {"command": command, "tracking_uri": uri}


@pytest.mark.parametrize(
    ("step", "code", "status"),
    [
        ("crashes", "import sys; sys.exit(3)", "FAILED"),  # never touched MLflow
        ("quiet", "print('trained')", "FINISHED"),  # succeeded without ending the run
        # Ended its own run (resumed through MLFLOW_RUN_ID, then ended FAILED by MLflow's context manager on the
        # exception) and then exited 0: the job's own word stands.
        (
            "own",
            "import mlflow\ntry:\n with mlflow.start_run():\n  raise ValueError('x')\nexcept ValueError: pass",
            "FAILED",
        ),
    ],
)
def test_the_run_ends_as_the_job_ended(tmp_path: Path, step: str, code: str, status: str) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = started(uri, step)
    spec = local([sys.executable, "-c", code], uri)
    if code.endswith("sys.exit(3)"):
        with pytest.raises(RuntimeFailure, match="exited with 3"):
            run_step("local", spec, params={}, run_id="k1", mlflow_run=run, target="kfp")
    else:
        run_step("local", spec, params={}, run_id="k1", mlflow_run=run, target="kfp")
    assert mlflow.MlflowClient(tracking_uri=uri).get_run(run["run_id"]).info.status == status


def test_a_retried_attempt_resumes_the_run_it_ended(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = started(uri, "flaky")
    marker = tmp_path / "tried"
    code = (
        "import pathlib, sys, mlflow\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "if not m.exists():\n m.touch(); sys.exit(1)\n"
        "with mlflow.start_run():\n mlflow.log_metric('auc', 0.9)\n"
    )
    with pytest.raises(RuntimeFailure):
        run_step("local", local([sys.executable, "-c", code], uri), params={}, run_id="k1", mlflow_run=run)
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_run(run["run_id"]).info.status == "FAILED"
    run_step(
        "local", local([sys.executable, "-c", code], uri), params={}, run_id="k1", mlflow_run=run
    )  # the orchestrator's retry
    finished = client.get_run(run["run_id"])
    assert (finished.info.status, finished.data.metrics) == ("FINISHED", {"auc": 0.9})


def test_a_retry_whose_job_never_uses_mlflow_finishes_the_run(tmp_path: Path) -> None:
    """The first attempt's job fails (the runtime ends the run FAILED); the retry's job succeeds without touching
    MLflow: the run ends FINISHED, as the step did, not FAILED as the first attempt left it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = started(uri, "plain")
    marker = tmp_path / "tried"
    code = f"import pathlib, sys\nm = pathlib.Path({str(marker)!r})\nif not m.exists():\n m.touch(); sys.exit(1)\n"
    spec = local([sys.executable, "-c", code], uri)
    with pytest.raises(RuntimeFailure):
        run_step("local", spec, params={}, run_id="k1", mlflow_run=run)
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_run(run["run_id"]).info.status == "FAILED"
    run_step("local", spec, params={}, run_id="k1", mlflow_run=run)  # the orchestrator's retry
    assert client.get_run(run["run_id"]).info.status == "FINISHED"


def test_the_close_run_action_ends_only_a_run_left_running(tmp_path: Path) -> None:
    """What an orchestrator's own job (Airflow's operators, Step Functions' .sync tasks, Argo's containers) calls
    after a training job: the run the job left RUNNING ends with the given status, once."""
    from pipegen.runtime.actions import action

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = started(uri, "native")
    close = action("close_run")
    assert close(run=run, status="FAILED", tracking_uri=uri) == {
        "run_id": run["run_id"],
        "status": "FAILED",
        "closed": True,
    }
    assert close(run=run, status="FAILED", tracking_uri=uri)["closed"] is False  # once
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_run(run["run_id"]).info.status == "FAILED"
    # The retry's job succeeded without touching the run (Airflow's on_success after on_retry): ended again.
    assert close(run=run, status="FINISHED", tracking_uri=uri)["closed"] is True
    assert client.get_run(run["run_id"]).info.status == "FINISHED"
    # A job that resumes the run and ends it itself has the last word: its status is kept.
    client.update_run(run["run_id"], status="RUNNING")
    client.set_terminated(run["run_id"], "FAILED", end_time=int(time.time() * 1000) + 5)
    assert close(run=run, status="FINISHED", tracking_uri=uri)["closed"] is False
    assert client.get_run(run["run_id"]).info.status == "FAILED"
    with pytest.raises(RuntimeFailure, match="status must be one of"):
        close(run=run, status="RUNNING", tracking_uri=uri)
