"""What the Argo target cannot express: located diagnostics, never a manifest Argo would rewrite or refuse."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, Location, diag
from pipegen.expr import Lit, parse_template
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.argo.containers import kubernetes_backends, pod_namespaces, workflow_namespace
from pipegen.targets.argo.names import RESERVED, task_name
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.tracking_secret import tracking_secret

# Argo template and task names: at most this long (validate.go maxCharsInObjectName).
MAX_TEMPLATE_NAME = 128
NO_ESCAPE = "Argo substitutes '{{...}}' in every string of a workflow and has no escape for it"


def makes_resource(step: ResolvedStep) -> bool:
    """Whether the step creates a SparkApplication or a RayJob (a resource template)."""
    backend = step.backend
    return (isinstance(backend, SparkBackend) and backend.kubernetes is not None) or (
        isinstance(backend, RayBackend) and backend.cluster is not None
    )


def step_names(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Step names that would collide with pipegen's own tasks or exceed Argo's name length."""
    for step in pipeline.steps:
        name = task_name(step.name)
        where = pipeline.locate(step, "name")
        if name.startswith(RESERVED):
            yield diag(
                "PG601",
                f"step name '{step.name}' becomes Argo task '{name}', in the prefix '{RESERVED}' reserved for "
                "pipegen's own tasks",
                where,
            )
        if len(name) > MAX_TEMPLATE_NAME - len(RESERVED) - 4:  # room for pipegen-run-<name>
            yield diag("PG600", f"step name '{step.name}' is too long for an Argo template name", where)


