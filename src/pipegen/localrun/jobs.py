"""The command of a task or train step: a process here (local), or a job submitted to AWS and waited for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipegen.localrun.distributed import run_nodes
from pipegen.localrun.outcome import StepFailed, Stop
from pipegen.localrun.ray import ray_step
from pipegen.localrun.spark import spark_step
from pipegen.resolve import ResolvedStep
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redacted_output import run_redacted
from pipegen.runtime.templating import Values
from pipegen.spec import AwsBatchBackend, RayBackend, SageMakerBackend, SparkBackend
from pipegen.targets.resources import batch_resources


def run_command(
    pipeline: str, step: ResolvedStep, values: Values, extra_env: Mapping[str, str], log_path: Path, stop: Stop
) -> str:
    """Run the step's command where its backend runs it; the detail the summary shows. StepFailed when it fails."""
    if isinstance(step.backend, (AwsBatchBackend, SageMakerBackend)):
        return aws_job(pipeline, step, values, extra_env, stop)
    if isinstance(step.backend, SparkBackend):
        return spark_step(step, values, extra_env, log_path, stop, job_base_name(pipeline, step))
    if isinstance(step.backend, RayBackend):
        return ray_step(step, values, extra_env, log_path, stop, job_base_name(pipeline, step))
    if step.body.distributed is not None:
        # N node processes here, with the rendezvous environment a cluster's pods get (localrun.distributed).
        argv, env, cwd = local_process(step, values, extra_env)
        run_nodes(step, argv, env, cwd, log_path, stop, values.run_id)
        return f"{step.body.distributed.nodes} nodes; log: {log_path}"
    local_command(step, values, extra_env, log_path, stop)
    return f"log: {log_path}"


def local_process(
    step: ResolvedStep, values: Values, extra_env: Mapping[str, str]
) -> tuple[list[str], dict[str, str], str | None]:
    """The argv, environment and working directory of a local step's command."""
    body = step.body
    backend = step.backend
    argv = [values.string(arg) for arg in body.command]
    env = dict(os.environ)
    # `python` in a command means the environment pipegen runs in, as with an activated virtualenv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for source in (getattr(backend, "env", {}), body.env):
        env.update({k: values.string(v) for k, v in source.items()})
    env.update(extra_env)
    return argv, env, getattr(backend, "working_dir", None) or None


def local_command(step: ResolvedStep, values: Values, extra_env: Mapping[str, str], log_path: Path, stop: Stop) -> None:
    """Run the command as a process group here, its output redacted into log_path."""
    argv, env, cwd = local_process(step, values, extra_env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        started = time.monotonic()
        try:
            # The job's env holds rendered secrets: its output reaches the log redacted.
            returncode = run_redacted(argv, cwd=cwd, env=env, timeout=step.policy.timeout, output=log, stop=stop.event)
        except FileNotFoundError:
            raise StepFailed(f"command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise StepFailed(f"timed out after {step.policy.timeout}s (log: {log_path})") from None
    # The command's own time, start to exit, apart from pipegen's around it (benchmarks/loop.py reads it),
    # beside the log, which holds only the command's output.
    timing = {"exit_code": returncode, "seconds": round(time.monotonic() - started, 3)}
    command_timing_path(log_path).write_text(json.dumps(timing) + "\n")
    if returncode != 0:
        stop.check()  # it was ended because the run was interrupted: not the command's own failure
        said = last_line(log_path)[:200]
        raise StepFailed(f"exit code {returncode}{': ' + said if said else ''} (log: {log_path})")


def command_timing_path(log_path: Path) -> Path:
    """Where a local command's exit code and wall time are written, beside its step's log."""
    return log_path.with_suffix(".command.json")


def job_base_name(pipeline: str, step: ResolvedStep) -> str:
    """What a step's AWS job is named after, before the run key is added: the same on every target."""
    return f"{pipeline}-{step.name}"


def aws_job(pipeline: str, step: ResolvedStep, values: Values, extra_env: Mapping[str, str], stop: Stop) -> str:
    """Submit the step's Batch or SageMaker job through the runtime, as the KFP components do, and wait for it.

    The job is named from the run key, so a retry of the step finds the job it already submitted (still running
    or succeeded) and waits for it. The step's timeout and an interrupt of the run stop the job.
    """
    from pipegen.runtime.aws_jobs import batch_job, batch_job_name, sagemaker_job_name, sagemaker_training

    backend = step.backend
    body = step.body
    command = [values.string(arg) for arg in body.command]
    env = {k: values.string(v) for k, v in sorted({**getattr(backend, "env", {}), **body.env}.items())}
    env.update(extra_env)
    base = job_base_name(pipeline, step)
    try:
        if isinstance(backend, AwsBatchBackend):
            name = batch_job_name(base, values.run_id)
            result: dict[str, Any] = batch_job(
                job_name=name,
                job_queue=backend.job_queue,
                job_definition=backend.job_definition,
                command=command,
                environment=env,
                resources=batch_resources(body.resources) or None,
                region=backend.region,
                timeout_seconds=step.policy.timeout,
                sleep=stop.sleep,
            )
            return f"AWS Batch job {name} ({result['job_id']}) {result['status'].lower()}"
        assert isinstance(backend, SageMakerBackend)
        result = sagemaker_training(
            job_name=sagemaker_job_name(base, values.run_id),
            image=values.string(backend.image),
            role_arn=backend.role_arn,
            instance_type=backend.instance_type,
            instance_count=backend.instance_count,
            output_path=values.string(backend.output_path),
            command=command,
            environment=env,
            max_runtime_seconds=step.policy.timeout or 86400,
            region=backend.region,
            timeout_seconds=step.policy.timeout,
            sleep=stop.sleep,
        )
        return f"SageMaker training job {result['job_name']} {result['status'].lower()}"
    except RuntimeFailure as exc:  # the job failed, was stopped, or outlived the step's timeout
        raise StepFailed(str(exc)) from None


def last_line(path: Path, window: int = 4096) -> str:
    """The last non-empty line of a log, reading only its end (a failed job's log may be gigabytes)."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - window))
        lines = handle.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def git_commit(where: Path) -> str | None:
    """The commit checked out where the spec lives, when it is in a git repository."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where if where.is_dir() else None,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None
