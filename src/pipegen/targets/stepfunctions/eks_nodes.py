"""A multi-node step on EKS (`distributed_runtime: indexed_job`): an Indexed Job between its headless Service's
creation and deletion, all from the state machine.

States of step S (after S's prepare Lambda when it has one):
- `S.service_name` (Pass): the run's Service name, `<object name>-<MD5 of the execution id>` (the same for every
  retry of the Job in this execution, another for every other execution), and its API path;
- `S.service` (eks:call POST): the headless Service (pipegen.k8s.distributed) selecting this run's pods by the
  label `pipegen.dev/service`: eks:runJob creates the Job only, never a Service;
- `S.job` (eks:runJob.sync): the Indexed Job (completions = parallelism = N, backoffLimit 0, the pod failure
  policy), its pods in the Service's subdomain. Its name is generated (a retry creates a new Job; the failed one
  stays for its logs), and each pod reads it from its own `batch.kubernetes.io/job-name` label, and the Service's
  name from its `pipegen.dev/service` label (downward API), so MASTER_ADDR is
  `$(PIPEGEN_JOB_NAME)-0.$(PIPEGEN_SERVICE)`: pod 0 of this very Job, with no run-time text in the env list;
- `S.cleanup` (eks:call DELETE) on success; `S.cleanup_failed` (the same call) when the Job failed, which then
  fails the run as the Job's own error would have (in a Parallel branch: `S.failed`, `pipegen.StepFailed` with the
  Job's "<Error>: <Cause>", as a train step's). A Service that cannot be deleted does not fail a run whose
  training succeeded, the last step's included.
A train step goes on from `S.cleanup` to `S.close`, and from `S.cleanup_failed` (and a failed `S.service`) to
`S.closing`, which end its MLflow run (closing.py).

The Job's env list is one value: the rendezvous variables first (the prepare Lambda puts them before the step's
rendered env, `node_env` in its request), then the step's. The step's text reaches the pods with every `$`
doubled (the kubelet reads `$$` as `$`); only the `$(...)` written here expand.
"""

from __future__ import annotations

from typing import Any

from pipegen.k8s.distributed import (
    COMPLETION_INDEX,
    NodeContainer,
    NodePlan,
    headless_service,
    indexed_job,
    kubelet_text,
    node_plan,
    rendezvous_env,
    resource_requirements,
)
from pipegen.resolve import ResolvedStep
from pipegen.spec import KubernetesBackend
from pipegen.targets.asl import Slot
from pipegen.targets.asl.jsonata import Jsonata
from pipegen.targets.asl.jsonpath import JsonPath
from pipegen.targets.stepfunctions.closing import STEP_FAILED
from pipegen.targets.stepfunctions.jobs import JobStates, literal
from pipegen.targets.stepfunctions.options import DONE

EKS_CALL = "arn:aws:states:::eks:call"
EKS_RUN_JOB = "arn:aws:states:::eks:runJob.sync"
SERVICE_LABEL = "pipegen.dev/service"
JOB_NAME_LABEL = "metadata.labels['batch.kubernetes.io/job-name']"
JOB_NAME_VAR = "PIPEGEN_JOB_NAME"
SERVICE_VAR = "PIPEGEN_SERVICE"
# A Service name is a DNS label (63 characters): the prefix keeps room for '-' and the 32 hex digits of MD5.
SERVICE_PREFIX = 30
# eks:call is one API request: a few quick retries for the cluster's transient answers.
CALL_RETRY = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}


