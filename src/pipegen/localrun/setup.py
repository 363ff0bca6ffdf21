"""Everything `pipegen run` settles before the first step: which backends run here, params, MLflow, run key."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.resolve import Pipeline, RetryPolicy
from pipegen.spec import backend_variant, variants_text

DEFAULT_DB = "mlflow.db"
LOG_DIR = Path(".pipegen") / "logs"
# local: a subprocess here. aws_batch, sagemaker: submitted to AWS (the standard boto3 chain: profile,
# AWS_REGION, AWS_ENDPOINT_URL, ...) and waited for, as the KFP components do. spark: spark-submit against its
# master (localrun.spark); ray: a job on its address, or on a Ray head started here (localrun.ray). Kubernetes
# needs a cluster that `pipegen run` has no way to reach or start: compile for an orchestrator instead.
RUNNABLE_BACKENDS = ("local", "aws_batch", "sagemaker", "spark", "ray")
# Of the types that run in more than one way: spark-submit, Spark on AWS (submitted through the runtime and waited
# for, as aws_batch: runtime.spark_aws_jobs), and a Ray cluster at an address (or a local one). The Spark
# Operator and per-run KubeRay clusters need a Kubernetes cluster: compile for an orchestrator.
RUNNABLE_VARIANTS = (
    "spark.submit",
    "spark.emr",
    "spark.emr_serverless",
    "spark.emr_on_eks",
    "spark.glue",
    "ray.address",
)


def unsupported_backends(pipeline: Pipeline) -> list[Diagnostic]:
    """Steps on a backend `pipegen run` cannot run here: say so, located at the backend reference."""
    found = []
    for s in pipeline.steps:
        if s.backend is None:
            continue
        dist = s.body.distributed if s.kind in ("task", "train") else None
        if dist is not None and dist.launcher == "mpi":
            found.append(
                diag(
                    "PG602",
                    f"`pipegen run` does not start MPI jobs: step '{s.name}' uses launcher 'mpi'",
                    pipeline.locate(s, s.kind, "distributed", "launcher"),
                    "run it here with launcher: torchrun or none, or compile for a cluster",
                )
            )
        elif dist is not None and s.backend.type in ("aws_batch", "sagemaker"):
            # Its nodes would be one Batch multi-node job or one SageMaker InstanceCount: not submitted from here yet.
            found.append(
                diag(
                    "PG602",
                    f"`pipegen run` does not submit multi-node {s.backend.type} jobs yet: step '{s.name}' asks for "
                    f"{dist.nodes} nodes on backend '{s.backend_name}'",
                    pipeline.locate(s, s.kind, "distributed"),
                    "try the step here on a local backend (pipegen run starts its nodes as local processes)",
                )
            )
        if s.backend.type not in RUNNABLE_BACKENDS:
            found.append(
                diag(
                    "PG602",
                    f"`pipegen run` cannot run step '{s.name}' on backend '{s.backend_name}' ({s.backend.type}); "
                    f"it runs {', '.join(RUNNABLE_BACKENDS[:-1])} and {RUNNABLE_BACKENDS[-1]} steps",
                    pipeline.locate(s, s.kind, "backend"),
                    "compile for the orchestrator that runs this backend: "
                    "pipegen compile SPEC -t airflow|kfp|stepfunctions|prefect|argo",
                )
            )
        elif (variant := backend_variant(s.backend)) is not None and variant[0] not in RUNNABLE_VARIANTS:
            form, key = variant
            found.append(
                diag(
                    "PG602",
                    f"`pipegen run` cannot run step '{s.name}' on a {s.backend.type} backend with "
                    f"{variants_text(s.backend.type, [form])} (backend '{s.backend_name}'); it runs "
                    f"{s.backend.type} with {variants_text(s.backend.type, RUNNABLE_VARIANTS)}",
                    pipeline.source_map.key(("backends", s.backend_name or "", key)),
                    "compile for an orchestrator that runs it (`pipegen targets` lists which do)",
                )
            )
    return found


def coerce_param(name: str, raw: str, default: Any) -> Any:
    """A --param value converted to the type of the parameter's default; ValueError when it does not fit."""
    if isinstance(default, bool):
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"parameter '{name}' is a boolean; got '{raw}'")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ValueError(f"parameter '{name}' is a {type(default).__name__}; got '{raw}'") from None
    return raw


def retry_delays(policy: RetryPolicy) -> list[float]:
    """The wait before each retry, following the spec's backoff and cap (as the runtime's own retries)."""
    from pipegen.runtime.retrying import retry_delays as runtime_delays

    return runtime_delays(policy.runtime_retry())


def default_parallelism() -> int:
    """How many steps run at once unless --parallelism says: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def default_tracking_uri(cwd: Path) -> str:
    """The embedded default: a sqlite store in the working directory."""
    return f"sqlite:///{(cwd / DEFAULT_DB).resolve()}"


def run_key_for(today: date) -> str:
    """A run key like Airflow's manual run ids, unique per invocation."""
    return f"local__{today.isoformat()}T{time.strftime('%H%M%S')}_{os.getpid()}"
