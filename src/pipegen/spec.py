"""Spec format v1 as strict pydantic models that mirror the YAML, key for key."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pipegen.durations import parse_duration
from pipegen.expr import ExpressionError, parse_template
from pipegen.schedule import normalize_cron
from pipegen.thresholds import parse_threshold

FORMAT_VERSION = 1
STEP_KINDS = ("gate", "task", "train", "evaluate", "promote")
# Names must be valid in every target at once. The strictest limit is KFP's: task names become
# Kubernetes DNS-1123 labels (63 characters, '_' mapped to '-'). Step Functions state names allow
# 80, leaving room for generated suffixes; Airflow task and DAG ids allow 250 of [A-Za-z0-9_.-].
MAX_NAME = 63


class Model(BaseModel):
    """Base for spec models: unknown keys are errors, values are not coerced, models are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


# ---- schedule, defaults, mlflow, notify -------------------------------------------------------


class Schedule(Model):
    """When the pipeline runs."""

    cron: Cron
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    start: date | None = None
    catchup: bool = False


def _schedule_shorthand(value: Any) -> Any:
    # `schedule: "0 2 * * *"` is shorthand for `schedule: {cron: "0 2 * * *"}`.
    return {"cron": value} if isinstance(value, str) else value


class Policy(Model):
    """Retry and timeout settings; every key is optional so steps can override just one."""

    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay: Duration | None = None
    backoff: Literal["fixed", "exponential"] | None = None
    max_retry_delay: Duration | None = None
    timeout: Duration | None = None


class MlflowConfig(Model):
    """Where runs are tracked."""

    tracking_uri: TStr | None = None
    experiment: Annotated[str, Field(min_length=1)] | None = None


class Notify(Model):
    """One notification target."""

    webhook: Url


class PipelineNotify(Model):
    """Notifications for the whole pipeline."""

    on_failure: list[Notify] = []
    on_success: list[Notify] = []


# ---- backends ---------------------------------------------------------------------------------


class KubernetesBackend(Model):
    """Runs the command in a pod."""

    type: Literal["kubernetes"]
    image: TStr
    namespace: str = "default"
    service_account: str | None = None
    node_selector: dict[str, str] = {}
    env: dict[EnvName, TStr] = {}


class AwsBatchBackend(Model):
    """Submits an AWS Batch job."""

    type: Literal["aws_batch"]
    job_queue: str
    job_definition: str
    region: str | None = None


class SageMakerBackend(Model):
    """Runs a SageMaker training job."""

    type: Literal["sagemaker"]
    role_arn: str
    image: TStr
    instance_type: str
    instance_count: PosInt = 1
    output_path: TStr
    region: str | None = None


class SparkBackend(Model):
    """Submits a Spark application."""

    type: Literal["spark"]
    master: str = "local[*]"
    deploy_mode: Literal["client", "cluster"] = "client"
    conf: dict[str, str] = {}


class RayBackend(Model):
    """Submits a Ray job."""

    type: Literal["ray"]
    address: str
    runtime_env: dict[str, Any] = {}


class LocalBackend(Model):
    """Runs the command as a subprocess where the pipeline runs (the embedded default)."""

    type: Literal["local"]
    working_dir: str | None = None
    env: dict[EnvName, TStr] = {}


Backend = Annotated[
    KubernetesBackend | AwsBatchBackend | SageMakerBackend | SparkBackend | RayBackend | LocalBackend,
    Field(discriminator="type"),
]
BACKEND_TYPES = ("kubernetes", "aws_batch", "sagemaker", "spark", "ray", "local")


# ---- gates ------------------------------------------------------------------------------------


class Wait(Model):
    """Keep checking until the gate passes or the timeout runs out."""

    timeout: Duration
    interval: Duration = "5m"


class PartitionExistsGate(Model):
    """Passes when a path (a partition) exists."""

    check: Literal["partition_exists"]
    path: TStr
    wait: Wait | None = None


class FreshnessGate(Model):
    """Passes when the newest object under a path is younger than max_age."""

    check: Literal["freshness"]
    path: TStr
    max_age: Duration
    wait: Wait | None = None


