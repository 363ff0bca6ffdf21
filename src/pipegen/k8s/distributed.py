"""The Kubernetes objects of a multi-node step (`distributed:` on a kubernetes backend), as plain dicts.

Three ways to run N nodes, chosen by the backend's `distributed_runtime`:
- `indexed_job`: a batch/v1 Job with completionMode Indexed (completions = parallelism = N) and the headless
  Service its pods' `subdomain` names, so pod i is reachable as `<job>-<i>.<service>` (a Job makes no Service
  itself, and Airflow's KubernetesJobOperator does not either);
- `jobset`: a jobset.x-k8s.io/v1alpha2 JobSet of one replicated Job (the same Indexed Job), whose controller makes
  the headless Service (network.enableDNSHostnames): pod i is `<jobset>-node-0-<i>.<jobset>`;
- `trainjob`: a trainer.kubeflow.org/v1alpha1 TrainJob on the cluster's `torch-distributed` (or `mpi-distributed`)
  ClusterTrainingRuntime, which sets the rendezvous itself (torchrun reads its PET_NNODES, PET_NODE_RANK,
  PET_MASTER_ADDR, ... variables).

Every node gets the same container: the step's image, command and env (the MLflow run's variables among them: every
rank sees MLFLOW_RUN_ID, and only global rank 0 should log to it), its resources, and for indexed_job/jobset the
rendezvous variables MASTER_ADDR (pod 0's DNS name), MASTER_PORT, NNODES, NPROC_PER_NODE and NODE_RANK (the pod's
completion index, through the downward API). With launcher `torchrun` the command is wrapped in
`torchrun --nnodes N --nproc-per-node P --node-rank $(NODE_RANK) --master-addr $(MASTER_ADDR) ... --no-python`.

The kubelet expands `$(VAR)` in command, args and env values and reads `$$` as `$`: every `$` of the step's own
text is doubled (`kubelet_text`), so only the `$(...)` references written here are expanded.

Targets give `container` in their own expression language (`NodeContainer`); `spec_container` builds one from the
spec text as it is (its `${...}` kept literally: the goldens show where each target's own expressions will go), for
tests and for targets whose expressions are resolved before the objects are created. The MLflow run's variables
(MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID, MLFLOW_TRACKING_URI) are part of container.env: each target passes them as its
kubernetes steps pass them today, and the one pod template (or the TrainJob's trainer) gives them to every node.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, Resources, procs_per_node_of

JOB_API = "batch/v1"
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
TRAINJOB_API = "trainer.kubeflow.org/v1alpha1"
# torchrun's default --master-port, and what the Kubeflow Trainer's torch runtime uses.
RENDEZVOUS_PORT = 29500
# The container, and the JobSet's replicated Job, are named like the Trainer's torch runtime names them ("node"),
# so a patch of a TrainJob targets the same names.
NODE = "node"
MANAGER = "pipegen.dev/compiler"
# The Job controller sets this annotation on every pod of an Indexed Job (and so of a JobSet's Jobs).
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# A pod's hostname is `<job>-<index>` (Indexed Job) or `<jobset>-node-0-<index>` (JobSet) and must be a DNS label
# of at most 63 characters: object names are kept to 40, with a digest when a longer one is cut.
MAX_NAME = 40


@dataclass(frozen=True)
class NodeContainer:
    """What every node runs, in the text a target gives it (its own expressions for spec references).

    env holds Kubernetes EnvVar dicts: {"name", "value"} with plain text (escaped here for the kubelet) or
    {"name", "valueFrom"} (secrets, config maps).
    """

    image: str
    command: tuple[str, ...]
    env: tuple[dict[str, Any], ...] = ()
    resources: dict[str, Any] | None = None


@dataclass(frozen=True)
class NodePlan:
    """How many nodes, how they start and where they run: settled from the spec, the same for every target."""

    name: str
    namespace: str
    runtime: str  # indexed_job | jobset | trainjob
    nodes: int
    procs_per_node: int
    launcher: str  # torchrun | mpi | none
    labels: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    deadline_seconds: int | None = None


def kubelet_text(text: str) -> str:
    """text as a container command word or env value the kubelet keeps as it is ('$$' is its escape of '$')."""
    return text.replace("$", "$$")


def object_name(pipeline: str, step: str) -> str:
    """A DNS-1123 label for the step's objects, short enough for the pod hostnames derived from it."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{pipeline}-{step}".lower()).strip("-")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"


def node_plan(pipeline: Pipeline, step: ResolvedStep, name: str | None = None) -> NodePlan:
    """The plan of a distributed step on a kubernetes backend (name: the objects' name, default from the step)."""
    backend, body = step.backend, step.body
    assert isinstance(backend, KubernetesBackend) and body.distributed is not None, step.name
    dist = body.distributed
    gpu = body.resources.gpu if body.resources is not None else None
    return NodePlan(
        name=name or object_name(pipeline.name, step.name),
        namespace=backend.namespace,
        runtime=backend.distributed_runtime,
        nodes=dist.nodes,
        procs_per_node=procs_per_node_of(dist, gpu),
        launcher=dist.launcher,
        **placement(pipeline, step, backend),
    )


