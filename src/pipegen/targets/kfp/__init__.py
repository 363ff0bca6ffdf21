"""The Kubeflow Pipelines v2 target: a kfp 2.17 pipeline module per spec (optionally its compiled IR)."""

from __future__ import annotations

from pydantic import BaseModel

from pipegen.diagnostics import Diagnostic
from pipegen.emit import Output
from pipegen.render import render
from pipegen.resolve import Pipeline
from pipegen.targets.base import Support, Target
from pipegen.targets.cluster_jobs import AWS, AWS_TITLES, aws_spark_checks, local_ray_addresses
from pipegen.targets.kfp import schedule
from pipegen.targets.kfp.checks import limits, mlflow_settings, runtime_image, tracking_placement
from pipegen.targets.kfp.ir import compile_ir
from pipegen.targets.kfp.launcher_checks import launcher_checks
from pipegen.targets.kfp.lowering import Lowering
from pipegen.targets.kfp.names import MLFLOW_INPUTS, RUN_DATE, RUN_KEY, escaped_json, ident
from pipegen.targets.kfp.options import KfpOptions

# A custom resource through the runtime's launcher (pipegen.runtime.k8s_launch): KFP v2 has no ResourceOp.
LAUNCHED = (
    "runtime launcher component creating {what} named per run and attempt (a retry reattaches to it), waiting for "
    "its status, deleting it at the step's timeout; the image needs pipegen-ml[k8s] and the run's service account "
    "the Role the module's header lists"
)

__all__ = ["MLFLOW_INPUTS", "RUN_DATE", "RUN_KEY", "TARGET", "KfpOptions", "KfpTarget", "escaped_json", "ident"]


class KfpTarget(Target):
    """Kubeflow Pipelines v2 (kfp 2.17) pipeline modules."""

    name = "kfp"
    title = "Kubeflow Pipelines v2"
    support = Support(
        backends={
            "kubernetes": "container component (dsl.ContainerSpec) with kfp-kubernetes for secrets and node selectors; "
            "a training step's closer (a runtime component after it, .ignore_upstream_failure(), told its final "
            "status) ends the MLflow run the container left RUNNING, FAILED or FINISHED",
            "aws_batch": "runtime component that submits the job and waits",
            "sagemaker": "runtime component that creates the training job and waits",
            "local": "runtime component that runs the command in the component's container",
            "spark": "runtime component that runs spark-submit, or submits the job to EMR, EMR Serverless, EMR on "
            "EKS or Glue, and waits; the runtime's launcher for a SparkApplication",
            "ray": "runtime component that submits the Ray job and waits (address), or the runtime's launcher "
            "creating a KubeRay RayJob (cluster)",
        },
        gates={
            "partition_exists": "runtime component (a wait polls inside it)",
            "freshness": "runtime component (a wait polls inside it)",
            "row_count": "runtime component (a wait polls inside it)",
            "sql": "runtime component (a wait polls inside it)",
        },
        features={
            "schedule": "recurring-run body in the v2beta1 REST shape (<name>.schedule.json); the cron moved to the "
            "scheduler's timezone, with a warning where daylight saving time makes that inexact",
            "params": "pipeline parameters",
            "retries/backoff": "set_retry(num_retries, backoff_duration, backoff_factor, backoff_max_duration)",
            "timeout": "kfp-kubernetes set_timeout (pod activeDeadlineSeconds)",
            "evaluate on_fail: skip": "dsl.If around the promotion",
            "evaluate on_fail: fail": "the evaluate component fails",
            "caching": "off for every task",
            "${run.id} / ${run.date}": "the pipeline job id / the scheduled time's date in the schedule's timezone (today there for manual runs)",
            "${secret.X}": "Kubernetes secret x mounted with kfp-kubernetes use_secret_as_env",
            "notify.on_failure": "dsl.ExitHandler around the steps: its exit task posts when the final state is "
            "FAILED (a cancelled run notifies nobody)",
            "notify.on_success": "the same exit task, when the final state is SUCCEEDED (COMPLETE on the KFP backend)",
            "distributed": "the runtime's launcher component creating the step's Indexed Job and headless Service, "
            "JobSet or TrainJob (distributed_runtime) and waiting for it; the pipeline's service account needs the "
            "Role the module's header lists",
            "kubernetes.tolerations": "kfp-kubernetes add_toleration on a container step; the pod template of a "
            "multi-node step's objects",
        },
        variants={
            "spark.submit": "runtime component running spark-submit against master (local[N] inside the task's "
            "container; the image needs Java 17 and pyspark) and waiting; the step's timeout stops it",
            "ray.address": "runtime component submitting through Ray's JobSubmissionClient and waiting (a retry "
            "reattaches to its job; the step's timeout stops the job); the image needs ray[default]",
            "spark.kubernetes": LAUNCHED.format(what="a SparkApplication (sparkoperator.k8s.io/v1beta2)"),
            "ray.cluster": LAUNCHED.format(what="a KubeRay RayJob (ray.io/v1, a cluster per run)"),
            **{f"spark.{p}": AWS.format(title=t) for p, t in AWS_TITLES.items()},
        },
    )
    options_model = KfpOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared checks plus what KFP cannot express."""
        assert isinstance(options, KfpOptions)
        return [
            *super().check(pipeline, options),
            *limits(pipeline),
            *runtime_image(pipeline, options),
            *mlflow_settings(pipeline, options),
            *tracking_placement(pipeline, options),
            *schedule.check(pipeline, options),
            *local_ray_addresses(pipeline, self.name),
            *aws_spark_checks(pipeline, self.name),
            *launcher_checks(pipeline),
        ]

    def finish(self, outputs: list[Output], flags: frozenset[str]) -> list[Output]:
        """With --ir, also the IR YAML compiled by kfp itself (the only time pipegen imports kfp)."""
        if "ir" not in flags:
            return outputs
        return [*outputs, *(compile_ir(o) for o in outputs if o.path.endswith(".py"))]

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The pipeline module, and the recurring-run definition when the spec has a schedule."""
        assert isinstance(options, KfpOptions)
        view = Lowering(pipeline, options).view()
        text = render("kfp/pipeline.py.j2", v=view, install_kfp=options.install_kfp_package)
        outputs = [Output(f"kfp/{pipeline.name}.py", text)]
        if pipeline.schedule is not None:
            outputs.append(Output(f"kfp/{pipeline.name}.schedule.json", schedule.recurring_run(pipeline, options)))
        return outputs


TARGET = KfpTarget()
