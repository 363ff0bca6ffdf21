"""What a KubeRay RayJob cannot take from a spec, whichever target creates it (Airflow, KFP, Argo)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.k8s.ray import fractional_gpus
from pipegen.resolve import Pipeline
from pipegen.spec import RayBackend


def runtime_env_strings(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, text) for every string of a runtime_env, its mapping keys included."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), str(key)
            yield from runtime_env_strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from runtime_env_strings(item, (*path, i))


def kuberay_checks(pipeline: Pipeline, name: str, backend: RayBackend, target: str) -> Iterator[Diagnostic]:
    """PG602 for fractional GPUs per pod, and for runtime_env text KubeRay's submitter would expand."""
    for path, amount in fractional_gpus(backend):
        yield diag(
            "PG602",
            f"target '{target}' cannot give a pod of backend '{name}' {amount:g} GPUs: Kubernetes assigns whole GPUs "
            "(nvidia.com/gpu)",
            pipeline.source_map.value(("backends", name, *path)),
            "ask for a whole number of GPUs per pod; share a GPU between Ray tasks with num_gpus in the code",
        )
    for path, text in runtime_env_strings(backend.runtime_env, ("runtime_env",)):
        if "$" in text or "`" in text:
            # KubeRay's submitter puts runtimeEnvYAML, as JSON, in double quotes on a bash command line
            # (ray-operator/controllers/ray/common/job.go, strconv.Quote): bash would expand `$...` and run `...`.
            yield diag(
                "PG602",
                f"target '{target}' cannot pass runtime_env text '{text}' of backend '{name}' unchanged: KubeRay's "
                "job submitter reads runtimeEnvYAML on a bash command line, where '$' and '`' expand",
                pipeline.source_map.value(("backends", name, *path)),
                "write the value without '$' and '`' (env values belong in the step's env, which reaches the job as "
                "written)",
            )
