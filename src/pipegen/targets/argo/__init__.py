"""The Argo Workflows target: a WorkflowTemplate per spec (+ a CronWorkflow when it has a schedule).

Each step is a DAG task with an explicit `depends: X.Succeeded`; pipegen's runtime runs in containers
(`python -m pipegen.runtime step ARGS_JSON`, the step's JSON with '{', '}' and '$' escaped so neither Argo
nor the kubelet rewrites spec text); kubernetes steps are container templates; spark steps on the Spark Operator
and ray steps on a KubeRay cluster are resource templates creating a SparkApplication / RayJob (argo/spark.py,
argo/ray.py, the objects from pipegen.k8s, their manifests from argo/manifests.py); spark-submit and Ray-address
steps are runtime containers (run_step kinds `spark` / `ray`, targets/cluster_jobs); multi-node steps are resource
templates creating a JobSet, or a headless Service and then an Indexed Job (argo/distributed.py); the task of a training
job Argo runs itself has lifecycle hooks ending its MLflow run as the task ended (argo/closing.py). The documents are
plain dicts written with yaml.safe_dump-style sorted keys (`layout`), never text templates.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pipegen.diagnostics import Diagnostic, has_errors
from pipegen.emit import Output
from pipegen.resolve import Pipeline
from pipegen.targets.argo.checks import containers, params, runtime_image, step_names
from pipegen.targets.argo.distributed import FEATURE as DISTRIBUTED_FEATURE
from pipegen.targets.argo.distributed import node_problems
from pipegen.targets.argo.layout import manifest_text
from pipegen.targets.argo.lowering import Lowering
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.ray import VARIANTS as RAY_VARIANTS
from pipegen.targets.argo.resource_checks import custom_resources
from pipegen.targets.argo.size import size_problems
from pipegen.targets.argo.spark import VARIANTS as SPARK_VARIANTS
from pipegen.targets.base import Support, Target
from pipegen.targets.cluster_jobs import AWS, AWS_TITLES, aws_spark_checks, local_ray_addresses

__all__ = ["TARGET", "ArgoOptions", "ArgoTarget"]

# spark.submit and ray.address: the runtime's run_step kinds `spark` and `ray` (targets/cluster_jobs), as on KFP/Prefect.
CLUSTER_JOB_VARIANTS = {
    "spark.submit": "runtime container running spark-submit against master (local[N] inside the container: the "
    "runtime image needs Java 17 and pipegen-ml[spark]) and waiting; the runtime ends spark-submit at the step's "
    "timeout",
    "ray.address": "runtime container submitting through Ray's JobSubmissionClient and waiting (a retry reattaches to "
    "its job; the runtime stops the job at the step's timeout); the runtime image needs pipegen-ml[ray]",
}
_RUNTIME = "runtime container (python -m pipegen.runtime; a wait polls inside it within activeDeadlineSeconds)"


class ArgoTarget(Target):
    """Argo Workflows 4 (WorkflowTemplate + CronWorkflow)."""

    name = "argo"
    title = "Argo Workflows"
    support = Support(
        backends={
            "kubernetes": "container template (image, serviceAccountName, nodeSelector, resources, env, secretKeyRef)",
            "aws_batch": "runtime container that submits the job and waits",
            "sagemaker": "runtime container that creates the training job and waits",
            "local": "runtime container that runs the command in the runtime image",
            "spark": "resource template creating a SparkApplication (platform: kubernetes), or a runtime container "
            "running spark-submit (platform: submit)",
            "ray": "resource template creating a KubeRay RayJob (cluster:), or a runtime container submitting to a "
            "running cluster's job server (address:)",
        },
        gates={check: _RUNTIME for check in ("partition_exists", "freshness", "row_count", "sql")},
        features={
            "schedule": "CronWorkflow (schedules, timezone, concurrencyPolicy: Forbid, startingDeadlineSeconds "
            "from catchup) referencing the WorkflowTemplate",
            "params": "workflow arguments (spec.arguments.parameters)",
            "step order": "DAG tasks with explicit depends: <upstream>.Succeeded",
            "retries/backoff": "retryStrategy (limit, retryPolicy: Always, backoff duration/factor/cap)",
            "timeout": "activeDeadlineSeconds on the template (a waiting gate's covers its whole wait)",
            "evaluate": "runtime container; later steps have `when` on its result (skip) or it fails (fail)",
            "promote": "runtime container",
            "notify.on_failure": "onExit handler task when {{workflow.status}} != Succeeded",
            "notify.on_success": "onExit handler task when {{workflow.status}} == Succeeded",
            "${run.id} / ${run.date}": "{{workflow.name}} / the scheduled time's date in the schedule's timezone "
            "(today there for a manual submit), from a pipegen-context runtime task",
            "${secret.X}": "Kubernetes secret x (key X) as secretKeyRef",
            "output parameters": "need the workflow's service account to create/patch workflowtaskresults",
            "training run of a failed job": "lifecycle hooks on the task of a kubernetes or resource training step "
            "run the runtime's close_run (template pipegen-close-run): FAILED when the task ends Failed or Error, "
            "FINISHED when it Succeeded, a run the job ended keeps its status; runtime steps end their runs themselves",
            "distributed": DISTRIBUTED_FEATURE,
            "kubernetes.tolerations": "the template's tolerations (and the pod template of a multi-node step's nodes)",
            "custom resources": "the workflow's service account needs create, get and patch on sparkapplications "
            "(sparkoperator.k8s.io) and rayjobs (ray.io) for the resource templates of spark and ray steps, and on "
            "jobsets (jobset.x-k8s.io), or jobs (batch) and services, for those of multi-node steps",
        },
        variants={
            **SPARK_VARIANTS,
            **RAY_VARIANTS,
            **CLUSTER_JOB_VARIANTS,
            **{
                f"spark.{p}": AWS.format(title=t).replace("the image", "the runtime image")
                for p, t in AWS_TITLES.items()
            },
        },
    )
    options_model = ArgoOptions
    # The documents check() lowered to measure them, for render() to write (the compiler renders what it checked).
    _lowered: tuple[Pipeline, BaseModel, list[dict[str, Any]]] | None = None

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared checks plus what Argo cannot express, then the size of what it would store."""
        assert isinstance(options, ArgoOptions)
        problems = [
            *super().check(pipeline, options),
            *step_names(pipeline),
            *params(pipeline),
            *runtime_image(pipeline, options),
            *containers(pipeline, options),
            *custom_resources(pipeline),
            *local_ray_addresses(pipeline, self.name),
            *aws_spark_checks(pipeline, self.name),
            *node_problems(pipeline),
        ]
        if not has_errors(problems):
            documents = Lowering(pipeline, options).documents()
            self._lowered = (pipeline, options, documents)
            problems += size_problems(pipeline, documents[0])
        return problems

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """DIR/argo/<name>.yaml: the WorkflowTemplate (+ CronWorkflow)."""
        assert isinstance(options, ArgoOptions)
        lowered, self._lowered = self._lowered, None
        if lowered is not None and lowered[0] is pipeline and lowered[1] is options:
            documents = lowered[2]
        else:
            documents = Lowering(pipeline, options).documents()
        return [Output(f"argo/{pipeline.name}.yaml", manifest_text(pipeline, documents))]


TARGET = ArgoTarget()
