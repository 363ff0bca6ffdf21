"""The runtime's requests for Spark and Ray steps that a target's task submits and waits for through pipegen.runtime.

`spark.submit` (spark-submit against the backend's master) and `ray.address` (a job on a running Ray cluster's job
server): the run_step kinds `spark` and `ray` (pipegen.runtime.step), the same request on every target whose tasks
call the runtime (KFP's components, Prefect's tasks), so each submits exactly what `pipegen run` submits: the same
spark-submit argv, the same Ray submission ids (derived from `<pipeline>-<step>` and the run key).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import RayBackend, SparkBackend

# The address of a Ray that `pipegen run` starts (pipegen.localrun.ray.LOCAL); no orchestrator's task has one.
LOCAL_RAY = "local"


def spark_request(step: ResolvedStep, backend: SparkBackend) -> dict[str, Any]:
    """The `spark` settings of a spark.submit step: template strings (master, conf values, py_files, jars) stay
    templates, rendered in the task; the others are passed on as written, as `pipegen run` passes them."""
    spark: dict[str, Any] = {"master": backend.master, "deploy_mode": backend.deploy_mode}
    if backend.conf:
        spark["conf"] = dict(sorted(backend.conf.items()))
    for key in ("driver", "executors"):
        size = getattr(backend, key)
        if size is not None and (dumped := size.model_dump(exclude_none=True)):
            spark[key] = dumped
    if backend.main_class:
        spark["main_class"] = backend.main_class
    for key in ("py_files", "jars"):
        if getattr(backend, key):
            spark[key] = list(getattr(backend, key))
    if backend.packages:
        spark["packages"] = list(backend.packages)
    return spark


def ray_request(pipeline: Pipeline, step: ResolvedStep, backend: RayBackend) -> dict[str, Any]:
    """The `ray` settings of a ray.address step: the address a template; runtime_env literal, as `pipegen run` sends it."""
    assert backend.address is not None  # ray.cluster is another variant
    ray: dict[str, Any] = {"address": backend.address, "job_name": f"{pipeline.name}-{step.name}"}
    if backend.runtime_env:
        # Not a spec template: Ray reads it as written (the runtime passes it on untouched).
        ray["runtime_env"] = backend.runtime_env
    if backend.entrypoint_resources is not None:
        resources = backend.entrypoint_resources.model_dump(exclude_none=True)
        if resources:
            ray["entrypoint_resources"] = resources
    return ray


def cluster_request(pipeline: Pipeline, step: ResolvedStep) -> tuple[str, dict[str, Any]]:
    """(run_step kind, request) of a spark or ray step: its command and env, the backend's settings, its timeout.

    The step's timeout travels in the request: the runtime stops the job itself when it passes (a KFP pod's deadline
    ends only the task, and Prefect's timeout does not interrupt a sync task). The caller adds a train step's
    tracking URI, as for the other backends.
    """
    backend, body = step.backend, step.body
    spec: dict[str, Any] = {"command": list(body.command)}
    if body.env:
        spec["env"] = dict(sorted(body.env.items()))
    if step.policy.timeout is not None:
        spec["timeout_seconds"] = step.policy.timeout
    if isinstance(backend, SparkBackend):
        return "spark", {**spec, "spark": spark_request(step, backend)}
    assert isinstance(backend, RayBackend), backend
    return "ray", {**spec, "ray": ray_request(pipeline, step, backend)}


def local_ray_addresses(pipeline: Pipeline, target: str) -> Iterator[Diagnostic]:
    """PG602 at `address: local` of each ray backend a step uses: that is a Ray `pipegen run` starts for its run;
    a target's task submits to a running cluster's job server."""
    used = {s.backend_name for s in pipeline.steps if isinstance(s.backend, RayBackend)}
    for name in sorted(n for n in used if n is not None):
        backend = pipeline.spec.backends[name]
        if isinstance(backend, RayBackend) and backend.address == LOCAL_RAY:
            yield diag(
                "PG602",
                f"target '{target}' cannot start a Ray for backend '{name}': address 'local' is a Ray head that "
                "`pipegen run` starts and stops for its run",
                pipeline.source_map.value(("backends", name, "address")),
                "set address to a running cluster's job server, e.g. http://ray-head:8265, or ${env.RAY_ADDRESS} "
                "(read where the task runs)",
            )
