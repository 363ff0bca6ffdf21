"""A multi-node step (`distributed:`) on a kubernetes backend: an Indexed Job between its headless Service's setup
and teardown.

Three tasks per step (after the train step's start_run):
- `<step>_service`: KubernetesCreateResourceOperator with the headless Service (pipegen.k8s.distributed) that gives
  pod i its DNS name `<job>-<i>.<service>`: KubernetesJobOperator creates the Job only, never a Service;
- `<step>`: KubernetesJobOperator(completion_mode="Indexed", completions=parallelism=N, backoff_limit=0,
  wait_until_job_complete=True) whose pods sit in the Service's subdomain;
- `<step>_cleanup`: KubernetesDeleteResourceOperator of the Service, an Airflow teardown of the setup task: it runs
  whatever the Job's outcome, is cleared with the Job, and does not decide the run's state.

The Service is named once per DAG run (a digest of run_id, through the `macros.uuid` module Airflow gives every
template), so concurrent runs do not share one; the Job keeps the operator's random suffix (a retry creates a new
Job: the failed one stays for its logs), and each pod reads the Job's name from its own label
(`batch.kubernetes.io/job-name`, through the downward API) to find pod 0: MASTER_ADDR = `$(PIPEGEN_JOB_NAME)-0.<svc>`.

The kubelet expands `$(VAR)` in commands and env values: every `$` of the step's text (literal, or rendered from a
reference) is doubled, so only the references written here expand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.durations import parse_duration
from pipegen.expr import Lit, parse_template
from pipegen.k8s.distributed import (
    COMPLETION_INDEX,
    RENDEZVOUS_PORT,
    NodePlan,
    headless_service,
    launch_command,
    node_plan,
    rendezvous_env,
)
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend
from pipegen.targets.airflow.view import Task, var_name
from pipegen.targets.airflow_expr import _JINJA_OPENERS, jinja_string_literal, ref_expression
from pipegen.targets.base import kubernetes_name

if TYPE_CHECKING:
    from pipegen.targets.airflow.backends import BackendLowering

# The runtime this module maps; jobset and trainjob are custom resources (resources.py).
RUNTIMES = ("indexed_job",)
# KubernetesPodOperator's container name (base_container_name), which the pod failure policy names.
BASE_CONTAINER = "base"
# The label the Job controller puts on each of its pods: the Job's name, suffix included.
JOB_NAME_LABEL = "metadata.labels['batch.kubernetes.io/job-name']"
SERVICE_LABEL = "pipegen.dev/service"
# Pod 0's DNS name reads the Job's name from this variable (set before MASTER_ADDR: the kubelet expands only
# variables defined earlier in the list).
JOB_NAME_VAR = "PIPEGEN_JOB_NAME"


def is_distributed(step: ResolvedStep) -> bool:
    """True for a task/train step with `distributed:` on a kubernetes backend whose runtime is indexed_job."""
    body = step.body if step.kind in ("task", "train") else None
    backend = step.backend
    return (
        body is not None
        and body.distributed is not None
        and isinstance(backend, KubernetesBackend)
        and backend.distributed_runtime in RUNTIMES
    )


def task_names(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """PG602 for a step named like another step's Service task (`<step>_service`, `<step>_cleanup`)."""
    names = {step.name for step in pipeline.steps}
    for step in pipeline.steps:
        if not is_distributed(step):
            continue
        for suffix in ("_service", "_cleanup"):
            if step.name + suffix in names:
                other = next(s for s in pipeline.steps if s.name == step.name + suffix)
                yield diag(
                    "PG602",
                    f"target 'airflow' names the tasks of multi-node step '{step.name}' '{step.name}_service' and "
                    f"'{step.name}_cleanup': step '{other.name}' has one of those names",
                    pipeline.locate(other, "name"),
                    f"rename step '{other.name}'",
                )


def placement_kwargs(low: BackendLowering, backend: KubernetesBackend) -> list[tuple[str, str]]:
    """tolerations and startup_timeout_seconds of a kubernetes backend, for a pod or job operator."""
    out: list[tuple[str, str]] = []
    if backend.tolerations:
        low.imports.add("from kubernetes.client import models as k8s")
        items = []
        for t in backend.tolerations:
            fields = t.model_dump(exclude_none=True)
            # tolerations is not a templated field: plain Python literals.
            items.append("k8s.V1Toleration(" + ", ".join(f"{k}={py(v)}" for k, v in sorted(fields.items())) + ")")
        out.append(("tolerations", "[" + ", ".join(items) + "]"))
    if backend.startup_timeout is not None:
        out.append(("startup_timeout_seconds", py(parse_duration(backend.startup_timeout))))
    return out


