"""Submit-and-wait for AWS Batch and SageMaker against moto's server (no containers run there)."""

from __future__ import annotations

import datetime
import json
import os
import signal
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from types import FrameType
from typing import Any

import boto3
import pytest

from pipegen.runtime.aws_jobs import Cancelled, batch_job, sagemaker_training
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.values import resolve_env_refs
from tests.support_aws import batch_queue as make_batch_queue


@pytest.fixture
def batch_queue(aws: str) -> dict[str, str]:
    """A compute environment, queue and job definition on moto, with Batch told not to use docker."""
    request = urllib.request.Request(
        f"{aws}/moto-api/config", data=json.dumps({"batch": {"use_docker": False}}).encode(), method="POST"
    )
    urllib.request.urlopen(request).close()
    name = f"q{uuid.uuid4().hex[:8]}"
    return make_batch_queue(name, name)


def test_batch_job_submits_and_waits(batch_queue: dict[str, str]) -> None:
    result = batch_job(
        job_name="pricing-train",
        job_queue=batch_queue["queue"],
        job_definition=batch_queue["definition"],
        command=["python", "-m", "pricing.train"],
        environment={"MLFLOW_RUN_ID": "abc"},
        resources={"VCPU": "64", "MEMORY": "262144"},
        poll_seconds=0.1,
    )
    assert result["status"] == "SUCCEEDED"
    job = boto3.client("batch").describe_jobs(jobs=[result["job_id"]])["jobs"][0]
    assert job["container"]["command"] == ["python", "-m", "pricing.train"]
    assert {"name": "MLFLOW_RUN_ID", "value": "abc"} in job["container"]["environment"]


def jobs_named(queue: str, name: str) -> list[dict[str, Any]]:
    found = boto3.client("batch").list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    return list(found["jobSummaryList"])


def test_a_retried_batch_job_waits_for_the_job_it_submitted(batch_queue: dict[str, str]) -> None:
    """A retry of the task (same run, same step, so the same job name) does not submit a second job."""
    args: dict[str, Any] = dict(
        job_name="pricing-train-run-1",
        job_queue=batch_queue["queue"],
        job_definition=batch_queue["definition"],
        command=["python", "-m", "pricing.train"],
        poll_seconds=0.05,
    )
    first = batch_job(**args)
    again = batch_job(**args)
    assert again == first
    assert [j["jobId"] for j in jobs_named(batch_queue["queue"], "pricing-train-run-1")] == [first["job_id"]]


