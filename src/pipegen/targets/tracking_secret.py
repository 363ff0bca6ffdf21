"""Where a secret in mlflow.tracking_uri may go: the same rule and wording on every target.

A training job gets the tracking URI as MLFLOW_TRACKING_URI. An AWS Batch or SageMaker job's environment
is a plain value in the job (and in the request that starts it), so a secret there would be stored and
shown in plain; a Kubernetes pod can take it only as a whole value from a Kubernetes secret.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline
from pipegen.spec import backend_variant


def tracking_secret(pipeline: Pipeline, target: str) -> Iterator[Diagnostic]:
    """PG602 at mlflow.tracking_uri for the first training job that would hold its secret as a plain value."""
    uri = pipeline.tracking_uri
    if uri is None or not any(r.namespace == "secret" for r in uri.refs):
        return
    whole = uri.single_ref is not None
    for step in pipeline.steps:
        backend = step.backend
        if step.kind != "train" or backend is None or backend.type == "local":
            continue
        # SparkApplication and RayJob pods (pipegen.k8s) take it as a secretKeyRef too.
        variant = backend_variant(backend)
        if whole and (backend.type == "kubernetes" or (variant and variant[0] in ("spark.kubernetes", "ray.cluster"))):
            continue
        yield diag(
            "PG602",
            f"target '{target}' can pass a secret in mlflow.tracking_uri to training step '{step.name}' on "
            f"{backend.type} only as a Kubernetes secret: the whole URI must be ${{secret.NAME}} on a kubernetes pod",
            pipeline.source_map.value(("mlflow", "tracking_uri")),
            "keep the credentials out of the URI (e.g. MLFLOW_TRACKING_TOKEN from a secret), or make the whole "
            "tracking_uri ${secret.NAME} and train on kubernetes",
        )
        return
