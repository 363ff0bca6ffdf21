"""The ranges every target accepts for the spec's durations, counts and numbers: one table, and its validators.

A value outside them fails late and far from the spec: Airflow's timedelta overflows when the DAG file loads,
Step Functions refuses the state machine or ends the execution after a year, KFP rounds an integer default
to a double. The spec models apply the table through the validators below; targets and docs read LIMITS.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from pipegen.durations import format_duration, parse_duration

DAY = 86400
YEAR = 365 * DAY
# The largest whole number a reader that holds numbers as IEEE doubles keeps exactly: JavaScript and JSONata,
# the `google.protobuf.Value` of KFP's IR (an int default of 2**53+1 compiles to 9007199254740992.0), and
# pipegen's runtime, which reads gate numbers as floats.
JSON_SAFE_INT = 2**53 - 1
INT32_MAX = 2**31 - 1

_YEAR_WHY = "Step Functions runs an execution for at most a year"
_INT32_WHY = "AWS APIs such as SageMaker's and Batch's take counts as 32-bit integers"
_FINITE_WHY = "JSON, which carries it to every target, has no Infinity or NaN"


@dataclass(frozen=True)
class Limit:
    """The range of one spec field that every target accepts, and why each end is where it is."""

    label: str
    kind: Literal["duration", "integer", "number"]
    low: float
    high: float
    why: str  # what sets the upper end
    why_low: str = ""  # what sets the lower end, when it is not plain sense (a timeout longer than zero)
    unit: str = ""  # of a number the spec writes in other units ('MiB' for memory quantities)

    def show(self, value: float) -> str:
        """A bound or value as a spec writes it: '365d', '100', '0.001'."""
        if self.kind == "duration":
            return format_duration(int(value))
        if self.kind == "integer":
            return str(int(value))
        if abs(value) == sys.float_info.max:
            return "any finite number"
        text = str(int(value)) if float(value).is_integer() else f"{value:g}"
        return f"{text} {self.unit}" if self.unit else text

    @property
    def range(self) -> str:
        """The accepted range in words: '1s to 365d', or 'finite' for a number bounded only by JSON."""
        if self.kind == "number" and self.high == sys.float_info.max:
            return f"{self.show(self.low)} or more, finite" if self.low > -sys.float_info.max else "any finite number"
        return f"{self.show(self.low)} to {self.show(self.high)}"


# One row per bounded spec field (dotted where the bare key would be ambiguous). Durations are in seconds.
LIMITS: dict[str, Limit] = {
    "timeout": Limit("timeout", "duration", 1, YEAR, _YEAR_WHY),
    "retry_delay": Limit("retry_delay", "duration", 0, YEAR, "Step Functions retries within an execution of a year"),
    "max_retry_delay": Limit(
        "max_retry_delay",
        "duration",
        1,
        YEAR,
        "Step Functions' MaxDelaySeconds is under 366 days, in an execution of at most a year",
        "Airflow reads a max_retry_delay of zero as no cap, Step Functions as a cap of 1s",
    ),
    "sagemaker.timeout": Limit(
        "timeout", "duration", 1, 28 * DAY, "SageMaker ends a training job after at most 28 days, MaxRuntimeInSeconds"
    ),
    "retries": Limit(
        "retries", "integer", 0, 100, "Step Functions records every attempt in an execution history of 25,000 events"
    ),
    "wait.timeout": Limit("wait timeout", "duration", 1, YEAR, "a gate waits inside the run, and " + _YEAR_WHY),
    "wait.interval": Limit("wait interval", "duration", 1, YEAR, "a gate waits inside the run, and " + _YEAR_WHY),
    "max_age": Limit(
        "max_age",
        "duration",
        1,
        36500 * DAY,
        "file and object times start in 1970, so a larger age passes for any object at all",
    ),
    "min_rows": Limit("min_rows", "integer", 0, JSON_SAFE_INT, "the runtime reads it as a double, exact to 2**53-1"),
    "instance_count": Limit("instance_count", "integer", 1, INT32_MAX, _INT32_WHY),
    "resources.gpu": Limit("gpu", "integer", 0, INT32_MAX, _INT32_WHY),
    "resources.cpu": Limit(
        "cpu", "number", 0.001, INT32_MAX, _INT32_WHY, "Kubernetes counts CPU in whole millicores, 1m = 0.001"
    ),
    "resources.memory": Limit(
        "memory",
        "number",
        1,
        INT32_MAX,
        "AWS Batch takes memory in MiB as a 32-bit integer",
        "AWS Batch takes memory in whole MiB",
        "MiB",
    ),
    "spark.cores": Limit("cores", "integer", 1, INT32_MAX, "Spark reads core counts as 32-bit integers"),
    "spark.instances": Limit(
        "instances", "integer", 1, INT32_MAX, "Spark reads spark.executor.instances as a 32-bit integer"
    ),
    "spark.memory": Limit(
        "memory",
        "number",
        1,
        INT32_MAX,
        "Spark reads driver and executor memory in MiB as a 32-bit integer",
        "Spark counts driver and executor memory in whole MiB",
        "MiB",
    ),
    "ray.cpus": Limit(
        "cpus", "number", 0, sys.float_info.max, _FINITE_WHY, "Ray refuses negative entrypoint resources"
    ),
    "ray.gpus": Limit(
        "gpus", "number", 0, sys.float_info.max, _FINITE_WHY, "Ray refuses negative entrypoint resources"
    ),
    "ray.replicas": Limit(
        "replicas", "integer", 0, INT32_MAX, "KubeRay reads a worker group's replicas as a 32-bit integer"
    ),
    # The smallest maximum of the platforms that run it: AWS Batch puts at most 1,000 nodes in a multi-node
    # parallel job (its default limit; Kubernetes Indexed Jobs take 100,000 completions, SageMaker's
    # InstanceCount is bounded by the account's quota).
    "distributed.nodes": Limit(
        "nodes", "integer", 1, 1000, "AWS Batch runs at most 1,000 nodes in a multi-node parallel job"
    ),
    "distributed.procs_per_node": Limit(
        "procs_per_node", "integer", 1, INT32_MAX, "torchrun and the Kubeflow Trainer read it as a 32-bit integer"
    ),
    "startup_timeout": Limit("startup_timeout", "duration", 1, YEAR, "a pod starts inside the run, and " + _YEAR_WHY),
    "toleration_seconds": Limit(
        "toleration_seconds", "integer", 0, JSON_SAFE_INT, "JSON carries it to every target, exact to 2**53-1"
    ),
    "champion.min_delta": Limit("min_delta", "number", 0, sys.float_info.max, _FINITE_WHY),
    "params.integer": Limit(
        "integer parameter",
        "integer",
        -JSON_SAFE_INT,
        JSON_SAFE_INT,
        "KFP keeps parameter defaults as doubles, exact only to 2**53-1",
        "KFP keeps parameter defaults as doubles, exact only from -(2**53-1)",
    ),
    "params.number": Limit("number parameter", "number", -sys.float_info.max, sys.float_info.max, _FINITE_WHY),
}


def _show(value: Any) -> str:
    """A value as YAML spells it, shortened for messages."""
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def outside(limit: Limit, shown: str, value: float) -> tuple[str, str]:
    """Message and hint for a value below or above a limit, naming the bound and why it is there."""
    if value < limit.low:
        reason = f" ({limit.why_low})" if limit.why_low else ""
        message = f"{limit.label} {shown} is below the limit: at least {limit.show(limit.low)}{reason}"
    else:
        message = f"{limit.label} {shown} exceeds the limit: at most {limit.show(limit.high)} ({limit.why})"
    what = "a duration" if limit.kind == "duration" else "a value"
    return message, f"use {what} from {limit.range}"


def _outside(limit: Limit, shown: str, value: float) -> PydanticCustomError:
    message, hint = outside(limit, shown, value)
    return PydanticCustomError("pg_limit", "{message}", {"message": message, "hint": hint})


def check_duration(limit: Limit, value: str) -> str:
    """A well-formed duration within limit (zero where the limit wants more is a PG205 duration error)."""
    seconds = parse_duration(value)
    if seconds == 0 and limit.low > 0:
        reason = f" ({limit.why_low})" if limit.why_low else ""
        raise PydanticCustomError(
            "pg_duration", "duration '{value}' must be longer than zero{reason}", {"value": value, "reason": reason}
        )
    if not limit.low <= seconds <= limit.high:
        raise _outside(limit, repr(value), seconds)
    return value


def check_integer(limit: Limit, value: Any) -> Any:
    """An int (not a bool, float or text) within limit; runs before pydantic's own int validation."""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f"write a whole number from {limit.range}"
        if isinstance(value, float | str) and _looks_numeric(value):
            hint += " without a decimal point or exponent"
        raise PydanticCustomError(
            "pg_value",
            "{message}",
            {"message": f"{limit.label} {_show(value)} is not an integer from {limit.range}", "hint": hint},
        )
    if not limit.low <= value <= limit.high:
        raise _outside(limit, str(value), value)
    return value


