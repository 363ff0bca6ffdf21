"""Cron expressions and presets, validated with croniter (the parser Airflow's timetables use)."""

from __future__ import annotations

from croniter import croniter

# Presets users know from Airflow and cron, and the cron expression each stands for.
PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def normalize_cron(text: str) -> str:
    """Return the 5-field cron expression for a cron string or preset, or raise ValueError."""
    expr = " ".join(text.split())
    if expr.startswith("@"):
        if expr not in PRESETS:
            raise ValueError(f"unknown schedule preset '{expr}' (expected one of: {', '.join(PRESETS)})")
        return PRESETS[expr]
    fields = expr.split(" ")
    # croniter also takes a 6th (seconds) field; no target schedules below a minute.
    if len(fields) != 5:
        raise ValueError(
            f"cron expression '{expr}' has {len(fields)} fields; expected 5 (minute hour day month weekday)"
        )
    if not croniter.is_valid(expr):
        raise ValueError(f"invalid cron expression '{expr}'")
    return expr
