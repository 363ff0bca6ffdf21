"""The runtime's actions by name, for the command line and the Lambda handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def action(name: str) -> Callable[..., dict[str, Any]]:
    """The function behind an action name; imported lazily so each action loads only what it needs."""
    if name == "start_run":
        from pipegen.runtime.start_run import start_run

        return start_run
    if name == "close_run":
        from pipegen.runtime.start_run import close_run_action

        return close_run_action
    if name == "gate":
        from pipegen.runtime.gates import run_gate

        return lambda **kwargs: run_gate(kwargs)
    if name == "evaluate":
        from pipegen.runtime.evaluate import evaluate

        return evaluate
    if name == "promote":
        from pipegen.runtime.promote import promote

        return promote
    if name == "notify":
        from pipegen.runtime.notify import notify

        return notify
    if name == "run_date":
        from pipegen.runtime.context import run_date

        return run_date
    if name == "step":
        from pipegen.runtime.step import step_action

        return step_action
    if name == "spark_job":
        from pipegen.runtime.spark_jobs import spark_job

        return spark_job
    if name == "ray_job":
        from pipegen.runtime.ray_jobs import ray_job

        return ray_job
    raise ValueError(f"unknown runtime action '{name}' (expected one of: {', '.join(ACTIONS)})")


ACTIONS = (
    "start_run",
    "gate",
    "evaluate",
    "promote",
    "notify",
    "step",
    "run_date",
    "spark_job",
    "ray_job",
    "close_run",
)
