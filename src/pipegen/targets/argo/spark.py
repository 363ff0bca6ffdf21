"""Spark on Argo: a step on a `spark` backend with `platform: kubernetes` is a `resource` template creating the
step's SparkApplication (pipegen.k8s.spark) and waiting for its status.applicationState.state."""

from __future__ import annotations

from typing import Any

from pipegen.k8s.spark import FAILED_STATES, SUCCEEDED_STATES, spark_application
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.targets.argo.manifests import ArgoValues, resource, step_object
from pipegen.targets.argo.options import ArgoOptions

STATE = "status.applicationState.state"
VARIANTS = {
    "spark.kubernetes": f"resource template creating a SparkApplication (sparkoperator.k8s.io/v1beta2, restartPolicy "
    f"Never: Argo retries), {STATE} {'/'.join(SUCCEEDED_STATES)} succeeds, {'/'.join(FAILED_STATES)} fails",
}


def spark_resource(
    pipeline: Pipeline, options: ArgoOptions, step: ResolvedStep, trains: bool
) -> tuple[dict[str, Any], ArgoValues]:
    """The step's `resource` (its SparkApplication as the manifest) and the values its manifest reads."""
    made, values = step_object(pipeline, options, step, trains)
    manifest = values.manifest(spark_application(step, made))
    success = f"{STATE} == {SUCCEEDED_STATES[0]}"
    failure = f"{STATE} in ({','.join(FAILED_STATES)})"
    return resource(manifest, success, failure), values
