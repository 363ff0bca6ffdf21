"""`targets: {prefect: {...}}`: the options a spec can give the Prefect target.

Every value here reaches prefect.yaml, which `prefect deploy` templates: `{{ $VAR }}`, `{{ prefect.variables.x }}`
and `{{ prefect.blocks.... }}` are replaced, unknown placeholders dropped, and there is no escape. A value
holding `{{` would not reach Prefect as written, so it is refused here (a located PG202).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError


def _templated(value: Any, where: str) -> str | None:
    """The path of the first key or string inside value that holds `{{`, else None."""
    if isinstance(value, str):
        return where if "{{" in value else None
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            if "{{" in str(key):
                return f"{where}.{key} (the key)"
            found = _templated(value[key], f"{where}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _templated(item, f"{where}[{i}]")
            if found:
                return found
    return None


def _refuse_templates(value: Any, where: str) -> None:
    found = _templated(value, where)
    if found is not None:
        raise PydanticCustomError(
            "pg_value",
            "{where} holds {marker}, which `prefect deploy` would read as a template placeholder (it has no escape)",
            {
                "where": found,
                "marker": "'{{'",
                "hint": "write the value without '{{' (set it in the work pool's base job template instead, "
                "where Prefect does not template it)",
            },
        )


class WorkPool(BaseModel):
    """The work pool the deployment runs in (prefect.yaml `work_pool`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(
        min_length=1,
        description="The work pool's name, e.g. ml-process-pool (`prefect work-pool create NAME --type process`).",
    )
    job_variables: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the work pool's base job template variables, e.g. {image: ..., env: {...}}, for this "
        "deployment. Never put a secret's value here: prefect.yaml is committed; a secret reaches steps as "
        "PIPEGEN_SECRET_<NAME> in the worker's environment.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _refuse_templates(value, "work_pool.name")
        return value

    @field_validator("job_variables")
    @classmethod
    def _variables(cls, value: dict[str, Any]) -> dict[str, Any]:
        _refuse_templates(value, "work_pool.job_variables")
        return value


class PrefectOptions(BaseModel):
    """`targets: {prefect: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    work_pool: WorkPool | None = Field(
        None,
        description="The work pool of the spec's deployment in prefect.yaml. Without it, `prefect deploy` takes the "
        "pool from --pool or PREFECT_DEFAULT_WORK_POOL_NAME.",
    )
