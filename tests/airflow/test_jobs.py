"""Batch and SageMaker job settings, as the providers' operators get them after Airflow renders the task."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from pipegen.runtime.aws_jobs import sagemaker_job_name
from tests.airflow.test_gate_wait import load_dag

SPEC = (
    "pipegen: 1\nname: jobs\ndefaults: {retries: 1, timeout: 1h}\n"
    "backends:\n"
    "  batch: {type: aws_batch, job_queue: q, job_definition: d}\n"
    "  sm: {type: sagemaker, role_arn: 'arn:aws:iam::1:role/r', image: img, instance_type: ml.m5.large,"
    " output_path: 's3://out/'}\n"
    "steps:\n"
    "  - name: fit\n    task: {backend: sm, command: [python, fit.py, '${run.date}']}\n"
    "  - name: score\n    timeout: 30s\n    task: {backend: batch, command: [score]}\n"
)


def rendered(dag: object, task_id: str, run_id: str) -> object:
    """The task rendered for a run without a logical date (Airflow 3's manual runs may have none)."""
    task = dag.get_task(task_id)  # type: ignore[attr-defined]
    now = datetime(2026, 1, 2, 12, tzinfo=UTC)
    dag_run = SimpleNamespace(logical_date=None, run_after=now)
    context = {"dag_run": dag_run, "run_id": run_id, "params": {}, "dag": dag, "task": task}
    task.render_template_fields(context, jinja_env=dag.get_template_env())  # type: ignore[attr-defined]
    return task


def test_a_training_job_is_named_for_its_run_and_step(dags_folder: Path) -> None:
    dag = load_dag(dags_folder, "jobs", SPEC)
    run_id = "manual__2026-01-02T12:00:00.123456+00:00"
    fit = rendered(dag, "fit", run_id)
    config = fit.config  # type: ignore[attr-defined]
    # The name every target's runtime derives; no logical date needed.
    assert config["TrainingJobName"] == sagemaker_job_name("jobs-fit", run_id)
    assert config["AlgorithmSpecification"]["ContainerArguments"] == ["fit.py", "2026-01-02"]
    # SageMaker stops the job at the step's timeout even if nothing else does.
    assert config["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_batch_ends_the_job_at_the_step_timeout(dags_folder: Path) -> None:
    dag = load_dag(dags_folder, "jobs", SPEC)
    score = dag.get_task("score")  # type: ignore[attr-defined]
    assert score.execution_timeout.total_seconds() == 30
    # Submitted with timeout.attemptDurationSeconds: Batch's minimum is 60 s.
    assert score.submit_job_timeout == 60
