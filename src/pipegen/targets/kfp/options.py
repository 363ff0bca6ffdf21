"""`targets: {kfp: {...}}`: the options a spec can give the KFP target."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class KfpOptions(BaseModel):
    """`targets: {kfp: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # The image runtime components run in; it must have `pipegen[runtime]` installed.
    base_image: str = "python:3.11-slim"
    # kfp installs itself into each lightweight component's container unless the image already has it.
    install_kfp_package: bool = True
