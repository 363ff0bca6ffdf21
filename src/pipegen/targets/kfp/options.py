"""`targets: {kfp: {...}}`: the options a spec can give the KFP target."""

from __future__ import annotations

import zoneinfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


class KfpOptions(BaseModel):
    """`targets: {kfp: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    base_image: str | None = Field(
        None,
        description="The image KFP runs pipegen's runtime components in (gates, start_run, evaluate, promote, "
        "AWS/local steps): one you build with pipegen's [runtime] extra installed, e.g. "
        "registry.example.com/ml/pipegen-runtime:0.1. No public image has it, so there is no default; a spec "
        "with runtime components must set it.",
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