def test_a_failed_batch_job_is_run_again_on_retry(batch_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    args: dict[str, Any] = dict(
        job_name="pricing-train-run-2",
        job_queue=batch_queue["queue"],
        job_definition=batch_queue["definition"],
        command=["true"],
        poll_seconds=0.05,
    )
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # moto fails the next job it is given
    with pytest.raises(RuntimeFailure, match=r"AWS Batch job pricing-train-run-2 \(.+\) failed"):
        batch_job(**args)
    monkeypatch.delenv("MOTO_SIMPLE_BATCH_FAIL_AFTER")
    assert batch_job(**args)["status"] == "SUCCEEDED"
    assert sorted(j["status"] for j in jobs_named(batch_queue["queue"], "pricing-train-run-2")) == [
        "FAILED",
        "SUCCEEDED",
    ]


@pytest.fixture
def running_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto (without docker) ends a Batch job as it is submitted; here a submitted job stays RUNNING."""
    from moto.batch_simple.models import BatchSimpleBackend

    def leave_running(self: Any, include_start_attempt: bool, job: Any) -> None:
        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.datetime.now()
        job.status = "RUNNING"

    monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", leave_running)


@pytest.mark.usefixtures("running_jobs")
def test_a_batch_job_past_the_steps_timeout_is_terminated(batch_queue: dict[str, str]) -> None:
    with pytest.raises(RuntimeFailure, match=r"did not finish within 0.3s; it was stopped"):
        batch_job(
            job_name="slow",
            job_queue=batch_queue["queue"],
            job_definition=batch_queue["definition"],
            command=["sleep", "3600"],
            timeout_seconds=0.3,
            poll_seconds=0.05,
        )
    [job] = jobs_named(batch_queue["queue"], "slow")
    described = boto3.client("batch").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert described["statusReason"] == "pipegen: the step's timeout of 0.3s passed"


@pytest.fixture
def sigterm_interrupts() -> Iterator[None]:
    """Without pipegen's own handler, SIGTERM here interrupts the wait (instead of ending pytest)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("running_jobs", "sigterm_interrupts")
def test_a_cancelled_wait_terminates_the_batch_job(batch_queue: dict[str, str]) -> None:
    """KFP stops a pod (run cancelled, deadline passed) with SIGTERM: the job must not keep running."""
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with pytest.raises((Cancelled, KeyboardInterrupt)):
        batch_job(
            job_name="cancelled",
            job_queue=batch_queue["queue"],
            job_definition=batch_queue["definition"],
            command=["sleep", "3600"],
            poll_seconds=0.05,
        )
    [job] = jobs_named(batch_queue["queue"], "cancelled")
    described = boto3.client("batch").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert described.get("statusReason", "").startswith("pipegen: the task waiting for it was cancelled")


def test_a_retried_sagemaker_training_waits_for_the_job_it_created(aws: str) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    args: dict[str, Any] = dict(
        job_name=name,
        image="123.dkr.ecr.us-east-1.amazonaws.com/train:1",
        role_arn="arn:aws:iam::123456789012:role/sm",
        instance_type="ml.m5.xlarge",
        instance_count=1,
        output_path="s3://models/out",
        command=["python", "train.py"],
        poll_seconds=0.05,
    )
    assert sagemaker_training(**args) == {"job_name": name, "status": "Completed"}
    # The retry finds the job by its run-derived name and does not create (or, on moto, overwrite) it.
    assert sagemaker_training(**{**args, "image": "123.dkr.ecr.us-east-1.amazonaws.com/train:2"})["job_name"] == name
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("train:1")


def test_sagemaker_training_creates_and_waits(aws: str) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    result = sagemaker_training(
        job_name=name,
        image="123.dkr.ecr.us-east-1.amazonaws.com/train:1",
        role_arn="arn:aws:iam::123456789012:role/sm",
        instance_type="ml.m5.xlarge",
        instance_count=1,
        output_path="s3://models/out",
        command=["python", "train.py", "--lr", "0.1"],
        environment={"MLFLOW_RUN_ID": "abc"},
        poll_seconds=0.1,
    )
    assert result == {"job_name": name, "status": "Completed"}
    job: dict[str, Any] = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("train:1")
    # moto keeps the job's shape (it does not echo Environment back).
    assert job["RoleArn"] == "arn:aws:iam::123456789012:role/sm"
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"


def test_unknown_batch_queue_fails(aws: str) -> None:
    with pytest.raises(Exception, match=r"(?i)queue|not found|ClientException"):
        batch_job(job_name="x", job_queue="nope", job_definition="nope", command=["true"], poll_seconds=0.1)


def test_env_refs_resolve_from_the_job_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEGEN_SECRET_DB", "postgresql://u:p@db/x")
    value = {"check": "sql", "connection": {"$env": "PIPEGEN_SECRET_DB"}, "list": [{"$env": "PIPEGEN_SECRET_DB"}, "x"]}
    assert resolve_env_refs(value) == {
        "check": "sql",
        "connection": "postgresql://u:p@db/x",
        "list": ["postgresql://u:p@db/x", "x"],
    }
    with pytest.raises(RuntimeFailure, match="environment variable MISSING_VAR is not set"):
        resolve_env_refs({"$env": "MISSING_VAR"})


def test_the_kfp_step_names_its_batch_job_after_the_run(batch_queue: dict[str, str]) -> None:
    """run_step (what a KFP component calls) derives the job name from the run key, so retries find the job."""
    from pipegen.runtime.step import run_step

    job = {"job_name": "pricing-train", "job_queue": batch_queue["queue"], "job_definition": batch_queue["definition"]}
    spec = {"command": ["python", "-m", "pricing.train"], "env": {}, "job": {**job, "timeout_seconds": 3600}}
    run_key = f"run-{uuid.uuid4().hex[:8]}"
    first = run_step("aws_batch", spec, params={}, run_id=run_key)
    assert run_step("aws_batch", spec, params={}, run_id=run_key) == first
    [submitted] = jobs_named(batch_queue["queue"], f"pricing-train-{run_key}")
    assert submitted["jobId"] == first["job_id"]
    described = boto3.client("batch").describe_jobs(jobs=[first["job_id"]])["jobs"][0]
    assert described["timeout"] == {"attemptDurationSeconds": 3600}
