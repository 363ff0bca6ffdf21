"""The run's context where the orchestrator cannot compute it: ${run.date} in the schedule's timezone.

Step Functions' intrinsics and JSONata take no IANA timezone (JSONata's $fromMillis takes a fixed
offset, which daylight saving time breaks), so a state machine whose schedule is not in UTC asks the
runtime Lambda for the date, with the same definition every target uses (`run_date_from`).
"""

from __future__ import annotations

from pipegen.runtime.step import run_date_from


def run_date(scheduled_time: str, timezone: str) -> dict[str, str]:
    """{"run_date": the scheduled time's date in timezone (today there when no time is given)}."""
    return {"run_date": run_date_from(scheduled_time, timezone)}
