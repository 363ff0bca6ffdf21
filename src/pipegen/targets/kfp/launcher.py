"""Steps KFP runs through the runtime's Kubernetes launcher (KFP v2 has no ResourceOp): a SparkApplication
(`spark.platform: kubernetes`), a KubeRay RayJob (`ray.cluster`), and a multi-node step on a kubernetes backend (an
Indexed Job behind its headless Service, a JobSet or a TrainJob, by `distributed_runtime`).

The objects are pipegen.k8s's, built here at compile time. What only the run knows travels as slots beside them
(runtime.k8s_launch.filled): each string holding spec references is a `text` slot (rendered in the task with the
run's parameters, id and date), a RayJob entrypoint with references a `shell` slot, a training step's MLflow run ids
`mlflow` slots, and the objects' name a `name` slot (`<pipeline-step>-<digest of the run>-<attempt>`, chosen by the
launcher). Every other string is literal text: the runtime never renders it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from pipegen.expr import Lit, parse_template
from pipegen.k8s.distributed import NodeContainer, kubelet_text, node_plan, objects, resource_requirements
from pipegen.k8s.pods import StepObject, secret_env
from pipegen.k8s.ray import ray_job
from pipegen.k8s.spark import spark_application
from pipegen.render import comment_text
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.k8s_launch import PLURALS, VERBS
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.kfp.containers import tracking_source
from pipegen.targets.kfp.options import KfpOptions

KIND = "kubernetes_resource"


def launches(step: ResolvedStep) -> bool:
    """Whether the step runs as Kubernetes objects the launcher creates."""
    backend = step.backend
    body = step.body if step.kind in ("task", "train") else None
    if isinstance(backend, SparkBackend):
        return backend.platform == "kubernetes"
    if isinstance(backend, RayBackend):
        return backend.cluster is not None
    return isinstance(backend, KubernetesBackend) and body is not None and body.distributed is not None


def _literal(value: str) -> str:
    return "".join(p.text for p in parse_template(value).parts if isinstance(p, Lit))


class SlotValues:
    """PodValues for the launcher: literal text as the object holds it, text with references as a token that
    becomes a slot (the tokens hold the spec's digest, so no spec text can spell one)."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self.slots: dict[str, dict[str, Any]] = {}
        self.name = self._token({"name": []})

    def _token(self, slot: dict[str, Any]) -> str:
        token = f"\x00pipegen-{self.salt}-{len(self.slots)}\x00"
        self.slots[token] = slot
        return token

    def text(self, value: str) -> str:
        """Text nothing but the operator reads (Spark conf, files, images)."""
        if parse_template(value).is_literal:
            return _literal(value)
        return self._token({"text": value, "kubelet": False})

    def pod_text(self, value: str) -> str:
        """A container's argument or env value: '$' doubled, which the kubelet reads as one."""
        if parse_template(value).is_literal:
            return kubelet_text(_literal(value))
        return self._token({"text": value, "kubelet": True})

    def node_text(self, value: str) -> str:
        """A node container's word or env value: pipegen.k8s.distributed doubles the '$' of literal text itself."""
        if parse_template(value).is_literal:
            return _literal(value)
        return self._token({"text": value, "kubelet": True})

    def shell_line(self, words: Sequence[str]) -> str:
        """Words as one POSIX shell line in a container's argument (KubeRay's submitter runs it with bash)."""
        if all(parse_template(w).is_literal for w in words):
            return kubelet_text(shlex.join(_literal(w) for w in words))
        return self._token({"shell": list(words)})

    def mlflow(self, key: str) -> str:
        """The training run's id or experiment id, known when the task runs."""
        return self._token({"mlflow": key})

    def extract(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The slots of documents (paths from the list of objects), each token's string left empty in them."""
        out: list[dict[str, Any]] = []

        def walk(value: Any, path: list[str | int]) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, [*path, k]) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, [*path, i]) for i, v in enumerate(value)]
            if isinstance(value, str) and "\x00pipegen-" + self.salt in value:
                if self.name in value:
                    out.append({"at": path, "name": value.split(self.name)})
                    return ""
                assert value in self.slots, value  # any other token is a whole string
                out.append({"at": path, **self.slots[value]})
                return ""
            return value

        for i, document in enumerate(documents):
            documents[i] = walk(document, [i])
        return out


