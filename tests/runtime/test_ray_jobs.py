"""Ray job submission (pipegen.runtime.ray_jobs) against the session's real Ray head: the Batch path's guarantees."""

from __future__ import annotations

import io
import re
import sys
import time
import uuid

import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.ray_jobs import job_runtime_env, ray_job, submission_id
from tests.support_ray import RAY_GROUP

pytestmark = pytest.mark.xdist_group(RAY_GROUP)


def test_submission_ids_are_derived_from_step_run_and_number() -> None:
    run = "manual__2026-12-01T10:00:00+00:00"
    first, second = submission_id("feed-train", run, 1), submission_id("feed-train", run, 2)
    assert first == "feed-train-manual__2026-12-01T10-00-00-00-00-1" and second.endswith("-2")
    assert submission_id("feed-train", run, 1) == first  # every retry derives the same ids
    long = submission_id("x" * 300, "r" * 300, 12)
    assert len(long) <= 120 and long.endswith("-12") and re.fullmatch(r"[A-Za-z0-9_-]+", long)


def test_the_runs_env_is_merged_into_the_users_runtime_env() -> None:
    user = {"pip": ["scikit-learn"], "env_vars": {"OMP_NUM_THREADS": "1", "MLFLOW_RUN_ID": "stale"}}
    merged = job_runtime_env(user, {"MLFLOW_RUN_ID": "r1", "MLFLOW_TRACKING_URI": "http://m"})
    assert merged == {
        "pip": ["scikit-learn"],
        "env_vars": {"MLFLOW_RUN_ID": "r1", "MLFLOW_TRACKING_URI": "http://m", "OMP_NUM_THREADS": "1"},
    }
    assert user["env_vars"] == {"OMP_NUM_THREADS": "1", "MLFLOW_RUN_ID": "stale"}  # not modified
    assert job_runtime_env({}, {}) == {}


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.usefixtures("ray_client_env")
def test_a_retry_waits_for_the_job_an_earlier_attempt_left_running(ray_head: str) -> None:
    """The task died while its job ran: the retry finds that job by its derived id and waits for it."""
    from ray.job_submission import JobSubmissionClient

    run, step = f"run-{uuid.uuid4().hex[:8]}", "pipe-train"
    client = JobSubmissionClient(ray_head)
    earlier = submission_id(step, run, 1)
    deadline = time.monotonic() + 180
    while True:  # a head that has just started may have no job agent for a few seconds
        try:
            client.submit_job(entrypoint="sleep 4 && echo earlier attempt done", submission_id=earlier)
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)
    out = io.BytesIO()
    result = ray_job(
        address=ray_head, entrypoint=python("print('a second job')"), job_name=step, run_id=run, output=out
    )
    assert result == {"submission_id": earlier, "status": "SUCCEEDED"}
    assert b"earlier attempt done" in out.getvalue() and b"a second job" not in out.getvalue()
    assert submission_id(step, run, 2) not in {j.submission_id for j in client.list_jobs()}


@pytest.mark.usefixtures("ray_client_env")
def test_a_failed_job_fails_the_step_with_its_own_error_and_a_retry_submits_anew(ray_head: str) -> None:
    run, step = f"run-{uuid.uuid4().hex[:8]}", "pipe-fails"
    fail = python("raise RuntimeError('loss is nan at epoch 3')")
    out = io.BytesIO()
    with pytest.raises(RuntimeFailure) as first:
        ray_job(address=ray_head, entrypoint=fail, job_name=step, run_id=run, output=out)
    assert str(first.value).startswith(f"Ray job {submission_id(step, run, 1)} failed: Job entrypoint command failed")
    assert str(first.value).endswith("RuntimeError: loss is nan at epoch 3")
    assert b"RuntimeError: loss is nan at epoch 3" in out.getvalue()  # the job's log, fetched
    # Ray never takes an id twice: the retry is the step's second submission.
    with pytest.raises(RuntimeFailure, match=re.escape(f"Ray job {submission_id(step, run, 2)} failed")):
        ray_job(address=ray_head, entrypoint=fail, job_name=step, run_id=run, output=io.BytesIO())


@pytest.mark.usefixtures("ray_client_env")
def test_a_timeout_stops_the_job(ray_head: str) -> None:
    from ray.job_submission import JobSubmissionClient

    run, step = f"run-{uuid.uuid4().hex[:8]}", "pipe-slow"
    started = time.monotonic()
    with pytest.raises(RuntimeFailure, match="did not finish within 3s; it was stopped"):
        ray_job(
            address=ray_head,
            entrypoint=["sleep", "300"],
            job_name=step,
            run_id=run,
            timeout_seconds=3,
            output=io.BytesIO(),
        )
    assert time.monotonic() - started < 60
    client = JobSubmissionClient(ray_head)
    job = submission_id(step, run, 1)
    deadline = time.monotonic() + 60
    while str(client.get_job_status(job).value) != "STOPPED" and time.monotonic() < deadline:
        time.sleep(1)
    assert str(client.get_job_status(job).value) == "STOPPED"


def test_a_failed_jobs_error_quotes_its_last_line_not_mlflows_closing_banner() -> None:
    from types import SimpleNamespace

    from pipegen.runtime.ray_jobs import _job_error

    message = (
        "Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):\n"
        "ValueError: features are empty\n"
        "🏃 View run bright-owl-12 at: http://127.0.0.1:5000/#/experiments/1/runs/abc\n"
        "🧪 View experiment at: http://127.0.0.1:5000/#/experiments/1\n"
    )
    assert _job_error(SimpleNamespace(message=message)) == (
        "Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars)"
        ": ... ValueError: features are empty"
    )
    assert _job_error(SimpleNamespace(message="Job was stopped")) == "Job was stopped"
    assert _job_error(SimpleNamespace(message="")) == "no reason given"
