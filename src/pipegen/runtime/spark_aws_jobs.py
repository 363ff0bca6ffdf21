"""Submit a Spark job to EMR, EMR Serverless, EMR on EKS or Glue and wait for it (for `pipegen run`).

The request is runtime.spark_aws's, the one the Step Functions Task sends, with a name unique to the run and step
(the Task's is the step's own: Step Functions waits itself). The guarantees are aws_jobs' for Batch: a retry of the
step finds the job it submitted (by that name) while it runs or once it succeeded, and waits for it instead of
submitting again; a failed one is submitted anew. A timeout or SIGTERM stops the job before failing; a failed job
fails with the service's own message.

How each platform's job is found again: EMR steps, EMR Serverless and EMR on EKS job runs by their name; a Glue run
has no name, so it carries one more argument, `--pipegen-job-name NAME` (a script's getResolvedOptions reads only
the options it asks for). EMR Serverless and EMR on EKS also get a ClientToken from the name and the attempt (how
many runs of that name came before), so the service itself never starts one attempt twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipegen.runtime.aws_jobs import _client, _wait
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.spark_aws import spark_request, spark_service_request

log = logging.getLogger(__name__)

GLUE_NAME_ARGUMENT = "--pipegen-job-name"


@dataclass(frozen=True)
class Platform:
    """A platform's service, the job states that may be waited for, the finished and failed ones."""

    title: str
    service: str
    usable: tuple[str, ...]
    done: str
    failed: tuple[str, ...]


PLATFORMS = {
    "emr": Platform(
        "EMR step", "emr", ("PENDING", "RUNNING", "COMPLETED"), "COMPLETED", ("CANCELLED", "FAILED", "INTERRUPTED")
    ),
    "emr_serverless": Platform(
        "EMR Serverless job run",
        "emr-serverless",
        ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED", "SUCCESS"),
        "SUCCESS",
        ("FAILED", "CANCELLED"),
    ),
    "emr_on_eks": Platform(
        "EMR on EKS job run",
        "emr-containers",
        ("PENDING", "SUBMITTED", "RUNNING", "COMPLETED"),
        "COMPLETED",
        ("FAILED", "CANCELLED"),
    ),
    "glue": Platform(
        "Glue job run",
        "glue",
        ("STARTING", "RUNNING", "WAITING", "SUCCEEDED"),
        "SUCCEEDED",
        ("STOPPED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED"),
    ),
}


