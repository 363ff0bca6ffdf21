"""What the Prefect target cannot express, as located diagnostics; and the retry delays it writes."""

from __future__ import annotations

import keyword
from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.retrying import retry_delays

# Prefect refuses a retry_delay_seconds list longer than this (prefect.tasks.Task.__init__); attempts past the
# list's end wait its last delay again.
MAX_DELAYS = 50


def prefect_delays(step: ResolvedStep) -> int | list[int] | None:
    """The task's retry_delay_seconds: one number for fixed backoff, else the exponential waits capped at
    max_retry_delay, at most MAX_DELAYS of them (None when the step does not retry, or Prefect cannot say it)."""
    policy = step.policy
    if not policy.retries:
        return None
    if policy.backoff != "exponential":
        return policy.retry_delay
    delays = [int(d) for d in retry_delays(policy.runtime_retry())]
    if len(delays) > MAX_DELAYS:
        # Prefect repeats the last delay for later attempts: exact when the waits have reached their cap.
        if any(d != delays[MAX_DELAYS - 1] for d in delays[MAX_DELAYS:]):
            return None
        delays = delays[:MAX_DELAYS]
    return delays


def retry_lists(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """A retry policy Prefect's 50 precomputed delays cannot hold exactly is an error, never a changed policy."""
    for step in pipeline.steps:
        policy = step.policy
        if policy.retries > MAX_DELAYS and prefect_delays(step) is None:
            own = step.step.retries is not None
            where = pipeline.locate(step, "retries") if own else pipeline.source_map.value(("defaults", "retries"))
            last = retry_delays({**policy.runtime_retry(), "retries": MAX_DELAYS})[-1]
            yield diag(
                "PG602",
                f"target 'prefect' cannot retry step '{step.name}' {policy.retries} times with exponential backoff: "
                f"Prefect takes at most {MAX_DELAYS} retry delays and repeats the last ({last:g}s) for later "
                "attempts, which would wait less than the spec says",
                where,
                f"set max_retry_delay to at most {last:g}s (the waits then reach it within {MAX_DELAYS} retries), "
                f"or use at most {MAX_DELAYS} retries",
            )


def parameter_names(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Flow parameters are the flow function's parameters: a Python keyword cannot be one."""
    for name in sorted(pipeline.spec.params):
        if keyword.iskeyword(name):
            yield diag(
                "PG602",
                f"target 'prefect' cannot take parameter '{name}': Prefect flow parameters are the flow function's "
                f"parameters, and '{name}' is a Python keyword",
                pipeline.source_map.key(("params", name)),
                f"rename the parameter, e.g. '{name}_'",
            )


def schedule_settings(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """schedule.start and catchup have no Prefect equivalent: said, never dropped (start is kept by a guard)."""
    sched = pipeline.schedule
    if sched is None:
        return
    if sched.start is not None:
        yield diag(
            "PG702",
            f"target 'prefect' has no start date for a cron schedule: the deployment's schedule fires from when it "
            f"is deployed, and the flow completes at once, running no step, for a scheduled run before {sched.start}",
            pipeline.source_map.value(("schedule", "start")),
            "deploy on or after the start date, or pause the deployment's schedule until then",
        )
    if sched.catchup:
        yield diag(
            "PG702",
            "target 'prefect' does not catch up: Prefect schedules runs from now on, never for times before the "
            "deployment existed or while its schedule was paused",
            pipeline.source_map.value(("schedule", "catchup")),
            "start the missed runs yourself: `prefect deployment run NAME/NAME` once per missed run",
        )
