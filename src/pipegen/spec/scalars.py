"""The scalar types of spec values: names, ${...} templates, durations, cron, thresholds, aliases, URLs."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from pipegen.durations import parse_duration
from pipegen.expr import ExpressionError, parse_template
from pipegen.schedule import normalize_cron
from pipegen.thresholds import parse_threshold

# Names must be valid in every target at once. The strictest limit is KFP's: task names become
# Kubernetes DNS-1123 labels (63 characters, '_' mapped to '-'). Step Functions state names allow
# 80, leaving room for generated suffixes; Airflow task and DAG ids allow 250 of [A-Za-z0-9_.-].
MAX_NAME = 63


def _name_check(kind: str, pattern: str, max_len: int) -> AfterValidator:
    regex = re.compile(pattern + r"\Z")

    def check(value: str) -> str:
        if not regex.match(value):
            raise PydanticCustomError(
                "pg_name",
                "invalid {kind} '{value}': must match {pattern}",
                {"kind": kind, "value": value, "pattern": pattern},
            )
        if len(value) > max_len:
            raise PydanticCustomError(
                "pg_name",
                "{kind} '{value}' is {n} characters long; the limit is {max}",
                {
                    "kind": kind,
                    "value": value,
                    "n": len(value),
                    "max": max_len,
                    "hint": f"shorten it to at most {max_len} characters",
                },
            )
        return value

    return AfterValidator(check)


PIPELINE_NAME = r"[a-z][a-z0-9-]*"
STEP_NAME = r"[a-z][a-z0-9_]*"
BACKEND_NAME = r"[a-z][a-z0-9_-]*"
PARAM_NAME = r"[a-z_][a-z0-9_]*"
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"

PipelineName = Annotated[
    str, _name_check("pipeline name", PIPELINE_NAME, MAX_NAME), Field(pattern=f"^{PIPELINE_NAME}$", max_length=MAX_NAME)
]
StepName = Annotated[
    str, _name_check("step name", STEP_NAME, MAX_NAME), Field(pattern=f"^{STEP_NAME}$", max_length=MAX_NAME)
]
BackendName = Annotated[
    str, _name_check("backend name", BACKEND_NAME, MAX_NAME), Field(pattern=f"^{BACKEND_NAME}$", max_length=MAX_NAME)
]
ParamName = Annotated[
    str, _name_check("parameter name", PARAM_NAME, MAX_NAME), Field(pattern=f"^{PARAM_NAME}$", max_length=MAX_NAME)
]
EnvName = Annotated[str, _name_check("environment variable name", ENV_NAME, 255), Field(pattern=f"^{ENV_NAME}$")]
ModelName = Annotated[str, _name_check("model name", MODEL_NAME, 256), Field(pattern=f"^{MODEL_NAME}$", max_length=256)]


def _check_template(value: str) -> str:
    try:
        parse_template(value)
    except ExpressionError as exc:
        raise PydanticCustomError("pg_expression", "{error}", {"error": str(exc)}) from None
    return value


# A string that may hold ${...} expressions.
TStr = Annotated[str, AfterValidator(_check_template)]


def _check_duration(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("pg_duration", "{error}", {"error": str(exc)}) from None
    return value


def _duration_type_hint(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError(
            "pg_duration", "duration {value} has no unit; write e.g. '{value}s'", {"value": value}
        )
    return value


Duration = Annotated[
    str,
    BeforeValidator(_duration_type_hint),
    AfterValidator(_check_duration),
    Field(pattern=r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"),
]


def _check_cron(value: str) -> str:
    try:
        normalize_cron(value)
    except ValueError as exc:
        raise PydanticCustomError("pg_schedule", "{error}", {"error": str(exc)}) from None
    return value


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(zoneinfo.available_timezones()), n=1)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        raise PydanticCustomError(
            "pg_schedule",
            "unknown timezone '{value}'{suggestion}",
            {"value": value, "suggestion": suggestion, "hint": "use an IANA timezone name such as UTC or Europe/Paris"},
        ) from None
    return value


def _check_threshold(value: str) -> str:
    try:
        parse_threshold(value)
    except ValueError as exc:
        raise PydanticCustomError("pg_threshold", "{error}", {"error": str(exc)}) from None
    return value


def _check_alias(value: str) -> str:
    # MLflow reserves 'latest' and version-like aliases ('v3').
    if not re.match(r"[A-Za-z_][A-Za-z0-9_-]*\Z", value) or value == "latest" or re.match(r"[vV]\d+\Z", value):
        raise PydanticCustomError("pg_name", "invalid MLflow alias '{value}'", {"value": value})
    return value


def _check_url(value: str) -> str:
    if not re.match(r"(https?://|\$\{)", value):
        raise PydanticCustomError("pg_value", "webhook '{value}' must be an http(s) URL", {"value": value})
    return value


Cron = Annotated[str, AfterValidator(_check_cron)]
ThresholdStr = Annotated[str, AfterValidator(_check_threshold)]
Alias = Annotated[str, AfterValidator(_check_alias)]
Url = Annotated[TStr, AfterValidator(_check_url)]
MetricName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_./-]*$")]
Quantity = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")]
NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
