"""A failed judgement is final; an error while judging (the tracking store failing) is retried."""

from __future__ import annotations

from pathlib import Path

from tests.airflow.test_gate_wait import load_dag

SPEC = """\
pipegen: 1
name: judged
params: {alpha: 0.5}
defaults: {retries: 2, retry_delay: 1s, backoff: fixed, timeout: 10m}
mlflow: {experiment: judged}
backends:
  laptop: {type: local}
steps:
  - name: train
    train:
      backend: laptop
      command: [python, examples/train_demo.py, --alpha, "${params.alpha}", --samples, "200"]
      metrics: [rmse, r2]
  - name: spoil
    task: {backend: laptop, command: [python, -c, "${params.spoil}"]}
  - name: quality
    evaluate: {run_of: train, thresholds: ["r2 >= 0.8"], on_fail: fail}
"""


def tries(run: object) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (str(ti.state), int(ti.try_number)) for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def test_thresholds_not_met_fail_once_without_retry(airflow_db: Path, dags_folder: Path, demo_workdir: Path) -> None:
    dag = load_dag(dags_folder, "judged", SPEC.replace("params: {alpha: 0.5}", "params: {alpha: 0.5, spoil: pass}"))
    run = dag.test(run_conf={"alpha": 100000})  # type: ignore[attr-defined]
    assert str(run.state) == "failed"
    assert tries(run)["train"] == ("success", 1)
    assert tries(run)["quality"] == ("failed", 1)  # retries: 2, yet one try


def test_an_error_while_judging_is_retried(airflow_db: Path, dags_folder: Path, demo_workdir: Path) -> None:
    # The step before the evaluation leaves the tracking store unreadable.
    spoil = "open('mlflow.db', 'wb').write(b'not a database' * 1000)"
    dag = load_dag(
        dags_folder, "judged", SPEC.replace("params: {alpha: 0.5}", f"params: {{alpha: 0.5, spoil: {spoil!r}}}")
    )
    run = dag.test()  # type: ignore[attr-defined]
    assert str(run.state) == "failed"
    assert tries(run)["spoil"] == ("success", 1)
    assert tries(run)["quality"] == ("failed", 3)  # every try errored: 1 + 2 retries
