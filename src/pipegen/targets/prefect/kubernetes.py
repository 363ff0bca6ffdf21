"""kubernetes steps on Prefect: a task that runs the step as a Kubernetes Job.

The task builds the step's objects where it runs (pipegen.runtime.kubernetes_job: spec text rendered with the run's
values, names per attempt) and runs them in pipegen.runtime.kubernetes_wait's loop: a multi-node step's headless
Service first, then the Job, polled every few seconds with its pods (each pod's log printed into the task run's once
the pod ended); the Job, its pods and the Service are deleted however the attempt ends (a retry creates its own).
prefect-kubernetes gives the API clients (KubernetesCredentials: a block, the worker's kubeconfig or the pod's service
account). Its own `KubernetesJobRun.wait_for_completion` is not used: it polls with no pause until the Job's pods
exist, and its timeout counts only the time the Job had active pods; pipegen's loop counts wall time from creation.

The step's timeout ends the Job itself too (activeDeadlineSeconds), beside the task's timeout_seconds; a pod still
Pending (unscheduled, pulling its image) startup_timeout after it appeared fails the attempt, naming the pod and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.durations import parse_duration
from pipegen.expr import parse_template
from pipegen.k8s.distributed import NodePlan, node_plan, object_name, placement, resource_requirements
from pipegen.k8s.pods import secret_env
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend

KIND = "kubernetes_job"
# The distributed_runtime values Prefect runs (jobset and trainjob would need a wait on their own status).
RUNTIMES = ("indexed_job",)


def is_kubernetes(step: ResolvedStep) -> bool:
    """A task or train step on a kubernetes backend."""
    return isinstance(step.backend, KubernetesBackend)


def job_request(pipeline: Pipeline, step: ResolvedStep) -> dict[str, Any]:
    """What the task builds its objects from: the pod settings (a NodePlan) and the step's spec text as written."""
    backend, body = step.backend, step.body
    assert isinstance(backend, KubernetesBackend)
    distributed = body.distributed is not None
    plan = node_plan(pipeline, step) if distributed else _single_plan(pipeline, step, backend)
    env: dict[str, dict[str, Any]] = {}
    for key, value in {**backend.env, **body.env}.items():
        ref = parse_template(value).single_ref
        # A whole ${secret.X} is the Kubernetes secret's key, never its value (checks refuse a part of one).
        env[key] = (
            secret_env(key, ref.name)
            if ref is not None and ref.namespace == "secret"
            else {"name": key, "value": value}
        )
    request: dict[str, Any] = {
        "distributed": distributed,
        "plan": {**asdict(plan), "tolerations": list(plan.tolerations)},
        "image": backend.image,
        "command": list(body.command),
        "env": [env[k] for k in sorted(env)],
    }
    resources = resource_requirements(body.resources)
    if resources is not None:
        request["resources"] = resources
    if backend.startup_timeout is not None:
        request["startup_timeout"] = parse_duration(backend.startup_timeout)
    if step.kind == "train":
        # Rendered in the task, as its other runtime tasks do: the task ends the run the Job left RUNNING.
        request["tracking_uri"] = pipeline.spec.mlflow.tracking_uri or ""
        uri = pipeline.tracking_uri
        ref = uri.single_ref if uri is not None else None
        if ref is not None and ref.namespace == "secret":
            # The pods read the URI from the Kubernetes secret (the step's own MLFLOW_TRACKING_URI wins).
            request["tracking_uri_secret"] = True
            if "MLFLOW_TRACKING_URI" not in env:
                request["env"] = sorted([*request["env"], secret_env("MLFLOW_TRACKING_URI", ref.name)], key=_name)
    return request


def _name(entry: dict[str, Any]) -> str:
    return str(entry["name"])


def _single_plan(pipeline: Pipeline, step: ResolvedStep, backend: KubernetesBackend) -> NodePlan:
    """The pod settings of a one-pod step, as a multi-node step's plan holds them."""
    return NodePlan(
        name=object_name(pipeline.name, step.name),
        namespace=backend.namespace,
        runtime=backend.distributed_runtime,
        nodes=1,
        procs_per_node=1,
        launcher="none",
        **placement(pipeline, step, backend),
    )


