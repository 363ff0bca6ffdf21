"""Spec format v1 as strict pydantic models that mirror the YAML, key for key.

The scalar types (names, templates, durations...) live in `scalars`; the ranges every target accepts for
durations, counts and numbers, in `limits` (the one table targets and docs read).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from pipegen.spec.backends import (
    BACKEND_TYPES,
    SPARK_PLATFORMS,
    AwsBatchBackend,
    Backend,
    KubernetesBackend,
    LocalBackend,
    RayBackend,
    RayEntrypointResources,
    SageMakerBackend,
    SparkBackend,
    SparkDriver,
    SparkExecutors,
    backend_variant,
    variants_text,
)
from pipegen.spec.base import Model
from pipegen.spec.distributed import DISTRIBUTED_RUNTIMES, LAUNCHERS, Distributed, Toleration, procs_per_node_of
from pipegen.spec.limits import (
    JSON_SAFE_INT,
    LIMITS,
    Limit,
    bounded_duration,
    bounded_integer,
    bounded_number,
    check_cpu,
    check_memory,
    check_param,
)
from pipegen.spec.scalars import (
    BACKEND_NAME,
    ENV_NAME,
    MAX_NAME,
    MODEL_NAME,
    PARAM_NAME,
    PIPELINE_NAME,
    STEP_NAME,
    Alias,
    BackendName,
    Cron,
    Duration,
    EnvName,
    MetricName,
    ModelName,
    ParamName,
    PipelineName,
    Quantity,
    StepName,
    ThresholdStr,
    TStr,
    Url,
    _check_alias,
    _check_cron,
    _check_duration,
    _check_template,
    _check_threshold,
    _check_timezone,
    _check_url,
)

__all__ = [
    "BACKEND_NAME",
    "BACKEND_TYPES",
    "DISTRIBUTED_RUNTIMES",
    "ENV_NAME",
    "FORMAT_VERSION",
    "GATE_CHECKS",
    "JSON_SAFE_INT",
    "LAUNCHERS",
    "LIMITS",
    "MAX_NAME",
    "MODEL_NAME",
    "PARAM_NAME",
    "PIPELINE_NAME",
    "SPARK_PLATFORMS",
    "STEP_KINDS",
    "STEP_NAME",
    "Alias",
    "AwsBatchBackend",
    "Backend",
    "BackendName",
    "Champion",
    "Cron",
    "Distributed",
    "Duration",
    "EnvName",
    "Evaluate",
    "FreshnessGate",
    "Gate",
    "KubernetesBackend",
    "Limit",
    "LocalBackend",
    "MetricName",
    "MlflowConfig",
    "Model",
    "ModelName",
    "Notify",
    "ParamName",
    "ParamValue",
    "PartitionExistsGate",
    "PipelineName",
    "PipelineNotify",
    "Policy",
    "Promote",
    "Quantity",
    "RayBackend",
    "RayEntrypointResources",
    "Resources",
    "RowCountGate",
    "SageMakerBackend",
    "Schedule",
    "SparkBackend",
    "SparkDriver",
    "SparkExecutors",
    "Spec",
    "SqlGate",
    "Step",
    "StepName",
    "TStr",
    "Task",
    "ThresholdStr",
    "Toleration",
    "Train",
    "Url",
    "Wait",
    "_check_alias",
    "_check_cron",
    "_check_duration",
    "_check_template",
    "_check_threshold",
    "_check_url",
    "backend_variant",
    "procs_per_node_of",
    "variants_text",
]

FORMAT_VERSION = 1
STEP_KINDS = ("gate", "task", "train", "evaluate", "promote")


# Durations, counts and numbers bounded by LIMITS (pipegen.spec.limits), one type per row of the table.
Timeout = Annotated[Duration, bounded_duration("timeout")]
RetryDelay = Annotated[Duration, bounded_duration("retry_delay")]
MaxRetryDelay = Annotated[Duration, bounded_duration("max_retry_delay")]
Retries = Annotated[int, Field(ge=LIMITS["retries"].low, le=LIMITS["retries"].high), bounded_integer("retries")]
WaitTimeout = Annotated[Duration, bounded_duration("wait.timeout")]
WaitInterval = Annotated[Duration, bounded_duration("wait.interval")]
MaxAge = Annotated[Duration, bounded_duration("max_age")]
MinRows = Annotated[int, Field(ge=LIMITS["min_rows"].low, le=LIMITS["min_rows"].high), bounded_integer("min_rows")]
Gpu = Annotated[
    int, Field(ge=LIMITS["resources.gpu"].low, le=LIMITS["resources.gpu"].high), bounded_integer("resources.gpu")
]
# The range goes to the JSON Schema only: check_cpu says why a value is out of it (and reads quantities too).
Cores = Annotated[
    float,
    Field(json_schema_extra={"minimum": LIMITS["resources.cpu"].low, "maximum": LIMITS["resources.cpu"].high}),
]
MinDelta = Annotated[
    float, Field(json_schema_extra={"minimum": LIMITS["champion.min_delta"].low}), bounded_number("champion.min_delta")
]


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

    retries: Retries | None = None
    retry_delay: RetryDelay | None = None
    backoff: Literal["fixed", "exponential"] | None = None
    max_retry_delay: MaxRetryDelay | None = None
    timeout: Timeout | None = None


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


# ---- gates ------------------------------------------------------------------------------------


class Wait(Model):
    """Keep checking until the gate passes or the timeout runs out."""

    timeout: WaitTimeout
    interval: WaitInterval = "5m"


class PartitionExistsGate(Model):
    """Passes when a path (a partition) exists."""

    check: Literal["partition_exists"]
    path: TStr
    wait: Wait | None = None


class FreshnessGate(Model):
    """Passes when the newest object under a path is younger than max_age."""

    check: Literal["freshness"]
    path: TStr
    max_age: MaxAge
    wait: Wait | None = None


class RowCountGate(Model):
    """Passes when a table or query has at least min_rows rows."""

    check: Literal["row_count"]
    connection: TStr
    table: str | None = None
    query: TStr | None = None
    min_rows: MinRows = 1
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

    cpu: Annotated[Cores | Quantity, AfterValidator(check_cpu)] | None = None
    memory: Annotated[Quantity, AfterValidator(check_memory)] | None = None
    gpu: Gpu | None = None


class Task(Model):
    """Any command on a backend."""

    backend: BackendName | None = None
    command: Annotated[list[TStr], Field(min_length=1)]
    resources: Resources | None = None
    env: dict[EnvName, TStr] = {}
    # Beside `resources`, which is what each of the nodes gets.
    distributed: Distributed | None = None


class Train(Task):
    """A task that trains into the pipeline's MLflow run."""

    metrics: list[MetricName] = []


class Champion(Model):
    """Compare with the model version that holds the alias now."""

    metric: MetricName
    mode: Literal["max", "min"] = "max"
    min_delta: MinDelta = 0.0


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


ParamValue = Annotated[bool | int | float | str, BeforeValidator(_param_value), AfterValidator(check_param)]


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
