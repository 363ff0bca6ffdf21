"""Run one spec on every engine that can run it, against shared services, and compare their end states."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.differential import compare, expected, state
from tests.differential.engines import VENVS, Request, Result, load_pipeline
from tests.differential.expected import Diagnostic, Expected
from tests.differential.services import Services

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("pipegen", "airflow", "kfp", "stepfunctions", "prefect")
# The compile target each engine runs (`pipegen run` runs the spec itself).
TARGETS = {"airflow": "airflow", "kfp": "kfp", "stepfunctions": "stepfunctions", "prefect": "prefect"}
AWS_BACKENDS = {"aws_batch", "sagemaker"}
# An engine run's deadline (the engine modules' own watchdog), and the harness's, a little later. Generous: on a
# busy 2-core machine one Airflow or KFP run of a small spec takes minutes.
ENGINE_TIMEOUT = 840
HARNESS_TIMEOUT = ENGINE_TIMEOUT + 60


# Engines whose local runner cannot show a fan-out's parallelism, and why (printed under a fan-out's job span).
ONE_TASK_AT_A_TIME = {
    "kfp": (
        "kfp.local runs tasks one at a time (kfp 2.17, kfp/local/orchestrator/enhanced_dag_orchestrator.py "
        "run_enhanced_dag pops one task off a topological order and runs it to its end; its ParallelExecutor "
        "serves only dsl.ParallelFor), so the branches' jobs run one after the other here; the IR's branches are "
        "independent (no dependentTasks edge between them: tests/kfp/test_fanout_ir.py), which a KFP backend "
        "runs in parallel"
    ),
    "airflow": (
        "dag.test() runs the scheduled task instances one at a time in its own process (Airflow 3, "
        "airflow/sdk/definitions/dag.py DAG.test without use_executor), so the branches' jobs run one after the "
        "other here; the DAG has no edge between the branches, and a scheduler runs them side by side "
        "(benchmarks/fanout_airflow.py, BENCHMARKS.md)"
    ),
}


def independent_jobs(spec: str) -> bool:
    """Whether two job-running steps of the spec are on separate branches (neither is upstream of the other)."""
    pipeline = load_pipeline(spec)
    upstream = {s.name: set(s.upstream) for s in pipeline.steps}

    def ancestors(name: str) -> set[str]:
        found: set[str] = set()
        pending = list(upstream[name])
        while pending:
            step = pending.pop()
            if step not in found:
                found.add(step)
                pending += upstream[step]
        return found

    jobs = [s.name for s in pipeline.steps if s.kind == "train" or getattr(s, "backend", None) is not None]
    return any(b not in ancestors(a) and a not in ancestors(b) for a in jobs for b in jobs if a < b)


def engine_module_exists(engine: str) -> bool:
    """Whether tests/differential/engines/<engine>.py is there yet."""
    return (Path(__file__).parent / "engines" / f"{engine}.py").exists()


def scheduled_instant(spec: str, day: str) -> str:
    """The schedule's first fire on `day` in the spec's timezone, as a UTC instant (`...Z`)."""
    from croniter import croniter

    pipeline = load_pipeline(spec)
    if pipeline.schedule is None:
        raise ValueError(f"{spec} has no schedule: --date needs one")
    zone = ZoneInfo(pipeline.schedule.timezone)
    midnight = datetime.fromisoformat(day).replace(tzinfo=zone)
    fire = croniter(pipeline.schedule.cron, midnight - timedelta(seconds=1)).get_next(datetime)
    if fire.date() != midnight.date():
        raise ValueError(f"{spec}'s schedule `{pipeline.schedule.cron}` does not fire on {day}")
    return fire.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SpecRun:
    """One spec run on several engines: the comparison and what each engine reported."""

    spec: str
    table: compare.Table
    results: dict[str, Result]
    skipped: dict[str, str]
    spans: dict[str, str] = field(default_factory=dict)
    # Each engine's compile diagnostics (its target's `pipegen compile` warnings; none for `pipegen run`).
    diagnostics: dict[str, list[Diagnostic]] = field(default_factory=dict)
    expected: tuple[Expected, ...] = ()

    @property
    def agree(self) -> bool:
        """True when at least one engine ran and every engine that ran ended in the same state."""
        return bool(self.results) and not self.table.differing

    @property
    def problems(self) -> list[str]:
        """What fails this run given its expected differences: unexcused rows, excuses without diagnostics."""
        if not self.results:
            return ["no engine ran"]
        return expected.problems(self.spec, self.table, self.diagnostics, self.expected)

    def report(self) -> str:
        """The table, the full values of differing rows, skipped engines and wall times."""
        lines = [f"== {self.spec}"]
        for engine, reason in self.skipped.items():
            lines.append(f"   {engine}: not run ({reason})")
        for engine, found in self.diagnostics.items():
            for diagnostic in found:
                lines.append(f"   {engine} compile: {diagnostic}")
        for item in self.expected:
            try:
                line, column = expected.locate(self.spec, item.setting)
                where = f"{Path(self.spec).name}:{line}:{column} (`{item.setting}`)"
            except ValueError as exc:
                where = str(exc)
            lines.append(
                f"   expected difference on {item.engine}: {', '.join(item.rows)} ({item.code} at {where}: "
                f"{item.reason})"
            )
        lines.append(self.table.render())
        for row in self.table.differing:
            excused_by = [f"{e.engine} {e.code}" for e in self.expected if e.covers(row)]
            lines.append(f"DIFFERS (expected: {', '.join(excused_by)}): {row}" if excused_by else f"DIFFERS: {row}")
            for engine in self.table.engines:
                lines.append(f"    {engine:14} {self.table.rows[row].get(engine, compare.MISSING)}")
        walls = ", ".join(f"{e} {r.wall_seconds:.1f}s" for e, r in self.results.items())
        lines.append(f"wall time: {walls}")
        cpu = ", ".join(f"{e} {r.cpu_seconds:.1f}s" for e, r in self.results.items())
        lines.append(f"engine module CPU: {cpu}")
        branches = independent_jobs(self.spec)
        for engine, span in self.spans.items():
            lines.append(f"jobs on {engine}: {span}")
            if branches and engine in ONE_TASK_AT_A_TIME:
                lines.append(f"    {engine}: {ONE_TASK_AT_A_TIME[engine]}")
        if self.expected:
            lines.extend(self.problems)
            lines.append("AGREE BUT FOR EXPECTED DIFFERENCES" if not self.problems else "DIFFER")
        else:
            lines.append("AGREE" if self.agree else "DIFFER")
        return "\n".join(lines) + "\n"


def compile_targets(spec: str, out: Path) -> tuple[dict[str, str | None], dict[str, list[Diagnostic]]]:
    """Compile the spec for each engine's target: ({target: None when it compiled, else the output},
    {target: the located diagnostics it printed, warnings included})."""
    found: dict[str, str | None] = {}
    diagnostics: dict[str, list[Diagnostic]] = {}
    for target in TARGETS.values():
        proc = subprocess.run(
            [str(ROOT / ".venv/bin/pipegen"), "compile", spec, "-t", target, "-o", str(out)],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        found[target] = None if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout.strip())
        diagnostics[target] = expected.parse_diagnostics(proc.stderr + proc.stdout)
    return found, diagnostics


def already_compiled(spec: str, out: Path) -> dict[str, str | None]:
    """Which targets' outputs a given directory holds for this spec (its files are used as they are)."""
    name = load_pipeline(spec).name
    suffixes = {"airflow": ".py", "kfp": ".py", "stepfunctions": ".asl.json", "prefect": ".py"}
    return {
        target: None if (out / target / f"{name}{suffix}").exists() else f"no {target} output in {out}"
        for target, suffix in suffixes.items()
    }