def task_body(mlflow: bool, credentials: str | None) -> list[str]:
    """The kubernetes task's body: build the objects, then run them in pipegen.runtime.kubernetes_wait's loop."""
    load = f"KubernetesCredentials.load({py(credentials)})" if credentials else "KubernetesCredentials()"
    return [
        "import asyncio",
        "",
        "from prefect.context import TaskRunContext",
        "from prefect_kubernetes.credentials import KubernetesCredentials",
        "",
        "from pipegen.runtime.kubernetes_job import step_objects",
        "from pipegen.runtime.kubernetes_wait import run_job",
        "from pipegen.runtime.step import decode" + (", ending_run" if mlflow else ""),
        *(["from pipegen.runtime.templating import Values"] if mlflow else []),
        "",
        "task_run = TaskRunContext.get().task_run",
        "spec = decode(request)",
        "# Named after this attempt: a retry creates its own objects.",
        "objects = step_objects(",
        "    spec,",
        "    params=params,",
        "    run_id=run_key,",
        "    run_date=run_date,",
        "    key=str(task_run.id),",
        "    attempt=task_run.run_count,",
        *(["    mlflow_run=mlflow_run,"] if mlflow else []),
        ")",
        "job = objects[-1]['metadata']",
        "print(f\"step {step}: Job {job['namespace']}/{job['name']}\")",
        "# In the cluster: the pod's service account; elsewhere: the worker's kubeconfig, or the block named.",
        f"credentials = {load}",
        "# Creates the Service(s) and the Job, prints each pod's log, fails on the Job's failure, the step's timeout",
        "# (wall time) or a pod not started within startup_timeout, and deletes what it created in every case.",
        *(_closing_job() if mlflow else _job()),
        "return {'passed': True, 'job': name}",
    ]


def _job() -> list[str]:
    return [
        "name = asyncio.run(",
        "    run_job(",
        "        credentials,",
        "        objects,",
        "        timeout=spec['plan']['deadline_seconds'],",
        "        startup_timeout=spec.get('startup_timeout'),",
        "        echo=print,",
        "    )",
        ")",
    ]


def _closing_job() -> list[str]:
    """The Job inside ending_run: the run it left RUNNING ends FAILED or FINISHED as the runtime's steps end theirs."""
    return [
        "# A Job that dies (OOM, lost node, timeout) leaves its MLflow run RUNNING: it ends FAILED when the attempt",
        "# fails, FINISHED when it succeeds, unless the job ended it; a retry's Job resumes the run and it ends again.",
        "values = Values(params, run_key, run_date)",
        "with ending_run(mlflow_run, lambda: values.string(spec['tracking_uri']) or None):",
        *[f"    {line}" for line in _job()],
    ]


def checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """What a Prefect kubernetes task cannot send: a runtime other than indexed_job, a secret as a plain value."""
    refused: set[str] = set()
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, KubernetesBackend) or step.kind not in ("task", "train"):
            continue
        name = step.backend_name or ""
        if step.body.distributed is not None and backend.distributed_runtime not in RUNTIMES and name not in refused:
            refused.add(name)
            yield diag(
                "PG602",
                f"target 'prefect' does not run distributed_runtime '{backend.distributed_runtime}' (step "
                f"'{step.name}', backend '{name}')",
                pipeline.source_map.value(("backends", name, "distributed_runtime")),
                "use distributed_runtime: indexed_job (an Indexed Job and its headless Service)",
            )
        for i, word in enumerate(step.body.command):
            if any(r.namespace == "secret" for r in parse_template(word).refs):
                yield diag(
                    "PG602",
                    f"target 'prefect' cannot put a secret in the command of kubernetes step '{step.name}': the Job "
                    "would hold its value in plain",
                    pipeline.locate(step, step.kind, "command", i),
                    "pass it as an environment variable whose whole value is ${secret.NAME} (a Kubernetes secret's "
                    "key) and let the program read that variable",
                )
        for key, value in {**backend.env, **step.body.env}.items():
            template = parse_template(value)
            whole = template.single_ref is not None and template.single_ref.namespace == "secret"
            if not whole and any(r.namespace == "secret" for r in template.refs):
                where = (
                    pipeline.locate(step, step.kind, "env", key)
                    if key in step.body.env
                    else pipeline.source_map.value(("backends", name, "env", key))
                )
                yield diag(
                    "PG602",
                    f"target 'prefect' can set a secret in env {key} of kubernetes step '{step.name}' only as the "
                    "whole value (a Kubernetes secret's key): the Job would hold it in plain",
                    where,
                    "make the whole value ${secret.NAME}, or let the program build the text from that variable",
                )