def node_env() -> list[dict[str, Any]]:
    """The rendezvous variables of every pod (pipegen.k8s.distributed's, MASTER_ADDR from the pod's labels)."""
    return [
        {"name": "NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
        {"name": JOB_NAME_VAR, "valueFrom": {"fieldRef": {"fieldPath": JOB_NAME_LABEL}}},
        {"name": SERVICE_VAR, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{SERVICE_LABEL}']"}}},
    ]


def rendezvous(plan_env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """node_env() then the plan's fixed variables, MASTER_ADDR read from the variables before it."""
    fixed = [e for e in plan_env if e["name"] != "NODE_RANK"]
    return node_env() + [
        {"name": "MASTER_ADDR", "value": f"$({JOB_NAME_VAR})-0.$({SERVICE_VAR})"} if e["name"] == "MASTER_ADDR" else e
        for e in fixed
    ]


def service_prefix(name: str) -> str:
    """The first part of the run's Service name: the step's object name, cut to leave room for the digest."""
    return name[:SERVICE_PREFIX].rstrip("-")


class EksNodeStates(JobStates):
    """The EKS part of the multi-node lowering (mixed into the lowering, beside JobStates)."""

    def _eks_nodes(self, step: ResolvedStep, dynamic: bool, request: dict[str, Any], after: dict[str, Any]) -> None:
        backend = step.backend
        assert isinstance(backend, KubernetesBackend) and self.o.eks_cluster is not None
        name = step.name
        plan = node_plan(self.p, step)
        env = rendezvous(rendezvous_env(plan))
        first = f"{name}.service_name" if dynamic else name
        if dynamic:
            request["node_env"] = env
            self.states[name] = self._prepare(step, request) | {"Next": first}
        names = self._own("nodes", name)
        self.states[first] = self._service_name(names, service_prefix(plan.name), backend.namespace, f"{name}.service")
        cluster = {
            "ClusterName": self.o.eks_cluster.name,
            "CertificateAuthority": self.o.eks_cluster.certificate_authority,
            "Endpoint": self.o.eks_cluster.endpoint,
        }
        service = headless_service(plan)
        service["metadata"] = {
            "name": names.field("name"),
            "namespace": plan.namespace,
            "labels": {**plan.labels, SERVICE_LABEL: names.field("name")},
        }
        service["spec"]["selector"] = {SERVICE_LABEL: names.field("name")}
        top = not self.scope[name]
        # A train step's run, started by prepare, is ended FAILED whatever state of the step fails (closing.py).
        train = step.kind == "train"
        catch = [self._closing_catch(step)] if train else [self.d.catch(self.fail_entry)] if top else []
        self.states[f"{name}.service"] = (
            self._call(
                f"Step '{name}': the headless Service that names its pods (eks:runJob makes none).",
                cluster | {"Method": "POST", "Path": f"/api/v1/namespaces/{plan.namespace}/services"},
                {"RequestBody": service},
            )
            | ({"Catch": catch} if catch else {})
            | {"Next": f"{name}.job"}
        )
        job = self._node_job(step, plan, dynamic, request, env, names)
        policy = self._policy(step, lambda_task=False)
        # A failed Job deletes its Service first, then fails as it would have (recorded at the top level).
        cleanup_failed = f"{name}.cleanup_failed"
        # The Job's error is kept as a train step's is: recorded at the top level, in a branch for its Fail state.
        policy["Catch"] = [self._closing_catch(step, cleanup_failed)]
        self.states[f"{name}.job"] = (
            {"Type": "Task", "Comment": f"Step '{name}' on backend '{step.backend_name}': {plan.nodes} nodes."}
            | {"Resource": EKS_RUN_JOB}
            | self.d.task_io(
                cluster | {"Namespace": plan.namespace, "LogOptions": {"RetrieveLogs": False}, "Job": job}, {}, None
            )
            | policy
            | {"Next": f"{name}.cleanup"}
        )
        delete = cluster | {"Method": "DELETE", "Path": names.field("path")}
        done = {"Next": f"{name}.close"} if train else after
        # The last step's cleanup ends the run (End): its failure goes to the Succeed state instead.
        self.states[f"{name}.cleanup"] = (
            self._call(f"Step '{name}': delete its headless Service.", delete, {})
            | {"Catch": [self._ignore(done.get("Next", DONE))]}
            | done
        )
        failed: dict[str, Any] = self._call(f"Step '{name}' failed: delete its headless Service.", delete, {})
        if train:
            self.states[f"{name}.cleanup_failed"] = failed | {
                "Catch": [self._ignore(f"{name}.closing")],
                "Next": f"{name}.closing",
            }
            self._close_states(step, after)
        elif top:
            self.states[f"{name}.cleanup_failed"] = failed | {
                "Catch": [self._ignore(self.fail_entry)],
                "Next": self.fail_entry,
            }
        else:
            self.states[f"{name}.cleanup_failed"] = failed | {
                "Catch": [self._ignore(f"{name}.failed")],
                "Next": f"{name}.failed",
            }
            self.states[f"{name}.failed"] = self.d.fail_from(STEP_FAILED, self._failure(step))

    def _call(self, comment: str, request: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """An eks:call Task (one Kubernetes API request) that keeps nothing of the answer."""
        return (
            {"Type": "Task", "Comment": comment, "Resource": EKS_CALL}
            | self.d.task_io(request | body, {}, None)
            | {"Retry": [CALL_RETRY]}
        )

    def _service_name(self, slot: Slot, prefix: str, namespace: str, next_state: str) -> dict[str, Any]:
        """A Pass state storing {name, path} of the run's Service: the prefix and the MD5 of the execution's id."""
        # The one value here no Dialect method writes: a digest, which each query language spells its own way.
        comment = "The run's headless Service: its name and API path (the same for each retry in this execution)."
        path = f"/api/v1/namespaces/{namespace}/services/{prefix}-"
        if isinstance(self.d, JsonPath):
            digest = "States.Hash($$.Execution.Id, 'MD5')"
            value = {
                "name.$": f"States.Format('{prefix}-{{}}', {digest})",
                "path.$": f"States.Format('{path}{{}}', {digest})",
            }
            return {
                "Type": "Pass",
                "Comment": comment,
                "Parameters": value,
                "ResultPath": self.d.path(slot),
                "Next": next_state,
            }
        assert isinstance(self.d, Jsonata)
        digest = "$hash($states.context.Execution.Id, 'MD5')"
        stored = {"name": "{% '" + prefix + "-' & " + digest + " %}", "path": "{% '" + path + "' & " + digest + " %}"}
        return {"Type": "Pass", "Comment": comment, "Assign": {self.d.stored(slot): stored}, "Next": next_state}

    def _node_job(
        self,
        step: ResolvedStep,
        plan: NodePlan,
        dynamic: bool,
        request: dict[str, Any],
        env: list[dict[str, Any]],
        names: Slot,
    ) -> dict[str, Any]:
        """The Indexed Job of pipegen.k8s.distributed with a generated name, in the run's Service subdomain."""
        backend = step.backend
        assert isinstance(backend, KubernetesBackend)
        container = NodeContainer(
            image=literal(backend.image), command=(), resources=resource_requirements(step.body.resources)
        )
        job = indexed_job(plan, container)
        job["metadata"] = {"generateName": f"{plan.name}-", "labels": dict(plan.labels)}
        template = job["spec"]["template"]
        template["metadata"]["labels"][SERVICE_LABEL] = names.field("name")
        template["spec"]["subdomain"] = names.field("name")
        node = template["spec"]["containers"][0]
        prefix = node.pop("command")
        rendered = self._own("prepared", step.name, "job")
        words: Any = rendered.field("command") if dynamic else [kubelet_text(w) for w in literal(request["command"])]
        if prefix:
            node["command"], node["args"] = prefix, words
        else:
            node["command"] = words
        if dynamic:
            node["env"] = rendered.field("env")
        else:
            # Literal text only: a ${secret.X} (and so a secretKeyRef) makes the step dynamic.
            node["env"] = env + [{"name": k, "value": kubelet_text(literal(v))} for k, v in request["env"].items()]
        # The keys in the order Kubernetes documents them (name, image, command, args, env, ...).
        order = ["name", "image", "command", "args", "env", "ports", "resources"]
        template["spec"]["containers"][0] = {k: node[k] for k in order if k in node}
        return job
