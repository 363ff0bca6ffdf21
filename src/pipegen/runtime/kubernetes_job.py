"""A kubernetes step's objects (its Job; a multi-node step's headless Service and Indexed Job), built where the step
runs: the Prefect target's kubernetes task sends them (pipegen.runtime.kubernetes_wait).

The compiler writes the request: the step's pod settings (a pipegen.k8s.distributed NodePlan, as data) and its spec
text (image, command, env values), untouched. Here that text is rendered with the run's values, a training step's
MLflow run joins the env, and the objects come from the same pipegen.k8s.distributed builders the compiler's tests
validate, which double every `$` of that text for the kubelet: spec text reaches the pod as written.

Names are per attempt, `<pipeline>-<step>-<8 hex of the attempt's key>-<attempt>` (the key: the orchestrator's id of
the step's run, e.g. Prefect's task run id): a retry creates its own objects, never meets an earlier attempt's, and
two runs of one pipeline never share one.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pipegen.runtime.templating import Values

if TYPE_CHECKING:
    from pipegen.k8s.distributed import NodeContainer, NodePlan

# The container of a single-pod step's Job (the nodes of a multi-node Job run a container named "node").
CONTAINER = "main"


def object_name(base: str, key: str, attempt: int) -> str:
    """The name of one attempt's objects: base (at most 40 characters), a digest of key, the attempt number.

    At most 53 characters for attempts below 1000, so an Indexed Job's pod hostname `<name>-<index>` stays a DNS
    label (63) for the 1,000 nodes the spec allows.
    """
    return f"{base}-{hashlib.sha256(key.encode()).hexdigest()[:8]}-{attempt}"


def step_objects(
    request: dict[str, Any],
    *,
    params: dict[str, Any],
    run_id: str,
    run_date: str,
    key: str,
    attempt: int,
    mlflow_run: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The objects to create, in order: [Job], or [headless Service, Indexed Job] for a multi-node step."""
    from pipegen.k8s.distributed import NodeContainer, NodePlan, objects

    values = Values(params, run_id, run_date)
    plan_data = dict(request["plan"])
    plan_data["name"] = object_name(plan_data["name"], key, attempt)
    plan_data["tolerations"] = tuple(plan_data["tolerations"])
    plan = NodePlan(**plan_data)
    container = NodeContainer(
        image=values.string(request["image"]),
        command=tuple(values.string(word) for word in request["command"]),
        env=tuple(_env(request, values, mlflow_run)),
        resources=request.get("resources"),
    )
    if request["distributed"]:
        return objects(plan, container)
    return [single_job(plan, container)]


def _env(request: dict[str, Any], values: Values, mlflow_run: dict[str, str] | None) -> list[dict[str, Any]]:
    """The step's env entries, text rendered (secrets stay secretKeyRefs), and the MLflow run's, sorted by name.

    The MLflow run's variables replace the step's of the same name, as on the other targets' pods; a tracking URI
    that is a Kubernetes secret arrives as the request's own secretKeyRef entry (tracking_uri_secret is then set).
    """
    env: dict[str, dict[str, Any]] = {}
    for entry in request["env"]:
        name = entry["name"]
        env[name] = {"name": name, "value": values.string(entry["value"])} if "value" in entry else dict(entry)
    if mlflow_run is not None:
        from pipegen.runtime.start_run import training_env

        if request.get("tracking_uri_secret") or "tracking_uri" not in request:
            # Not rendered here (the worker need not hold the secret the pods read): the request's own entry.
            run_env = {
                "MLFLOW_EXPERIMENT_ID": str(mlflow_run["experiment_id"]),
                "MLFLOW_RUN_ID": str(mlflow_run["run_id"]),
            }
        else:
            run_env = training_env(mlflow_run, values.string(request["tracking_uri"]) or None)
        env |= {name: {"name": name, "value": value} for name, value in run_env.items()}
    return [env[name] for name in sorted(env)]


def single_job(plan: NodePlan, container: NodeContainer) -> dict[str, Any]:
    """A batch/v1 Job of one pod: no retries of its own (the orchestrator retries the step), the step's timeout as
    its activeDeadlineSeconds, spec text escaped for the kubelet as on the multi-node Jobs."""
    from pipegen.k8s.distributed import kubelet_text

    main: dict[str, Any] = {
        "name": CONTAINER,
        "image": container.image,
        "command": [kubelet_text(word) for word in container.command],
    }
    env = [
        {**entry, "value": kubelet_text(str(entry["value"]))} if "value" in entry else dict(entry)
        for entry in container.env
    ]
    if env:
        main["env"] = env
    if container.resources:
        main["resources"] = container.resources
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [main]}
    if plan.service_account:
        pod["serviceAccountName"] = plan.service_account
    if plan.node_selector:
        pod["nodeSelector"] = dict(plan.node_selector)
    if plan.tolerations:
        pod["tolerations"] = [dict(t) for t in plan.tolerations]
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": dict(plan.labels)}, "spec": pod},
    }
    if plan.deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = plan.deadline_seconds
    metadata = {"name": plan.name, "namespace": plan.namespace, "labels": dict(plan.labels)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
