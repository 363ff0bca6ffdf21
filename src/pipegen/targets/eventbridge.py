"""EventBridge Scheduler: a spec's schedule as a CreateSchedule request that starts the state machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from croniter import croniter

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline
from pipegen.targets.asl import SCHEDULED_TIME

_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def aws_cron(cron: str) -> str | None:
    """A five-field cron as EventBridge's six-field cron(...), or None when EventBridge cannot express it.

    EventBridge wants '?' in one of day-of-month and day-of-week, numbers days of the week 1-7 from
    Sunday, and has a year field.
    """
    minute, hour, dom, month, dow = cron.split()
    if dom != "*" and dow != "*":
        return None
    if dow == "*":
        dow = "?"
    else:
        dom = "?"
        try:
            days = croniter.expand(f"0 0 * * {dow}")[0][4]
        except (ValueError, KeyError):
            return None
        if any(not isinstance(d, int) for d in days):
            return None
        # Names rather than numbers: cron counts Sunday as 0 (or 7), EventBridge as 1.
        dow = ",".join(_DAYS[int(d) % 7] for d in sorted({int(d) % 7 for d in days}))
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def schedule_problems(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Schedules EventBridge Scheduler cannot run as written."""
    sched = pipeline.schedule
    if sched is None:
        return
    # `schedule: "..."` and `schedule: {cron: ...}` both: the nearest located value.
    location = pipeline.source_map.value(("schedule", "cron"))
    if aws_cron(sched.cron) is None:
        yield diag(
            "PG602",
            f"target 'stepfunctions' cannot schedule '{sched.cron}': EventBridge cron cannot restrict both "
            "the day of the month and the day of the week",
            location,
            "restrict one of the two fields, or use one schedule per pattern",
        )
    if sched.catchup:
        yield diag(
            "PG702",
            "target 'stepfunctions' does not backfill: EventBridge Scheduler starts no runs for past intervals",
            location,
            'start missed runs by hand with {"scheduled_time": ...} in the execution input',
        )


def scheduler_schedule(pipeline: Pipeline, state_machine_arn: str | None, role_arn: str | None) -> dict[str, Any]:
    """The CreateSchedule request (`aws scheduler create-schedule --cli-input-json file://...`)."""
    sched = pipeline.schedule
    assert sched is not None
    expression = aws_cron(sched.cron)
    assert expression is not None
    doc: dict[str, Any] = {
        "Name": pipeline.name,
        "Description": f"Starts the {pipeline.name} state machine ({sched.preset or sched.cron}).",
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": sched.timezone,
    }
    if sched.start is not None:
        doc["StartDate"] = f"{sched.start.isoformat()}T00:00:00Z"
    doc |= {
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": state_machine_arn or f"arn:aws:states:REGION:ACCOUNT_ID:stateMachine:{pipeline.name}",
            "RoleArn": role_arn or f"arn:aws:iam::ACCOUNT_ID:role/{pipeline.name}-scheduler",
            # The scheduled time becomes the run's logical date (${run.date}), as in Airflow and KFP.
            "Input": json.dumps({SCHEDULED_TIME: "<aws.scheduler.scheduled-time>"}),
            "RetryPolicy": {"MaximumRetryAttempts": 0},
        },
    }
    return doc
