"""How big the WorkflowTemplate and a running Workflow of it are, against what Kubernetes and Argo store.

Kubernetes keeps every object in etcd, which refuses a write over 1.5 MiB (its default --max-request-bytes); the
API server stores a custom resource as JSON. A Workflow started from the template holds a copy of its spec
(status.storedWorkflowTemplateSpec) and one NodeStatus per DAG, per task and per attempt (a retried task is a
Retry node and a Pod node per attempt), each with the task's resolved inputs and outputs. Argo's controller
(workflow/packer) gzips status.nodes into status.compressedNodes once the Workflow's JSON passes 1 MiB
(MAX_WORKFLOW_SIZE) and fails the workflow if it is still over 1 MiB.

The estimate builds those nodes as Argo writes them (the fields of Argo's NodeStatus, with this manifest's
template names, task names and inputs, and run-time values of the sizes a run gives them: the generated name,
node ids, times, hosts, results) and measures the JSON, then packs it as Argo's packer does.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline

MAX_OBJECT_BYTES = 1536 * 1024  # etcd's default request limit: the WorkflowTemplate itself
MAX_WORKFLOW_BYTES = 1024 * 1024  # Argo's packer: a running Workflow, after compressing its nodes
_MIB = 1024 * 1024
_RESULT_BYTES = 256  # a runtime action's JSON result ({"run_id", "experiment_id"}, a verdict with its metrics)
_RUN_VALUES = {
    "run-date": "2026-01-01",
    "mlflow-run": '{"experiment_id": "123456789012345678", "run_id": "0123456789abcdef0123456789abcdef"}',
    "mlflow-experiment-id": "123456789012345678",
    "mlflow-run-id": "0123456789abcdef0123456789abcdef",
    "wait-started": "1767225600.123456",
}
# The task phases a lifecycle hook's expression tests (`tasks["x"].status == "Succeeded"`, argo/closing.py).
_HOOK_PHASES = re.compile(r'\.status == "(\w+)"')


def json_bytes(value: Any) -> int:
    """The bytes of value as the API server stores it (compact JSON, UTF-8)."""
    return len(_json(value))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Nodes:
    """status.nodes of one run in which every task ran once, its run-time values as varied as a real run's."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.workflow = template["metadata"]["name"] + "-x7k2q"  # generateName's five characters
        self.scope = "namespaced/" + template["metadata"]["name"]
        self.templates = {t["name"]: t for t in template["spec"]["templates"]}
        self.nodes: dict[str, dict[str, Any]] = {}

    def node(self, name: str, display: str, kind: str, tmpl: str, boundary: str | None) -> dict[str, Any]:
        digest = _digest(name)
        # Argo's node id: the workflow's name and a 32-bit hash of the node's name.
        node_id = self.workflow if boundary is None else f"{self.workflow}-{int(digest[:8], 16)}"
        second = len(self.nodes) * 37
        made: dict[str, Any] = {
            "id": node_id,
            "name": name,
            "displayName": display,
            "type": kind,
            "templateName": tmpl,
            "templateScope": self.scope,
            "phase": "Succeeded",
            "startedAt": f"2026-01-0{1 + second // 86400 % 9}T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:00Z",
            "finishedAt": f"2026-01-0{1 + second // 86400 % 9}T{second // 3600 % 24:02d}:{second % 60:02d}:59Z",
            "progress": "1/1",
            "resourcesDuration": {"cpu": int(digest[8:12], 16), "memory": int(digest[12:16], 16)},
        }
        if boundary is not None:
            made["boundaryID"] = boundary
        self.nodes[node_id] = made
        return made

    def task(self, dag: str, boundary: str, task: dict[str, Any]) -> list[dict[str, Any]]:
        called = self.templates[task["template"]]
        name = f"{dag}.{task['name']}"
        io: dict[str, Any] = {}
        arguments = task.get("arguments", {}).get("parameters", [])
        if arguments:
            values = [{"name": p["name"], "value": _RUN_VALUES.get(p["name"], p["value"])} for p in arguments]
            io["inputs"] = {"parameters": values}
        outputs: dict[str, Any] = {"exitCode": "0"}
        if called.get("outputs"):
            result = (_digest(name) * 8)[:_RESULT_BYTES]
            outputs["parameters"] = [{"name": "result", "value": result, "valueFrom": {"path": "/tmp/pipegen/x"}}]
        io["outputs"] = outputs
        host = {"hostNodeName": f"ip-10-{int(_digest(name)[:2], 16)}-7-21.eu-central-1.compute.internal"}
        if "retryStrategy" not in called:
            pod = self.node(name, task["name"], "Pod", task["template"], boundary) | io | host
            self.nodes[pod["id"]] = pod
            made = [pod]
        else:
            retry = self.node(name, task["name"], "Retry", task["template"], boundary) | io
            attempt = self.node(f"{name}(0)", f"{task['name']}(0)", "Pod", task["template"], boundary) | io | host
            attempt["nodeFlag"] = {"retried": True}
            retry["children"] = [attempt["id"]]
            self.nodes[retry["id"]], self.nodes[attempt["id"]] = retry, attempt
            made = [retry, attempt]
        self.hooks(name, boundary, task, made[0])
        return made

    def hooks(self, name: str, boundary: str, task: dict[str, Any], parent: dict[str, Any]) -> None:
        """The nodes of the task's lifecycle hooks that run when it succeeds: children of its node (the Retry node of
        a retried task), named <task node>.hooks.<hook>."""
        for hook_name, hook in sorted(task.get("hooks", {}).items()):
            if "Succeeded" not in _HOOK_PHASES.findall(hook.get("expression", "")):
                continue
            called = self.templates[hook["template"]]
            arguments = hook.get("arguments", {}).get("parameters", [])
            hooked = f"{name}.hooks.{hook_name}"
            node = self.node(hooked, f"{task['name']}.hooks.{hook_name}", "Pod", hook["template"], boundary)
            values = [{"name": p["name"], "value": _RUN_VALUES.get(p["name"], p["value"])} for p in arguments]
            if values:
                node["inputs"] = {"parameters": values}
            outputs: dict[str, Any] = {"exitCode": "0"}
            if called.get("outputs"):
                outputs["parameters"] = [{"name": "result", "value": (_digest(hooked) * 8)[:_RESULT_BYTES]}]
            node |= {"outputs": outputs, "nodeFlag": {"hooked": True}}
            node["hostNodeName"] = f"ip-10-{int(_digest(hooked)[:2], 16)}-7-21.eu-central-1.compute.internal"
            parent.setdefault("children", []).append(node["id"])

    def dag(self, name: str, tmpl: str, boundary: str | None) -> None:
        root = self.node(name, name, "DAG", tmpl, boundary)
        made: dict[str, list[dict[str, Any]]] = {}
        upstream: set[str] = set()
        for task in self.templates[tmpl]["dag"]["tasks"]:
            nodes = self.task(name, root["id"], task)
            made[task["name"]] = nodes
            for term in task.get("depends", "").split("&&"):
                if term.strip():
                    upstream.add(term.strip().split(".")[0])
                    made[term.strip().split(".")[0]][-1].setdefault("children", []).append(nodes[0]["id"])
            if not task.get("depends"):
                root.setdefault("children", []).append(nodes[0]["id"])
        # The DAG's leaves (a hook's node is a child of its task's node, not a dependent).
        root["outboundNodes"] = [nodes[-1]["id"] for task, nodes in made.items() if task not in upstream]
        self.nodes[root["id"]] = root