def run_env(pipeline: Pipeline, options: KfpOptions, values: SlotValues, pod: bool = True) -> list[dict[str, Any]]:
    """A training step's MLflow env in the objects' pods: the run's ids, the tracking URI as the pods can have it
    (its secret, targets.kfp.mlflow_secret / mlflow_config_map, or its text), and those sources' other keys."""
    env: list[dict[str, Any]] = [
        {"name": "MLFLOW_EXPERIMENT_ID", "value": values.mlflow("experiment_id")},
        {"name": "MLFLOW_RUN_ID", "value": values.mlflow("run_id")},
    ]
    uri = pipeline.tracking_uri
    ref = uri.single_ref if uri is not None else None
    found = tracking_source(pipeline, options)
    if ref is not None and ref.namespace == "secret":
        env.append(secret_env("MLFLOW_TRACKING_URI", ref.name))
    elif found is not None:
        kind, name, key = found
        source = "secretKeyRef" if kind == "secret" else "configMapKeyRef"
        env.append({"name": "MLFLOW_TRACKING_URI", "valueFrom": {source: {"name": name, "key": key}}})
    elif uri is not None and not any(r.namespace == "env" for r in uri.refs):
        text = str(pipeline.spec.mlflow.tracking_uri)
        env.append({"name": "MLFLOW_TRACKING_URI", "value": values.pod_text(text) if pod else values.node_text(text)})
    taken = {e["name"] for e in env}
    for mounted, ref_kind in ((options.mlflow_secret, "secretKeyRef"), (options.mlflow_config_map, "configMapKeyRef")):
        if mounted is not None:
            env += [
                {"name": k, "valueFrom": {ref_kind: {"name": mounted.name, "key": k}}}
                for k in sorted(mounted.keys)
                if k not in taken
            ]
    return env


def _node_container(pipeline: Pipeline, options: KfpOptions, step: ResolvedStep, values: SlotValues) -> NodeContainer:
    backend, body = step.backend, step.body
    assert isinstance(backend, KubernetesBackend)
    env: dict[str, dict[str, Any]] = {}
    for key, value in sorted({**backend.env, **body.env}.items()):
        ref = parse_template(value).single_ref
        if ref is not None and ref.namespace == "secret":
            env[key] = secret_env(key, ref.name)
        else:
            env[key] = {"name": key, "value": values.node_text(value)}
    if step.kind == "train":
        env |= {str(e["name"]): e for e in run_env(pipeline, options, values, pod=False)}
    return NodeContainer(
        image=backend.image,
        command=tuple(values.node_text(word) for word in body.command),
        env=tuple(env[k] for k in sorted(env)),
        resources=resource_requirements(body.resources),
    )


def launch_request(pipeline: Pipeline, options: KfpOptions, step: ResolvedStep) -> dict[str, Any]:
    """The runtime's kubernetes_resource request: the objects in creation order, their slots, the step's base name
    and timeout (the launcher deletes the objects when it passes)."""
    values = SlotValues(pipeline.spec_sha256[:16])
    backend = step.backend
    trains = step.kind == "train"
    documents: list[dict[str, Any]]
    if isinstance(backend, KubernetesBackend):
        plan = node_plan(pipeline, step, name=values.name)
        documents = objects(plan, _node_container(pipeline, options, step, values))
    else:
        made = StepObject(
            pipeline=pipeline.name,
            step=step.name,
            values=values,
            run_env=run_env(pipeline, options, values) if trains else (),
        )
        built = spark_application(step, made) if isinstance(backend, SparkBackend) else ray_job(step, made)
        meta = built["metadata"]
        # The launcher names it per run and attempt (a retry finds it), not the API server (generateName).
        del meta["generateName"]
        meta["name"] = values.name
        documents = [built]
    slots = values.extract(documents)
    request: dict[str, Any] = {"objects": documents, "slots": slots, "base": f"{pipeline.name}-{step.name}"}
    if step.policy.timeout is not None:
        request["timeout_seconds"] = step.policy.timeout
    return request


def role_rules(pipeline: Pipeline, options: KfpOptions) -> list[tuple[str, str, str]]:
    """(namespace, API group, resource) the launcher's pods create, read and delete, sorted."""
    out: set[tuple[str, str, str]] = set()
    for step in pipeline.steps:
        if not launches(step):
            continue
        for document in launch_request(pipeline, options, step)["objects"]:
            group = str(document["apiVersion"]).rpartition("/")[0]
            out.add((document["metadata"]["namespace"], group, PLURALS[(group, document["kind"])]))
    return sorted(out)


def rbac_lines(pipeline: Pipeline, options: KfpOptions) -> list[str]:
    """Header comment lines: the Role the pipeline's service account needs for its launcher steps."""
    rules = role_rules(pipeline, options)
    if not rules:
        return []
    lines = [
        "# Launcher steps create Kubernetes objects from their task's pod (pipegen.runtime.k8s_launch; the image needs",
        "# pipegen-ml[runtime,k8s]). The run's service account needs a Role (and RoleBinding) in each namespace:",
    ]
    for namespace in sorted({n for n, _, _ in rules}):
        listed = "; ".join(f"apiGroups ['{g}'] resources [{r}]" for n, g, r in rules if n == namespace)
        lines.append(comment_text(f"#   namespace {namespace}: verbs [{', '.join(VERBS)}] on {listed}"))
    return lines
