"""Submit an AWS Batch job or a SageMaker training job and wait for it (for targets without native waits)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from pipegen.runtime.errors import RuntimeFailure

POLL_SECONDS = 30.0


def _client(service: str, region: str | None) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(service, region_name=region) if region else boto3.client(service)


def batch_job(
    *,
    job_name: str,
    job_queue: str,
    job_definition: str,
    command: list[str],
    environment: dict[str, str] | None = None,
    resources: dict[str, str] | None = None,
    region: str | None = None,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Submit the job with the command and environment overridden, and wait until it ends."""
    batch = _client("batch", region)
    overrides: dict[str, Any] = {"command": list(command)}
    if environment:
        overrides["environment"] = [{"name": k, "value": v} for k, v in sorted(environment.items())]
    if resources:
        overrides["resourceRequirements"] = [{"type": k, "value": v} for k, v in sorted(resources.items())]
    job_id = batch.submit_job(
        jobName=job_name, jobQueue=job_queue, jobDefinition=job_definition, containerOverrides=overrides
    )["jobId"]
    while True:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        status = job["status"]
        if status == "SUCCEEDED":
            return {"job_id": job_id, "status": status}
        if status == "FAILED":
            raise RuntimeFailure(
                f"AWS Batch job {job_name} ({job_id}) failed: {job.get('statusReason', 'no reason given')}"
            )
        sleep(poll_seconds)


def sagemaker_job_name(base: str, run_id: str) -> str:
    """A training job name unique to the run: SageMaker names are at most 63 of [a-zA-Z0-9-] and never reused."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", f"{base[:40]}-{run_id[-20:]}").strip("-")
    return name[:63] or "pipegen"


def sagemaker_training(
    *,
    job_name: str,
    image: str,
    role_arn: str,
    instance_type: str,
    instance_count: int,
    output_path: str,
    command: list[str],
    environment: dict[str, str] | None = None,
    max_runtime_seconds: int = 86400,
    volume_gb: int = 30,
    region: str | None = None,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Create the training job running the command in the image, and wait until it ends."""
    sagemaker = _client("sagemaker", region)
    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if command:
        algorithm["ContainerEntrypoint"] = command[:1]
        if command[1:]:
            algorithm["ContainerArguments"] = command[1:]
    sagemaker.create_training_job(
        TrainingJobName=job_name,
        AlgorithmSpecification=algorithm,
        RoleArn=role_arn,
        ResourceConfig={"InstanceType": instance_type, "InstanceCount": instance_count, "VolumeSizeInGB": volume_gb},
        OutputDataConfig={"S3OutputPath": output_path},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime_seconds},
        Environment=dict(sorted((environment or {}).items())),
    )
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=job_name)
        status = job["TrainingJobStatus"]
        if status == "Completed":
            return {"job_name": job_name, "status": status}
        if status in ("Failed", "Stopped"):
            raise RuntimeFailure(
                f"SageMaker training job {job_name} {status.lower()}: {job.get('FailureReason', 'no reason given')}"
            )
        sleep(poll_seconds)