def kubelet_value(low: BackendLowering, text: str) -> str:
    """A spec string as a templated container word or env value, every `$` of it doubled for the kubelet."""
    template = parse_template(text)
    if template.is_literal:
        literal = template.literal_text().replace("$", "$$")
        if any(opener in literal for opener in _JINJA_OPENERS):
            low.imports.add("from airflow.sdk import literal")
            return f"literal({py(literal)})"
        return py(literal)
    low.value(text)  # the imports and macros its references need
    out = []
    for part in template.parts:
        if isinstance(part, Lit):
            doubled = part.text.replace("$", "$$")
            out.append(
                "{{ " + jinja_string_literal(doubled) + " }}" if any(c in doubled for c in "{}\r\n") else doubled
            )
        else:
            # What a reference renders to (a param, a date, an env value) is text too.
            out.append("{{ (" + ref_expression(part) + ") | string | replace('$', '$$') }}")
    return py("".join(out))


def service_name(plan: NodePlan) -> str:
    """The Service's name as a template: the step's object name and a digest of the run (<= 49 characters)."""
    return plan.name + "-{{ macros.uuid.uuid5(macros.uuid.NAMESPACE_URL, run_id).hex[:8] }}"


def _service_yaml(plan: NodePlan) -> str:
    """The Service as a YAML (JSON) template: its name per run; any other text kept literal under Jinja."""
    service = headless_service(plan)
    marker = "@@PIPEGEN_SERVICE@@"
    service["metadata"]["name"] = marker
    service["metadata"]["labels"] = {**service["metadata"]["labels"], SERVICE_LABEL: marker}
    # The pods are chosen by the run's own label: the Job's name (random suffix) is not known here.
    service["spec"]["selector"] = {SERVICE_LABEL: marker}
    chunks = json.dumps(service, sort_keys=True).split(marker)
    out = [
        "{{ " + jinja_string_literal(chunk) + " }}" if any(o in chunk for o in _JINJA_OPENERS) else chunk
        for chunk in chunks
    ]
    return py(service_name(plan).join(out))


def node_tasks(low: BackendLowering, step: ResolvedStep, run: Task | None) -> list[Task]:
    """[Service setup, Indexed Job, Service teardown] for a distributed step on a kubernetes backend."""
    backend = step.backend
    assert isinstance(backend, KubernetesBackend)
    plan = node_plan(low.p, step)
    resource_ops = "from airflow.providers.cncf.kubernetes.operators.resource import "
    low.imports.add(resource_ops + "KubernetesCreateResourceOperator, KubernetesDeleteResourceOperator")
    low.imports.add("from airflow.providers.cncf.kubernetes.operators.job import KubernetesJobOperator")
    low.imports.add("from kubernetes.client import models as k8s")
    conn = (
        [("kubernetes_conn_id", py(low.options.kubernetes_conn_id))]
        if low.options.kubernetes_conn_id != "kubernetes_default"
        else []
    )
    service_yaml = _service_yaml(plan)
    namespace = low.lit(backend.namespace)
    setup = Task(
        var_name(f"{step.name}_service"),
        "KubernetesCreateResourceOperator",
        [("task_id", py(f"{step.name}_service")), ("yaml_conf", service_yaml), ("namespace", namespace), *conn],
    )
    job = Task(var_name(step.name), "KubernetesJobOperator", _job_kwargs(low, step, run, plan, conn))
    teardown = Task(
        var_name(f"{step.name}_cleanup"),
        "KubernetesDeleteResourceOperator",
        [("task_id", py(f"{step.name}_cleanup")), ("yaml_conf", service_yaml), ("namespace", namespace), *conn],
        teardown_of=setup.var,
    )
    return [setup, job, teardown]


def _env_var(name: str, value: str) -> str:
    return f"k8s.V1EnvVar(name={py(name)}, value={value})"


def _field_env(name: str, path: str) -> str:
    source = f"k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path={py(path)}))"
    return f"k8s.V1EnvVar(name={py(name)}, value_from={source})"


