"""Spark on EMR, EMR Serverless, EMR on EKS and Glue: each operator's request, as Airflow renders the task, is a
valid request of the service's API (botocore's own models and validator), and carries what the spec says."""

from __future__ import annotations

import glob
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.cases import GOLDEN

RUN_ID = "manual__2026-01-02T12:00:00+00:00"
XCOM = {"run_id": "r1", "experiment_id": "e1"}


def _input_shape(service: str, operation: str) -> Any:
    import botocore
    from botocore.model import ServiceModel

    [path] = glob.glob(f"{Path(botocore.__file__).parent}/data/{service}/*/service-2.json.gz")
    with gzip.open(path) as f:
        return ServiceModel(json.load(f)).operation_model(operation).input_shape


def valid(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """params, checked against the operation's input shape the way boto3 checks a call before sending it."""
    from botocore.validate import validate_parameters

    validate_parameters(params, _input_shape(service, operation))  # raises ParamValidationError
    return params


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The golden DAG's tasks, rendered for a run whose logical date is 2026-01-02."""
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path_factory.mktemp("dags")
    (folder / "spark-platforms.py").write_text((GOLDEN / "airflow" / "spark-platforms.py").read_text())
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    dag = bag.dags["spark-platforms"]
    logical = datetime(2026, 1, 2, 12, tzinfo=UTC)
    out = {}
    for task in dag.tasks:
        context = {
            "dag_run": SimpleNamespace(logical_date=logical, run_after=logical),
            "run_id": RUN_ID,
            "params": {"day": "2026-01-01"},
            "ti": SimpleNamespace(xcom_pull=lambda *a, **k: XCOM),
            "dag": dag,
            "task": task,
        }
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        out[task.task_id] = task
    return out


def test_emr_step_runs_spark_submit_in_cluster_mode(tasks: dict[str, Any]) -> None:
    task = tasks["sessions"]
    assert type(task).__name__ == "EmrAddStepsOperator" and task.wait_for_completion
    request = valid("emr", "AddJobFlowSteps", {"JobFlowId": task.job_flow_id, "Steps": task.steps})
    [step] = request["Steps"]
    assert step["ActionOnFailure"] == "CONTINUE" and step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    # The argv runtime.spark_jobs builds for YARN in cluster mode (what `pipegen run` and Step Functions run too).
    from pipegen.runtime.spark_jobs import spark_submit_argv

    assert step["HadoopJarStep"]["Args"] == spark_submit_argv(
        application="s3://code/sessions.py",
        arguments=["--day", "2026-01-01", "--out", "s3://features/sessions.json"],
        master="yarn",
        deploy_mode="cluster",
        conf={"spark.sql.shuffle.partitions": "64"},
        driver={"cores": 2, "memory": "4g"},
        executors={"instances": 4, "cores": 4, "memory": "8g"},
        py_files=["s3://code/libs.zip"],
        packages=["org.apache.spark:spark-avro_2.13:4.0.0"],
    )
    # The waiter outlasts the step's 2h timeout, not the operator's default 30 minutes.
    assert task.waiter_delay * task.waiter_max_attempts >= 7200 and task.region_name == "eu-west-1"


def test_emr_serverless_training_gets_the_mlflow_run(tasks: dict[str, Any]) -> None:
    task = tasks["train"]
    assert type(task).__name__ == "EmrServerlessStartJobOperator" and task.wait_for_completion
    request = valid(
        "emr-serverless",
        "StartJobRun",
        {
            "clientToken": "t",
            "applicationId": task.application_id,
            "executionRoleArn": task.execution_role_arn,
            "jobDriver": task.job_driver,
            "configurationOverrides": task.configuration_overrides,
            "name": task.name,
            **task.config,
        },
    )
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"] == "s3://code/train.py"
    assert request["executionTimeoutMinutes"] == 120
    [defaults] = request["configurationOverrides"]["applicationConfiguration"]
    assert defaults["classification"] == "spark-defaults"
    props = defaults["properties"]
    assert props["spark.emr-serverless.driverEnv.MLFLOW_RUN_ID"] == "r1"
    assert props["spark.emr-serverless.driverEnv.MLFLOW_EXPERIMENT_ID"] == "e1"
    assert props["spark.emr-serverless.driverEnv.MLFLOW_TRACKING_URI"] == "https://mlflow.example.com"
    assert props["spark.executor.instances"] == "8" and props["spark.jars"] == "s3://code/udfs.jar"
    assert task.waiter_delay * task.waiter_max_attempts >= 7200


def test_emr_on_eks_job_run(tasks: dict[str, Any]) -> None:
    task = tasks["clicks"]
    assert type(task).__name__ == "EmrContainerOperator" and task.wait_for_completion
    request = valid(
        "emr-containers",
        "StartJobRun",
        {
            "name": task.name,
            "virtualClusterId": task.virtual_cluster_id,
            "executionRoleArn": task.execution_role_arn,
            "releaseLabel": task.release_label,
            "jobDriver": task.job_driver,
            "configurationOverrides": task.configuration_overrides,
            "clientToken": "t",
        },
    )
    driver = request["jobDriver"]["sparkSubmitJobDriver"]
    assert driver == {
        "entryPoint": "s3://code/clicks.jar",
        "entryPointArguments": ["2026-01-02"],
        "sparkSubmitParameters": "--class com.example.Features",
    }
    props = request["configurationOverrides"]["applicationConfiguration"][0]["properties"]
    assert props["spark.kubernetes.driverEnv.FEATURE_SET"] == "clicks"
    # Polled for the step's own 45m timeout; cancelled when the task is killed (the operator's default).
    assert task.poll_interval * task.max_polling_attempts >= 2700 and task.cancel_on_kill


def test_glue_run_takes_the_commands_key_value_arguments(tasks: dict[str, Any]) -> None:
    task = tasks["export"]
    assert type(task).__name__ == "GlueJobOperator" and task.wait_for_completion
    request = valid(
        "glue", "StartJobRun", {"JobName": task.job_name, "Arguments": task.script_args, **task.run_job_kwargs}
    )
    assert request == {
        "JobName": "export-features",
        "Arguments": {"--day": "2026-01-01", "--target": "warehouse", "--extra-py-files": "s3://code/glue-libs.zip"},
        "Timeout": 120,
    }
    assert task.stop_job_run_on_kill
