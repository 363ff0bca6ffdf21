"""The Airflow target's own checks: tag lengths and where secrets may go."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.resolve import Pipeline
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend

TAG_LIMIT = 100


def in_pods(backend: object) -> bool:
    """True for a backend whose steps run in Kubernetes pods pipegen describes: a kubernetes backend, the Spark
    Operator (spark, platform kubernetes), KubeRay (ray with cluster:). A whole ${secret.X} env value reaches those
    pods as a secretKeyRef."""
    if isinstance(backend, SparkBackend):
        return backend.platform == "kubernetes"
    if isinstance(backend, RayBackend):
        return backend.cluster is not None
    return isinstance(backend, KubernetesBackend)


def tags(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Airflow's limit on a DAG tag's length."""
    for i, tag in enumerate(pipeline.spec.tags):
        if len(tag) > TAG_LIMIT:
            yield diag(
                "PG602",
                f"target 'airflow' limits DAG tags to {TAG_LIMIT} characters; tag {i + 1} has {len(tag)}",
                pipeline.source_map.value(("tags", i)),
                f"shorten the tag to at most {TAG_LIMIT} characters",
            )


def secret_placement(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Secrets reach pods and jobs only as whole Kubernetes env values (never in commands or job overrides)."""
    yield from tracking_secret(pipeline)
    yield from backend_fields(pipeline)
    for step in pipeline.steps:
        if step.backend is None or step.backend.type == "local":
            continue
        body = step.body
        for i, arg in enumerate(body.command):
            if any(r.namespace == "secret" for r in parse_template(arg).refs):
                yield diag(
                    "PG602",
                    f"target 'airflow' cannot pass a secret in the command of step '{step.name}' on {step.backend.type}",
                    pipeline.locate(step, step.kind, "command", i),
                    "pass it as an environment variable whose whole value is ${secret.NAME}, and read the variable",
                )
        envs = {**getattr(step.backend, "env", {}), **body.env}
        for key, value in envs.items():
            template = parse_template(value)
            secrets = [r for r in template.refs if r.namespace == "secret"]
            if secrets and (not in_pods(step.backend) or template.single_ref is None):
                where = ("env", key) if key in body.env else ()
                yield diag(
                    "PG602",
                    f"target 'airflow' can pass a secret to step '{step.name}' only as a whole environment value "
                    "of a Kubernetes pod (kubernetes, Spark Operator, KubeRay)",
                    pipeline.locate(step, step.kind, *where) if where else step.location,
                    "on kubernetes, write the value as exactly ${secret.NAME}",
                )


def tracking_secret(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """A training job gets the tracking URI in its environment: a secret in it follows the env rule."""
    uri = pipeline.spec.mlflow.tracking_uri
    if uri is None:
        return
    template = parse_template(uri)
    if not any(r.namespace == "secret" for r in template.refs):
        return
    for step in pipeline.steps:
        backend = step.backend
        if step.kind != "train" or backend is None or backend.type == "local":
            continue
        if in_pods(backend) and template.single_ref is not None:
            continue
        yield diag(
            "PG602",
            f"target 'airflow' can pass a secret in mlflow.tracking_uri to training step '{step.name}' on "
            f"{backend.type} only as a Kubernetes secret: the whole URI must be ${{secret.NAME}} on a kubernetes pod",
            pipeline.source_map.value(("mlflow", "tracking_uri")),
            "keep the credentials out of the URI (e.g. MLFLOW_TRACKING_TOKEN from a secret), or make the whole "
            "tracking_uri ${secret.NAME} and train on kubernetes",
        )
        return


# Backend settings that may hold ${...}: Airflow would render a secret into the pod spec or job request as a value.
_BACKEND_TEMPLATES = ("image", "output_path")


def backend_fields(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """No secret in a backend's image or output path: those are pod and job settings, stored and shown as given."""
    for name, backend in sorted(pipeline.spec.backends.items()):
        if backend.type == "local":
            continue
        for key in _BACKEND_TEMPLATES:
            value = getattr(backend, key, None)
            if isinstance(value, str) and any(r.namespace == "secret" for r in parse_template(value).refs):
                yield diag(
                    "PG602",
                    f"target 'airflow' cannot pass a secret in the {key} of backend '{name}' ({backend.type}): "
                    "it would be a plain value in the pod or job",
                    pipeline.source_map.value(("backends", name, key)),
                    "only a kubernetes pod's environment can take a secret (a whole value ${secret.NAME}); "
                    "registry and bucket credentials belong to the cluster or the job's role",
                )
