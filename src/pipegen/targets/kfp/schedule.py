"""The recurring-run file beside a scheduled pipeline, and what becomes of the schedule's timezone on KFP.

KFP 2.x recurring runs have no timezone of their own: the v2beta1 API's CronSchedule holds only `cron`,
`start_time` and `end_time`, and the ScheduledWorkflow controller reads every cron in one cluster-wide zone
(its CRON_SCHEDULE_TIMEZONE, UTC unless the installation sets it). pipegen therefore moves the cron from the
spec's timezone to that zone (`targets.kfp.scheduler_timezone`): exactly when the offset between the two never
changes, and otherwise with the zone's standard-time offset and a located warning saying when it fires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline
from pipegen.targets.kfp.cron_shift import shift_cron
from pipegen.targets.kfp.options import KfpOptions

# Offsets are read over one year: the start date's, else this one (no clock may reach the output).
REFERENCE_YEAR = 2026


@dataclass(frozen=True)
class Placement:
    """The 5-field cron the scheduler gets, and a warning when it cannot fire at the spec's local times."""

    cron: str
    warning: Diagnostic | None


def _offsets(zone: str, year: int) -> tuple[int, int]:
    """(standard, daylight) UTC offsets of a zone in minutes over a year; equal for a fixed-offset zone."""
    tz = ZoneInfo(zone)
    seen: dict[int, bool] = {}
    day = datetime(year, 1, 1, 12, tzinfo=UTC)
    while day.year == year:
        local = day.astimezone(tz)
        offset = local.utcoffset()
        assert offset is not None
        seen[int(offset.total_seconds() // 60)] = bool(local.dst())
        day += timedelta(days=1)
    standard = [o for o, dst in seen.items() if not dst] or sorted(seen)
    daylight = [o for o, dst in seen.items() if dst] or standard
    return min(standard), max(daylight)


def _hhmm(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def place(pipeline: Pipeline, options: KfpOptions) -> Placement:
    """Where the spec's cron goes in the scheduler's zone, and whether that is exact."""
    sched = pipeline.schedule
    assert sched is not None
    year = sched.start.year if sched.start else REFERENCE_YEAR
    spec_std, spec_dst = _offsets(sched.timezone, year)
    sched_std, sched_dst = _offsets(options.scheduler_timezone, year)
    where = pipeline.source_map.value(("schedule", "timezone"))
    scheduler = f"KFP's scheduler reads crons in {options.scheduler_timezone} (targets.kfp.scheduler_timezone)"
    fixed = spec_std == spec_dst and sched_std == sched_dst
    if sched.timezone == options.scheduler_timezone or (fixed and spec_std == sched_std):
        return Placement(sched.cron, None)
    shifted = shift_cron(sched.cron, spec_std - sched_std)
    hint = (
        "use a timezone with a fixed UTC offset, or set the KFP installation's CRON_SCHEDULE_TIMEZONE to the "
        "spec's timezone and targets.kfp.scheduler_timezone to match"
    )
    if shifted is None:
        return Placement(
            sched.cron,
            diag(
                "PG702",
                f"target 'kfp' cannot move cron '{sched.cron}' from {sched.timezone} exactly; {scheduler}, so it "
                f"fires at those times in {options.scheduler_timezone}, not in {sched.timezone}",
                where,
                hint,
            ),
        )
    later = (spec_dst - spec_std) - (sched_dst - sched_std)
    if later == 0:
        return Placement(shifted, None)  # the offset between the zones never changes: exact all year
    return Placement(
        shifted,
        diag(
            "PG702",
            f"target 'kfp' cannot follow daylight saving time in {sched.timezone}: {scheduler}, so cron "
            f"'{sched.cron}' becomes '{shifted}' there (converted with the standard-time offset); "
            f"{_firing(sched.cron, spec_std, spec_dst, later)}",
            where,
            hint,
        ),
    )


def _firing(cron: str, standard: int, daylight: int, later: int) -> str:
    """When the converted cron fires in local time, in standard and in daylight time."""
    minute, hour = cron.split()[:2]
    std, dst = f"standard time ({_hhmm(standard)})", f"daylight time ({_hhmm(daylight)})"
    if minute.isdigit() and hour.isdigit():
        moved = (int(hour) * 60 + int(minute) + later) % 1440
        return f"it fires at {int(hour):02d}:{int(minute):02d} local time in {std} and at {moved // 60:02d}:{moved % 60:02d} in {dst}"
    direction = "later" if later > 0 else "earlier"
    return f"it fires at the cron's local times in {std} and {abs(later)} minutes {direction} in {dst}"


def check(pipeline: Pipeline, options: KfpOptions) -> list[Diagnostic]:
    """The schedule's warning, if the recurring run cannot fire at the spec's local times all year."""
    if pipeline.schedule is None:
        return []
    warning = place(pipeline, options).warning
    return [warning] if warning is not None else []


def _start_time(start: date, zone: str) -> str:
    """Midnight of the start date in the spec's timezone, as the RFC 3339 UTC time the API takes."""
    local = datetime.combine(start, time(0), tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recurring_run(pipeline: Pipeline, options: KfpOptions) -> str:
    """A V2beta1RecurringRun body for POST /apis/v2beta1/recurringruns, less its pipeline reference.

    The pipeline is uploaded separately (the IR is written only with --ir), so the file names no pipeline:
    the submitter adds `pipeline_version_reference` ({pipeline_id, pipeline_version_id}) and, optionally,
    `experiment_id`, or passes these fields to kfp.Client().create_recurring_run.
    """
    sched = pipeline.schedule
    assert sched is not None
    cron: dict[str, str] = {"cron": f"0 {place(pipeline, options).cron}"}  # KFP's cron has seconds first
    if sched.start:
        cron["start_time"] = _start_time(sched.start, sched.timezone)
    doc: dict[str, object] = {
        "display_name": f"{pipeline.name} schedule",
        "description": pipeline.spec.description or f"The {pipeline.name} pipeline on its schedule.",
        "mode": "ENABLE",
        "trigger": {"cron_schedule": cron},
        "no_catchup": not sched.catchup,
        "max_concurrency": 1,
        "runtime_config": {"parameters": dict(sorted(pipeline.spec.params.items()))},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