def params(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """A parameter default becomes a workflow argument's value, where Argo would substitute '{{'."""
    for name, value in sorted(pipeline.spec.params.items()):
        if isinstance(value, str) and "{{" in value:
            yield diag(
                "PG602",
                f"target 'argo' cannot pass the default of parameter '{name}' unchanged: " + NO_ESCAPE,
                pipeline.source_map.value(("params", name)),
                "write the default without '{{', or pass the value when submitting the workflow",
            )


def runtime_image(pipeline: Pipeline, options: ArgoOptions) -> Iterator[Diagnostic]:
    """A spec with runtime steps names the image they run in, without '{{'."""
    needs = any(not isinstance(s.backend, KubernetesBackend) for s in pipeline.steps) or any(
        s.kind == "train" for s in pipeline.steps
    )
    needs = needs or bool(pipeline.spec.notify.on_failure or pipeline.spec.notify.on_success)
    if needs and options.runtime_image is None:
        yield diag(
            "PG604",
            "target 'argo' needs targets.argo.runtime_image: the image its runtime containers (gates, start_run, "
            "evaluate, promote, notifications, AWS and local steps) run in",
            _targets_location(pipeline),
            "build an image with pipegen-ml[runtime] installed and set targets: {argo: {runtime_image: ...}}",
        )
    if options.runtime_image is not None and "{{" in options.runtime_image:
        yield diag(
            "PG602",
            "target 'argo' cannot use a runtime_image holding '{{': " + NO_ESCAPE,
            pipeline.source_map.value(("targets", "argo", "runtime_image")),
            "an image reference has no braces: write it as registry/name:tag",
        )


def containers(pipeline: Pipeline, options: ArgoOptions) -> Iterator[Diagnostic]:
    """Kubernetes steps: literal text Argo would substitute, references a pod cannot read, one namespace."""
    yield from tracking_secret(pipeline, "argo")
    uri = pipeline.tracking_uri
    env_refs = [r for r in uri.refs if r.namespace == "env"] if uri is not None else []
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, KubernetesBackend) and not makes_resource(step):
            continue
        body = step.body
        if (
            step.kind == "train"
            and env_refs
            and not (uri is not None and str(uri.single_ref) == "${env.MLFLOW_TRACKING_URI}")
        ):
            yield diag(
                "PG602",
                f"target 'argo' can pass mlflow.tracking_uri with {env_refs[0]} to container step '{step.name}' only "
                "as exactly ${env.MLFLOW_TRACKING_URI} (the image's own variable)",
                pipeline.source_map.value(("mlflow", "tracking_uri")),
                "write the URI literally, or as ${env.MLFLOW_TRACKING_URI} set in the image, or as ${secret.NAME}",
            )
        if step.kind == "train" and pipeline.spec.mlflow.tracking_uri is not None and not env_refs:
            # The job's MLFLOW_TRACKING_URI is the URI's text (a whole ${secret.X} is a secretKeyRef instead).
            yield from literal_text(
                pipeline,
                pipeline.spec.mlflow.tracking_uri,
                f"mlflow.tracking_uri to container step '{step.name}'",
                pipeline.source_map.value(("mlflow", "tracking_uri")),
            )
        for i, arg in enumerate(body.command):
            yield from literal_text(
                pipeline,
                arg,
                f"the command of container step '{step.name}'",
                pipeline.locate(step, step.kind, "command", i),
            )
            bad = [r for r in parse_template(arg).refs if r.namespace in ("secret", "env")]
            if bad:
                yield diag(
                    "PG602",
                    f"target 'argo' cannot put {bad[0]} in the command of container step '{step.name}'",
                    pipeline.locate(step, step.kind, "command", i),
                    "pass it as an environment variable (a whole ${secret.NAME} value) and let the program read it",
                )
        backend_env: dict[str, str] = getattr(backend, "env", {})
        for key, value in {**backend_env, **body.env}.items():
            where = (
                pipeline.locate(step, step.kind, "env", key)
                if key in body.env
                else pipeline.source_map.value(("backends", str(step.backend_name), "env", key))
            )
            yield from literal_text(pipeline, value, f"env {key} of container step '{step.name}'", where)
            template = parse_template(value)
            refs = [r for r in template.refs if r.namespace in ("secret", "env")]
            if refs and not (template.single_ref is not None and template.single_ref.namespace == "secret"):
                yield diag(
                    "PG602",
                    f"target 'argo' can set {refs[0]} in container step '{step.name}' only as a whole secret "
                    "environment value",
                    where,
                    "make the whole value ${secret.NAME}, or let the program read the variable from its image",
                )
    for name, backend in kubernetes_backends(pipeline).items():
        base = ("backends", name)
        for key in ("image", "service_account"):
            value = getattr(backend, key)
            if value and "{{" in value:
                yield diag(
                    "PG602",
                    f"target 'argo' cannot use {key} '{value}' of backend '{name}': " + NO_ESCAPE,
                    pipeline.source_map.value((*base, key)),
                    f"a Kubernetes {key.replace('_', ' ')} has no braces",
                )
        for label, value in backend.node_selector.items():
            if "{{" in label + value:
                yield diag(
                    "PG602",
                    f"target 'argo' cannot use node selector '{label}' of backend '{name}': " + NO_ESCAPE,
                    pipeline.source_map.value((*base, "node_selector", label)),
                    "a Kubernetes label has no braces",
                )
    yield from _namespaces(pipeline, options)


def literal_text(pipeline: Pipeline, text: str, what: str, where: Location) -> Iterator[Diagnostic]:
    """PG602 when the literal parts of a spec string hold '{{' (references are Argo's own)."""
    literal = "".join(p.text for p in parse_template(text).parts if isinstance(p, Lit))
    if "{{" in literal:
        yield diag(
            "PG602",
            f"target 'argo' cannot pass {what} unchanged: " + NO_ESCAPE,
            where,
            "write the value without '{{', or let the program read it from a file or its image",
        )


def _namespaces(pipeline: Pipeline, options: ArgoOptions) -> Iterator[Diagnostic]:
    """A workflow's pods (and the objects its resource templates create and own) all live in its namespace: every
    kubernetes backend, Spark on Kubernetes and Ray cluster must name the same one."""
    backends = pod_namespaces(pipeline)
    wanted = workflow_namespace(pipeline, options)
    for name, (path, namespace) in sorted(backends.items()):
        if namespace != wanted:
            where = pipeline.source_map.value(("backends", name, *path))
            yield diag(
                "PG602",
                f"target 'argo' runs every pod of a workflow in its own namespace '{wanted}': backend '{name}' "
                f"asks for namespace '{namespace}'",
                where,
                "give every kubernetes backend the same namespace (targets.argo.namespace names the workflow's)",
            )


def _targets_location(pipeline: Pipeline) -> Location:
    return pipeline.source_map.value(("targets", "argo"))
