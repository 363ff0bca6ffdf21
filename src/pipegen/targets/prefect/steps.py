"""What each step asks of pipegen's runtime: the run_step kind and spec a step's task sends (as KFP's components do)."""

from __future__ import annotations

from typing import Any

from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import AwsBatchBackend, LocalBackend, SageMakerBackend
from pipegen.targets.base import promote_request
from pipegen.targets.resources import batch_resources


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
    backend, body = step.backend, step.body
    spec: dict[str, Any] = {"command": list(body.command), "env": {**getattr(backend, "env", {}), **body.env}}
    if isinstance(backend, LocalBackend):
        kind = "local"
        if backend.working_dir:
            spec["working_dir"] = backend.working_dir.replace("${", "$${")
        # Prefect's timeout_seconds does not stop a sync task started with .submit() (PrefectHQ/prefect#15760):
        # the runtime ends the command's process group itself.
        spec["timeout_seconds"] = step.policy.timeout
    elif isinstance(backend, AwsBatchBackend):
        kind = "aws_batch"
        spec["job"] = {
            "job_name": f"{pipeline.name}-{step.name}",
            "job_queue": backend.job_queue,
            "job_definition": backend.job_definition,
            "region": backend.region,
            "resources": batch_resources(body.resources) or None,
            # The runtime terminates the job when its wait outlives the step's timeout.
            "timeout_seconds": step.policy.timeout,
        }
    else:
        assert isinstance(backend, SageMakerBackend)
        kind = "sagemaker"
        spec["job"] = {
            "job_name": f"{pipeline.name}-{step.name}",
            "image": backend.image,
            "role_arn": backend.role_arn,
            "instance_type": backend.instance_type,
            "instance_count": backend.instance_count,
            "output_path": backend.output_path,
            "region": backend.region,
            "max_runtime_seconds": step.policy.timeout or 86400,
            "timeout_seconds": step.policy.timeout,
        }
    if step.kind == "train":
        # The job's MLFLOW_TRACKING_URI, rendered in the task (checks keep secrets out of AWS jobs' environment).
        spec["tracking_uri"] = tracking
    return kind, spec
