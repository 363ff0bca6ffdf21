"""The runtime's requests for Spark and Ray steps that a target's task submits and waits for through pipegen.runtime.

`spark.submit` (spark-submit against the backend's master), Spark on AWS (`spark.emr`, `spark.emr_serverless`,
`spark.emr_on_eks`, `spark.glue`: runtime.spark_aws_jobs) and `ray.address` (a job on a running Ray cluster's job
server): the run_step kinds `spark` and `ray` (pipegen.runtime.step), the same request on every target whose tasks
call the runtime (KFP's components, Prefect's tasks), so each submits exactly what `pipegen run` submits: the same
spark-submit argv, the same AWS request and job name, the same Ray submission ids (derived from `<pipeline>-<step>`
and the run key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import RayBackend, SparkBackend

# Spark platforms whose jobs the runtime submits to AWS and waits for (runtime.spark_aws_jobs.PLATFORMS).
AWS_PLATFORMS = ("emr", "emr_serverless", "emr_on_eks", "glue")
# How a target's task runs each (Support.variants): through the runtime, as `pipegen run` does.
AWS_TITLES = {
    "emr": "an EMR step",
    "emr_serverless": "an EMR Serverless job run",
    "emr_on_eks": "an EMR on EKS job run",
    "glue": "a Glue job run",
}
AWS = (
    "runtime submitting {title} (runtime.spark_aws_jobs, as `pipegen run` does: named from the run key, so a retry "
    "waits for the job it submitted) and waiting; the step's timeout stops it; the image needs pipegen-ml[aws]"
)
# Glue reads run arguments as `--key value` (getResolvedOptions): a key is a name, never a reference.
GLUE_KEY = re.compile(r"--[A-Za-z_][A-Za-z0-9_.-]*\Z")

# The address of a Ray that `pipegen run` starts (pipegen.localrun.ray.LOCAL); no orchestrator's task has one.
LOCAL_RAY = "local"


def spark_request(step: ResolvedStep, backend: SparkBackend) -> dict[str, Any]:
    """The `spark` settings of a spark.submit step or a Spark job on AWS: template strings (master, conf values,
    py_files, jars) stay templates, rendered in the task; the others are passed on as written, as `pipegen run`
    passes them. A job on AWS carries its platform and the platform's ids (cluster, application, role, job)."""
    if backend.platform in AWS_PLATFORMS:
        ids = getattr(backend, backend.platform).model_dump(exclude_none=True)
        spark: dict[str, Any] = {"platform": backend.platform, "ids": dict(sorted(ids.items()))}
    else:
        spark = {"master": backend.master, "deploy_mode": backend.deploy_mode}
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
        spark = spark_request(step, backend)
        if "platform" in spark:
            # The AWS job's name is made from this and the run key (runtime.spark_aws_jobs.spark_job_name), as
            # `pipegen run` names it: a retried task finds the job it submitted.
            spark["job_name"] = f"{pipeline.name}-{step.name}"
        return "spark", {**spec, "spark": spark}
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


def aws_spark_checks(pipeline: Pipeline, target: str) -> Iterator[Diagnostic]:
    """What a Spark job on AWS submitted by a target's task cannot take: a secret in its request (a plain value in
    the job's arguments or properties), and what a Glue run does not take (sizes, conf, packages; arguments that are
    not `--key value` pairs)."""
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, SparkBackend) or backend.platform not in AWS_PLATFORMS:
            continue
        at = ("backends", str(step.backend_name))
        for i, arg in enumerate(step.body.command):
            secret = next((r for r in parse_template(arg).refs if r.namespace == "secret"), None)
            if secret is not None:
                yield diag(
                    "PG602",
                    f"target '{target}' cannot put {secret} in the command of Spark step '{step.name}': the job's "
                    "request holds its arguments as plain text",
                    pipeline.locate(step, step.kind, "command", i),
                    "read the secret inside the job (its role, or the platform's secret store)",
                )
        places: list[tuple[tuple[str, str | int], str]] = [(("conf", k), v) for k, v in sorted(backend.conf.items())]
        places += [((key, i), v) for key in ("py_files", "jars") for i, v in enumerate(getattr(backend, key))]
        for path, value in places:
            secret = next((r for r in parse_template(value).refs if r.namespace == "secret"), None)
            if secret is not None:
                yield diag(
                    "PG602",
                    f"target '{target}' cannot pass {secret} in the {path[0]} of spark backend '{step.backend_name}': "
                    "it would be a plain value in the job's request",
                    pipeline.source_map.value((*at, *path)),
                    "give the job its credentials through the platform (its role, or a secret store)",
                )
        if backend.platform == "glue":
            yield from _glue(pipeline, step, backend, target)


def _glue(pipeline: Pipeline, step: ResolvedStep, backend: SparkBackend, target: str) -> Iterator[Diagnostic]:
    at = ("backends", str(step.backend_name))
    for key in ("conf", "driver", "executors", "packages"):
        if getattr(backend, key):
            yield diag(
                "PG602",
                f"target '{target}' cannot set '{key}' of spark backend '{step.backend_name}' on platform glue: a "
                "Glue run takes only arguments",
                pipeline.source_map.key((*at, key)),
                "set it on the Glue job itself (worker type, number of workers, job parameters)",
            )
    args = step.body.command[1:]
    for i in range(0, len(args), 2):
        if not GLUE_KEY.match(args[i]) or i + 1 == len(args):
            yield diag(
                "PG602",
                f"target '{target}' passes the arguments of Glue step '{step.name}' as the run's `--key value` "
                "arguments: "
                + (f"'{args[i]}' is not a --key" if not GLUE_KEY.match(args[i]) else f"'{args[i]}' has no value"),
                pipeline.locate(step, step.kind, "command", i + 1),
                "write the command as [script, --key, value, ...] with plain keys (the script must be the Glue job's)",
            )
            return
