"""Submit-and-wait for Spark on AWS (runtime.spark_aws_jobs) against moto's server, through AWS_ENDPOINT_URL.

What moto runs of the four services: Glue runs go STARTING -> RUNNING -> SUCCEEDED as they are read; EMR
Serverless runs are SUCCESS as soon as they start, EMR on EKS runs and EMR steps stay RUNNING. Where a test needs
another state it sets it on moto's own job object (moto's server runs in this process). moto implements neither
Glue's BatchStopJobRun nor EMR's CancelSteps: their timeout tests show the stop is called, and moto refusing it.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.spark_aws_jobs import GLUE_NAME_ARGUMENT, client_token, spark_aws_job

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/spark"


class Clock:
    """A clock that sleeping moves: a timeout of minutes passes at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += max(seconds, 0.01)


def moto_backend(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)[ACCOUNT][REGION]  # type: ignore[index]


# ---- Glue -----------------------------------------------------------------------------------------------------


@pytest.fixture
def glue_job(aws: str) -> str:
    name = f"g{uuid.uuid4().hex[:8]}"
    boto3.client("glue").create_job(
        Name=name,
        Role=ROLE,
        Command={"Name": "glueetl", "ScriptLocation": "s3://code/job.py", "PythonVersion": "3"},
        ExecutionProperty={"MaxConcurrentRuns": 5},
    )
    return name


