"""notify.on_success: a DAG run that ends in success posts the pipeline's on_success webhooks once, run through
Airflow itself (dag.test()) against a local HTTP receiver; a skipped promotion is a success, a failed run is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from tests.airflow.test_gate_wait import load_dag
from tests.differential.receiver import Receiver

SPEC = """\
pipegen: 1
name: told
params: {{alpha: 0.5, where: s}}
mlflow: {{experiment: told}}
backends:
  laptop: {{type: local}}
steps:
  - name: train
    train:
      backend: laptop
      command: [python, examples/train_demo.py, --alpha, "${{params.alpha}}", --samples, "200"]
      metrics: [rmse, r2]
  - name: quality
    evaluate: {{run_of: train, thresholds: ["r2 >= 0.8"], on_fail: skip}}
  - name: promote
    promote: {{model: told-model, run_of: train, alias: champion}}
notify:
  on_failure: [{{webhook: "{url}/fail"}}]
  on_success: [{{webhook: "{url}/ok/${{params.where}}"}}]
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.stop()


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_success_posts_on_success_once_even_when_promotion_is_skipped(
    airflow_db: Path, dags_folder: Path, demo_workdir: Path, receiver: Receiver
) -> None:
    dag: Any = load_dag(dags_folder, "told", SPEC.format(url=receiver.url("airflow")))

    promoted = dag.test()
    assert str(promoted.state) == "success", states(promoted)
    assert states(promoted)["promote"] == "success"
    # One success message, its URL rendered (params) like the failure callback's, and no failure message.
    assert receiver.take("airflow") == [
        {"path": "/ok/s", "body": {"pipeline": "told", "event": "succeeded", "run": promoted.run_id}}
    ]

    # Thresholds not met with on_fail: skip: promotion is skipped and the run succeeds, as `pipegen run` says.
    skipped = dag.test(run_conf={"alpha": 100000, "where": "x"})
    assert str(skipped.state) == "success", states(skipped)
    assert states(skipped)["promote"] == "skipped"
    assert receiver.take("airflow") == [
        {"path": "/ok/x", "body": {"pipeline": "told", "event": "succeeded", "run": skipped.run_id}}
    ]
    assert [str(v.version) for v in mlflow.MlflowClient().search_model_versions("name = 'told-model'")] == ["1"]


def test_a_failed_run_posts_only_its_failure(
    airflow_db: Path, dags_folder: Path, demo_workdir: Path, receiver: Receiver
) -> None:
    text = SPEC.format(url=receiver.url("airflow")).replace("examples/train_demo.py", "examples/missing.py")
    dag: Any = load_dag(dags_folder, "told", text)
    run = dag.test()
    assert str(run.state) == "failed", states(run)
    assert receiver.take("airflow") == [
        {"path": "/fail", "body": {"pipeline": "told", "event": "failed", "run": run.run_id}}
    ]