def placement(pipeline: Pipeline, step: ResolvedStep, backend: KubernetesBackend) -> dict[str, Any]:
    """A step's pod labels, service account, node selector, tolerations and deadline (NodePlan's fields), for one
    pod or many."""
    return {
        "labels": {
            "app.kubernetes.io/managed-by": "pipegen",
            "pipegen.dev/pipeline": pipeline.name,
            "pipegen.dev/step": step.name.replace("_", "-"),
        },
        "service_account": backend.service_account,
        "node_selector": dict(sorted(backend.node_selector.items())),
        "tolerations": tuple(toleration(t.model_dump(exclude_none=True)) for t in backend.tolerations),
        "deadline_seconds": step.policy.timeout,
    }


def toleration(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec toleration (snake_case) as core/v1 Toleration."""
    names = {"toleration_seconds": "tolerationSeconds"}
    return {names.get(k, k): v for k, v in sorted(spec.items())}


def resource_requirements(resources: Resources | None) -> dict[str, Any] | None:
    """core/v1 ResourceRequirements for one node: cpu and memory requested and capped, GPUs as limits."""
    from pipegen.targets.resources import kubernetes_cpu

    if resources is None:
        return None
    amounts: dict[str, str] = {}
    if resources.cpu is not None:
        amounts["cpu"] = kubernetes_cpu(resources.cpu)
    if resources.memory is not None:
        amounts["memory"] = resources.memory
    limits = dict(amounts)
    if resources.gpu:
        # Kubernetes takes extended resources (GPUs) as limits; the request defaults to the limit.
        limits["nvidia.com/gpu"] = str(resources.gpu)
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = limits
    if amounts:
        out["requests"] = amounts
    return out or None


def spec_container(pipeline: Pipeline, step: ResolvedStep) -> NodeContainer:
    """The node container from the spec text as written (${...} left in place, secrets as secretKeyRef)."""
    from pipegen.expr import parse_template
    from pipegen.targets.base import kubernetes_name

    backend, body = step.backend, step.body
    assert isinstance(backend, KubernetesBackend)
    env: list[dict[str, Any]] = []
    for key, value in sorted({**backend.env, **body.env}.items()):
        ref = parse_template(value).single_ref
        if ref is not None and ref.namespace == "secret":
            env.append(
                {"name": key, "valueFrom": {"secretKeyRef": {"name": kubernetes_name(ref.name), "key": ref.name}}}
            )
        else:
            env.append({"name": key, "value": value})
    return NodeContainer(
        image=backend.image,
        command=tuple(body.command),
        env=tuple(env),
        resources=resource_requirements(body.resources),
    )


def objects(plan: NodePlan, container: NodeContainer) -> list[dict[str, Any]]:
    """The objects to create, in order: [Service, Job] for indexed_job, [JobSet], or [TrainJob]."""
    if plan.runtime == "indexed_job":
        return [headless_service(plan), indexed_job(plan, container)]
    if plan.runtime == "jobset":
        return [jobset(plan, container)]
    return [trainjob(plan, container)]


def master_addr(plan: NodePlan) -> str:
    """Pod 0's DNS name, where every node finds the rendezvous (resolved through the pod's namespace domain)."""
    if plan.runtime == "jobset":
        return f"{plan.name}-{NODE}-0-0.{plan.name}"
    return f"{plan.name}-0.{plan.name}"


def rendezvous_env(plan: NodePlan) -> list[dict[str, Any]]:
    """The variables every node reads its place from (first, so the container's own env may refer to them)."""
    return [
        {"name": "NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
        {"name": "NNODES", "value": str(plan.nodes)},
        {"name": "NPROC_PER_NODE", "value": str(plan.procs_per_node)},
        {"name": "MASTER_ADDR", "value": master_addr(plan)},
        {"name": "MASTER_PORT", "value": str(RENDEZVOUS_PORT)},
    ]


def launch_command(plan: NodePlan, command: tuple[str, ...]) -> list[str]:
    """The node's command: the step's, escaped for the kubelet, behind torchrun when that is the launcher."""
    words = [kubelet_text(word) for word in command]
    if plan.launcher != "torchrun":
        return words
    # Static rendezvous on pod 0 (torchrun's default backend when --master-addr is given); --no-python runs the
    # step's command as it is (it starts with its own interpreter). No restarts: a failed rank fails the step,
    # which the orchestrator retries whole.
    return [
        "torchrun",
        f"--nnodes={plan.nodes}",
        f"--nproc-per-node={plan.procs_per_node}",
        "--node-rank=$(NODE_RANK)",
        "--master-addr=$(MASTER_ADDR)",
        "--master-port=$(MASTER_PORT)",
        "--max-restarts=0",
        "--no-python",
        *words,
    ]


def _env(container: NodeContainer) -> list[dict[str, Any]]:
    return [
        {**entry, "value": kubelet_text(str(entry["value"]))} if "value" in entry else dict(entry)
        for entry in container.env
    ]


def _pod_spec(plan: NodePlan, container: NodeContainer, subdomain: str | None) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": NODE,
        "image": container.image,
        "command": launch_command(plan, container.command),
        "env": rendezvous_env(plan) + _env(container),
        "ports": [{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT, "protocol": "TCP"}],
    }
    if container.resources:
        node["resources"] = container.resources
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [node]}
    if subdomain is not None:
        spec["subdomain"] = subdomain
    if plan.service_account:
        spec["serviceAccountName"] = plan.service_account
    if plan.node_selector:
        spec["nodeSelector"] = dict(plan.node_selector)
    if plan.tolerations:
        spec["tolerations"] = [dict(t) for t in plan.tolerations]
    return spec


