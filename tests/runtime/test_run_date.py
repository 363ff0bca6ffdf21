"""${run.date}: the scheduled time's date in the schedule's timezone, on every target that uses the runtime."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipegen.runtime.step import run_date_from


@pytest.mark.parametrize(
    ("scheduled", "timezone", "expected"),
    [
        # 02:00 in Los Angeles is 10:00 UTC in winter (PST) and 09:00 UTC in summer (PDT): same local date.
        ("2026-01-15T10:00:00Z", "America/Los_Angeles", "2026-01-15"),
        ("2026-07-15T09:00:00Z", "America/Los_Angeles", "2026-07-15"),
        # 20:00 in Los Angeles is the next day in UTC: the run's date is the local one.
        ("2026-01-16T04:00:00Z", "America/Los_Angeles", "2026-01-15"),
        ("2026-01-16T04:00:00+00:00", "UTC", "2026-01-16"),
        # 00:30 in Paris on 1 July is still 30 June in UTC.
        ("2026-06-30T22:30:00Z", "Europe/Paris", "2026-07-01"),
        ("2026-06-30", "UTC", "2026-06-30"),
    ],
)
def test_scheduled_date_in_the_schedules_timezone(scheduled: str, timezone: str, expected: str) -> None:
    assert run_date_from(scheduled, timezone) == expected


@pytest.mark.parametrize("unset", ["", "1970-01-01T00:00:00Z", "{{$.pipeline_job_schedule_time_utc}}"])
def test_manual_runs_take_today_in_the_timezone(unset: str) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: its date differs from UTC's for 14 hours a day
    before = datetime.now(UTC).astimezone(ZoneInfo(zone)).date().isoformat()
    got = run_date_from(unset, zone)
    after = datetime.now(UTC).astimezone(ZoneInfo(zone)).date().isoformat()
    assert got in (before, after)