def glue(job: str, job_name: str, **kwargs: Any) -> dict[str, Any]:
    clock = kwargs.pop("clock", None) or Clock()
    return spark_aws_job(
        platform="glue",
        ids={"job_name": job},
        job_name=job_name,
        settings={"py_files": ["s3://code/lib.zip"]},
        command=["s3://code/job.py", "--day", "2026-12-01", "--out", "s3://out/"],
        environment={"MLFLOW_RUN_ID": "r1"},
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def test_a_glue_run_gets_its_arguments_and_a_retry_waits_for_it_instead_of_starting_another(glue_job: str) -> None:
    first = glue(glue_job, "pipe-step-run1")
    assert first["status"] == "SUCCEEDED"
    [run] = boto3.client("glue").get_job_runs(JobName=glue_job)["JobRuns"]
    assert run["Id"] == first["job_id"]
    assert run["Arguments"] == {
        "--day": "2026-12-01",
        "--out": "s3://out/",
        "--extra-py-files": "s3://code/lib.zip",
        "--MLFLOW_RUN_ID": "r1",
        GLUE_NAME_ARGUMENT: "pipe-step-run1",
    }
    # The same run and step again (a retry after the job was submitted): the same job run, no second one.
    assert glue(glue_job, "pipe-step-run1")["job_id"] == first["job_id"]
    assert len(boto3.client("glue").get_job_runs(JobName=glue_job)["JobRuns"]) == 1
    # Another run of the pipeline is another job run.
    assert glue(glue_job, "pipe-step-run2")["job_id"] != first["job_id"]


def _end_glue_runs(monkeypatch: pytest.MonkeyPatch, end: str) -> None:
    """moto's Glue runs go RUNNING -> end instead of SUCCEEDED (moto internals: moto is pinned)."""
    from moto.glue.models import FakeJob

    original = FakeJob.start_job_run

    def start_job_run(self: Any, **kwargs: Any) -> str:
        run_id = original(self, **kwargs)
        (run,) = [r for r in self.job_runs if r.job_run_id == run_id]
        run._transitions = [("STARTING", "RUNNING"), ("RUNNING", end)]
        return str(run_id)

    monkeypatch.setattr(FakeJob, "start_job_run", start_job_run)


def test_a_failed_glue_run_fails_and_a_retry_starts_a_new_one(glue_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _end_glue_runs(monkeypatch, "FAILED")
    with pytest.raises(RuntimeFailure, match=r"^Glue job run pipe-step-run1 \(jr_\w+\) failed: "):
        glue(glue_job, "pipe-step-run1")
    with pytest.raises(RuntimeFailure):
        glue(glue_job, "pipe-step-run1")
    states = [r["JobRunState"] for r in boto3.client("glue").get_job_runs(JobName=glue_job)["JobRuns"]]
    assert states == ["FAILED", "FAILED"]


def test_a_glue_run_past_the_timeout_is_stopped(glue_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _end_glue_runs(monkeypatch, "RUNNING")
    # moto has no BatchStopJobRun (its server answers 500): its refusal proves the stop was asked for.
    with pytest.raises(Exception, match=r"500.* when calling the BatchStopJobRun operation"):
        glue(glue_job, "pipe-step-run1", timeout_seconds=120)
    [run] = boto3.client("glue").get_job_runs(JobName=glue_job)["JobRuns"]
    assert (run["JobRunState"], run["Timeout"]) == ("RUNNING", 2)


def test_glue_refuses_what_a_run_cannot_take(glue_job: str) -> None:
    def start(settings: dict[str, Any], command: list[str]) -> None:
        spark_aws_job(platform="glue", ids={"job_name": glue_job}, job_name="n", settings=settings, command=command)

    with pytest.raises(RuntimeFailure, match=r"takes no conf, executors: set them on the Glue job"):
        start({"conf": {"a": "b"}, "executors": {"instances": 2}}, ["s3://a.py"])
    with pytest.raises(RuntimeFailure, match=r"as --key value pairs; got \['--day'\]"):
        start({}, ["s3://a.py", "--day"])
    assert boto3.client("glue").get_job_runs(JobName=glue_job)["JobRuns"] == []


# ---- EMR Serverless -------------------------------------------------------------------------------------------


@pytest.fixture
def serverless_app(aws: str) -> str:
    client = boto3.client("emr-serverless")
    return str(
        client.create_application(name=f"a{uuid.uuid4().hex[:8]}", releaseLabel="emr-7.5.0", type="SPARK")[
            "applicationId"
        ]
    )


def serverless(app: str, job_name: str, **kwargs: Any) -> dict[str, Any]:
    clock = kwargs.pop("clock", None) or Clock()
    return spark_aws_job(
        platform="emr_serverless",
        ids={"application_id": app, "execution_role_arn": ROLE},
        job_name=job_name,
        settings={"conf": {"spark.sql.shuffle.partitions": "8"}, "executors": {"instances": 2}},
        command=["s3://code/features.py", "--day", "2026-12-01"],
        environment={"MLFLOW_RUN_ID": "r1"},
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def runs_of(app: str) -> list[dict[str, Any]]:
    client = boto3.client("emr-serverless")
    listed = client.list_job_runs(applicationId=app)["jobRuns"]
    return [client.get_job_run(applicationId=app, jobRunId=r["id"])["jobRun"] for r in listed]


def test_an_emr_serverless_run_gets_the_step_functions_request_and_a_retry_reattaches(serverless_app: str) -> None:
    first = serverless(serverless_app, "pipe-step-run1", timeout_seconds=600)
    assert first["status"] == "SUCCESS"
    [run] = runs_of(serverless_app)
    assert run["name"] == "pipe-step-run1"
    assert run["executionTimeoutMinutes"] == 10
    assert run["jobDriver"] == {
        "sparkSubmit": {"entryPoint": "s3://code/features.py", "entryPointArguments": ["--day", "2026-12-01"]}
    }
    assert run["configurationOverrides"] == {
        "applicationConfiguration": [
            {
                "classification": "spark-defaults",
                "properties": {
                    "spark.emr-serverless.driverEnv.MLFLOW_RUN_ID": "r1",
                    "spark.executor.instances": "2",
                    "spark.sql.shuffle.partitions": "8",
                },
            }
        ]
    }
    assert moto_backend("emr-serverless").job_runs[serverless_app][0].client_token == client_token("pipe-step-run1", 1)
    assert serverless(serverless_app, "pipe-step-run1")["job_id"] == first["job_id"]
    assert len(runs_of(serverless_app)) == 1


def test_a_failed_emr_serverless_run_fails_with_its_state_details_and_a_retry_is_a_new_attempt(
    serverless_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.emrserverless import models

    original = models.EMRServerlessBackend.start_job_run

    def start_job_run(self: Any, **kwargs: Any) -> Any:
        run = original(self, **kwargs)
        run.state, run.state_details = "FAILED", "Job failed, please check complete logs in S3."
        return run

    monkeypatch.setattr(models.EMRServerlessBackend, "start_job_run", start_job_run)
    with pytest.raises(
        RuntimeFailure,
        match=r"^EMR Serverless job run pipe-step-run1 \(\w+\) failed: Job failed, please check complete logs in S3\.$",
    ):
        serverless(serverless_app, "pipe-step-run1")
    monkeypatch.setattr(models.EMRServerlessBackend, "start_job_run", original)
    second = serverless(serverless_app, "pipe-step-run1")
    assert [r["state"] for r in runs_of(serverless_app)] == ["FAILED", "SUCCESS"]
    tokens = [r.client_token for r in moto_backend("emr-serverless").job_runs[serverless_app]]
    assert tokens == [client_token("pipe-step-run1", 1), client_token("pipe-step-run1", 2)]
    assert second["job_id"] == runs_of(serverless_app)[1]["jobRunId"]


def test_an_emr_serverless_run_past_the_timeout_is_cancelled(
    serverless_app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.emrserverless import models

    monkeypatch.setattr(models, "JOB_STATUS", "RUNNING")
    clock = Clock()
    with pytest.raises(RuntimeFailure, match=r"did not finish within 300s; it was stopped"):
        serverless(serverless_app, "pipe-step-run1", timeout_seconds=300, clock=clock)
    assert clock.now == pytest.approx(300, abs=0.1)
    assert [r["state"] for r in runs_of(serverless_app)] == ["CANCELLED"]


# ---- EMR on EKS -----------------------------------------------------------------------------------------------


@pytest.fixture
def virtual_cluster(aws: str) -> str:
    client = boto3.client("emr-containers")
    provider = {"id": "eks", "type": "EKS", "info": {"eksInfo": {"namespace": "spark"}}}
    return str(client.create_virtual_cluster(name=f"v{uuid.uuid4().hex[:8]}", containerProvider=provider)["id"])


def on_eks(cluster: str, job_name: str, **kwargs: Any) -> dict[str, Any]:
    clock = kwargs.pop("clock", None) or Clock()
    return spark_aws_job(
        platform="emr_on_eks",
        ids={"virtual_cluster_id": cluster, "execution_role_arn": ROLE, "release_label": "emr-7.5.0-latest"},
        job_name=job_name,
        settings={},
        command=["s3://code/features.py", "--day", "2026-12-01"],
        environment={"MLFLOW_RUN_ID": "r1"},
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def test_an_emr_on_eks_run_is_cancelled_at_the_timeout_and_a_running_one_is_reattached(
    virtual_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("emr-containers")
    with pytest.raises(RuntimeFailure, match=r"EMR on EKS job run pipe-step-run1 \(\w+\) did not finish within 60s"):
        on_eks(virtual_cluster, "pipe-step-run1", timeout_seconds=60)
    [run] = client.list_job_runs(virtualClusterId=virtual_cluster)["jobRuns"]
    assert run["state"] in ("CANCELLED", "CANCEL_PENDING")
    assert run["jobDriver"] == {
        "sparkSubmitJobDriver": {
            "entryPoint": "s3://code/features.py",
            "entryPointArguments": ["--day", "2026-12-01"],
        }
    }
    props = run["configurationOverrides"]["applicationConfiguration"][0]["properties"]
    assert props == {"spark.kubernetes.driverEnv.MLFLOW_RUN_ID": "r1"}
    # Cancelled is not waited for: the next attempt submits anew; that one, completed, is then reattached.
    from moto.emrcontainers import models

    monkeypatch.setattr(models, "JOB_STATUS", "COMPLETED")
    second = on_eks(virtual_cluster, "pipe-step-run1")
    assert on_eks(virtual_cluster, "pipe-step-run1")["job_id"] == second["job_id"]
    assert len(client.list_job_runs(virtualClusterId=virtual_cluster)["jobRuns"]) == 2


# ---- EMR (a step on a running cluster) ------------------------------------------------------------------------


@pytest.fixture
def emr_cluster(aws: str) -> str:
    instances = {
        "MasterInstanceType": "m5.xlarge",
        "SlaveInstanceType": "m5.xlarge",
        "InstanceCount": 1,
        "KeepJobFlowAliveWhenNoSteps": True,
    }
    started = boto3.client("emr").run_job_flow(
        Name="spark", Instances=instances, JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole"
    )
    return str(started["JobFlowId"])


def emr(cluster: str, job_name: str, **kwargs: Any) -> dict[str, Any]:
    clock = kwargs.pop("clock", None) or Clock()
    return spark_aws_job(
        platform="emr",
        ids={"cluster_id": cluster},
        job_name=job_name,
        settings={},
        command=["s3://code/features.py", "--day", "2026-12-01"],
        environment={"MLFLOW_RUN_ID": "r1"},
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def test_an_emr_step_is_reattached_and_fails_with_its_state_change_reason(emr_cluster: str) -> None:
    client = boto3.client("emr")
    with pytest.raises(Exception, match=r"500.* when calling the CancelSteps operation"):
        emr(emr_cluster, "pipe-step-run1", timeout_seconds=60)  # moto's steps stay RUNNING; it has no CancelSteps
    [step] = client.list_steps(ClusterId=emr_cluster)["Steps"]
    assert step["Name"] == "pipe-step-run1" and step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Args"] == [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--conf",
        "spark.yarn.appMasterEnv.MLFLOW_RUN_ID=r1",
        "s3://code/features.py",
        "--day",
        "2026-12-01",
    ]
    # The step still runs: a retry waits for it (no second step), and fails with EMR's own words when it fails.
    # (moto's step reports StateChangeReason, not FailureDetails.)
    [fake] = moto_backend("emr").clusters[emr_cluster].steps
    clock = Clock()

    def fail_it(seconds: float) -> None:
        fake.state, fake.last_state_change_reason = "FAILED", "Job aborted."
        clock.sleep(seconds)

    with pytest.raises(RuntimeFailure, match=r"^EMR step pipe-step-run1 \(s-\w+\) failed: Job aborted\.$"):
        spark_aws_job(
            platform="emr",
            ids={"cluster_id": emr_cluster},
            job_name="pipe-step-run1",
            settings={},
            command=["s3://code/features.py"],
            sleep=fail_it,
            clock=clock,
        )
    assert [s["Status"]["State"] for s in client.list_steps(ClusterId=emr_cluster)["Steps"]] == ["FAILED"]
