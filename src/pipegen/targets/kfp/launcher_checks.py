"""What KFP's launcher steps cannot put in the Kubernetes objects they create: located diagnostics.

The objects hold their text as plain values in the cluster: a ${secret.X} is a secretKeyRef only as a whole env
value, and ${env.X} (the launcher pod's environment) would copy whatever that holds into the object. A Ray cluster's
runtime_env reaches bash inside double quotes (KubeRay's submitter), and a pod takes whole GPUs.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.k8s.ray_checks import kuberay_checks
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.kfp.launcher import launches

HINT = "write the value, or pass it as the step's env with exactly ${secret.NAME} (a secretKeyRef in the object)"


def launcher_checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Each launcher step's command and env, and each backend's own text, once."""
    seen: set[str] = set()
    for step in pipeline.steps:
        if not launches(step):
            continue
        name, backend = str(step.backend_name), step.backend
        if not isinstance(backend, KubernetesBackend):  # checks.limits checks a kubernetes step's command and env
            yield from _step_text(pipeline, step)
        if name in seen:
            continue
        seen.add(name)
        if isinstance(backend, SparkBackend):
            yield from _spark(pipeline, name, backend)
        elif isinstance(backend, RayBackend):
            yield from _ray(pipeline, name, backend)


def _refused(value: str) -> str | None:
    bad = [r for r in parse_template(value).refs if r.namespace in ("env", "secret")]
    return str(bad[0]) if bad else None


def _step_text(pipeline: Pipeline, step: ResolvedStep) -> Iterator[Diagnostic]:
    body = step.body
    for i, word in enumerate(body.command):
        if (ref := _refused(word)) is not None:
            yield diag(
                "PG602",
                f"target 'kfp' cannot put {ref} in the command of step '{step.name}': the Kubernetes object the "
                "launcher creates holds its command as plain text",
                pipeline.locate(step, step.kind, "command", i),
                HINT,
            )
    for key, value in sorted(body.env.items()):
        whole = parse_template(value).single_ref
        if (bad := _refused(value)) is not None and not (whole is not None and whole.namespace == "secret"):
            yield diag(
                "PG602",
                f"target 'kfp' can set {bad} in env {key} of step '{step.name}' only as the whole value of a secret",
                pipeline.locate(step, step.kind, "env", key),
                HINT,
            )


def _text(pipeline: Pipeline, name: str, path: tuple[str | int, ...], value: str) -> Iterator[Diagnostic]:
    if (ref := _refused(value)) is not None:
        what = ".".join(map(str, path))
        yield diag(
            "PG602",
            f"target 'kfp' cannot put {ref} in {what} of backend '{name}': the object holds the text itself",
            pipeline.source_map.value(("backends", name, *path)),
            HINT,
        )


def _spark(pipeline: Pipeline, name: str, backend: SparkBackend) -> Iterator[Diagnostic]:
    assert backend.kubernetes is not None
    yield from _text(pipeline, name, ("kubernetes", "image"), backend.kubernetes.image)
    for key, value in sorted(backend.conf.items()):
        yield from _text(pipeline, name, ("conf", key), value)
    for field in ("py_files", "jars"):
        for i, item in enumerate(getattr(backend, field)):
            yield from _text(pipeline, name, (field, i), item)


def _ray(pipeline: Pipeline, name: str, backend: RayBackend) -> Iterator[Diagnostic]:
    assert backend.cluster is not None
    yield from _text(pipeline, name, ("cluster", "image"), backend.cluster.image)
    yield from kuberay_checks(pipeline, name, backend, "kfp")
