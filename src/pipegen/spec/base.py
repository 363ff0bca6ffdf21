"""The base of every spec model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base for spec models: unknown keys are errors, values are not coerced, models are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
