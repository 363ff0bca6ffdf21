"""Submit a Ray job through the cluster's job server (`ray.job_submission.JobSubmissionClient`) and wait for it.

The guarantees of the Batch path (runtime.aws_jobs): a retried task finds the job an earlier attempt of the same
run and step submitted and, while it is pending or running (or once it has succeeded), waits for it instead of
submitting another; a timeout or a cancelled wait stops the job; a failed job fails the step with Ray's own
message. Ray never reuses a submission id, so each submission takes the next of `<step>-<run>-1`, `-2`, ...:
the n-th attempt that had to submit gets id n, derived from the run key and step alone, which every orchestrator
can reproduce (KFP tells a task no attempt number). The job's logs are fetched when it ends.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from pipegen.runtime.aws_jobs import _wait
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redact import redact

log = logging.getLogger(__name__)

ACTIVE = ("PENDING", "RUNNING")
REUSABLE = (*ACTIVE, "SUCCEEDED")
# A step whose job failed this often in one run gives up rather than submit forever.
MAX_SUBMISSIONS = 50
_ID_LENGTH = 120
# How long a submission waits for the head's job agent (it registers seconds after the job server answers).
AGENT_WAIT_SECONDS = 180.0
AGENT_POLL_SECONDS = 2.0


def submission_id(base: str, run_id: str, number: int) -> str:
    """The id of a step's n-th submission in a run: [A-Za-z0-9_-], the run key's end kept, unique per number."""
    suffix = f"-{number}"
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{base[:60]}-{run_id[-50:]}").strip("-_") or "pipegen"
    return text[: _ID_LENGTH - len(suffix)] + suffix


def _client(address: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise RuntimeFailure(
            "Ray steps need ray[default] where they are submitted from (pipegen's [ray] extra)"
        ) from None
    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RuntimeFailure(f"cannot reach the Ray job server at {address}: {exc}") from None


def _status(client: Any, job: str) -> tuple[str, Any] | None:
    """(status, details) of a submitted job, or None when the cluster has no job of that id."""
    try:
        details = client.get_job_info(job)
    except RuntimeError as exc:
        if "404" in str(exc) or "does not exist" in str(exc):
            return None
        raise
    return str(getattr(details.status, "value", details.status)), details


def _find_or_number(client: Any, base: str, run_id: str) -> tuple[str, bool]:
    """The submission to wait for (id, True), or the id to submit next (id, False)."""
    for number in range(1, MAX_SUBMISSIONS + 1):
        job = submission_id(base, run_id, number)
        found = _status(client, job)
        if found is None:
            return job, False
        if found[0] in REUSABLE:
            log.info("found Ray job %s (%s) from an earlier attempt: waiting for it", job, found[0].lower())
            return job, True
    raise RuntimeFailure(
        f"the Ray jobs of step {base} failed {MAX_SUBMISSIONS} times in run {run_id}; not submitting again"
    )


def job_runtime_env(runtime_env: Mapping[str, Any] | None, environment: Mapping[str, str] | None) -> dict[str, Any]:
    """The user's runtime_env with environment merged into its env_vars (environment wins: the MLflow run)."""
    merged = json.loads(json.dumps(dict(runtime_env or {})))  # a deep copy of plain JSON data
    env_vars = {str(k): str(v) for k, v in dict(merged.get("env_vars") or {}).items()}
    env_vars.update(environment or {})
    if env_vars:
        merged["env_vars"] = dict(sorted(env_vars.items()))
    return dict(merged)


# What MLflow prints as a run ends ("🏃 View run NAME at: URL", "🧪 View experiment at: URL"): a job that logs to
# MLflow ends its output with these even when it fails, so they say nothing of why.
_MLFLOW_BANNER = re.compile(r"^\W*View (run|experiment) .*\bat: \S+$")


def _job_error(details: Any) -> str:
    """Ray's message for a failed job, shortened to its first line and the last line of the logs it quotes (not
    MLflow's closing banners)."""
    message = str(getattr(details, "message", "") or "").strip()
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "no reason given"
    quoted = [line for line in lines[1:] if not _MLFLOW_BANNER.match(line)]
    return lines[0] if not quoted else f"{lines[0].rstrip(':')}: ... {quoted[-1]}"


def _save_logs(client: Any, job: str, output: IO[bytes] | None) -> None:
    try:
        text = client.get_job_logs(job)
    except Exception as exc:  # noqa: BLE001 - missing logs must not hide the job's own outcome
        text = f"pipegen: could not fetch the logs of Ray job {job}: {exc}\n"
    data = redact(text).encode("utf-8", "replace")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write(data)
        output.flush()


def _submit(client: Any, sleep: Callable[[float], None], clock: Callable[[], float], **request: Any) -> None:
    """Submit, waiting while the head has no job agent yet (a cluster that has just started answers 500 for a while)."""
    deadline = clock() + AGENT_WAIT_SECONDS
    while True:
        try:
            client.submit_job(**request)
            return
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or clock() >= deadline:
                raise RuntimeFailure(f"Ray refused job {request['submission_id']}: {exc}") from None
        log.info("the Ray cluster has no job agent yet: submitting again in %ss", AGENT_POLL_SECONDS)
        sleep(AGENT_POLL_SECONDS)


def ray_job(
    *,
    address: str,
    entrypoint: Sequence[str],
    job_name: str,
    run_id: str,
    runtime_env: Mapping[str, Any] | None = None,
    entrypoint_resources: Mapping[str, float] | None = None,
    environment: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
    poll_seconds: float | None = None,
    output: IO[bytes] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Submit the entrypoint (unless this run's job for job_name is pending, running or succeeded) and wait.

    environment (the step's env, a training step's MLflow run) reaches the entrypoint through runtime_env's
    env_vars. output receives the job's logs, redacted, once it ends (default: this process's stdout).
    """
    client = _client(address)
    job, found = _find_or_number(client, job_name, run_id)
    if not found:
        resources = dict(entrypoint_resources or {})
        _submit(
            client,
            sleep,
            clock,
            entrypoint=shlex.join(entrypoint),
            submission_id=job,
            runtime_env=job_runtime_env(runtime_env, environment) or None,
            entrypoint_num_cpus=resources.get("cpus"),
            entrypoint_num_gpus=resources.get("gpus"),
            metadata={"pipegen.run_key": run_id[:250], "pipegen.step": job_name[:250]},
        )
        log.info("submitted Ray job %s to %s", job, address)
    last: dict[str, Any] = {}

    def done() -> bool:
        state = _status(client, job)
        if state is None:
            raise RuntimeFailure(f"Ray job {job} is gone from the cluster at {address}")
        last["status"], details = state
        if last["status"] in ("FAILED", "STOPPED"):
            _save_logs(client, job, output)
            raise RuntimeFailure(f"Ray job {job} {last['status'].lower()}: {_job_error(details)}")
        return bool(last["status"] == "SUCCEEDED")

    def stop(reason: str) -> None:
        log.info("stopping Ray job %s: %s", job, reason)
        client.stop_job(job)
        _save_logs(client, job, output)

    _wait(
        done,
        stop,
        f"Ray job {job}",
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        sleep=sleep,
        clock=clock,
    )
    _save_logs(client, job, output)
    return {"submission_id": job, "status": "SUCCEEDED"}
