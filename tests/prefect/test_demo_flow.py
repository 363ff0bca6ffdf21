"""The demo spec's flow, compiled to a module and called, runs in Prefect's engine against a real MLflow server.

Each test compiles its own copy of specs/demo.yaml whose model and experiment have a fresh name, so the
tests share one MLflow server without seeing each other's versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.differential.receiver import Receiver
from tests.prefect.support import compile_prefect, demo_variant, load_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def _client(tracking: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)


def _task_runs(flow_run_id: Any) -> dict[str, Any]:
    """The flow run's task runs by task name, as the API server recorded them."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name.rsplit("-", 1)[0]: run for run in runs}


def _never_ran(tasks: dict[str, Any], name: str) -> bool:
    """The step was not submitted, or was submitted and never started (its upstream failed)."""
    return name not in tasks or (tasks[name].run_count == 0 and not tasks[name].state.is_completed())


def test_demo_promotes_version_1_then_failing_thresholds_promote_nothing(
    tmp_path: Path, tracking: str, name: str, receiver: Receiver
) -> None:
    spec = demo_variant(
        tmp_path / "spec",
        name,
        append=f'\nnotify:\n  on_success: [{{webhook: "{receiver.url("prefect")}/ok"}}]\n',
    )
    demo = load_flow(compile_prefect(tmp_path / "out", spec), "demo")

    state = demo(return_state=True)
    assert state.is_completed(), state
    assert state.result() is None
    client = _client(tracking)
    version = client.get_model_version_by_alias(name, "champion")
    assert str(version.version) == "1"
    assert version.tags["pipegen.target"] == "prefect"
    run = client.get_run(version.run_id)
    # ${run.id} is the flow run's id: the MLflow run is keyed by it.
    flow_run_id = str(state.state_details.flow_run_id)
    assert run.data.tags["pipegen.run_key"] == flow_run_id
    assert run.data.tags["pipegen.target"] == "prefect"
    assert run.data.params["alpha"] == "0.5"
    [posted] = receiver.take("prefect")
    assert posted["body"] == {"pipeline": "demo", "event": "succeeded", "run": flow_run_id}

    # A failing threshold (on_fail: skip) ends the run Completed, saying why, with nothing promoted.
    state = demo(alpha=100000.0, return_state=True)
    assert state.is_completed(), state
    assert "nothing was promoted" in (state.message or ""), state.message
    assert "quality" in (state.message or "")
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    runs = client.search_runs([run.info.experiment_id])
    assert sorted(r.data.tags.get("pipegen.evaluation", "") for r in runs) == ["failed", "passed"]
    assert _never_ran(_task_runs(state.state_details.flow_run_id), "promote")
    [posted] = receiver.take("prefect")
    assert posted["body"]["event"] == "succeeded"


def test_failing_thresholds_with_on_fail_fail_fail_the_flow_and_post_one_failure(
    tmp_path: Path, tracking: str, name: str, receiver: Receiver
) -> None:
    spec = demo_variant(
        tmp_path / "spec",
        name,
        replace={"on_fail: skip": "on_fail: fail", "alpha: 0.5": "alpha: 100000.0"},
        append=f'\nnotify:\n  on_failure: [{{webhook: "{receiver.url("prefect")}/failed"}}]\n',
    )
    demo = load_flow(compile_prefect(tmp_path / "out", spec), "demo")

    state = demo(return_state=True)
    assert state.is_failed(), state
    flow_run_id = str(state.state_details.flow_run_id)
    assert receiver.take("prefect") == [
        {"path": "/failed", "body": {"pipeline": "demo", "event": "failed", "run": flow_run_id}}
    ]
    assert list(_client(tracking).search_model_versions(f"name = '{name}'")) == []
    tasks = _task_runs(state.state_details.flow_run_id)
    # A failed judgement is final: the evaluation ran once (retries are for infrastructure errors).
    assert tasks["quality"].run_count == 1
    assert tasks["quality"].state.is_failed()
    assert _never_ran(tasks, "promote"), tasks["promote"]


def test_a_step_that_fails_once_is_retried_and_succeeds_in_one_mlflow_run(
    tmp_path: Path, tracking: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A training command that fails its first attempt, then logs passing metrics and a model.
    monkeypatch.setenv("PIPEGEN_DIFF_STATE", str(tmp_path / "state"))
    command = 'command: [python, examples/train_demo.py, --alpha, "${params.alpha}", --samples, "${params.n_samples}"]'
    spec = demo_variant(
        tmp_path / "spec",
        name,
        replace={
            command: "command: [python, -m, tests.differential.jobs.train, --fail-times, '1', "
            "--metric, r2=0.9, --metric, rmse=0.5, --key, " + name + "]"
        },
    )
    demo = load_flow(compile_prefect(tmp_path / "out", spec), "demo")

    state = demo(return_state=True)
    assert state.is_completed(), state
    tasks = _task_runs(state.state_details.flow_run_id)
    assert tasks["train"].run_count == 2, tasks["train"]
    client = _client(tracking)
    version = client.get_model_version_by_alias(name, "champion")
    [run] = client.search_runs([client.get_run(version.run_id).info.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"r2": 0.9, "rmse": 0.5}
