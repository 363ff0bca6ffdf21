"""Steps that create a Kubernetes custom resource on Airflow: a SparkApplication (spark, platform kubernetes), a
KubeRay RayJob (ray with `cluster:`), a JobSet or TrainJob (a multi-node step with distributed_runtime jobset or
trainjob). The objects are pipegen.k8s's, written into the DAG through manifests.AirflowValues.

- SparkApplication: SparkKubernetesOperator (cncf.kubernetes provider) creates it from template_spec, waits for the
  driver, streams its log and deletes the application at the end. Its name is one per DAG run and try
  (`<step>-<run digest>-<try>`, random_name_suffix off): a retry creates a new application and cannot collide with
  the last one; a retry after the worker died reattaches to the driver the earlier try started
  (reattach_on_restart: the provider finds it by the task's labels) instead of starting a second one.
- RayJob, JobSet, TrainJob: three tasks, as the indexed_job path has. `<step>_create` (KubernetesCreateResourceOperator)
  creates the object, named once per DAG run (`<step>-<run digest>`); `<step>` is a sensor in reschedule mode on the
  object's status (RayJob: status.jobStatus, or a failed status.jobDeploymentStatus; JobSet: status.terminalState;
  TrainJob: status.conditions Complete/Failed); `<step>_cleanup` (KubernetesDeleteResourceOperator) deletes it as
  an Airflow teardown, whatever the outcome. The sensor's retries re-read the same object (reattach: a retry never
  loses or duplicates it); a job that fails fails the step at once (AirflowFailException), so the step's retries
  are the controller's own where it has them: RayJob backoffLimit (KubeRay reruns the job on a new cluster) and
  JobSet failurePolicy.maxRestarts (every node restarts); a TrainJob (v1alpha1) has no restart count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.k8s import ray as k8s_ray
from pipegen.k8s import spark as k8s_spark
from pipegen.k8s.distributed import NodeContainer, node_plan, object_name, objects, spec_container
from pipegen.k8s.pods import StepObject, secret_env
from pipegen.k8s.ray_checks import kuberay_checks
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.airflow.manifests import RUN_DIGEST, AirflowValues, name_template, name_text
from pipegen.targets.airflow.view import Task, var_name
from pipegen.targets.airflow_expr import jinja_string_literal

if TYPE_CHECKING:
    from pipegen.targets.airflow.backends import BackendLowering

SPARK_OPERATOR = "airflow.providers.cncf.kubernetes.operators.spark_kubernetes"
RESOURCE_OPERATORS = "airflow.providers.cncf.kubernetes.operators.resource"
# How often the sensor reads the object's status, in seconds, and how long past the step's timeout it waits (the
# object's own deadline ends the job at the timeout); without a timeout, the longest a spec may set (365 days).
POKE_SECONDS = 30
STOP_MARGIN_SECONDS = 300
UNBOUNDED_SECONDS = 365 * 86400
# The part of a name pipegen chooses: a SparkApplication's name, with `-<digest>-<try>`, stays within 35
# characters (Spark names the driver's Service `<app>-<16 hex>-driver-svc`, at most 63); a RayJob's, JobSet's or
# TrainJob's, with `-<digest>`, within 40 (pipegen.k8s.distributed.MAX_NAME; KubeRay allows 47).
SPARK_BASE = 22
OBJECT_BASE = 31
CREATED = ("ray", "jobset", "trainjob")

# (field, values that succeed, values that fail) the sensor reads; a `conditions` list matches a condition's type
# whose status is "True".
STATES: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "ray": [
        ("status.jobStatus", list(k8s_ray.SUCCEEDED_STATUSES), list(k8s_ray.FAILED_STATUSES)),
        ("status.jobDeploymentStatus", [], list(k8s_ray.FAILED_DEPLOYMENTS)),
    ],
    "jobset": [("status.terminalState", ["Completed"], ["Failed"])],
    "trainjob": [("status.conditions", ["Complete"], ["Failed"])],
}


def resource_kind(step: ResolvedStep) -> str | None:
    """'spark', 'ray', 'jobset' or 'trainjob' for a step that creates a custom resource on Airflow, else None."""
    backend = step.backend
    if step.kind not in ("task", "train"):
        return None
    if isinstance(backend, SparkBackend) and backend.platform == "kubernetes":
        return "spark"
    if isinstance(backend, RayBackend) and backend.cluster is not None:
        return "ray"
    if isinstance(backend, KubernetesBackend) and step.body.distributed is not None:
        runtime = backend.distributed_runtime
        return runtime if runtime in ("jobset", "trainjob") else None
    return None


def short_name(pipeline: str, step: str, limit: int) -> str:
    """A DNS label for the step's object of at most limit characters (a digest of the whole when cut)."""
    name = object_name(pipeline, step)
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def task_names(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """PG602 for a step named like another step's create or cleanup task."""
    names = {step.name: step for step in pipeline.steps}
    for step in pipeline.steps:
        if resource_kind(step) not in CREATED:
            continue
        for suffix in ("_create", "_cleanup"):
            other = names.get(step.name + suffix)
            if other is not None:
                yield diag(
                    "PG602",
                    f"target 'airflow' names the tasks of step '{step.name}' '{step.name}_create' and "
                    f"'{step.name}_cleanup': step '{other.name}' has one of those names",
                    pipeline.locate(other, "name"),
                    f"rename step '{other.name}'",
                )


class ResourceTasks:
    """The tasks of one step that creates a custom resource."""

    def __init__(self, lo: BackendLowering, step: ResolvedStep, run: Task | None) -> None:
        self.lo = lo
        self.step = step
        self.run = run
        self.values = AirflowValues(lo)
        kind = resource_kind(step)
        assert kind is not None, step.name
        self.kind = kind

    def tasks(self) -> list[Task]:
        """[SparkKubernetesOperator] or [create, sensor, cleanup teardown]."""
        if self.kind == "spark":
            return [self.spark()]
        return self.created(*self.build())

    # ---- values ------------------------------------------------------------------------------
    def run_env(self, text: Callable[[str], str]) -> list[dict[str, Any]]:
        """A training step's MLflow variables: start_run's ids from its XCom, the tracking URI (a secret as a
        secretKeyRef, other text rendered by this task: the spec's, else the worker's MLFLOW_TRACKING_URI)."""
        if self.run is None:
            return []
        task_id = f"pipegen_start_run_{self.step.name}"
        env = [
            {"name": "MLFLOW_EXPERIMENT_ID", "value": self.values.xcom(task_id, "experiment_id")},
            {"name": "MLFLOW_RUN_ID", "value": self.values.xcom(task_id, "run_id")},
        ]
        uri = self.lo.training_tracking_uri()
        ref = parse_template(uri).single_ref
        if ref is not None and ref.namespace == "secret":
            env.append(secret_env("MLFLOW_TRACKING_URI", ref.name))
        else:
            env.append({"name": "MLFLOW_TRACKING_URI", "value": text(uri)})
        return env

    def made(self) -> StepObject:
        return StepObject(
            pipeline=self.lo.p.name,
            step=self.step.name,
            values=self.values,
            run_env=self.run_env(self.values.pod_text),
        )

    def conn(self) -> list[tuple[str, str]]:
        conn_id = self.lo.options.kubernetes_conn_id
        return [("kubernetes_conn_id", py(conn_id))] if conn_id != "kubernetes_default" else []

    # ---- SparkApplication --------------------------------------------------------------------
    def spark(self) -> Task:
        """SparkKubernetesOperator creating the step's SparkApplication, named per run and try."""
        backend = self.step.backend
        assert isinstance(backend, SparkBackend) and backend.kubernetes is not None
        app = k8s_spark.spark_application(self.step, self.made())
        base = short_name(self.lo.p.name, self.step.name, SPARK_BASE)
        # The operator names the application after metadata.name when it has no `name` of its own.
        name = self.values.token(f"{jinja_string_literal(base + '-')} ~ {RUN_DIGEST} ~ '-' ~ ti.try_number")
        app["metadata"] = {
            **{k: v for k, v in app["metadata"].items() if k != "generateName"},
            "name": name,
        }
        self.lo.imports.add(f"from {SPARK_OPERATOR} import SparkKubernetesOperator")
        kwargs = [
            ("task_id", py(self.step.name)),
            ("namespace", self.lo.lit(backend.kubernetes.namespace)),
            ("template_spec", self.values.dict_source({"spark": app})),
            ("random_name_suffix", "False"),
            ("reattach_on_restart", "True"),
            ("delete_on_termination", "True"),
            ("get_logs", "True"),
            ("log_events_on_failure", "True"),
            *self.conn(),
            *self.lo._policy(self.step),
        ]
        return Task(var_name(self.step.name), "SparkKubernetesOperator", kwargs)

    # ---- RayJob, JobSet, TrainJob --------------------------------------------------------------
    def build(self) -> tuple[dict[str, Any], str, str]:
        """(the object, its name's base, its namespace), with the controller's retries where it has them."""
        step = self.step
        base = short_name(self.lo.p.name, step.name, OBJECT_BASE)
        retries = step.policy.retries
        if self.kind == "ray":
            backend = step.backend
            assert isinstance(backend, RayBackend) and backend.cluster is not None
            obj = k8s_ray.ray_job(step, self.made())
            namespace = backend.cluster.namespace
            obj["metadata"] = {
                **{k: v for k, v in obj["metadata"].items() if k != "generateName"},
                "name": name_text(base),
            }
            obj["spec"]["backoffLimit"] = retries
            return obj, base, namespace
        plan = node_plan(self.lo.p, step, name=name_text(base))
        (obj,) = objects(plan, self.node_container())
        if self.kind == "jobset":
            obj["spec"]["failurePolicy"]["maxRestarts"] = retries
        return obj, base, plan.namespace

    def node_container(self) -> NodeContainer:
        """What every node runs: the step's container (pipegen.k8s.distributed.spec_container) with its text
        written for Airflow, and the MLflow run's variables."""
        values = self.values
        spec = spec_container(self.lo.p, self.step)
        env = {e["name"]: {**e, "value": values.node_text(e["value"])} if "value" in e else e for e in spec.env}
        for entry in self.run_env(values.node_text):
            env[entry["name"]] = entry
        return NodeContainer(
            image=values.text(spec.image),
            command=tuple(values.node_text(word) for word in spec.command),
            env=tuple(env[k] for k in sorted(env)),
            resources=spec.resources,
        )

    def created(self, obj: dict[str, Any], base: str, namespace: str) -> list[Task]:
        """[create, sensor, cleanup] of an object named once per DAG run."""
        step, lo = self.step, self.lo
        lo.imports.add(
            f"from {RESOURCE_OPERATORS} import KubernetesCreateResourceOperator, KubernetesDeleteResourceOperator"
        )
        lo.helpers.add("wait_for_object")
        ident = {"apiVersion": obj["apiVersion"], "kind": obj["kind"]}
        create = Task(
            var_name(f"{step.name}_create"),
            "KubernetesCreateResourceOperator",
            [
                ("task_id", py(f"{step.name}_create")),
                ("yaml_conf", self.values.yaml_source(obj)),
                ("custom_resource_definition", "True"),
                *self.conn(),
                *lo._policy(step),
            ],
        )
        timeout = step.policy.timeout
        attempts = 1 + (step.policy.retries if self.kind != "trainjob" else 0)
        waits = timeout * attempts + STOP_MARGIN_SECONDS if timeout is not None else UNBOUNDED_SECONDS
        # Each poke is short: the step's timeout bounds the object (its deadline) and the wait, not one poke.
        policy = [(k, v) for k, v in lo._policy(step) if k != "execution_timeout"]
        head = [("task_id", py(step.name)), ("poke_interval", py(POKE_SECONDS)), ("timeout", py(waits)), *policy]
        sensor = Task(
            var_name(step.name),
            "_wait_for_object",
            [
                ("api_version", py(obj["apiVersion"])),
                ("kind", py(obj["kind"])),
                ("name", py(name_template(base))),
                ("namespace", lo.lit(namespace)),
                ("conn_id", py(lo.options.kubernetes_conn_id)),
                ("states", py(STATES[self.kind])),
            ],
            options=head,
        )
        target = {**ident, "metadata": {"name": name_text(base), "namespace": namespace}}
        cleanup = Task(
            var_name(f"{step.name}_cleanup"),
            "KubernetesDeleteResourceOperator",
            [
                ("task_id", py(f"{step.name}_cleanup")),
                ("yaml_conf", self.values.yaml_source(target)),
                ("custom_resource_definition", "True"),
                *self.conn(),
            ],
            teardown_of=create.var,
        )
        return [create, sensor, cleanup]


def checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """What a custom resource cannot take on Airflow: secrets in its images, parts of GPUs, runtime_env text that
    KubeRay's submitter would expand, and task names taken."""
    yield from task_names(pipeline)
    used = {str(s.backend_name): s.backend for s in pipeline.steps if resource_kind(s) in ("spark", "ray")}
    for name, backend in sorted(used.items()):
        at = ("backends", name)
        if isinstance(backend, SparkBackend) and backend.kubernetes is not None:
            images = [(("kubernetes", "image"), backend.kubernetes.image)]
        elif isinstance(backend, RayBackend) and backend.cluster is not None:
            images = [(("cluster", "image"), backend.cluster.image)]
            yield from _ray(pipeline, name, backend)
        else:
            continue
        for path, image in images:
            if any(r.namespace == "secret" for r in parse_template(image).refs):
                yield diag(
                    "PG602",
                    f"target 'airflow' cannot pass a secret in the image of backend '{name}': it would be a plain "
                    "value in the object",
                    pipeline.source_map.value((*at, *path)),
                    "registry credentials belong to the cluster (an image pull secret)",
                )


def _ray(pipeline: Pipeline, name: str, backend: RayBackend) -> Iterator[Diagnostic]:
    yield from kuberay_checks(pipeline, name, backend, "airflow")
