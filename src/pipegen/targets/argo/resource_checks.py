"""What Argo cannot put in a step's SparkApplication or RayJob: located diagnostics for the backend's own keys.

The step's command and env are checked as a container step's are (checks.containers); these are the keys only a
custom resource holds: images, Spark conf and files, the Ray cluster's names, sizes and runtime_env.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.k8s.ray_checks import kuberay_checks, runtime_env_strings
from pipegen.resolve import Pipeline
from pipegen.spec import RayBackend, SparkBackend
from pipegen.targets.argo.checks import NO_ESCAPE, literal_text, makes_resource


def custom_resources(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Each backend a resource step uses, once: text Argo would rewrite, references an object cannot read."""
    backends = {str(s.backend_name): s.backend for s in pipeline.steps if makes_resource(s)}
    for name, backend in sorted(backends.items()):
        if isinstance(backend, SparkBackend):
            yield from _spark(pipeline, name, backend)
        elif isinstance(backend, RayBackend):
            yield from _ray(pipeline, name, backend)


def _text(pipeline: Pipeline, name: str, path: tuple[str | int, ...], value: str) -> Iterator[Diagnostic]:
    """A templated text of the backend: '{{' in its literal parts, ${env.X} or ${secret.X} anywhere in it."""
    where = pipeline.source_map.value(("backends", name, *path))
    what = ".".join(map(str, path))
    yield from literal_text(pipeline, value, f"{what} of backend '{name}'", where)
    bad = [r for r in parse_template(value).refs if r.namespace in ("env", "secret")]
    if bad:
        yield diag(
            "PG602",
            f"target 'argo' cannot put {bad[0]} in {what} of backend '{name}': the object holds the text itself",
            where,
            "write the value, or pass it as the step's env (a whole ${secret.NAME} value is a secretKeyRef)",
        )


def _plain(pipeline: Pipeline, name: str, path: tuple[str | int, ...], value: str | None) -> Iterator[Diagnostic]:
    """A Kubernetes name the object holds as written."""
    if value and "{{" in value:
        yield diag(
            "PG602",
            f"target 'argo' cannot use {'.'.join(map(str, path))} '{value}' of backend '{name}': " + NO_ESCAPE,
            pipeline.source_map.value(("backends", name, *path)),
            "a Kubernetes name has no braces",
        )


def _spark(pipeline: Pipeline, name: str, backend: SparkBackend) -> Iterator[Diagnostic]:
    k8s = backend.kubernetes
    assert k8s is not None
    yield from _text(pipeline, name, ("kubernetes", "image"), k8s.image)
    yield from _plain(pipeline, name, ("kubernetes", "namespace"), k8s.namespace)
    yield from _plain(pipeline, name, ("kubernetes", "service_account"), k8s.service_account)
    for key, value in sorted(backend.conf.items()):
        yield from _plain(pipeline, name, ("conf", key), key)
        yield from _text(pipeline, name, ("conf", key), value)
    for field in ("py_files", "jars", "packages"):
        for i, item in enumerate(getattr(backend, field)):
            yield from _text(pipeline, name, (field, i), item)


def _ray(pipeline: Pipeline, name: str, backend: RayBackend) -> Iterator[Diagnostic]:
    cluster = backend.cluster
    assert cluster is not None
    yield from _text(pipeline, name, ("cluster", "image"), cluster.image)
    yield from _plain(pipeline, name, ("cluster", "namespace"), cluster.namespace)
    yield from _plain(pipeline, name, ("cluster", "service_account"), cluster.service_account)
    yield from kuberay_checks(pipeline, name, backend, "argo")
    for path, text in runtime_env_strings(backend.runtime_env, ("runtime_env",)):
        if "{{" in text:
            yield diag(
                "PG602",
                f"target 'argo' cannot pass runtime_env text '{text}' of backend '{name}' unchanged: " + NO_ESCAPE,
                pipeline.source_map.value(("backends", name, *path)),
                "write the value without '{{'",
            )
