"""Ray on Argo: a step on a `ray` backend with `cluster:` is a `resource` template creating the step's RayJob
(pipegen.k8s.ray) and waiting for Ray's own status of the job, status.jobStatus."""

from __future__ import annotations

from typing import Any

from pipegen.k8s.ray import FAILED_DEPLOYMENTS, FAILED_STATUSES, SUCCEEDED_STATUSES, ray_job
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.targets.argo.manifests import ArgoValues, resource, step_object
from pipegen.targets.argo.options import ArgoOptions

STATUS = "status.jobStatus"
DEPLOYMENT = "status.jobDeploymentStatus"
VARIANTS = {
    "ray.cluster": f"resource template creating a KubeRay RayJob (ray.io/v1, a cluster per run, backoffLimit 0: "
    f"Argo retries), {STATUS} {'/'.join(SUCCEEDED_STATUSES)} succeeds, {'/'.join(FAILED_STATUSES)} (or "
    f"{DEPLOYMENT} {'/'.join(FAILED_DEPLOYMENTS)}) fails",
}


def ray_resource(
    pipeline: Pipeline, options: ArgoOptions, step: ResolvedStep, trains: bool
) -> tuple[dict[str, Any], ArgoValues]:
    """The step's `resource` (its RayJob as the manifest) and the values its manifest reads.

    Success is Ray's status of the job alone: jobDeploymentStatus says Complete for a failed or stopped job too.
    A deployment that failed before the job had a final status (the cluster never started, the deadline passed,
    the submission failed) fails the step as well, rather than leaving it to wait until its own deadline.
    """
    made, values = step_object(pipeline, options, step, trains)
    manifest = values.manifest(ray_job(step, made))
    success = f"{STATUS} == {SUCCEEDED_STATUSES[0]}"
    failure = f"{STATUS} in ({','.join(FAILED_STATUSES)}),{DEPLOYMENT} in ({','.join(FAILED_DEPLOYMENTS)})"
    return resource(manifest, success, failure), values