def status_nodes(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """status.nodes of a Workflow run of the WorkflowTemplate in which every task ran once."""
    nodes = _Nodes(template)
    spec = template["spec"]
    nodes.dag(nodes.workflow, spec["entrypoint"], None)
    if "onExit" in spec:
        nodes.dag(f"{nodes.workflow}.onExit", spec["onExit"], nodes.workflow)
    return nodes.nodes


def estimated_workflow(template: dict[str, Any]) -> dict[str, Any]:
    """The Workflow object of a finished run of the template (every task ran once), as Argo's API holds it."""
    nodes = status_nodes(template)
    pods = [i for i, n in nodes.items() if n["type"] == "Pod"]
    return {
        "apiVersion": template["apiVersion"],
        "kind": "Workflow",
        "metadata": {**template["metadata"], "name": next(iter(nodes))},  # the root node's id: the run's name
        "spec": {"workflowTemplateRef": {"name": template["metadata"]["name"]}},
        "status": {
            "phase": "Succeeded",
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-09T23:59:59Z",
            "progress": f"{len(pods)}/{len(pods)}",
            "nodes": nodes,
            "storedWorkflowTemplateSpec": template["spec"],
            "taskResultsCompletionStatus": dict.fromkeys(pods, True),
            "resourcesDuration": {"cpu": 86400, "memory": 86400},
        },
    }


def workflow_sizes(template: dict[str, Any]) -> dict[str, int]:
    """Bytes of a run's status.nodes, of its whole Workflow object, and of that object as Argo stores it."""
    workflow = estimated_workflow(template)
    nodes_json = _json(workflow["status"]["nodes"])
    whole = json_bytes(workflow)
    stored = whole
    if whole > MAX_WORKFLOW_BYTES:
        # packer.compressWorkflow: status.nodes out, status.compressedNodes (base64 of gzip level 6) in.
        packed = base64.b64encode(gzip.compress(nodes_json, compresslevel=6, mtime=0))
        stored = whole - len(nodes_json) - len('"nodes":,') + len(packed) + len('"compressedNodes":"",')
    return {"nodes": len(nodes_json), "workflow": whole, "stored": stored}


def size_problems(pipeline: Pipeline, template: dict[str, Any]) -> Iterator[Diagnostic]:
    """A located error when Kubernetes would refuse the WorkflowTemplate or Argo fail a Workflow run of it."""
    where = pipeline.source_map.key(("steps",))
    steps = len(pipeline.steps)
    size = json_bytes(template)
    if size > MAX_OBJECT_BYTES:
        yield diag(
            "PG610",
            f"target 'argo' would write a WorkflowTemplate of {size / _MIB:.2f} MiB for {steps} steps, over the "
            "1.5 MiB Kubernetes stores in one object",
            where,
            "split the pipeline into several specs, or shorten what every step repeats (commands, env)",
        )
        return
    sizes = workflow_sizes(template)
    if sizes["stored"] > MAX_WORKFLOW_BYTES:
        yield diag(
            "PG610",
            f"target 'argo': a Workflow of these {steps} steps would grow to about {sizes['stored'] / _MIB:.2f} MiB as "
            f"it runs (its copy of the template, and {sizes['nodes'] / _MIB:.2f} MiB of node status that Argo "
            "compresses), over the 1 MiB Argo lets a Workflow take (MAX_WORKFLOW_SIZE)",
            where,
            "split the pipeline into several specs, or raise the controller's MAX_WORKFLOW_SIZE and offload node "
            "status to its database",
        )
