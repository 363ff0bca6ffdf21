"""Multi-node steps on Argo: `resource` templates creating the step's JobSet, or its headless Service and Indexed Job.

The objects come from pipegen.k8s.distributed; Argo gives them names of its own run:
- jobset: one template creating the JobSet (generateName: a retried task creates a new one) and waiting for
  status.terminalState (Completed / Failed, which the JobSet controller sets once the JobSet finishes). The
  controller makes the headless Service named after the JobSet; every node reads that name from its pod's label
  (jobset.sigs.k8s.io/jobset-name), so MASTER_ADDR is `$(JOBSET_NAME)-node-0-0.$(JOBSET_NAME)`.
- indexed_job: a template creating the headless Service first, named for the run (`<base>-{{workflow.uid}}`, selecting
  the run's pods of this step), then one creating the Indexed Job (generateName) in that subdomain and waiting for
  `status.succeeded > N-1` (all N completion indexes; the form of Argo's own examples/k8s-jobs.yaml) or
  `status.failed > 0` (backoffLimit 0 and the FailJob pod failure policy: one failed node fails the Job). Pod 0 is
  `$(JOB_NAME)-0.<service>`, the Job's name read from its pod's label batch.kubernetes.io/job-name. Both objects
  are owned by the workflow (setOwnerReference) and deleted with it; a retry creates a new Job in the same Service.
- trainjob: refused (PG602). A TrainJob reports its end only in status.conditions, an array; Argo's conditions are
  label selectors over fields (gjson paths whose keys must be label keys), which cannot pick an array element.

Argo's conditions: workflow/executor/resource.go (labels.Parse over gjson values); the k8s-jobs example uses
`status.succeeded > 2` / `status.failed > 1` for a Job of three completions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.k8s.distributed import (
    NodeContainer,
    headless_service,
    indexed_job,
    jobset,
    node_plan,
    resource_requirements,
)
from pipegen.k8s.pods import NAME_BASE_LENGTH, env_entries
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend
from pipegen.targets.argo.checks import NO_ESCAPE
from pipegen.targets.argo.layout import Block
from pipegen.targets.argo.manifests import ArgoValues, resource, run_env
from pipegen.targets.argo.options import ArgoOptions

# What Argo runs for each distributed_runtime (trainjob: PG602, see the module's docstring).
RUNTIMES = ("indexed_job", "jobset")
TERMINAL_STATE = "status.terminalState"
FEATURE = (
    "distributed_runtime jobset: resource template creating a JobSet (jobset.x-k8s.io/v1alpha2), "
    f"{TERMINAL_STATE} Completed succeeds, Failed fails; indexed_job: resource templates creating the headless "
    "Service, then the Indexed Job (status.succeeded reaching the node count succeeds, status.failed > 0 fails), "
    "both owned by the workflow; trainjob: not mapped (its status is a conditions array Argo cannot match)"
)
# The run's identity in the Service's name and selector: Argo substitutes it in every template.
RUN_UID = "{{workflow.uid}}"
RUN_LABEL = "pipegen.dev/run"
# Labels the controllers put on every pod (Kubernetes >= 1.27 for the Job's; JobSet's own for the JobSet's).
JOB_NAME_LABEL = "metadata.labels['batch.kubernetes.io/job-name']"
JOBSET_NAME_LABEL = "metadata.labels['jobset.sigs.k8s.io/jobset-name']"
# The part of the Service's name before the run's uid (36 characters): a DNS label has 63 at most.
SERVICE_BASE_LENGTH = 63 - 1 - 36


@dataclass(frozen=True)
class NodeResources:
    """A multi-node step's resource templates: the headless Service's (indexed_job only), then the main one."""

    service: dict[str, Any] | None
    main: dict[str, Any]
    values: ArgoValues


class NodeValues(ArgoValues):
    """ArgoValues for the node container: pipegen.k8s.distributed escapes plain text for the kubelet itself, so literal
    text reaches it as it is; text with run-time values is an expression that escapes its own pieces."""

    def pod_text(self, value: str) -> str:
        """Literal text unescaped (the builder doubles its '$'), or the expression of ArgoValues.pod_text."""
        return super().pod_text(value) if parse_template(value).refs else self.text(value)


def is_distributed(step: ResolvedStep) -> bool:
    """Whether the step runs on several nodes."""
    return step.kind in ("task", "train") and step.body.distributed is not None


def node_problems(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """What Argo cannot run of a multi-node step: another backend than kubernetes, a TrainJob, '{{' in a toleration."""
    for step in pipeline.steps:
        if not is_distributed(step):
            continue
        backend, name = step.backend, str(step.backend_name)
        if not isinstance(backend, KubernetesBackend):
            yield diag(
                "PG602",
                f"target 'argo' runs multi-node steps on kubernetes backends only: step '{step.name}' runs on "
                f"{backend.type if backend is not None else 'local'} backend '{name}'",
                pipeline.locate(step, step.kind, "distributed"),
                "run the step on a kubernetes backend (distributed_runtime: jobset or indexed_job)",
            )
        elif backend.distributed_runtime not in RUNTIMES:
            yield diag(
                "PG602",
                f"target 'argo' cannot wait for a TrainJob (step '{step.name}', backend '{name}'): a TrainJob reports "
                "its end only in status.conditions, an array Argo's successCondition/failureCondition cannot match",
                pipeline.source_map.value(("backends", name, "distributed_runtime")),
                "use distributed_runtime: jobset (status.terminalState), or indexed_job",
            )
    used = {str(s.backend_name): s.backend for s in pipeline.steps if isinstance(s.backend, KubernetesBackend)}
    for name, backend in sorted(used.items()):
        for i, item in enumerate(backend.tolerations):
            texts = [str(v) for v in item.model_dump(exclude_none=True).values()]
            if any("{{" in text for text in texts):
                yield diag(
                    "PG602",
                    f"target 'argo' cannot use toleration {i} of backend '{name}': " + NO_ESCAPE,
                    pipeline.source_map.value(("backends", name, "tolerations", i)),
                    "a Kubernetes taint key or value has no braces",
                )


def _container(step: ResolvedStep, values: NodeValues, mlflow: list[dict[str, Any]]) -> NodeContainer:
    backend, body = step.backend, step.body
    assert isinstance(backend, KubernetesBackend)
    return NodeContainer(
        image=backend.image.replace("$${", "${"),
        command=tuple(values.pod_text(word) for word in body.command),
        env=tuple(env_entries({**backend.env, **body.env}, values, mlflow)),
        resources=resource_requirements(body.resources),
    )


def _generated(obj: dict[str, Any], base: str) -> None:
    """metadata.name -> generateName: each attempt of the task creates an object of its own."""
    obj["metadata"].pop("name")
    obj["metadata"]["generateName"] = base[:NAME_BASE_LENGTH].rstrip("-") + "-"


def _own_name_first(env: list[dict[str, Any]], var: str, label: str, master: str) -> list[dict[str, Any]]:
    """The rendezvous env with `var` (the object's name, from the pod's label) first, so MASTER_ADDR may use it."""
    out = [{"name": var, "valueFrom": {"fieldRef": {"fieldPath": label}}}]
    return out + [{**e, "value": master} if e["name"] == "MASTER_ADDR" else e for e in env]


def node_resources(pipeline: Pipeline, options: ArgoOptions, step: ResolvedStep, trains: bool) -> NodeResources:
    """The `resource` fields of a multi-node step's templates; a training step's nodes get the MLflow run's env."""
    values = NodeValues()
    plan = node_plan(pipeline, step)
    base = plan.name
    container = _container(step, values, run_env(pipeline, options, values) if trains else [])
    if plan.runtime == "jobset":
        made = jobset(plan, container)
        _generated(made, base)
        pod = made["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        [node] = pod["containers"]
        master = "$(JOBSET_NAME)-node-0-0.$(JOBSET_NAME)"
        node["env"] = _own_name_first(node["env"], "JOBSET_NAME", JOBSET_NAME_LABEL, master)
        success, failure = f"{TERMINAL_STATE} == Completed", f"{TERMINAL_STATE} == Failed"
        return NodeResources(None, resource(values.manifest(made), success, failure), values)
    service_name = f"{base[:SERVICE_BASE_LENGTH].rstrip('-')}-{RUN_UID}"
    selector = {RUN_LABEL: RUN_UID, "pipegen.dev/step": plan.labels["pipegen.dev/step"]}
    service = headless_service(dataclasses.replace(plan, name=service_name))
    service["spec"]["selector"] = selector
    job = indexed_job(dataclasses.replace(plan, name=service_name), container)
    _generated(job, base)
    template = job["spec"]["template"]
    template["metadata"]["labels"][RUN_LABEL] = RUN_UID
    [node] = template["spec"]["containers"]
    node["env"] = _own_name_first(node["env"], "JOB_NAME", JOB_NAME_LABEL, f"$(JOB_NAME)-0.{service_name}")
    # No conditions: a Service has no status to wait for; the template ends once the API server has it.
    created = {"action": "create", "setOwnerReference": True, "manifest": Block(ArgoValues().manifest(service))}
    success, failure = f"status.succeeded > {plan.nodes - 1}", "status.failed > 0"
    return NodeResources(created, resource(values.manifest(job), success, failure), values)
