"""What each step asks of pipegen's runtime: the run_step kind and spec a step's task sends (as KFP's components do)."""

from __future__ import annotations

from typing import Any

from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.base import command_request, promote_request
from pipegen.targets.cluster_jobs import cluster_request
from pipegen.targets.prefect import kubernetes


def step_request(pipeline: Pipeline, step: ResolvedStep) -> tuple[str, dict[str, Any]]:
    """(run_step kind, spec) for one step; spec strings stay spec templates, rendered by the runtime."""
    body = step.body
    tracking = pipeline.spec.mlflow.tracking_uri or ""
    if step.kind == "gate":
        return "gate", {"gate": step.gate}
    if step.kind == "evaluate":
        spec: dict[str, Any] = {"thresholds": list(body.thresholds), "on_fail": body.on_fail, "tracking_uri": tracking}
        if step.champion is not None:
            spec["champion"] = step.champion
        return "evaluate", spec
    if step.kind == "promote":
        return "promote", promote_request(pipeline, step)
    return _command(pipeline, step, tracking)


def start_run_request(pipeline: Pipeline, step: ResolvedStep) -> dict[str, Any]:
    """start_run's spec for a training step (its MLflow run, found again on a retry)."""
    return {
        "pipeline": pipeline.name,
        "step": step.name,
        "spec_sha256": pipeline.spec_sha256,
        "experiment": pipeline.experiment,
        "tracking_uri": pipeline.spec.mlflow.tracking_uri or "",
    }


def _command(pipeline: Pipeline, step: ResolvedStep, tracking: str) -> tuple[str, dict[str, Any]]:
    if isinstance(step.backend, KubernetesBackend):
        # Not a run_step kind: the task itself creates the Job (targets.prefect.kubernetes).
        return kubernetes.KIND, kubernetes.job_request(pipeline, step)
    if isinstance(step.backend, SparkBackend | RayBackend):
        # spark-submit or a Ray job, with the step's timeout in the request: the runtime stops the job itself.
        kind, spec = cluster_request(pipeline, step)
    else:
        kind, spec = command_request(pipeline, step)
    if kind == "local":
        # Prefect's timeout_seconds does not stop a sync task started with .submit() (PrefectHQ/prefect#15760):
        # the runtime ends the command's process group itself.
        spec["timeout_seconds"] = step.policy.timeout
    if step.kind == "train":
        # The job's MLFLOW_TRACKING_URI, rendered in the task (checks keep secrets out of AWS jobs' environment).
        spec["tracking_uri"] = tracking
    return kind, spec


def install_extras(pipeline: Pipeline) -> tuple[list[str], list[str]]:
    """The pipegen-ml extras the flow's worker installs, and a note for each a Spark or Ray step adds."""
    extras, notes = ["runtime", "aws", "sql"], []
    types = {s.backend.type for s in pipeline.steps if s.backend is not None}
    if "kubernetes" in types:
        notes.append(
            "prefect-kubernetes>=0.8,<0.9 (tested: 0.8.0), installed beside them: the kubernetes steps' "
            "tasks get their Kubernetes API clients from it."
        )
    # Only spark-submit runs Spark on the worker; a job on AWS goes through boto3 ([aws]).
    if any(isinstance(s.backend, SparkBackend) and s.backend.platform == "submit" for s in pipeline.steps):
        extras.append("spark")
        notes.append("[spark]: pyspark's spark-submit, which needs Java 17 or newer on the worker.")
    if "ray" in types:
        extras.append("ray")
        notes.append("[ray]: ray[default], whose JobSubmissionClient submits the Ray steps' jobs.")
    return extras, notes
