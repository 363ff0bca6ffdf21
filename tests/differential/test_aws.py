"""The moto launcher: Batch jobs really run here (their exit code decides), late-landing S3 data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pipegen.runtime.aws_jobs import batch_job
from pipegen.runtime.errors import RuntimeFailure
from tests.differential.harness import ROOT
from tests.support_aws import batch_queue


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The launcher in its own process, and this process's boto3 pointed at it."""
    workdir = tmp_path_factory.mktemp("aws")
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.differential.aws", str(workdir)],
        stdin=subprocess.PIPE, cwd=ROOT, env={**os.environ, **creds, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (workdir / "endpoint").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the launcher did not start"
        time.sleep(0.1)
    saved = dict(os.environ)
    os.environ.update(creds, AWS_ENDPOINT_URL=(workdir / "endpoint").read_text())
    try:
        yield workdir
    finally:
        os.environ.clear()
        os.environ.update(saved)
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_batch_job_runs_its_command_with_its_environment_and_stays_running_until_it_exits(
    moto: Path, tmp_path: Path
) -> None:
    queue = batch_queue("diff-test-queue", "diff-test-def:1")
    out = tmp_path / "out.txt"
    script = f"import os, time; time.sleep(2); open({str(out)!r}, 'w').write(os.environ['JOB_X'])"
    started = time.monotonic()
    result = batch_job(
        job_name="runs",
        job_queue=queue["queue"],
        job_definition=queue["definition"],
        command=["python", "-c", script],
        environment={"JOB_X": "$(HOME) Ref::x"},
        poll_seconds=0.1,
    )
    assert result["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 2  # SUCCEEDED only once the process ended
    assert out.read_text() == "$(HOME) Ref::x"  # no parameters: Ref::x stays literal, as on AWS


def test_a_non_zero_exit_fails_the_job(moto: Path) -> None:
    queue = batch_queue("diff-test-queue", "diff-test-def:1")
    with pytest.raises(RuntimeFailure, match="exit code 3"):
        batch_job(
            job_name="fails",
            job_queue=queue["queue"],
            job_definition=queue["definition"],
            command=["python", "-c", "raise SystemExit(3)"],
            poll_seconds=0.1,
        )


def test_ref_placeholders_are_substituted_from_job_parameters_as_batch_does(moto: Path, tmp_path: Path) -> None:
    queue = batch_queue("diff-test-queue", "diff-test-def:1")
    out = tmp_path / "argv.txt"
    batch = boto3.client("batch")
    job = batch.submit_job(
        jobName="refs",
        jobQueue=queue["queue"],
        jobDefinition=queue["definition"],
        parameters={"x": "substituted"},
        containerOverrides={"command": ["python", "-c", f"open({str(out)!r}, 'w').write('Ref::x')"]},
    )
    deadline = time.monotonic() + 60
    while batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert out.read_text() == "substituted"


def test_a_landing_bucket_shows_data_only_some_seconds_after_a_prefix_is_first_listed(moto: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="diff-landing-2s")
    assert s3.list_objects_v2(Bucket="diff-landing-2s", Prefix="run-1/")["KeyCount"] == 0
    time.sleep(2.2)
    assert s3.list_objects_v2(Bucket="diff-landing-2s", Prefix="run-1/")["KeyCount"] == 1
    assert s3.list_objects_v2(Bucket="diff-landing-2s", Prefix="run-2/")["KeyCount"] == 0  # its own clock
