"""The engine seam of the differential harness: the request an engine module reads, the result it writes.

Each engine runs in its own environment as `<venv>/bin/python -m tests.differential.engines.<engine> REQUEST.json`
(Airflow and KFP cannot share one). The module runs the pipeline once on its real engine and writes
RESULT.json into the request's workdir; it exits 0 even when the pipeline failed (a failed pipeline is a
result) and non-zero only when the engine module itself broke. Everything else (MLflow state, webhooks,
job argv/env) the parent reads after the run. This module imports nothing heavy: every venv loads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULT_NAME = "RESULT.json"
# passed: succeeded; skipped: skipped by an `on_fail: skip` evaluation (or its descendants); failed: failed
# finally, after its retries; not_run: never started because the pipeline failed first; rejected: an evaluate
# step whose judgement failed (thresholds or champion), whatever the engine shows for it (Airflow's
# short-circuit, KFP's false branch, Step Functions' Choice, `pipegen run`'s skipped/failed).
OUTCOMES = ("passed", "skipped", "failed", "not_run", "rejected")
STATUSES = ("succeeded", "failed")
# Which venv runs which engine module (relative to the repository root).
VENVS = {
    "pipegen": ".venv",
    "airflow": ".venv-airflow",
    "kfp": ".venv-kfp",
    "stepfunctions": ".venv",
    "prefect": ".venv-prefect",
}


@dataclass(frozen=True)
class Request:
    """What the harness asks one engine to run (REQUEST.json)."""

    engine: str
    spec: str
    compiled: str
    workdir: str
    tracking_uri: str
    params: dict[str, str] = field(default_factory=dict)
    scheduled_time: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    airflow_db: str | None = None
    # The session's Prefect API server (PREFECT_API_URL); without one the Prefect engine starts its own.
    prefect_api: str | None = None

    @classmethod
    def read(cls, path: str | Path) -> Request:
        """Load a REQUEST.json."""
        data = json.loads(Path(path).read_text())
        return cls(**data)

    def write(self, path: str | Path) -> None:
        """Write this request as REQUEST.json."""
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @property
    def result_path(self) -> Path:
        """Where the engine writes its RESULT.json."""
        return Path(self.workdir) / RESULT_NAME

    def environment(self) -> dict[str, str]:
        """The environment the engine and every job it starts see: this process's plus the request's."""
        return {**os.environ, **self.env}

    def compiled_file(self, target: str, suffix: str) -> Path:
        """The compiled output of one target, e.g. compiled_file("airflow", ".py")."""
        return Path(self.compiled) / target / f"{self.pipeline_name()}{suffix}"

    def pipeline_name(self) -> str:
        """The spec's `name:` (names every compiled file)."""
        return str(load_pipeline(self.spec).name)

    def run_date(self) -> str:
        """${run.date} for this run: the scheduled instant's date in the spec's timezone (today there if manual)."""
        from pipegen.runtime.step import run_date_from

        pipeline = load_pipeline(self.spec)
        zone = pipeline.schedule.timezone if pipeline.schedule is not None else "UTC"
        return run_date_from(self.scheduled_time or "", zone)


@dataclass(frozen=True)
class StepResult:
    """One step's end on an engine."""

    outcome: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {OUTCOMES}")


@dataclass(frozen=True)
class Result:
    """What one engine run ended in (RESULT.json)."""

    engine: str
    status: str
    steps: dict[str, StepResult]
    wall_seconds: float
    log: str
    # CPU (user + system) of the engine module and every process it waited for (its tasks, components and
    # local jobs; not Batch jobs, which moto runs): filled in by main(). On a shared 2-core machine the
    # suite's cost is CPU, not wall time.
    cpu_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    @classmethod
    def read(cls, path: str | Path) -> Result:
        """Load a RESULT.json."""
        data = json.loads(Path(path).read_text())
        steps = {name: StepResult(**step) for name, step in data.pop("steps").items()}
        return cls(steps=steps, **data)

    def write(self, path: str | Path) -> None:
        """Write this result as RESULT.json."""
        data = asdict(self)
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


_PIPELINES: dict[str, Any] = {}


def load_pipeline(spec: str) -> Any:
    """The spec checked and resolved by pipegen's own front end (cached per process)."""
    if spec not in _PIPELINES:
        from pipegen.frontend import check_file
        from pipegen.resolve import resolve

        checked = check_file(spec)
        if not checked.ok:
            raise ValueError(f"{spec} does not validate: {[str(d) for d in checked.diagnostics]}")
        _PIPELINES[spec] = resolve(checked, spec)
    return _PIPELINES[spec]


def settle_evaluations(request: Request, steps: dict[str, StepResult]) -> dict[str, StepResult]:
    """Mark evaluate steps whose judgement failed as `rejected`, with the runtime's reasons.

    The runtime's evaluate tags the judged run `pipegen.evaluation` = passed|failed and records its reasons
    on every engine, so the verdict is read from this engine's MLflow store instead of from each engine's
    own way of showing it. An evaluate step that never judged (not run, or an error reaching MLflow)
    keeps the outcome the engine gave it.
    """
    from pipegen.runtime import tags
    from pipegen.runtime.tracking import client

    pipeline = load_pipeline(request.spec)
    settled = dict(steps)
    c = client(request.tracking_uri)
    experiment = c.get_experiment_by_name(pipeline.experiment)
    if experiment is None:
        return settled
    for step in pipeline.steps:
        current = settled.get(step.name)
        if step.kind != "evaluate" or current is None or current.outcome in ("passed", "not_run"):
            continue
        runs = c.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`{tags.STEP}` = '{step.body.run_of}'", max_results=5
        )
        for run in runs:
            if run.data.tags.get(tags.EVALUATION) == "failed":
                settled[step.name] = StepResult("rejected", run.data.tags.get(tags.EVALUATION_REASONS))
                break
    return settled


def main(run: Callable[[Request], Result], argv: list[str] | None = None) -> int:
    """Entry point of an engine module: read REQUEST.json, run once, write RESULT.json; 0 unless the module broke."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.differential.engines.<engine> REQUEST.json", file=sys.stderr)
        return 2
    request = Request.read(args[0])
    Path(request.workdir).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        result = run(request)
    except Exception:  # noqa: BLE001 - the harness shows the traceback; a broken engine module is exit 1
        traceback.print_exc()
        print(f"engine module {request.engine} broke after {time.monotonic() - started:.1f}s", file=sys.stderr)
        return 1
    dataclasses.replace(result, cpu_seconds=round(cpu_seconds(), 2)).write(request.result_path)
    return 0


def cpu_seconds() -> float:
    """User + system CPU of this process and the children it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
