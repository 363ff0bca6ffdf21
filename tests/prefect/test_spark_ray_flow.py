"""Spark and Ray steps in Prefect's engine: spark-submit on local[2] (Java 17) and Ray jobs on the session's real
Ray head, each a task submitting through pipegen's runtime and waiting, against the session's MLflow server.

Slow by nature (a Spark JVM starts in ~13-20 s, the Ray head in ~15-30 s once per session): one flow that
promotes, one whose Spark and Ray jobs both fail (side by side), one Ray job the runtime's timeout stops.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cases import REPO
from tests.prefect.support import compile_prefect, load_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

SPECS = REPO / "tests" / "specs"


@pytest.fixture
def workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_head: str, ray_client_env: None, tracking: str
) -> Path:
    """A directory holding the test specs' scripts at their relative paths, run from; RAY_ADDRESS the session's
    Ray head, MLFLOW_TRACKING_URI the session's MLflow server."""
    work = tmp_path / "work"
    shutil.copytree(SPECS / "sparkray", work / "tests" / "specs" / "sparkray")
    monkeypatch.chdir(work)
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    return work


def flow_of(data: dict[str, Any], work: Path) -> Any:
    """The flow a spec (as data) compiles to, loaded from the module `pipegen compile -t prefect` wrote."""
    spec = work.parent / "spec" / f"{data['name']}.yaml"
    spec.parent.mkdir()
    spec.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_flow(compile_prefect(work.parent / "out", spec), data["name"])


def task_runs(flow_run_id: Any) -> dict[str, Any]:
    """The flow run's task runs by step name, as the API server recorded them."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run for run in runs}


def ray_jobs(address: str, run_key: str) -> list[tuple[str, str]]:
    """(submission id, status) of the Ray jobs a run submitted."""
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(address).list_jobs()
    return sorted(
        (str(j.submission_id), str(j.status)) for j in jobs if (j.metadata or {}).get("pipegen.run_key") == run_key
    )


def test_spark_features_and_ray_training_promote_the_model(
    workdir: Path, ray_head: str, tracking: str, name: str
) -> None:
    """Spark writes the features, a Ray job trains on them into the pipeline's MLflow run, the model is promoted."""
    import mlflow

    data = yaml.safe_load((SPECS / "sparkray.yaml").read_text())
    data["mlflow"]["experiment"] = name
    data["steps"][-1]["promote"]["model"] = name
    state = flow_of(data, workdir)(return_state=True)
    assert state.is_completed(), state
    assert list((workdir / "build" / "features").glob("part-*.csv"))
    client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    version = client.get_model_version_by_alias(name, "champion")
    run = client.get_run(version.run_id)
    assert run.data.metrics["rows"] == 200 and run.data.metrics["r2"] > 0.99
    # The Ray job got the step's env and the run through its runtime_env, and logged into the run.
    assert run.data.tags["trained_on"] == "trained on ray"
    assert run.data.tags["pipegen.target"] == version.tags["pipegen.target"] == "prefect"
    flow_run_id = str(state.state_details.flow_run_id)
    assert run.data.tags["pipegen.run_key"] == flow_run_id
    # One submission, its id from the run key and the step (a retried task would find it again).
    assert ray_jobs(ray_head, flow_run_id) == [(f"sparkray-train-{flow_run_id}-1", "SUCCEEDED")]


def test_failing_spark_and_ray_jobs_fail_their_tasks_with_the_jobs_errors(workdir: Path, name: str) -> None:
    data = yaml.safe_load((SPECS / "sparkray-failing.yaml").read_text())
    data["backends"]["ray-here"]["address"] = "${env.RAY_ADDRESS}"  # `local` is a Ray only `pipegen run` starts
    data["mlflow"] = {"experiment": name}
    state = flow_of(data, workdir)(return_state=True)
    assert state.is_failed(), state
    tasks = task_runs(state.state_details.flow_run_id)
    assert tasks["features"].state.is_failed() and tasks["train"].state.is_failed()
    features, train = tasks["features"].state.message, tasks["train"].state.message
    assert "spark-submit exit code 1" in features, features
    assert "ValueError: features: the input partition is empty" in features, features
    assert "Ray job sparkray-failing-train-" in train and "RuntimeError: training diverged: loss is nan" in train, train


def test_a_ray_job_is_stopped_at_the_steps_timeout(workdir: Path, ray_head: str) -> None:
    """Prefect's timeout_seconds cancels the task's thread (an asyncio.CancelledError raised in it) and the runtime
    has its own deadline: whichever comes first, the Ray job must not outlive the task (it did: the wait let
    Prefect's CancelledError through without stopping the job)."""
    import time

    data = {
        "pipegen": 1,
        "name": "sleepy",
        "backends": {"ray-cluster": {"type": "ray", "address": "${env.RAY_ADDRESS}"}},
        "steps": [
            {
                "name": "sleep",
                "retries": 0,
                "timeout": "15s",
                "task": {"backend": "ray-cluster", "command": ["python", "-c", "import time; time.sleep(600)"]},
            }
        ],
    }
    state = flow_of(data, workdir)(return_state=True)
    assert state.is_failed(), state
    run_key = str(state.state_details.flow_run_id)
    message = task_runs(state.state_details.flow_run_id)["sleep"].state.message
    assert "timeout of 15.0 second" in message or "did not finish within 15s; it was stopped" in message, message
    job = f"sleepy-sleep-{run_key}-1"
    deadline = time.monotonic() + 60
    while ray_jobs(ray_head, run_key) != [(job, "STOPPED")] and time.monotonic() < deadline:
        time.sleep(1)
    assert ray_jobs(ray_head, run_key) == [(job, "STOPPED")]