class RowCountGate(Model):
    """Passes when a table or query has at least min_rows rows."""

    check: Literal["row_count"]
    connection: TStr
    table: str | None = None
    query: TStr | None = None
    min_rows: NonNegInt = 1
    wait: Wait | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> RowCountGate:
        if (self.table is None) == (self.query is None):
            raise PydanticCustomError(
                "pg_combination",
                "a row_count gate takes exactly one of 'table' and 'query'",
                {"hint": "keep 'table' to count a table's rows, or 'query' to count a query's rows"},
            )
        return self


class SqlGate(Model):
    """Passes when the first cell of a query is truthy."""

    check: Literal["sql"]
    connection: TStr
    query: TStr
    wait: Wait | None = None


Gate = Annotated[
    PartitionExistsGate | FreshnessGate | RowCountGate | SqlGate,
    Field(discriminator="check"),
]
GATE_CHECKS = ("partition_exists", "freshness", "row_count", "sql")


# ---- steps ------------------------------------------------------------------------------------


class Resources(Model):
    """What a task asks of its backend."""

    cpu: Annotated[float, Field(gt=0)] | Quantity | None = None
    memory: Quantity | None = None
    gpu: NonNegInt | None = None


class Task(Model):
    """Any command on a backend."""

    backend: BackendName | None = None
    command: Annotated[list[TStr], Field(min_length=1)]
    resources: Resources | None = None
    env: dict[EnvName, TStr] = {}


class Train(Task):
    """A task that trains into the pipeline's MLflow run."""

    metrics: list[MetricName] = []


class Champion(Model):
    """Compare with the model version that holds the alias now."""

    metric: MetricName
    mode: Literal["max", "min"] = "max"
    min_delta: Annotated[float, Field(ge=0)] = 0.0


class Evaluate(Model):
    """Judge a training run by thresholds and, optionally, against the champion."""

    run_of: StepName
    thresholds: list[ThresholdStr] = []
    champion: Champion | None = None
    on_fail: Literal["skip", "fail"] = "skip"

    @model_validator(mode="after")
    def _something_to_judge(self) -> Evaluate:
        if not self.thresholds and self.champion is None:
            raise PydanticCustomError(
                "pg_combination",
                "an evaluate step needs 'thresholds', 'champion' or both",
                {"hint": "add thresholds such as ['auc > 0.8'], or a champion: {metric: auc}"},
            )
        return self


class Promote(Model):
    """Register the run's model, alias it, and notify."""

    model: ModelName
    run_of: StepName
    artifact: Annotated[str, Field(min_length=1)] = "model"
    alias: Alias = "champion"
    notify: list[Notify] = []


class Step(Policy):
    """One step: its name, dependencies, policy overrides and exactly one kind."""

    name: StepName
    after: list[StepName] | None = None
    gate: Gate | None = None
    task: Task | None = None
    train: Train | None = None
    evaluate: Evaluate | None = None
    promote: Promote | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            raise PydanticCustomError(
                "pg_step_kind",
                "step '{name}' must have exactly one of gate, task, train, evaluate, promote (found: {found})",
                {"name": self.name, "found": found},
            )
        return self

    @property
    def kind(self) -> str:
        """Which of the step kinds this step is."""
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> Any:
        """The kind-specific part of the step."""
        return getattr(self, self.kind)


def _param_value(value: Any) -> Any:
    if not isinstance(value, bool | int | float | str):
        raise PydanticCustomError(
            "pg_value",
            "parameter default must be a string, number or boolean, not {kind}",
            {"kind": "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "null"},
        )
    return value


ParamValue = Annotated[bool | int | float | str, BeforeValidator(_param_value)]


class Spec(Model):
    """A whole pipeline spec, format version 1."""

    pipegen: Literal[1]
    name: PipelineName
    description: str = ""
    owner: str | None = None
    tags: list[str] = []
    schedule: Annotated[Schedule, BeforeValidator(_schedule_shorthand)] | None = None
    params: dict[ParamName, ParamValue] = {}
    defaults: Policy = Policy()
    mlflow: MlflowConfig = MlflowConfig()
    backends: dict[BackendName, Backend] = {}
    steps: Annotated[list[Step], Field(min_length=1)]
    notify: PipelineNotify = PipelineNotify()
    targets: dict[str, dict[str, Any]] = {}
