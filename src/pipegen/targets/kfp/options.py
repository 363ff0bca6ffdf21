"""`targets: {kfp: {...}}`: the options a spec can give the KFP target."""

from __future__ import annotations

import zoneinfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


class KfpOptions(BaseModel):
    """`targets: {kfp: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    base_image: str = Field(
        "python:3.11-slim",
        description="The image runtime components run in; it must have pipegen's runtime (pipegen[runtime]) installed.",
    )
    install_kfp_package: bool = Field(
        True,
        description="Let kfp pip-install itself into each runtime component's container (false when the image has kfp).",
    )
    scheduler_timezone: str = Field(
        "UTC",
        description="The timezone the KFP installation's scheduler reads crons in (its CRON_SCHEDULE_TIMEZONE); "
        "the schedule's cron is moved from the spec's timezone to this one.",
    )

    @field_validator("scheduler_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise ValueError(f"unknown timezone '{value}': use an IANA timezone name such as UTC or Europe/Paris")
        return value
