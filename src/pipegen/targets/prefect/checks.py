"""What the Prefect target cannot express, as located diagnostics; and the retry delays it writes."""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, Location, diag
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.retrying import retry_delays
from pipegen.targets.prefect.options import PrefectOptions

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
    """A retry policy Prefect's 50 precomputed delays cannot hold exactly is an error, never a changed policy.

    With max_retry_delay the waits stop growing within 50 retries (every duration is at most a year), and Prefect
    repeats the last delay exactly; without it, each wait past the 50th would double the one before.
    """
    inexact = [s for s in pipeline.steps if s.policy.retries > MAX_DELAYS and prefect_delays(s) is None]
    by_defaults = [s.name for s in inexact if s.step.retries is None and s.step.max_retry_delay is None]
    for step in inexact:
        if step.name in by_defaults:
            continue
        where = "retries" if step.step.retries is not None else "backoff"
        yield _inexact(pipeline.locate(step, where), f"step '{step.name}'", step.policy.retries)
    if by_defaults:
        retries = pipeline.step(by_defaults[0]).policy.retries
        names = ", ".join(f"'{n}'" for n in by_defaults)
        yield _inexact(pipeline.source_map.value(("defaults", "retries")), f"steps {names}", retries)


def _inexact(where: Location, steps: str, retries: int) -> Diagnostic:
    return diag(
        "PG602",
        f"target 'prefect' cannot retry {steps} {retries} times with exponential backoff and no max_retry_delay: "
        f"Prefect takes at most {MAX_DELAYS} retry delays and waits the last one again for every later attempt, "
        "where the spec doubles it each time",
        where,
        f"set max_retry_delay (the waits then stop growing within {MAX_DELAYS} retries), or retry at most "
        f"{MAX_DELAYS} times",
    )


def deploy_templates(pipeline: Pipeline, options: PrefectOptions) -> Iterator[Diagnostic]:
    """No option value that reaches prefect.yaml may hold `{{`.

    `prefect deploy` templates every value of the file (`{{ $VAR }}`, `{{ prefect.variables.x }}`, block
    references; unknown placeholders are dropped) and has no escape: such a value would not reach Prefect as written.
    """
    if options.work_pool is None:
        return
    base = ("targets", "prefect", "work_pool")
    for path, is_key in _strings_with_braces(options.work_pool.model_dump(), base):
        parent = ".".join(str(p) for p in (path[:-1] if is_key else path))
        what = f"a key of {parent}" if is_key else parent
        yield diag(
            "PG602",
            f"target 'prefect' cannot write {what} to prefect.yaml: it holds '{{{{', which `prefect deploy` reads as a "
            "template placeholder (it has no escape)",
            pipeline.source_map.key(path) if is_key else pipeline.source_map.value(path),
            "write the value without '{{' (or set it in the work pool's base job template, which Prefect does not "
            "template at deploy time)",
        )


def _strings_with_braces(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], bool]]:
    """(path, is a key) of every string holding `{{` inside value, keys included, in document order."""
    if isinstance(value, str):
        if "{{" in value:
            yield path, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if "{{" in str(key):
                yield (*path, key), True
            yield from _strings_with_braces(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings_with_braces(item, (*path, i))


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
            "run the missed ones yourself (`prefect deployment run FLOW/DEPLOYMENT`; ${run.date} is then the day "
            "each runs), or set catchup: false",
        )
