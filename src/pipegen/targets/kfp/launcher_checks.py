"""What KFP's launcher steps cannot put in the Kubernetes objects they create: located diagnostics.

The objects hold their text as plain values in the cluster: a ${secret.X} is a secretKeyRef only as a whole env
value, and ${env.X} (the launcher pod's environment) would copy whatever that holds into the object. A Ray cluster's
runtime_env reaches bash inside double quotes (KubeRay's submitter), and a pod takes whole GPUs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.k8s.ray import fractional_gpus
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
    for path, amount in fractional_gpus(backend):
        yield diag(
            "PG602",
            f"target 'kfp' cannot give a pod of backend '{name}' {amount:g} GPUs: Kubernetes assigns whole GPUs "
            "(nvidia.com/gpu)",
            pipeline.source_map.value(("backends", name, *path)),
            "ask for a whole number of GPUs per pod; share a GPU between Ray tasks with num_gpus in the code",
        )
    for path, text in _strings(backend.runtime_env, ("runtime_env",)):
        if "$" in text or "`" in text:
            # KubeRay's submitter puts runtimeEnvYAML, as JSON, in double quotes on a bash command line
            # (ray-operator/controllers/ray/common/job.go, strconv.Quote): bash would expand `$...` and run `...`.
            yield diag(
                "PG602",
                f"target 'kfp' cannot pass runtime_env text '{text}' of backend '{name}' unchanged: KubeRay's job "
                "submitter reads runtimeEnvYAML on a bash command line, where '$' and '`' expand",
                pipeline.source_map.value(("backends", name, *path)),
                "write the value without '$' and '`' (env values belong in the step's env, which reaches the job as "
                "written)",
            )


def _strings(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, text) for every string of runtime_env, its mapping keys included."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), str(key)
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))