def _job_spec(plan: NodePlan, container: NodeContainer, subdomain: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": plan.nodes,
        "parallelism": plan.nodes,
        # One failed node fails the whole job at once (a lone restarted rank cannot rejoin a static rendezvous):
        # the step's retries start every node again.
        "backoffLimit": 0,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": NODE, "operator": "NotIn", "values": [0]},
                }
            ]
        },
        "template": {"metadata": {"labels": dict(plan.labels)}, "spec": _pod_spec(plan, container, subdomain)},
    }
    if plan.deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = plan.deadline_seconds
    return spec


def _metadata(plan: NodePlan) -> dict[str, Any]:
    return {"name": plan.name, "namespace": plan.namespace, "labels": dict(plan.labels)}


def headless_service(plan: NodePlan) -> dict[str, Any]:
    """The headless Service that gives the Indexed Job's pods their DNS names (`<job>-<i>.<service>`)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(plan),
        "spec": {
            "clusterIP": "None",
            # Ranks look pod 0 up while the pods start, before any is ready.
            "publishNotReadyAddresses": True,
            "selector": {"batch.kubernetes.io/job-name": plan.name},
            "ports": [
                {"name": "rendezvous", "port": RENDEZVOUS_PORT, "targetPort": RENDEZVOUS_PORT, "protocol": "TCP"}
            ],
        },
    }


def indexed_job(plan: NodePlan, container: NodeContainer) -> dict[str, Any]:
    """The Indexed Job: N pods, pod i with completion index i, in the headless Service's subdomain."""
    return {
        "apiVersion": JOB_API,
        "kind": "Job",
        "metadata": _metadata(plan),
        "spec": _job_spec(plan, container, plan.name),
    }


def jobset(plan: NodePlan, container: NodeContainer) -> dict[str, Any]:
    """The JobSet: one replicated Indexed Job of N pods; its controller makes the headless Service."""
    # The JobSet controller sets the pods' subdomain; the Job keeps the step's timeout (a JobSet has no deadline).
    job = _job_spec(plan, container, None)
    spec: dict[str, Any] = {
        "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
        # The JobSet fails as soon as its Job fails: no JobSet-level restarts (the step's retries restart it).
        "failurePolicy": {"maxRestarts": 0},
        "replicatedJobs": [{"name": NODE, "replicas": 1, "template": {"spec": job}}],
    }
    return {"apiVersion": JOBSET_API, "kind": "JobSet", "metadata": _metadata(plan), "spec": spec}


def trainjob(plan: NodePlan, container: NodeContainer) -> dict[str, Any]:
    """The TrainJob on the cluster's torch-distributed (or mpi-distributed) runtime, with the pods' placement."""
    runtime = "mpi-distributed" if plan.launcher == "mpi" else "torch-distributed"
    words = [kubelet_text(word) for word in container.command]
    # The torch runtime gives torchrun its settings as PET_* variables (NNODES, NPROC_PER_NODE, NODE_RANK,
    # MASTER_ADDR, MASTER_PORT): torchrun needs no flags of its own here.
    command = ["torchrun", "--no-python", *words] if plan.launcher == "torchrun" else words
    trainer: dict[str, Any] = {
        "image": container.image,
        "command": command,
        "numNodes": plan.nodes,
        "numProcPerNode": plan.procs_per_node,
    }
    env = _env(container)
    if env:
        trainer["env"] = env
    if container.resources:
        trainer["resourcesPerNode"] = container.resources
    pod: dict[str, Any] = {}
    if plan.service_account:
        pod["serviceAccountName"] = plan.service_account
    if plan.node_selector:
        pod["nodeSelector"] = dict(plan.node_selector)
    if plan.tolerations:
        pod["tolerations"] = [dict(t) for t in plan.tolerations]
    spec: dict[str, Any] = {
        "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": runtime},
        "trainer": trainer,
    }
    if pod:
        patch = {"name": NODE, "template": {"spec": {"template": {"spec": pod}}}}
        spec["runtimePatches"] = [
            {"manager": MANAGER, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [patch]}}}}
        ]
    if plan.deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = plan.deadline_seconds
    return {"apiVersion": TRAINJOB_API, "kind": "TrainJob", "metadata": _metadata(plan), "spec": spec}
