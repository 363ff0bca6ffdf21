"""The Airflow 3 target: one DAG file per spec, with airflow.sdk and the providers' operators.

`options` (targets: {airflow: ...}), `checks` (what Airflow cannot take), and the lowering in layers:
`values` (spec strings as Python source), `backends` (operators per backend type; `spark` and `ray` map those
families, `distributed` the Indexed Job, `resources` the custom resources: SparkApplication, RayJob, JobSet, TrainJob,
written through `manifests`), `closing` (the training tasks' callbacks ending a run their job left RUNNING),
`lowering` (the DAG),
laid out by `view` and templates/airflow/dag.py.j2.
"""

from __future__ import annotations

from pydantic import BaseModel

from pipegen.diagnostics import Diagnostic
from pipegen.emit import Output
from pipegen.render import render
from pipegen.resolve import Pipeline
from pipegen.targets.airflow import ray, resources, spark
from pipegen.targets.airflow.backends import BATCH_MIN_TIMEOUT
from pipegen.targets.airflow.checks import TAG_LIMIT, secret_placement, tags
from pipegen.targets.airflow.distributed import task_names
from pipegen.targets.airflow.lowering import Lowering
from pipegen.targets.airflow.options import CONN_ID, AirflowOptions
from pipegen.targets.airflow.view import Task, View, var_name
from pipegen.targets.base import Support, Target

__all__ = [
    "BATCH_MIN_TIMEOUT",
    "CONN_ID",
    "TAG_LIMIT",
    "TARGET",
    "AirflowOptions",
    "AirflowTarget",
    "Task",
    "View",
    "var_name",
]


class AirflowTarget(Target):
    """Airflow 3.3 DAG files."""

    name = "airflow"
    title = "Apache Airflow 3"
    support = Support(
        backends={
            "kubernetes": "KubernetesPodOperator (cncf.kubernetes provider)",
            "aws_batch": "BatchOperator (amazon provider)",
            "sagemaker": "SageMakerTrainingOperator (amazon provider)",
            "spark": "SparkSubmitOperator, SparkKubernetesOperator, or the amazon provider's EMR, EMR Serverless, EMR on"
            " EKS and Glue operators",
            "ray": "a @task running the runtime's Ray job submission, or a KubeRay RayJob and a sensor on its status",
            "local": "a @task that runs the command as a subprocess on the worker",
        },
        gates={
            "partition_exists": "runtime gate; with wait: @task.sensor in reschedule mode",
            "freshness": "runtime gate; with wait: @task.sensor in reschedule mode",
            "row_count": "runtime gate; with wait: @task.sensor in reschedule mode",
            "sql": "runtime gate; with wait: @task.sensor in reschedule mode",
        },
        features={
            "schedule": "DAG schedule, start_date, catchup, timezone",
            "params": "DAG params (airflow.sdk.Param)",
            "retries/backoff/timeout": "retries, retry_delay, retry_exponential_backoff, max_retry_delay, execution_timeout",
            "evaluate on_fail: skip": "@task.short_circuit (skips promotion)",
            "evaluate on_fail: fail": "@task that fails without retry",
            "promote": "runtime @task",
            "a training job's run left RUNNING": "ended by the runtime's close_run in the step's task callbacks:"
            " FAILED on each failed try (on_retry/on_failure_callback), FINISHED on success, of its operator or"
            " @task, or of the status sensor of a create/sensor/teardown group (its retries re-read the same"
            " object: only its end counts); FAILED when the create task fails; a run the job ended keeps its status",
            "notify.on_failure": "DAG on_failure_callback",
            "notify.on_success": "DAG on_success_callback (every task succeeded or was skipped: a skipped promotion too)",
            "${run.date} / ${run.id}": "the logical date (the trigger time without one) in the schedule's timezone"
            " / {{ run_id }}",
            "${env.X}": "the worker's environment variable X at render time",
            "${secret.X}": "Airflow Variable X, masked in logs; Kubernetes secret X as a whole pod env value",
            "distributed": "kubernetes indexed_job: KubernetesJobOperator (Indexed, completions = parallelism ="
            " nodes) between a KubernetesCreateResourceOperator of its headless Service and that Service's"
            " deletion as a teardown; jobset / trainjob: KubernetesCreateResourceOperator of the JobSet"
            " (failurePolicy.maxRestarts = retries) / TrainJob, a reschedule sensor on status.terminalState"
            " Completed/Failed / status.conditions Complete/Failed, its deletion as a teardown",
            "kubernetes.tolerations": "the operator's tolerations",
            "kubernetes.startup_timeout": "the operator's startup_timeout_seconds",
        },
        variants={
            "spark.submit": "SparkSubmitOperator (apache.spark provider): spark-submit on the worker; the master and"
            " deploy mode from connection pipegen_spark_<backend> (AIRFLOW_CONN_PIPEGEN_SPARK_<BACKEND>, given in the"
            " DAG file's header)",
            "spark.emr": "EmrAddStepsOperator(wait_for_completion=True): a command-runner.jar step, spark-submit"
            " --master yarn --deploy-mode cluster",
            "spark.emr_serverless": "EmrServerlessStartJobOperator(wait_for_completion=True), settings as"
            " spark-defaults, executionTimeoutMinutes from the timeout",
            "spark.emr_on_eks": "EmrContainerOperator (polls until the job run ends), settings as spark-defaults",
            "spark.glue": "GlueJobOperator(wait_for_completion=True): a run of the existing job, the command's"
            " `--key value` arguments (and the env) as its arguments",
            "spark.kubernetes": "SparkKubernetesOperator (cncf.kubernetes provider): the SparkApplication"
            " (sparkoperator.k8s.io/v1beta2) named per run and try, its driver log streamed, reattached after a lost"
            " worker, deleted at the end",
            "ray.address": "a @task running the runtime's Ray job submission (JobSubmissionClient): waits, reattaches"
            " on retry, stops the job at the timeout",
            "ray.cluster": "KubernetesCreateResourceOperator of a KubeRay RayJob (ray.io/v1, named per run,"
            " backoffLimit = retries), a reschedule sensor: status.jobStatus SUCCEEDED succeeds, FAILED/STOPPED (or"
            " jobDeploymentStatus Failed/ValidationFailed) fails; its deletion as a teardown",
        },
    )
    options_model = AirflowOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared capability checks plus where secrets can go in pods and jobs, and Airflow's tag limit."""
        return [
            *super().check(pipeline, options),
            *task_names(pipeline),
            *resources.checks(pipeline),
            *secret_placement(pipeline),
            *tags(pipeline),
            *spark.checks(pipeline),
            *ray.checks(pipeline),
        ]

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The DAG file for this pipeline."""
        assert isinstance(options, AirflowOptions)
        view = Lowering(pipeline, options).view()
        return [Output(f"airflow/{pipeline.name}.py", render("airflow/dag.py.j2", v=view))]


TARGET = AirflowTarget()