def check_number(limit: Limit, value: float) -> float:
    """A finite number within limit."""
    if not math.isfinite(value):
        raise PydanticCustomError(
            "pg_limit",
            "{message}",
            {
                "message": f"{limit.label} {_show(value)} is not a finite number ({_FINITE_WHY})",
                "hint": "write a finite number",
            },
        )
    if not limit.low <= value <= limit.high:
        raise _outside(limit, _show(value), value)
    return value


def _looks_numeric(value: float | str) -> bool:
    # PyYAML reads `1e38` (no '.') as text, and `1.0e+38` as a float: both were meant as numbers.
    return isinstance(value, float) or re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value) is not None


def bounded_duration(key: str) -> AfterValidator:
    """The validator that applies LIMITS[key] to a Duration field."""
    limit = LIMITS[key]
    return AfterValidator(_tagged(lambda value: check_duration(limit, value), limit))


def bounded_integer(key: str) -> BeforeValidator:
    """The validator that applies LIMITS[key] to an int field (before pydantic's strict int check)."""
    limit = LIMITS[key]
    return BeforeValidator(_tagged(lambda value: check_integer(limit, value), limit))


def bounded_number(key: str) -> AfterValidator:
    """The validator that applies LIMITS[key] to a float field."""
    limit = LIMITS[key]
    return AfterValidator(_tagged(lambda value: check_number(limit, value), limit))


