"""Kubernetes steps as container templates: the backend's image, pod settings, env and secrets."""

from __future__ import annotations

from typing import Any

from pipegen.expr import parse_template
from pipegen.k8s.distributed import toleration
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.refs import container_text, input_param
from pipegen.targets.argo.runtime import secret_env
from pipegen.targets.kfp.containers import kfp_cpu

# The inputs of a kubernetes step's template that carry start_run's result fields.
EXPERIMENT_INPUT = "mlflow-experiment-id"
RUN_INPUT = "mlflow-run-id"


def kubernetes_backends(pipeline: Pipeline) -> dict[str, KubernetesBackend]:
    """The kubernetes backends the steps use, by name."""
    return {str(s.backend_name): s.backend for s in pipeline.steps if isinstance(s.backend, KubernetesBackend)}


def pod_namespaces(pipeline: Pipeline) -> dict[str, tuple[tuple[str, ...], str]]:
    """Where the pods and objects of the steps' backends live, by backend name: (the key's path, namespace).

    Kubernetes backends, and the SparkApplications and RayJobs that resource templates create (owned by the
    workflow, so in its namespace: Kubernetes deletes an object whose owner is in another namespace at once).
    """
    out: dict[str, tuple[tuple[str, ...], str]] = {}
    for step in pipeline.steps:
        backend, name = step.backend, str(step.backend_name)
        if isinstance(backend, KubernetesBackend):
            out[name] = (("namespace",), backend.namespace)
        elif isinstance(backend, SparkBackend) and backend.kubernetes is not None:
            out[name] = (("kubernetes", "namespace"), backend.kubernetes.namespace)
        elif isinstance(backend, RayBackend) and backend.cluster is not None:
            out[name] = (("cluster", "namespace"), backend.cluster.namespace)
    return out


def workflow_namespace(pipeline: Pipeline, options: ArgoOptions) -> str | None:
    """Where the workflow runs: targets.argo.namespace, else its backends' one (checks make them agree)."""
    if options.namespace is not None:
        return options.namespace
    found = sorted({namespace for _, namespace in pod_namespaces(pipeline).values()})
    return found[0] if found else None


def kubernetes_template(
    pipeline: Pipeline, step: ResolvedStep, backend: KubernetesBackend, run_of: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The container of a kubernetes step, and the template fields beside it (serviceAccountName, nodeSelector)."""
    body = step.body
    env: list[dict[str, Any]] = []
    values = {**backend.env, **body.env}
    if run_of is not None:
        # start_run's result is a task output: the template reads its fields as inputs (lowering passes them).
        env += [
            {"name": "MLFLOW_EXPERIMENT_ID", "value": input_param(EXPERIMENT_INPUT)},
            {"name": "MLFLOW_RUN_ID", "value": input_param(RUN_INPUT)},
        ]
        uri = pipeline.tracking_uri
        # Exactly ${env.MLFLOW_TRACKING_URI}: the image's own variable, left as it is (checks.containers refuses
        # other ${env.X}: the kubelet reads $(X) only from variables the container spec itself sets).
        if uri is not None and not any(r.namespace == "env" for r in uri.refs):
            assert pipeline.spec.mlflow.tracking_uri is not None
            values.setdefault("MLFLOW_TRACKING_URI", pipeline.spec.mlflow.tracking_uri)
    for key, value in sorted(values.items()):
        ref = parse_template(value).single_ref
        if ref is not None and ref.namespace == "secret":
            env.append(secret_env(key, ref.name))
        else:
            env.append({"name": key, "value": container_text(value)})
    container: dict[str, Any] = {
        "image": backend.image.replace("$${", "${"),
        "command": [container_text(arg) for arg in body.command],
    }
    if env:
        container["env"] = sorted(env, key=lambda e: str(e["name"]))
    resources = body.resources
    if resources is not None:
        amounts: dict[str, str] = {}
        if resources.cpu is not None:
            amounts["cpu"] = kfp_cpu(resources.cpu)  # whole cores or millicores, as Kubernetes writes them
        if resources.memory is not None:
            amounts["memory"] = str(resources.memory)
        limits = dict(amounts)
        if resources.gpu:
            limits["nvidia.com/gpu"] = str(resources.gpu)
        container["resources"] = {"limits": limits, **({"requests": amounts} if amounts else {})}
    extra: dict[str, Any] = {}
    if backend.service_account:
        extra["serviceAccountName"] = backend.service_account
    if backend.node_selector:
        extra["nodeSelector"] = dict(sorted(backend.node_selector.items()))
    if backend.tolerations:
        extra["tolerations"] = [toleration(t.model_dump(exclude_none=True)) for t in backend.tolerations]
    return container, extra