def spark_job_name(base: str, run_id: str) -> str:
    """A job name unique to the run and step: at most 64 of [A-Za-z0-9._-] (EMR on EKS's limit, the strictest)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{base[:30]}-{run_id[-33:]}").strip("-._")
    return name[:64] or "pipegen"


def client_token(name: str, attempt: int) -> str:
    """The idempotency token of an attempt: the same for a retry of that attempt, another for the next one."""
    return hashlib.sha256(f"{name}#{attempt}".encode()).hexdigest()[:64]


def _pages(call: Callable[..., dict[str, Any]], key: str, token: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        if not page.get(token):
            return
        kwargs[token] = page[token]


def _runs(platform: str, client: Any, ids: Mapping[str, Any], name: str) -> list[tuple[str, str]]:
    """(id, state) of every job of this name, oldest first as the services list them newest first."""
    if platform == "emr":
        found = _pages(client.list_steps, "Steps", "Marker", ClusterId=ids["cluster_id"])
        runs = [(s["Id"], s["Status"]["State"]) for s in found if s.get("Name") == name]
    elif platform == "emr_serverless":
        found = _pages(client.list_job_runs, "jobRuns", "nextToken", applicationId=ids["application_id"])
        try:
            runs = [(r["id"], r["state"]) for r in found if r.get("name") == name]
        except client.exceptions.ResourceNotFoundException:
            # moto answers so for an application without runs yet; a missing one fails StartJobRun just after.
            runs = []
    elif platform == "emr_on_eks":
        found = _pages(
            client.list_job_runs, "jobRuns", "nextToken", virtualClusterId=ids["virtual_cluster_id"], name=name
        )
        runs = [(r["id"], r["state"]) for r in found if r.get("name") == name]
    else:
        found = _pages(client.get_job_runs, "JobRuns", "NextToken", JobName=ids["job_name"])
        marked = [r for r in found if (r.get("Arguments") or {}).get(GLUE_NAME_ARGUMENT) == name]
        runs = [(r["Id"], r["JobRunState"]) for r in marked]
    return runs[::-1]


def _submit(platform: str, client: Any, request: dict[str, Any], token: str) -> str:
    if platform == "emr":
        return str(client.add_job_flow_steps(JobFlowId=request["ClusterId"], Steps=[request["Step"]])["StepIds"][0])
    if platform in ("emr_serverless", "emr_on_eks"):
        started = client.start_job_run(**_lower(request), clientToken=token)
        return str(started["jobRunId"] if platform == "emr_serverless" else started["id"])
    return str(client.start_job_run(**request)["JobRunId"])


def _lower(value: Any) -> Any:
    """Step Functions takes the EMR Serverless and EMR on EKS fields capitalized; their APIs in camelCase.

    Only the keys of the request's own structure are converted: Properties' keys are Spark settings, kept as given.
    """
    if isinstance(value, list):
        return [_lower(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k[0].lower() + k[1:]: (v if k == "Properties" else _lower(v)) for k, v in value.items()}


def _state(platform: str, client: Any, ids: Mapping[str, Any], job_id: str) -> tuple[str, str]:
    """The job's state and, when it failed, the service's own words for why."""
    if platform == "emr":
        status = client.describe_step(ClusterId=ids["cluster_id"], StepId=job_id)["Step"]["Status"]
        details = status.get("FailureDetails") or {}
        said = [details.get("Reason"), details.get("Message"), (status.get("StateChangeReason") or {}).get("Message")]
        return status["State"], "; ".join(s for s in said if s)
    if platform == "emr_serverless":
        run = client.get_job_run(applicationId=ids["application_id"], jobRunId=job_id)["jobRun"]
        return run["state"], run.get("stateDetails") or ""
    if platform == "emr_on_eks":
        run = client.describe_job_run(id=job_id, virtualClusterId=ids["virtual_cluster_id"])["jobRun"]
        said = [run.get("failureReason"), run.get("stateDetails")]
        return run["state"], "; ".join(s for s in said if s)
    run = client.get_job_run(JobName=ids["job_name"], RunId=job_id)["JobRun"]
    return run["JobRunState"], run.get("ErrorMessage") or ""


def _stop(platform: str, client: Any, ids: Mapping[str, Any], job_id: str) -> None:
    if platform == "emr":
        client.cancel_steps(ClusterId=ids["cluster_id"], StepIds=[job_id], StepCancellationOption="SEND_INTERRUPT")
    elif platform == "emr_serverless":
        client.cancel_job_run(applicationId=ids["application_id"], jobRunId=job_id)
    elif platform == "emr_on_eks":
        client.cancel_job_run(id=job_id, virtualClusterId=ids["virtual_cluster_id"])
    else:
        client.batch_stop_job_run(JobName=ids["job_name"], JobRunIds=[job_id])


def _glue_fits(settings: Mapping[str, Any], command: Sequence[str]) -> None:
    """What a Glue run cannot take (`pipegen compile -t stepfunctions` says it located; the job would ignore it)."""
    given = [key for key in ("conf", "driver", "executors", "packages") if settings.get(key)]
    if given:
        raise RuntimeFailure(
            f"a Glue job run takes no {', '.join(given)}: set them on the Glue job (WorkerType, NumberOfWorkers,"
            " default arguments)"
        )
    args = list(command[1:])
    if len(args) % 2 or not all(k.startswith("--") for k in args[0::2]):
        raise RuntimeFailure(f"a Glue job run takes its arguments as --key value pairs; got {args!r}")


def spark_aws_job(
    *,
    platform: str,
    ids: Mapping[str, Any],
    job_name: str,
    settings: Mapping[str, Any],
    command: Sequence[str],
    environment: Mapping[str, str] | None = None,
    region: str | None = None,
    timeout_seconds: float | None = None,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Submit the Spark job (unless this run's job of that name runs or succeeded) and wait for it to succeed.

    ids: the platform's key of the backend; settings, command, environment: rendered, as spark_request takes them.
    """
    kind = PLATFORMS[platform]
    if platform == "glue":
        _glue_fits(settings, command)
    body = spark_request(platform, settings, command, dict(environment or {}))
    if platform == "glue":
        body["Arguments"] = {**body["Arguments"], GLUE_NAME_ARGUMENT: job_name}
    request = spark_service_request(platform, ids, job_name, timeout_seconds, body)
    client = _client(kind.service, region)
    runs = _runs(platform, client, ids, job_name)
    usable = [job_id for job_id, state in runs if state in kind.usable]
    what = f"{kind.title} {job_name}"
    if usable:
        job_id = usable[-1]
        log.info("found %s (%s) submitted earlier for this run: waiting for it", what, job_id)
    else:
        job_id = _submit(platform, client, request, client_token(job_name, len(runs) + 1))
        log.info("submitted %s (%s)", what, job_id)
    what = f"{what} ({job_id})"

    def done() -> bool:
        state, said = _state(platform, client, ids, job_id)
        if state in kind.failed:
            raise RuntimeFailure(f"{what} {state.lower()}: {said or 'no reason given'}")
        return state == kind.done

    _wait(
        done,
        lambda reason: _stop(platform, client, ids, job_id),
        what,
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        sleep=sleep,
        clock=clock,
    )
    return {"job_id": job_id, "job_name": job_name, "status": kind.done, "title": kind.title}
