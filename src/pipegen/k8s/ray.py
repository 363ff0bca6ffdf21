"""A KubeRay `RayJob` (ray.io/v1) for a step on a `ray` backend with `cluster:`: a Ray cluster made for the run,
the step's command submitted to it as the job's entrypoint, the cluster deleted when the job ends.

Fields as KubeRay's API defines them (ray-project/kuberay ray-operator/apis/ray/v1/rayjob_types.go); tests validate
the result against the CRD's published openAPIV3Schema with unknown keys refused.

How the text travels (KubeRay 1.7, K8sJobMode): the submitter pod runs `bash -ce "... ray job submit ... --
<entrypoint> ; ..."` as its container argument, so the kubelet reads `$(VAR)` in the entrypoint, bash splits it
into words, `ray job submit` joins them again with shlex and the head runs that with a shell. The entrypoint is
therefore the command shell-quoted word by word, which every one of those steps undoes exactly
(PodValues.shell_line). runtimeEnvYAML reaches the same bash line inside double quotes, where `$` and backquotes would expand: it
carries only the user's runtime_env (checked by the targets), and the step's env and the MLflow run are set on the
cluster's containers instead, which the job's processes inherit.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pipegen.k8s.pods import StepObject, cpu_quantity, env_entries
from pipegen.resolve import ResolvedStep
from pipegen.spec import RayBackend
from pipegen.spec.backends import RayNodeGroup

API_VERSION = "ray.io/v1"
KIND = "RayJob"
# The cluster is deleted this long after the job ends (its pods hold the cluster's CPUs and GPUs until then).
TTL_SECONDS_AFTER_FINISHED = 300
# status.jobStatus: Ray's own status of the job (not jobDeploymentStatus, whose Complete includes failed jobs).
SUCCEEDED_STATUSES = ("SUCCEEDED",)
FAILED_STATUSES = ("FAILED", "STOPPED")
# status.jobDeploymentStatus values that end a RayJob whose job never reached a final status of its own (the
# cluster did not start in time, activeDeadlineSeconds passed, the submission failed, the spec was refused).
FAILED_DEPLOYMENTS = ("Failed", "ValidationFailed")
HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"


def fractional_gpus(backend: RayBackend) -> list[tuple[tuple[str | int, ...], float]]:
    """(path under the backend, amount) of each node group asking for part of a GPU: a pod takes whole GPUs."""
    cluster = backend.cluster
    assert cluster is not None
    groups: list[tuple[tuple[str | int, ...], RayNodeGroup | None]] = [(("cluster", "head"), cluster.head)]
    groups += [(("cluster", "workers", i), w) for i, w in enumerate(cluster.workers)]
    return [
        ((*path, "gpus"), g.gpus)
        for path, g in groups
        if g is not None and g.gpus is not None and not float(g.gpus).is_integer()
    ]


def runtime_env_yaml(backend: RayBackend) -> str | None:
    """The user's runtime_env as runtimeEnvYAML (JSON, which is YAML), keys sorted; None when there is none."""
    if not backend.runtime_env:
        return None
    return json.dumps(backend.runtime_env, sort_keys=True, ensure_ascii=False)


def ray_job(step: ResolvedStep, made: StepObject) -> dict[str, Any]:
    """The RayJob running this step once: the orchestrator retries (backoffLimit 0), its timeout is the deadline."""
    backend = step.backend
    assert isinstance(backend, RayBackend) and backend.cluster is not None, backend
    cluster = backend.cluster
    values = made.values
    env = env_entries(dict(step.body.env), values, made.run_env)
    spec: dict[str, Any] = {
        "entrypoint": values.shell_line(step.body.command),
        "submissionMode": "K8sJobMode",
        "backoffLimit": 0,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
    }
    runtime_env = runtime_env_yaml(backend)
    if runtime_env is not None:
        spec["runtimeEnvYAML"] = runtime_env
    if step.policy.timeout is not None:
        spec["activeDeadlineSeconds"] = step.policy.timeout
    resources = backend.entrypoint_resources
    if resources is not None and resources.cpus is not None:
        spec["entrypointNumCpus"] = resources.cpus
    if resources is not None and resources.gpus is not None:
        spec["entrypointNumGpus"] = resources.gpus
    image = values.text(cluster.image)
    cluster_spec: dict[str, Any] = {
        "headGroupSpec": {
            "rayStartParams": {},
            "template": _pod_template(HEAD_CONTAINER, image, cluster.head, env, cluster.service_account),
        },
        "workerGroupSpecs": [
            {
                "groupName": group.name,
                "replicas": group.replicas,
                # A fixed size: the cluster lives for one job, so it is made whole rather than autoscaled.
                "minReplicas": group.replicas,
                "maxReplicas": group.replicas,
                "rayStartParams": {},
                "template": _pod_template(WORKER_CONTAINER, image, group, env, cluster.service_account),
            }
            for group in cluster.workers
        ],
    }
    if cluster.ray_version is not None:
        cluster_spec["rayVersion"] = cluster.ray_version
    spec["rayClusterSpec"] = cluster_spec
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": made.metadata(cluster.namespace), "spec": spec}


def _pod_template(
    name: str, image: str, group: RayNodeGroup | None, env: list[dict[str, Any]], service_account: str | None
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    amounts: dict[str, str] = {}
    if group is not None and group.cpus is not None:
        amounts["cpu"] = cpu_quantity(group.cpus)
    if group is not None and group.memory is not None:
        amounts["memory"] = str(group.memory)
    limits = dict(amounts)
    if group is not None and group.gpus:
        # Ray reads the pod's nvidia.com/gpu limit as its GPU count (the targets refuse parts of a GPU).
        limits["nvidia.com/gpu"] = str(math.ceil(group.gpus))
    if limits:
        # Requests equal to limits: Ray schedules by what it was given, so a pod should never get less.
        container["resources"] = {"limits": limits, **({"requests": amounts} if amounts else {})}
    if env:
        container["env"] = env
    pod: dict[str, Any] = {"containers": [container]}
    if service_account:
        pod["serviceAccountName"] = service_account
    return {"spec": pod}
