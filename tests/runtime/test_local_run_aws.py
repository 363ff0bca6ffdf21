"""`pipegen run` runs aws_batch and sagemaker steps: submitted through the runtime to moto's server, and waited for.

moto's server (ThreadedMotoServer, in this test process) is reached through AWS_ENDPOINT_URL only. Without
docker, moto ends a Batch job as it is submitted; here a hook in moto's Batch plays the job instead: it runs
the job's command as a local process with the job's environment, RUNNING while it runs, SUCCEEDED or FAILED
by its exit code, and killed when the job is terminated. So the job is real code (it logs to MLflow).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import mlflow
import pytest

from pipegen.runtime.aws_jobs import batch_job_name, sagemaker_job_name
from tests.support_aws import batch_jobs_run_here
from tests.support_aws import batch_queue as make_batch_queue
from tests.support_tools import interruptible

pytestmark = pytest.mark.xdist_group("local_run")


@pytest.fixture
def jobs_run_here(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Batch on moto without docker, whose submitted jobs run as local processes in tmp_path; a fresh queue."""
    request = urllib.request.Request(
        f"{aws}/moto-api/config", data=json.dumps({"batch": {"use_docker": False}}).encode(), method="POST"
    )
    urllib.request.urlopen(request).close()

    batch_jobs_run_here(monkeypatch, lambda job: _run_job(job, tmp_path))
    name = f"q{uuid.uuid4().hex[:8]}"
    # The spec names them as users do (queue name, definition NAME:REVISION); AWS answers with ARNs.
    yield {"queue_name": name, "definition_name": f"{name}:1", **make_batch_queue(name, f"{name}:1")}


def _run_job(job: Any, cwd: Path) -> None:
    """Run a job's container command here; end the job by its exit code, or kill it when it is terminated."""
    definition = job.job_definition.container_properties
    command = job.container_overrides.get("command") or definition.get("command", [])
    variables = [*definition.get("environment", []), *job.container_overrides.get("environment", [])]
    env = {**os.environ, **{v["name"]: v["value"] for v in variables}, "AWS_BATCH_JOB_ID": job.job_id}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
    while proc.poll() is None and not job.stop:
        time.sleep(0.1)
    if job.stop:  # TerminateJob: Batch stops the container
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        job._mark_stopped(success=False)
        return
    job.exit_code = proc.returncode
    if proc.returncode:
        job.job_stopped_reason = "Essential container in task exited"
    job._mark_stopped(success=proc.returncode == 0)


def write_spec(workdir: Path, queue: dict[str, str], steps: str, timeout: str = "10m") -> Path:
    spec = workdir / "aws.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            pipegen: 1
            name: aws-run
            params: {{lr: 0.1}}
            defaults: {{retries: 1, retry_delay: 1s, timeout: {timeout}}}
            mlflow: {{experiment: aws-run}}
            backends:
              batch: {{type: aws_batch, job_queue: {queue["queue_name"]}, job_definition: "{queue["definition_name"]}"}}
              sm:
                type: sagemaker
                role_arn: arn:aws:iam::123456789012:role/sm
                image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1
                instance_type: ml.m5.xlarge
                output_path: s3://models/out
            steps:
            """
        )
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    return spec


def pipegen_run(workdir: Path, spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        preexec_fn=interruptible,
    )


def run_key(proc: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"^running aws-run \(\d+ steps\) as (\S+);", proc.stderr, re.M)
    assert found, proc.stderr
    return found.group(1)


def jobs_of(queue: dict[str, str], step: str, proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The Batch jobs of a step in a run, by the name every target gives them (KFP's component calls the same)."""
    name = batch_job_name(f"aws-run-{step}", run_key(proc))
    batch = boto3.client("batch")
    found = batch.list_jobs(jobQueue=queue["queue"], filters=[{"name": "JOB_NAME", "values": [name]}])
    ids = [j["jobId"] for j in found["jobSummaryList"]]
    return list(batch.describe_jobs(jobs=ids)["jobs"]) if ids else []


TRAIN = (
    "import mlflow, os, sys; mlflow.start_run(); mlflow.log_metric('auc', 0.93); mlflow.end_run(); "
    "open('trained.json', 'w').write(repr((sys.argv[1:], os.environ['MODEL_KIND'])))"
)


def test_a_batch_training_job_runs_and_logs_into_the_run(jobs_run_here: dict[str, str], tmp_path: Path) -> None:
    """The job gets the spec's queue, definition, command and env (rendered) and the MLflow run; it is judged."""
    spec = write_spec(
        tmp_path,
        jobs_run_here,
        f"""\
        - name: train
          train:
            backend: batch
            command: [python, -c, {TRAIN!r}, --lr, "${{params.lr}}"]
            env: {{MODEL_KIND: "gbm-${{params.lr}}"}}
            resources: {{cpu: 2, memory: 4Gi}}
            metrics: [auc]
        - name: quality
          evaluate: {{run_of: train, thresholds: ["auc > 0.9"], on_fail: fail}}
        """,
    )
    proc = pipegen_run(tmp_path, spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [job] = jobs_of(jobs_run_here, "train", proc)
    key = run_key(proc)
    assert job["jobQueue"] == jobs_run_here["queue"]
    assert job["jobDefinition"] == jobs_run_here["definition"]
    assert job["status"] == "SUCCEEDED"
    assert job["container"]["command"] == ["python", "-c", TRAIN, "--lr", "0.1"]
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["MODEL_KIND"] == "gbm-0.1"
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    # The job ran to completion, as code, with that argv and environment.
    assert (tmp_path / "trained.json").read_text() == repr((["--lr", "0.1"], "gbm-0.1"))
    run = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]).get_run(env["MLFLOW_RUN_ID"])
    assert run.info.status == "FINISHED" and run.data.metrics == {"auc": 0.93}
    assert run.data.tags["pipegen.run_key"] == key
    assert re.search(
        rf"train +passed +MLflow run {env['MLFLOW_RUN_ID']} \(AWS Batch job \S+ \(\S+\) succeeded\)", proc.stdout
    )
    assert "auc > 0.9: ok" in proc.stdout
    # The runtime's own messages for the step are in its log.
    [log] = tmp_path.glob(".pipegen/logs/*/train.log")
    assert f"submitted AWS Batch job {job['jobName']} ({job['jobId']})" in log.read_text()


