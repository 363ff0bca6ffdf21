"""Ray steps on Airflow: a task that runs the runtime's Ray job submission (runtime.ray_jobs.ray_job).

Not a provider operator: the Astronomer Ray provider is deprecated and Google's RaySubmitJobOperator reports
success for failed jobs. The runtime submits through ray.job_submission.JobSubmissionClient and waits; a retried
task reattaches to the job its run already submitted (ids derived from the run and step), the step's timeout
stops the job, a failed job fails the task with Ray's own message, and the job's logs reach the task log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import RayBackend
from pipegen.targets.airflow.view import Task, timedelta_source, var_name

if TYPE_CHECKING:
    from pipegen.targets.airflow.backends import BackendLowering

# Airflow's execution_timeout ends the task this long after the step's timeout: by then the runtime has stopped
# the job itself (at the timeout) and fetched its logs; the task's own deadline is the backstop.
STOP_MARGIN_SECONDS = 120


def checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """A Ray address Airflow can reach: not `local` (a head only `pipegen run` starts), and no secret in it (the task
    would render it into its arguments, stored and shown as a value)."""
    for name, backend in sorted(pipeline.spec.backends.items()):
        if isinstance(backend, RayBackend) and backend.address is not None:
            if backend.address == "local":
                yield diag(
                    "PG602",
                    f"target 'airflow' cannot run ray backend '{name}' at address 'local': that is a Ray head "
                    "`pipegen run` starts for one run",
                    pipeline.source_map.value(("backends", name, "address")),
                    "give the job server of a running Ray cluster (http://head:8265), e.g. ${env.RAY_ADDRESS}",
                )
            elif any(r.namespace == "secret" for r in parse_template(backend.address).refs):
                yield diag(
                    "PG602",
                    f"target 'airflow' cannot pass a secret in the address of ray backend '{name}'",
                    pipeline.source_map.value(("backends", name, "address")),
                    "reach the job server without credentials in its URL (e.g. a private network or a proxy)",
                )


def ray_task(lo: BackendLowering, step: ResolvedStep, run: Task | None) -> Task:
    """The @task that submits the step's command as a Ray job and waits for it."""
    backend = step.backend
    assert isinstance(backend, RayBackend) and backend.address is not None
    lo.helpers.add("run_ray")
    body = step.body
    env = [(py(k), lo.value(v)) for k, v in sorted(body.env.items())]
    resources = backend.entrypoint_resources.model_dump(exclude_none=True) if backend.entrypoint_resources else None
    timeout = step.policy.timeout
    kwargs = [
        ("address", lo.value(backend.address)),
        ("entrypoint", "[" + ", ".join(lo.value(a) for a in body.command) + "]"),
        # Submission ids derive from these: every target names a step's jobs alike (runtime.ray_jobs).
        ("job_name", py(f"{lo.p.name}-{step.name}")),
        ("run_key", py("{{ run_id }}")),
        # runtime_env is passed to Ray as written (as by `pipegen run`): never rendered.
        ("runtime_env", lo.literal(backend.runtime_env)),
        ("entrypoint_resources", py(resources)),
        ("env", "{" + ", ".join(f"{k}: {v}" for k, v in env) + "}"),
        ("run", run.var if run else "None"),
        # Rendered in this task (masked when it holds a secret): start_run's XCom does not carry it.
        ("tracking_uri", "TRACKING_URI" if run else py("")),
        ("timeout_seconds", py(timeout)),
    ]
    policy = lo._policy(step)
    if timeout is not None:
        policy = [(k, v) for k, v in policy if k != "execution_timeout"]
        policy.append(("execution_timeout", timedelta_source(timeout + STOP_MARGIN_SECONDS)))
    return Task(var_name(step.name), "_run_ray", kwargs, options=[("task_id", py(step.name)), *policy])
