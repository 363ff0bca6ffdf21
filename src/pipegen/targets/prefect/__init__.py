"""The Prefect 3 target: a flow module per spec, and prefect.yaml with one deployment per spec.

Every step is a task calling pipegen's runtime (`run_step`, as KFP's components do), submitted with `.submit()`
and `wait_for`, so independent steps run side by side; an evaluation that may skip is plain Python in the flow.
"""

from __future__ import annotations

from pydantic import BaseModel

from pipegen.diagnostics import Diagnostic
from pipegen.emit import Output
from pipegen.render import render
from pipegen.resolve import Pipeline
from pipegen.targets.base import Support, Target
from pipegen.targets.cluster_jobs import AWS, AWS_TITLES, aws_spark_checks, local_ray_addresses
from pipegen.targets.prefect import deployment, kubernetes
from pipegen.targets.prefect.checks import deploy_templates, parameter_names, retry_lists, schedule_settings
from pipegen.targets.prefect.lowering import Lowering
from pipegen.targets.prefect.options import PrefectOptions
from pipegen.targets.tracking_secret import tracking_secret

__all__ = ["TARGET", "PrefectOptions", "PrefectTarget"]


class PrefectTarget(Target):
    """Prefect 3 flow modules and their deployments."""

    name = "prefect"
    title = "Prefect 3"
    support = Support(
        backends={
            "kubernetes": "task that creates the step's Job (API clients from prefect-kubernetes' "
            "KubernetesCredentials) and waits in pipegen's loop (polled every 5 s), printing each pod's log; named "
            "per attempt (a retry creates its own Job; every attempt's is deleted when it ends), the step's timeout "
            "as wall time from the Job's creation and as its activeDeadlineSeconds; a training step's MLflow run, if "
            "the Job left it RUNNING, ended FAILED or FINISHED as the attempt ended",
            "aws_batch": "task that submits the job through the runtime and waits (a retry finds the job; the step's "
            "timeout terminates it)",
            "sagemaker": "task that creates the training job through the runtime and waits",
            "local": "task that runs the command as a subprocess on the worker (the step's timeout ends it)",
            "spark": "task that runs spark-submit through the runtime and waits (platform: submit)",
            "ray": "task that submits the Ray job through the runtime and waits (address: a running cluster's job "
            "server)",
        },
        gates={
            "partition_exists": "runtime task (a wait polls inside it; a retry resumes the wait)",
            "freshness": "runtime task (a wait polls inside it; a retry resumes the wait)",
            "row_count": "runtime task (a wait polls inside it; a retry resumes the wait)",
            "sql": "runtime task (a wait polls inside it; a retry resumes the wait)",
        },
        features={
            "schedule": "prefect.yaml deployment schedule (cron + timezone); start is a guard in the flow and a "
            "warning, catchup a warning",
            "params": "flow parameters",
            "retries/backoff": "task retries with a precomputed retry_delay_seconds list (exponential, capped; at most "
            "50 delays); retry_condition_fn keeps a failed judgement or a finished gate wait from being retried",
            "timeout": "task timeout_seconds, and the runtime ends the command or AWS job itself",
            "evaluate on_fail: skip": "plain `if` in the flow; the run ends Completed with a message saying why",
            "evaluate on_fail: fail": "the evaluate task fails without retrying; the flow fails",
            "caching": "off for every task (cache_policy=NO_CACHE)",
            "notify.on_failure": "flow on_failure and on_crashed hooks",
            "notify.on_success": "flow on_completion hook",
            "${run.id} / ${run.date}": "the flow run id / its scheduled start's date in the schedule's timezone "
            "(today there for a manual run)",
            "${secret.X}": "the worker's environment variable PIPEGEN_SECRET_X; in a kubernetes step's env, the whole "
            "value only: the Kubernetes secret's key (secretKeyRef)",
            "distributed": "kubernetes, distributed_runtime indexed_job: the task creates the headless Service, then "
            "the Indexed Job (completions = parallelism = nodes), and deletes the Service "
            "after; jobset and trainjob are refused",
            "kubernetes.tolerations": "the Job's pod template tolerations",
            "kubernetes.startup_timeout": "the task fails the attempt (and deletes its Job) when a pod is still Pending "
            "that long after it appeared (unscheduled, pulling its image), naming the pod and its waiting reason",
        },
        variants={
            "spark.submit": "task running spark-submit against master through the runtime (local[N] on the worker, "
            "which needs Java 17 and pyspark) and waiting; the runtime ends spark-submit at the step's timeout",
            "ray.address": "task submitting through Ray's JobSubmissionClient and waiting (a retry reattaches to its "
            "job; the runtime stops the job at the step's timeout); the worker needs ray[default]",
            **{f"spark.{p}": AWS.format(title=t) for p, t in AWS_TITLES.items()},
        },
    )
    options_model = PrefectOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared checks plus what Prefect cannot express."""
        assert isinstance(options, PrefectOptions)
        return [
            *super().check(pipeline, options),
            *deploy_templates(pipeline, options),
            *parameter_names(pipeline),
            *retry_lists(pipeline),
            *schedule_settings(pipeline),
            *tracking_secret(pipeline, self.name),
            *local_ray_addresses(pipeline, self.name),
            *kubernetes.checks(pipeline),
            *aws_spark_checks(pipeline, self.name),
        ]

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The flow module and prefect.yaml (merged with other specs' by combine)."""
        assert isinstance(options, PrefectOptions)
        text = render("prefect/flow.py.j2", v=Lowering(pipeline, options.kubernetes_block).view())
        return [Output(f"prefect/{pipeline.name}.py", text), deployment.deployment_file(pipeline, options)]

    def combine(self, outputs: list[Output]) -> list[Output]:
        """One prefect.yaml for all the specs compiled together."""
        return deployment.combine(outputs)


TARGET = PrefectTarget()
