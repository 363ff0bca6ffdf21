"""`pipegen run` runs spark steps on AWS platforms: Glue, and an interrupted EMR Serverless run, on moto's server
(reached through AWS_ENDPOINT_URL only).

moto's Glue runs no script: a run goes STARTING -> RUNNING -> SUCCEEDED as it is read, and a test that needs a
failed run ends it in FAILED on moto's own job object (moto's server runs in this test process). moto gives a
failed Glue run no ErrorMessage, so the step says "no reason given" here (the EMR Serverless test in
test_spark_aws_jobs.py shows a service's own message reaching the failure).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import mlflow
import pytest

from pipegen.runtime.spark_aws_jobs import GLUE_NAME_ARGUMENT, spark_job_name
from tests.runtime.test_local_run_aws import pipegen_run, run_key
from tests.support_tools import interruptible

pytestmark = pytest.mark.xdist_group("local_run")


@pytest.fixture
def glue_job(aws: str) -> str:
    name = f"g{uuid.uuid4().hex[:8]}"
    boto3.client("glue").create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://code/job.py", "PythonVersion": "3"},
        ExecutionProperty={"MaxConcurrentRuns": 5},
    )
    return name


def write_spec(workdir: Path, job: str) -> Path:
    spec = workdir / "glue.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            pipegen: 1
            name: aws-run
            params: {{day: "2026-12-01"}}
            defaults: {{retries: 1, retry_delay: 1s, timeout: 10m}}
            mlflow: {{experiment: aws-run}}
            backends:
              glue:
                type: spark
                platform: glue
                py_files: [s3://code/lib.zip]
                glue: {{job_name: {job}}}
            steps:
              - name: export
                task:
                  backend: glue
                  command: [s3://code/job.py, --day, "${{params.day}}", --out, "s3://out/${{params.day}}/"]
                  env: {{STAGE: "prod-${{params.day}}"}}
              - name: train
                after: [export]
                train: {{backend: glue, command: [s3://code/job.py, --mode, train]}}
            """
        )
    )
    return spec


def glue_runs(job: str) -> list[dict[str, Any]]:
    return list(boto3.client("glue").get_job_runs(JobName=job)["JobRuns"])


def test_pipegen_run_runs_glue_steps_with_their_arguments_and_the_mlflow_run(glue_job: str, tmp_path: Path) -> None:
    proc = pipegen_run(tmp_path, write_spec(tmp_path, glue_job))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    key = run_key(proc)
    runs = {r["Arguments"][GLUE_NAME_ARGUMENT]: r for r in glue_runs(glue_job)}
    export, train = spark_job_name("aws-run-export", key), spark_job_name("aws-run-train", key)
    assert sorted(runs) == sorted([export, train])
    assert {k: v for k, v in runs[export].items() if k in ("Arguments", "JobRunState", "Timeout")} == {
        "Arguments": {
            "--day": "2026-12-01",
            "--out": "s3://out/2026-12-01/",
            "--extra-py-files": "s3://code/lib.zip",
            "--STAGE": "prod-2026-12-01",
            GLUE_NAME_ARGUMENT: export,
        },
        "JobRunState": "SUCCEEDED",
        "Timeout": 10,
    }
    arguments = runs[train]["Arguments"]
    assert arguments["--mode"] == "train"
    # A train step's MLflow run reaches the job as Glue arguments (a run has no environment of its own).
    assert arguments["--MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = mlflow.MlflowClient(tracking_uri=arguments["--MLFLOW_TRACKING_URI"]).get_run(arguments["--MLFLOW_RUN_ID"])
    assert run.data.tags["pipegen.run_key"] == key
    assert re.search(rf"export +passed +Glue job run {export} \(jr_\w+\) succeeded", proc.stdout), proc.stdout


def test_a_failed_glue_run_fails_the_step_and_its_retry_starts_a_new_run(
    glue_job: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.glue.models import FakeJob

    original = FakeJob.start_job_run

    def start_job_run(self: Any, **kwargs: Any) -> str:
        run_id = original(self, **kwargs)
        (run,) = [r for r in self.job_runs if r.job_run_id == run_id]
        run._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]
        return str(run_id)

    monkeypatch.setattr(FakeJob, "start_job_run", start_job_run)
    proc = pipegen_run(tmp_path, write_spec(tmp_path, glue_job))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    name = spark_job_name("aws-run-export", run_key(proc))
    assert f"export: attempt 1 failed (Glue job run {name} (jr_" in proc.stderr
    assert re.search(rf"export +failed +Glue job run {name} \(jr_\w+\) failed: no reason given", proc.stdout)
    assert re.search(r"train +not run +export failed", proc.stdout)
    # A failed run is not waited for again: the retry started a second one.
    assert [r["JobRunState"] for r in glue_runs(glue_job)] == ["FAILED", "FAILED"]


def test_an_interrupt_cancels_the_running_emr_serverless_run(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.emrserverless import models

    monkeypatch.setattr(models, "JOB_STATUS", "RUNNING")  # moto's runs otherwise succeed as they start
    client = boto3.client("emr-serverless")
    app = client.create_application(name=f"a{uuid.uuid4().hex[:8]}", releaseLabel="emr-7.5.0", type="SPARK")
    spec = tmp_path / "serverless.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            pipegen: 1
            name: aws-run
            backends:
              serverless:
                type: spark
                platform: emr_serverless
                emr_serverless:
                  application_id: {app["applicationId"]}
                  execution_role_arn: arn:aws:iam::123456789012:role/emr-serverless-job
            steps:
              - name: features
                task: {{backend: serverless, command: [s3://code/features.py, --day, "2026-12-01"]}}
            """
        )
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

    def runs() -> list[dict[str, Any]]:
        try:
            return list(client.list_job_runs(applicationId=app["applicationId"])["jobRuns"])
        except client.exceptions.ResourceNotFoundException:  # moto: no run yet
            return []

    deadline = time.monotonic() + 120
    while not runs() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert runs(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.search(r"features +failed +interrupted", out), out
    assert [r["state"] for r in runs()] == ["CANCELLED"]
