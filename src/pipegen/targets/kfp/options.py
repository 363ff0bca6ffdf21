"""`targets: {kfp: {...}}`: the options a spec can give the KFP target."""

from __future__ import annotations

import re
import zoneinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EnvSource(BaseModel):
    """A Kubernetes Secret or ConfigMap whose keys become environment variables of the same names."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="The object's name.")
    keys: list[str] = Field(
        min_length=1,
        description="Its keys, each set as the environment variable of the same name, e.g. MLFLOW_TRACKING_URI, "
        "MLFLOW_TRACKING_TOKEN.",
    )

    @field_validator("keys")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)]
        if bad:
            raise ValueError(f"'{bad[0]}' is not an environment variable name")
        return value


class KfpOptions(BaseModel):
    """`targets: {kfp: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    base_image: str | None = Field(
        None,
        description="The image KFP runs pipegen's runtime components in (gates, start_run, evaluate, promote, "
        "AWS/local steps): one you build with pipegen-ml[runtime] installed, e.g. "
        "registry.example.com/ml/pipegen-runtime:0.1. No public image has it, so there is no default; a spec "
        "with runtime components must set it.",
    )
    runtime_components: Literal["python", "container"] = Field(
        "python",
        description="How runtime steps run, each action one component every step of its kind calls with its "
        "settings as an input. python: lightweight components kfp's executor runs (kfp.local's SubprocessRunner "
        "runs them too; the image needs kfp, see install_kfp_package). container: container components running "
        "`python -m pipegen.runtime.kfp_executor` in base_image: no kfp in the image, no pip install at start, no "
        "network, and the smallest IR (about half the python form's per step); kfp.local runs them only with its "
        "DockerRunner.",
    )
    install_kfp_package: bool = Field(
        True,
        description="With runtime_components: python, let kfp pip-install itself into each runtime component's "
        "container at start (false when the image has kfp; the container form never installs anything).",
    )
    mlflow_secret: EnvSource | None = Field(
        None,
        description="A Kubernetes Secret with MLflow settings (MLFLOW_TRACKING_URI, credentials), set as environment "
        "variables on every task that talks to MLflow: ${env.X} in mlflow.tracking_uri reads the pod's environment.",
    )
    mlflow_config_map: EnvSource | None = Field(
        None,
        description="Like mlflow_secret, from a ConfigMap (for settings that are not secret, e.g. MLFLOW_TRACKING_URI).",
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
