"""A training step's tasks end its MLflow run when the job they ran left it RUNNING (it crashed, was killed, timed
out, or never ended the run), as the runtime does after the jobs it runs itself (runtime.step._closing).

Airflow 3 runs a task's on_retry/on_failure/on_success callbacks in the task runner's finalize (dag.test() too),
and in the DAG processor when a worker was lost; each is `_close_run(step, status)` of the DAG file, which calls
the runtime's close_run action: a run its job ended itself keeps its status, a retry's job resumes the run.

- The task whose outcome is the job's (the operator, or the status sensor of a create/sensor/teardown group):
  FAILED on each failed try and at the end, FINISHED on success. A sensor's retry is not a failed job: it re-reads
  the same object, whose job may still be running, so only the sensor's end closes the run.
- A task that creates what the job needs (the object, an Indexed Job's Service): FAILED when it fails for good,
  since no job will then end the run.
- Never a teardown: it runs whatever the job's outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipegen.render import py
from pipegen.resolve import ResolvedStep
from pipegen.targets.airflow.resources import CREATED, resource_kind
from pipegen.targets.airflow.view import Task, var_name

if TYPE_CHECKING:
    from pipegen.targets.airflow.backends import BackendLowering

STATUS = {"retry": "FAILED", "failure": "FAILED", "success": "FINISHED"}


def closing(lo: BackendLowering, step: ResolvedStep, tasks: list[Task]) -> list[Task]:
    """A training step's tasks (after start_run) with the callbacks that end its run as its job ended."""
    lo.helpers.add("close_run")
    watched = resource_kind(step) in CREATED
    for task in tasks:
        events: tuple[str, ...]
        if task.teardown_of:
            continue
        if task.var == var_name(step.name):  # every step's job task is named after the step
            events = ("failure", "success") if watched else ("retry", "failure", "success")
        else:
            events = ("failure",)
        task.add_operator_args(
            [(f"on_{event}_callback", f"_close_run({py(step.name)}, {py(STATUS[event])})") for event in events]
        )
    return tasks