def why_not(engine: str, spec: str, compiled: dict[str, str | None]) -> str | None:
    """Why an engine cannot run this spec (None: it can)."""
    if not engine_module_exists(engine):
        return f"tests/differential/engines/{engine}.py is not written yet"
    if engine == "pipegen":
        from pipegen import localrun

        # `pipegen run` says itself which backends it cannot run (none, once it submits AWS jobs too).
        unsupported = getattr(localrun, "unsupported_backends", None)
        problems = unsupported(load_pipeline(spec)) if unsupported is not None else []
        return f"`pipegen run` cannot run it yet: {problems[0].message}" if problems else None
    diagnostics = compiled[TARGETS[engine]]
    return f"{TARGETS[engine]} does not compile it: {diagnostics.splitlines()[0]}" if diagnostics else None


def uses_aws(spec: str) -> bool:
    """Whether the spec needs moto: an AWS backend or an s3:// gate."""
    pipeline = load_pipeline(spec)
    backends = {s.backend.type for s in pipeline.steps if s.backend is not None}
    gates = [json.dumps(s.gate) for s in pipeline.steps if s.gate]
    return bool(backends & AWS_BACKENDS) or any("s3://" in g for g in gates)


def uses_ray(spec: str) -> bool:
    """Whether the spec has a step on a ray backend (the session then starts a Ray head)."""
    return any(s.backend is not None and s.backend.type == "ray" for s in load_pipeline(spec).steps)