def test_a_failed_batch_job_fails_the_step_and_a_retry_submits_anew(
    jobs_run_here: dict[str, str], tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path,
        jobs_run_here,
        """\
        - name: features
          task: {backend: batch, command: [python, -c, "import sys; sys.exit(3)"]}
        - name: train
          train: {backend: batch, command: [python, -c, "print('never')"]}
        """,
    )
    proc = pipegen_run(tmp_path, spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "features: attempt 1 failed (AWS Batch job aws-run-features-" in proc.stderr
    assert re.search(
        r"features +failed +AWS Batch job aws-run-features-\S+ \(\S+\) failed: Essential container", proc.stdout
    )
    assert re.search(r"train +not run +features failed", proc.stdout)
    # A failed job is not waited for again: the retry submitted a second one.
    assert sorted(j["status"] for j in jobs_of(jobs_run_here, "features", proc)) == ["FAILED", "FAILED"]


@pytest.fixture
def describe_fails_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first DescribeJobs after a submission is refused (a transient error while the job runs on)."""
    from moto.batch.exceptions import ClientException
    from moto.batch.models import BatchBackend

    real = BatchBackend.describe_jobs
    failed: list[bool] = []

    def describe_jobs(self: Any, jobs: list[str] | None) -> Any:
        if not failed:
            failed.append(True)
            raise ClientException("Rate exceeded, try again")
        return real(self, jobs)

    monkeypatch.setattr(BatchBackend, "describe_jobs", describe_jobs)


@pytest.mark.usefixtures("describe_fails_once")
def test_a_retry_waits_for_the_job_already_submitted(jobs_run_here: dict[str, str], tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        jobs_run_here,
        """\
        - name: features
          task: {backend: batch, command: [python, -c, "import time; time.sleep(2); print('ran', file=open('runs', 'a'))"]}
        """,
    )
    proc = pipegen_run(tmp_path, spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "features: attempt 1 failed (ClientException: " in proc.stderr, proc.stderr
    [job] = jobs_of(jobs_run_here, "features", proc)
    assert job["status"] == "SUCCEEDED"
    assert (tmp_path / "runs").read_text() == "ran\n"
    [log] = tmp_path.glob(".pipegen/logs/*/features.log")
    assert f"found AWS Batch job {job['jobName']} ({job['jobId']}) submitted earlier for this run" in log.read_text()


SLEEPER = "import os, time; open('job.pid', 'w').write(str(os.getpid())); time.sleep(300)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _ends(pid: int) -> bool:
    """Whether the process ends within a few seconds (the hook kills a terminated job's process as it sees it)."""
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def test_the_steps_timeout_terminates_its_batch_job(jobs_run_here: dict[str, str], tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        jobs_run_here,
        f"""\
        - name: slow
          retries: 0
          task: {{backend: batch, command: [python, -c, {SLEEPER!r}]}}
        """,
        timeout="5s",
    )
    proc = pipegen_run(tmp_path, spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"slow +failed +AWS Batch job \S+ \(\S+\) did not finish within 5s; it was stopped", proc.stdout)
    [job] = jobs_of(jobs_run_here, "slow", proc)
    assert job["statusReason"] == "pipegen: the step's timeout of 5s passed"
    assert _ends(int((tmp_path / "job.pid").read_text())), "the terminated job's process still runs"


def test_an_interrupt_terminates_the_running_batch_job(jobs_run_here: dict[str, str], tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        jobs_run_here,
        f"""\
        - name: train
          train: {{backend: batch, command: [python, -c, {SLEEPER!r}]}}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "job.pid").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert (tmp_path / "job.pid").exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.search(r"train +failed +interrupted", out), out
    [job] = jobs_of(jobs_run_here, "train", subprocess.CompletedProcess(proc.args, 130, out, err))
    assert job["statusReason"].startswith("pipegen: the task waiting for it was cancelled"), job
    assert _ends(int((tmp_path / "job.pid").read_text())), "the terminated job's process still runs"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["KILLED"]


def test_a_sagemaker_step_creates_the_training_job_and_waits(aws: str, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {"queue_name": "unused", "definition_name": "unused:1"},
        """\
        - name: fit
          task: {backend: sm, command: [python, train.py, --lr, "${params.lr}"]}
        """,
    )
    proc = pipegen_run(tmp_path, spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    name = sagemaker_job_name("aws-run-fit", run_key(proc))
    assert re.search(rf"fit +passed +SageMaker training job {name} completed", proc.stdout), proc.stdout
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["AlgorithmSpecification"]["TrainingImage"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
    assert job["RoleArn"] == "arn:aws:iam::123456789012:role/sm"
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 600
