"""Submit-and-wait for AWS Batch and SageMaker against moto's server (no containers run there)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import boto3
import pytest

from pipegen.runtime.aws_jobs import batch_job, sagemaker_training
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