def prepare_aws(spec: str, services: Services) -> None:
    """Create what the spec names on moto: buckets of its s3:// gates, Batch queues and job definitions."""
    pipeline = load_pipeline(spec)
    # boto3's default clients (tests/support_aws) read these from the environment. Only these keys are set and
    # put back, never the whole environment: lanes start engine modules from other threads meanwhile, with a
    # copy of os.environ (their requests set their own AWS variables over these).
    overrides = {**services.aws_credentials("harness"), "AWS_ENDPOINT_URL": services.endpoint}
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        import boto3

        from tests.support_aws import batch_queue

        s3 = boto3.client("s3")
        for step in pipeline.steps:
            for bucket in re.findall(r"s3://([a-z0-9][a-z0-9.-]+)", json.dumps(step.gate or {})):
                if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                    s3.create_bucket(Bucket=bucket)
            if step.backend is not None and step.backend.type == "aws_batch":
                batch_queue(step.backend.job_queue, step.backend.job_definition)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Plan:
    """One spec made ready to run: compiled, its AWS resources created, one request per engine that can run it."""

    spec: str
    requests: dict[str, Request]
    skipped: dict[str, str]
    diagnostics: dict[str, list[Diagnostic]]
    expected: tuple[Expected, ...]


@dataclass
class EngineRun:
    """One engine's run of a plan and its normalised end state (read right after it ended)."""

    result: Result
    state: dict[str, str]
    span: str | None


def plan_spec(
    spec: str,
    services: Services,
    engines: list[str],
    params: dict[str, str],
    scheduled_time: str | None,
    workdir: Path,
    compiled_dir: Path | None = None,
    expect: Sequence[Expected] = (),
) -> Plan:
    """Compile (or take compiled_dir as it is), find the engines able to run it, create its AWS resources."""
    spec = str(Path(spec).resolve())
    if compiled_dir is None:
        out = workdir / "compiled"
        compiled, diagnostics = compile_targets(spec, out)
    else:
        out = compiled_dir
        compiled = already_compiled(spec, out)
        # The given outputs are run as they are; the diagnostics are the spec's own compilation's.
        diagnostics = compile_targets(spec, workdir / "diagnostics")[1]
    skipped = {e: reason for e in engines if (reason := why_not(e, spec, compiled))}
    able = [e for e in engines if e not in skipped]
    if services.aws and uses_aws(spec):
        prepare_aws(spec, services)
    requests = {e: _request(e, spec, out, workdir / e, services, params, scheduled_time) for e in able}
    found = {e: diagnostics[TARGETS[e]] for e in able if e in TARGETS}
    return Plan(spec, requests, skipped, found, tuple(expect))


def run_engine(plan: Plan, engine: str, services: Services, niceness: int = 0) -> EngineRun:
    """Run one engine of the plan and read what it left: its MLflow store, webhooks and job records.

    niceness: how much lower than this process's the engine module's CPU priority is (and its children's).

    Read at once, before the engine runs anything else: webhooks and Batch job records are kept per engine
    (per receiver path, per MLflow server), not per spec.
    """
    request = plan.requests[engine]
    result = _run_engine(request, niceness)
    assert services.receiver is not None
    records = [Path(request.env["PIPEGEN_DIFF_RECORD"])]
    if services.aws:
        from tests.differential.aws import record_path

        records.append(record_path(services.root / "aws", request.tracking_uri))
    jobs = state.job_records(*records)
    end_state = compare.normalise(
        engine,
        result,
        state.mlflow_state(request.tracking_uri, load_pipeline(plan.spec)),
        services.receiver.take(engine),
        jobs,
        request.tracking_uri,
    )
    for path in records[1:]:
        path.unlink(missing_ok=True)  # Batch records are per server: the next spec starts empty
    return EngineRun(result, end_state, job_span(jobs) if len(jobs) > 1 else None)


def conclude(plan: Plan, runs: dict[str, EngineRun]) -> SpecRun:
    """The comparison of the engines' end states (in the plan's engine order)."""
    ordered = {e: runs[e] for e in plan.requests if e in runs}
    spans = {e: r.span for e, r in ordered.items() if r.span is not None}
    return SpecRun(
        plan.spec,
        compare.table({e: r.state for e, r in ordered.items()}),
        {e: r.result for e, r in ordered.items()},
        plan.skipped,
        spans,
        plan.diagnostics,
        plan.expected,
    )


def run_spec(
    spec: str,
    services: Services,
    engines: list[str],
    params: dict[str, str],
    scheduled_time: str | None,
    workdir: Path,
    compiled_dir: Path | None = None,
    expect: Sequence[Expected] = (),
) -> SpecRun:
    """Compile (or take compiled_dir as it is), run each able engine once (in parallel), read, compare.

    expect: the differences this run may show, each backed by a diagnostic its compilation must emit.
    """
    plan = plan_spec(spec, services, engines, params, scheduled_time, workdir, compiled_dir, expect)
    with ThreadPoolExecutor(max_workers=max(1, len(plan.requests))) as pool:
        futures = {e: pool.submit(run_engine, plan, e, services) for e in plan.requests}
        runs = {e: f.result() for e, f in futures.items()}
    return conclude(plan, runs)