def _job_kwargs(
    low: BackendLowering, step: ResolvedStep, run: Task | None, plan: NodePlan, conn: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    backend = step.backend
    assert isinstance(backend, KubernetesBackend)
    body = step.body
    words = [kubelet_value(low, a) for a in body.command]
    prefix = [py(w) for w in launch_command(plan, ())]
    argv = prefix + words
    svc = service_name(plan)
    env: list[str] = []
    for entry in rendezvous_env(plan):
        if entry["name"] == "NODE_RANK":
            env.append(_field_env("NODE_RANK", COMPLETION_INDEX))
            env.append(_field_env(JOB_NAME_VAR, JOB_NAME_LABEL))
        elif entry["name"] == "MASTER_ADDR":
            env.append(_env_var("MASTER_ADDR", py(f"$({JOB_NAME_VAR})-0.{svc}")))
        else:
            env.append(_env_var(entry["name"], py(entry["value"])))
    # The MLflow run's variables and the step's env, as on Airflow's single-pod kubernetes steps.
    merged = {**backend.env, **body.env}
    tracking = parse_template(low.training_tracking_uri()).single_ref
    secret_uri = run is not None and tracking is not None and tracking.namespace == "secret"
    if secret_uri and "MLFLOW_TRACKING_URI" not in merged:
        merged["MLFLOW_TRACKING_URI"] = low.training_tracking_uri()
    mlflow = low._mlflow_env(run, tracking_uri=False)
    if run is not None and not secret_uri:
        env.append(_env_var("MLFLOW_TRACKING_URI", kubelet_value(low, low.training_tracking_uri())))
    env += [_env_var(name, value) for name, value in mlflow]
    secrets: list[str] = []
    for key, value in sorted(merged.items()):
        ref = parse_template(value).single_ref
        if ref is not None and ref.namespace == "secret":
            low.imports.add("from airflow.providers.cncf.kubernetes.secret import Secret")
            secrets.append(f"Secret({py('env')}, {py(key)}, {py(kubernetes_name(ref.name))}, {py(ref.name)})")
        else:
            env.append(_env_var(key, kubelet_value(low, value)))
    labels = {**plan.labels}
    kwargs: list[tuple[str, str]] = [
        ("task_id", py(step.name)),
        ("name", py(plan.name)),
        ("namespace", low.lit(backend.namespace)),
        ("image", low.value(backend.image)),
        ("cmds", f"[{argv[0]}]"),
        ("arguments", "[" + ", ".join(argv[1:]) + "]"),
        ("env_vars", "[" + ", ".join(env) + "]"),
    ]
    if secrets:
        kwargs.append(("secrets", "[" + ", ".join(secrets) + "]"))
    kwargs += [
        (
            "labels",
            "{"
            + ", ".join([*(f"{py(k)}: {low.literal(v)}" for k, v in labels.items()), f"{py(SERVICE_LABEL)}: {py(svc)}"])
            + "}",
        ),
        # The Service's subdomain is the run's Service (a templated field: `subdomain` itself is not).
        ("pod_template_dict", "{'spec': {'subdomain': " + py(svc) + ", 'containers': [{'name': 'base'}]}}"),
        (
            "ports",
            f"[k8s.V1ContainerPort(name='rendezvous', container_port={RENDEZVOUS_PORT}, protocol='TCP')]",
        ),
    ]
    if backend.service_account:
        # Not a templated field: the name as it is (literal() would reach the pod spec as an object).
        kwargs.append(("service_account_name", py(backend.service_account)))
    if backend.node_selector:
        kwargs.append(("node_selector", low.lit_dict(backend.node_selector)))
    kwargs += placement_kwargs(low, backend)
    resources = plan_resources(step)
    if resources is not None:
        kwargs.append(("container_resources", resources))
    kwargs += [
        ("completion_mode", py("Indexed")),
        ("completions", py(plan.nodes)),
        ("parallelism", py(plan.nodes)),
        # One failed node fails the Job at once (a restarted rank cannot rejoin a static rendezvous): the step's
        # retries start every node again.
        ("backoff_limit", "0"),
        ("full_job_spec", _failure_policy()),
        ("wait_until_job_complete", "True"),
    ]
    if plan.deadline_seconds is not None:
        kwargs.append(("active_deadline_seconds", py(plan.deadline_seconds)))
    kwargs += [*conn, ("get_logs", "True"), ("on_finish_action", py("delete_pod")), *low._policy(step)]
    return kwargs


def _failure_policy() -> str:
    rule = (
        "k8s.V1PodFailurePolicyRule(action='FailJob', on_exit_codes=k8s.V1PodFailurePolicyOnExitCodesRequirement("
        f"container_name={py(BASE_CONTAINER)}, operator='NotIn', values=[0]))"
    )
    return (
        "k8s.V1Job(spec=k8s.V1JobSpec(template=k8s.V1PodTemplateSpec(), "
        f"pod_failure_policy=k8s.V1PodFailurePolicy(rules=[{rule}])))"
    )


def plan_resources(step: ResolvedStep) -> str | None:
    """One node's resources as a V1ResourceRequirements source (GPUs as limits)."""
    from pipegen.k8s.distributed import resource_requirements

    requirements: dict[str, Any] | None = resource_requirements(step.body.resources)
    if requirements is None:
        return None
    return f"k8s.V1ResourceRequirements(requests={py(requirements.get('requests', {}))}, " + (
        f"limits={py(requirements.get('limits', {}))})"
    )
