"""Submit an AWS Batch job or a SageMaker training job and wait for it (for targets without native waits).

Both are safe to run again for the same run and step (an orchestrator retrying the task): the job's name is
derived from the run key, and a job of that name that is still running or has succeeded is waited for, not
submitted again. A wait that is cancelled (SIGTERM: a KFP run cancelled, a pod past its deadline) or that
outlives its timeout stops the job before giving up, so no job is left running behind a failed task.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from pipegen.runtime.errors import RuntimeFailure

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0
# The first status checks come sooner (1, 2, 4, ... s, then every POLL_SECONDS), so a job of a few seconds is
# not waited on for a whole poll, and a job of hours costs no more calls than a fixed poll.
FIRST_POLL_SECONDS = 1.0
BATCH_ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
SAGEMAKER_REUSABLE = ("InProgress", "Completed", "Stopping")
# A SageMaker name is never reused, so a retry after a failed job takes the next of NAME, NAME-2, ...
MAX_SAGEMAKER_ATTEMPTS = 20
# SageMaker answers "Requested resource not found." (moto: "Could not find training job ...").
_SAGEMAKER_MISSING = ("not found", "could not find", "does not exist")


class Cancelled(BaseException):
    """The task was told to stop (SIGTERM) while it waited for its job; BaseException so no retry swallows it."""


class _TimedOut(Exception):
    pass


def _client(service: str, region: str | None) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(service, region_name=region) if region else boto3.client(service)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into Cancelled while waiting (only the main thread can own signal handlers)."""

    def cancel(signum: int, frame: FrameType | None) -> None:
        raise Cancelled(f"received signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, cancel)
    except ValueError:  # not the main thread: the orchestrator's own handling applies
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def poll_delays(poll_seconds: float | None) -> Iterator[float]:
    """The waits between status checks: poll_seconds each, or FIRST_POLL_SECONDS doubling up to POLL_SECONDS."""
    delay = FIRST_POLL_SECONDS if poll_seconds is None else poll_seconds
    while True:
        yield delay
        if poll_seconds is None:
            delay = min(delay * 2, POLL_SECONDS)


def _wait(
    poll: Callable[[], bool],
    stop: Callable[[str], None],
    what: str,
    *,
    timeout_seconds: float | None,
    poll_seconds: float | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Poll until poll() says done; on cancellation or timeout call stop(reason) first, then fail."""
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    delays = poll_delays(poll_seconds)
    with _stop_on_sigterm():
        try:
            while not poll():
                if deadline is not None and clock() >= deadline:
                    raise _TimedOut
                delay = next(delays)
                # The last wait ends at the deadline, so the job is stopped on time, not up to a poll late.
                sleep(delay if deadline is None else max(0.0, min(delay, deadline - clock())))
        except _TimedOut:
            stop(f"pipegen: the step's timeout of {timeout_seconds:g}s passed")
            raise RuntimeFailure(f"{what} did not finish within {timeout_seconds:g}s; it was stopped") from None
        except BaseException as exc:
            if isinstance(exc, Exception):  # the job's own failure, or a status call that failed: no cancellation
                raise
            # Cancelled (SIGTERM), Ctrl-C, or an orchestrator cancelling the waiting thread: Prefect's task timeout
            # raises its asyncio.CancelledError subclass inside it. The job must not outlive the task waiting for it.
            stop(f"pipegen: the task waiting for it was cancelled ({exc or type(exc).__name__})")
            raise


def batch_job_name(base: str, run_id: str) -> str:
    """A Batch job name unique to the run and step: at most 128 of [A-Za-z0-9_-], starting with a letter or digit."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{base[:80]}-{run_id[-40:]}").strip("-_")
    return name[:128] or "pipegen"


def _find_batch_job(batch: Any, job_queue: str, job_name: str) -> str | None:
    """The newest job of this name in the queue that is running or has succeeded (a failed one is run again)."""
    summaries = batch.list_jobs(jobQueue=job_queue, filters=[{"name": "JOB_NAME", "values": [job_name]}])
    usable = [
        j
        for j in summaries.get("jobSummaryList", [])
        if j.get("jobName") == job_name and j.get("status") in (*BATCH_ACTIVE, "SUCCEEDED")
    ]
    if not usable:
        return None
    job = max(usable, key=lambda j: j.get("createdAt", 0))
    log.info("found AWS Batch job %s (%s) submitted earlier for this run: waiting for it", job_name, job["jobId"])
    return str(job["jobId"])


def batch_job(
    *,
    job_name: str,
    job_queue: str,
    job_definition: str,
    command: list[str],
    environment: dict[str, str] | None = None,
    resources: dict[str, str] | None = None,
    region: str | None = None,
    timeout_seconds: float | None = None,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Submit the job (unless this run's job of that name exists) with command and environment overridden; wait for it."""
    batch = _client("batch", region)
    job_id = _find_batch_job(batch, job_queue, job_name)
    if job_id is None:
        overrides: dict[str, Any] = {"command": list(command)}
        if environment:
            overrides["environment"] = [{"name": k, "value": v} for k, v in sorted(environment.items())]
        if resources:
            overrides["resourceRequirements"] = [{"type": k, "value": v} for k, v in sorted(resources.items())]
        extra: dict[str, Any] = {}
        if timeout_seconds is not None and timeout_seconds >= 60:  # Batch's minimum attempt duration
            extra["timeout"] = {"attemptDurationSeconds": int(timeout_seconds)}
        job_id = batch.submit_job(
            jobName=job_name, jobQueue=job_queue, jobDefinition=job_definition, containerOverrides=overrides, **extra
        )["jobId"]
        log.info("submitted AWS Batch job %s (%s) to queue %s", job_name, job_id, job_queue)
    found: dict[str, Any] = {}

    def done() -> bool:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] == "FAILED":
            raise RuntimeFailure(
                f"AWS Batch job {job_name} ({job_id}) failed: {job.get('statusReason', 'no reason given')}"
            )
        found.update(job)
        return bool(job["status"] == "SUCCEEDED")

    _wait(
        done,
        lambda reason: batch.terminate_job(jobId=job_id, reason=reason),
        f"AWS Batch job {job_name} ({job_id})",
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        sleep=sleep,
        clock=clock,
    )
    return {"job_id": job_id, "status": found["status"]}


def sagemaker_job_name(base: str, run_id: str) -> str:
    """A training job name unique to the run: SageMaker names are at most 63 of [a-zA-Z0-9-] and never reused."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", f"{base[:40]}-{run_id[-20:]}").strip("-")
    return name[:63] or "pipegen"


def _sagemaker_attempt(sagemaker: Any, job_name: str) -> tuple[str, str | None]:
    """The name to use and the status of an existing job to wait for (None: create it)."""
    for attempt in range(1, MAX_SAGEMAKER_ATTEMPTS + 1):
        name = job_name if attempt == 1 else f"{job_name[: 63 - len(str(attempt)) - 1]}-{attempt}"
        try:
            status = str(sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"])
        except Exception as exc:  # botocore's ClientError (ValidationException) for a job that does not exist
            if any(words in str(exc).lower() for words in _SAGEMAKER_MISSING):
                return name, None
            raise
        if status in SAGEMAKER_REUSABLE:
            log.info("found SageMaker training job %s (%s) from an earlier attempt: waiting for it", name, status)
            return name, status
    raise RuntimeFailure(f"SageMaker training job {job_name} failed {MAX_SAGEMAKER_ATTEMPTS} times; not trying again")


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
    timeout_seconds: float | None = None,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Create the training job running the command in the image (unless this run's job exists), and wait for it."""
    sagemaker = _client("sagemaker", region)
    name, status = _sagemaker_attempt(sagemaker, job_name)
    if status is None:
        algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
        if command:
            algorithm["ContainerEntrypoint"] = command[:1]
            if command[1:]:
                algorithm["ContainerArguments"] = command[1:]
        sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification=algorithm,
            RoleArn=role_arn,
            ResourceConfig={
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
                "VolumeSizeInGB": volume_gb,
            },
            OutputDataConfig={"S3OutputPath": output_path},
            StoppingCondition={"MaxRuntimeInSeconds": max_runtime_seconds},
            Environment=dict(sorted((environment or {}).items())),
        )
        log.info("created SageMaker training job %s", name)

    def done() -> bool:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        state = job["TrainingJobStatus"]
        if state in ("Failed", "Stopped"):
            raise RuntimeFailure(
                f"SageMaker training job {name} {state.lower()}: {job.get('FailureReason', 'no reason given')}"
            )
        return bool(state == "Completed")

    _wait(
        done,
        lambda reason: sagemaker.stop_training_job(TrainingJobName=name),
        f"SageMaker training job {name}",
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        sleep=sleep,
        clock=clock,
    )
    return {"job_name": name, "status": "Completed"}