def job_span(jobs: list[dict[str, Any]]) -> str:
    """How long the jobs took together against the longest one: about 1x when they ran side by side."""
    span = max(j["ended"] for j in jobs) - min(j["started"] for j in jobs)
    longest = max(j["ended"] - j["started"] for j in jobs)
    return f"{len(jobs)} jobs spanned {span:.1f}s, the longest took {longest:.1f}s ({span / longest:.2f}x)"


def _request(
    engine: str,
    spec: str,
    out: Path,
    workdir: Path,
    services: Services,
    params: dict[str, str],
    scheduled_time: str | None,
) -> Request:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    assert services.receiver is not None
    env = {
        # Job scripts are `python -m tests.differential.jobs....`: importable from every engine's processes.
        "PYTHONPATH": str(ROOT),
        "PIPEGEN_DIFF_RECORD": str(workdir / "jobs.jsonl"),
        "PIPEGEN_DIFF_STATE": str(services.root / "state"),
        "DIFF_WEBHOOK": services.receiver.url(engine),
        "PIPEGEN_DIFF_ENGINE_TIMEOUT": str(ENGINE_TIMEOUT),
        # Where the scenarios' job scripts are, for steps that take a file (a Spark application), not a module.
        "DIFF_JOBS": str(ROOT / "tests" / "differential" / "jobs"),
        **services.aws_credentials(engine),
    }
    if services.ray_address:
        # The session's Ray head; the submitting side says its authentication mode explicitly, as the head does.
        env.update(RAY_ADDRESS=services.ray_address, RAY_AUTH_MODE="disabled")
    if services.endpoint:
        env.update(AWS_ENDPOINT_URL=services.endpoint, MOTO_PORT=services.endpoint.rsplit(":", 1)[1])
    return Request(
        engine=engine,
        spec=spec,
        compiled=str(out),
        workdir=str(workdir),
        tracking_uri=services.mlflow[engine].uri,
        params=dict(params),
        scheduled_time=scheduled_time,
        env=env,
        airflow_db=str(services.airflow_db) if engine == "airflow" and services.airflow_db else None,
        prefect_api=services.prefect.api_url if engine == "prefect" and services.prefect else None,
    )


def _run_engine(request: Request, niceness: int = 0) -> Result:
    path = Path(request.workdir) / "REQUEST.json"
    request.write(path)
    python = ROOT / VENVS[request.engine] / "bin" / "python"
    log = Path(request.workdir) / "module.log"
    nice = ["nice", "-n", str(niceness)] if niceness else []
    with log.open("wb") as out:
        proc = subprocess.run(
            [*nice, str(python), "-m", f"tests.differential.engines.{request.engine}", str(path)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT,
            timeout=HARNESS_TIMEOUT,
        )  # fmt: skip
    if proc.returncode != 0 or not request.result_path.exists():
        raise RuntimeError(f"engine module {request.engine} broke (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
    return Result.read(request.result_path)


def session_dir() -> Path:
    """A fresh scratch directory for one harness session."""
    return Path(tempfile.mkdtemp(prefix="pipegen-diff-"))


def main(
    specs: list[str],
    engines: list[str],
    params: dict[str, str],
    day: str | None,
    compiled: Path | None = None,
    services: Services | None = None,
) -> int:
    """Run every spec on the engines, print one table per spec; 0 only when all agree everywhere.

    services: already running ones to use (and leave running), e.g. a test session's; else started here.
    """
    root = session_dir()
    own = services is None
    if services is None:
        aws = any(uses_aws(str(Path(s).resolve())) for s in specs) or "stepfunctions" in engines
        ray = any(uses_ray(str(Path(s).resolve())) for s in specs)
        services = Services(root, engines, aws=aws, ray=ray)
        print(f"session: {root}", file=sys.stderr)
        services.start()  # stops what it started when it fails
    ok = True
    try:
        for index, spec in enumerate(specs):
            scheduled = scheduled_instant(str(Path(spec).resolve()), day) if day else None
            run = run_spec(spec, services, engines, params, scheduled, root / f"spec{index}", compiled)
            sys.stdout.write(run.report())
            sys.stdout.flush()
            ok = ok and run.agree
    finally:
        if own:
            services.stop()
    return 0 if ok else 1


def parse_params(items: list[str]) -> dict[str, Any]:
    """--param k=v pairs as a dict (values stay strings, as `pipegen run --param` takes them)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param takes NAME=VALUE; got '{item}'")
        params[key] = value
    return params