def _tagged(fn: Any, limit: Limit) -> Any:
    # The JSON Schema generator finds the range here (pipegen.schema).
    fn.limit = limit
    return fn


_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\Z")
_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SUFFIX |= {f"{s.upper()}i": 1024.0 ** (i + 1) for i, s in enumerate("kMGTPE")}


def quantity_value(quantity: str) -> float | None:
    """A Kubernetes quantity ('32Gi', '500m', '1.5T') as a plain number, or None when it is not one."""
    match = _QUANTITY.match(quantity)
    return float(match[1]) * _SUFFIX.get(match[2] or "", 1.0) if match else None


def check_cpu(value: float | str) -> float | str:
    """A CPU amount (cores, or a Kubernetes quantity like '500m') within LIMITS['resources.cpu'], in millicores."""
    limit = LIMITS["resources.cpu"]
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    cores = float(match[1]) * _SUFFIX.get(match[2] or "", 1.0) if match else value
    if not isinstance(cores, float | int):
        return value  # not a quantity: the pattern reports it
    if not math.isfinite(cores):
        check_number(limit, cores)
    if not limit.low <= cores <= limit.high:
        raise _outside(limit, _show(value), cores)
    millicores = cores * 1000
    if abs(millicores - round(millicores)) > 1e-6 * max(1.0, millicores):
        raise PydanticCustomError(
            "pg_limit",
            "{message}",
            {
                "message": f"cpu {_show(value)} is finer than a millicore ({limit.why_low})",
                "hint": f"round it to {round(millicores) / 1000:g}",
            },
        )
    return value


def check_memory(value: str) -> str:
    """A memory quantity ('32Gi', '512M') within LIMITS['resources.memory'], which counts MiB."""
    match = _QUANTITY.match(value)
    if match is None:
        return value  # not a quantity: the pattern reports it
    mib = float(match[1]) * _SUFFIX.get(match[2] or "", 1.0) / 2**20
    limit = LIMITS["resources.memory"]
    if not limit.low <= mib <= limit.high:
        message, hint = outside(limit, f"{value!r} ({mib:.0f} MiB)" if mib >= 1 else repr(value), mib)
        raise PydanticCustomError("pg_limit", "{message}", {"message": message, "hint": hint})
    return value


# Spark's memory settings reach the JVM as -Xmx (spark-submit's launcher): a whole number and one of the
# suffixes the JVM reads. Without a suffix the JVM would read bytes where Spark reads MiB, and Spark's own
# longer forms ('2gb') are refused by the JVM.
SPARK_MEMORY = r"[0-9]+[kKmMgGtT]"
_SPARK_MIB = {"k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2}


def check_spark_memory(value: str) -> str:
    """A Spark memory size ('512m', '4g') within LIMITS['spark.memory'], which counts MiB."""
    if not re.fullmatch(SPARK_MEMORY, value):
        raise PydanticCustomError(
            "pg_value",
            "{message}",
            {
                "message": f"Spark memory {_show(value)} is not a size such as 512m or 4g",
                "hint": "write a whole number and one of k, m, g, t (the JVM's -Xmx form, which spark-submit passes on)",
            },
        )
    mib = int(value[:-1]) * _SPARK_MIB[value[-1].lower()]
    limit = LIMITS["spark.memory"]
    if not limit.low <= mib <= limit.high:
        message, hint = outside(limit, f"{value!r} ({mib:.0f} MiB)" if mib >= 1 else repr(value), mib)
        raise PydanticCustomError("pg_limit", "{message}", {"message": message, "hint": hint})
    return value


def check_param(value: Any) -> Any:
    """A parameter default that every target can carry: an int within 2**53-1, a finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int):
        limit = LIMITS["params.integer"]
        if not limit.low <= value <= limit.high:
            raise _outside(limit, _show(value), value)
        return value
    return check_number(LIMITS["params.number"], value)
