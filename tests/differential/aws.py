"""One fake AWS for every engine: moto's server in its own process, with Batch jobs that really run.

    .venv/bin/python -m tests.differential.aws DIR

starts moto's ThreadedMotoServer on 127.0.0.1 (a free port), writes DIR/endpoint (the URL) once it answers,
and serves until its stdin closes or it is terminated. Hooks into moto 5.2.5's internals (moto is pinned):

- Batch (`batch.use_docker: false`): a submitted job stays RUNNING while its container command runs as a
  local process with the job's environment (job definition's, then containerOverrides'); a non-zero exit
  marks it FAILED, as on AWS. `Ref::name` in the command is substituted from the job's parameters, as AWS
  Batch does. Each job's output goes to DIR/jobs/<job id>.log.
- Lambda: invocations run pipegen's runtime handler in this process, with the function's environment.
- Step Functions: state machines execute (LocalStack's interpreter), and `batch:submitJob(.sync)` gets the
  parameter normalisation moto's port left empty (tests/stepfunctions/support.py's fix).
- S3: a bucket named `diff-landing-<N>s` plays data that lands late: a prefix listed in it shows an object
  only from N seconds after the first time that prefix was listed (each run lists its own prefix).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support_tools import free_port

LANDING = re.compile(r"^diff-landing-(\d+)s$")
# Environment a Batch job's process inherits from this launcher (a container has its own image's PATH etc.).
INHERITED = ("PATH", "HOME", "LANG", "PYTHONPATH", "TMPDIR", "PIPEGEN_DIFF_STATE")
_LAMBDA_LOCK = threading.Lock()


def configure(endpoint: str) -> None:
    """Execute state machines; run neither Lambda functions nor Batch jobs in docker."""
    config = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
        "batch": {"use_docker": False},
    }
    request = urllib.request.Request(f"{endpoint}/moto-api/config", data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(request, timeout=30).close()


def job_command(job: Any) -> tuple[list[str], dict[str, str]]:
    """The argv and environment a moto Batch job would start its container with."""
    props = job.job_definition.container_properties or {}
    overrides = job.container_overrides
    command = list(overrides.get("command") or props.get("command") or [])
    # AWS Batch replaces Ref::name in the command with the job's parameter `name` (the job definition's
    # defaults, overridden by SubmitJob's parameters); pipegen must never let user text hit this.
    for name, value in sorted(job.parameters.items()):
        command = [arg.replace(f"Ref::{name}", value) for arg in command]
    env = {e["name"]: e["value"] for e in props.get("environment", [])}
    env.update({e["name"]: e["value"] for e in overrides.get("environment", [])})
    env["AWS_BATCH_JOB_ID"] = job.job_id
    return command, env


def record_path(workdir: Path, tracking_uri: str) -> Path:
    """Where Batch jobs logging to this tracking server record their argv and environment."""
    return workdir / "records" / (re.sub(r"\W", "_", tracking_uri) + ".jsonl")


def play(job: Any, jobs_dir: Path) -> None:
    """Run the job's command as a local process; mark the job SUCCEEDED or FAILED by its exit code."""
    command, env = job_command(job)
    full_env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    full_env.update(env)
    # The job records what it got into the file of the engine whose MLflow server it logs to.
    full_env.setdefault("PIPEGEN_DIFF_RECORD", str(record_path(jobs_dir.parent, env.get("MLFLOW_TRACKING_URI", ""))))
    log = jobs_dir / f"{job.job_id}.log"
    timeout = (job.timeout or {}).get("attemptDurationSeconds")
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"$ {json.dumps(command)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(command, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            job.job_stopped_reason = f"CannotStartContainerError: {exc}"
            job._mark_stopped(success=False)
            return
        while proc.poll() is None:
            if job.stop or (timeout and time.monotonic() - started > timeout):
                if not job.stop:
                    job.job_stopped_reason = "Job attempt duration exceeded timeout"
                proc.kill()
                proc.wait()
                break
            time.sleep(0.1)
    job.exit_code = proc.returncode
    if proc.returncode != 0 and job.job_stopped_reason is None:
        job.job_stopped_reason = f"Essential container in task exited (exit code {proc.returncode})"
    job._mark_stopped(success=proc.returncode == 0)


def hook_batch(patch: pytest.MonkeyPatch, jobs_dir: Path) -> None:
    """A submitted job is RUNNING until its command, run here, exits."""
    from moto.moto_api import state_manager

    from tests.support_aws import batch_jobs_run_here

    # Job status moves only when the process ends, never by moto's describe-driven progression.
    state_manager.set_transition("batch::job", {"progression": "manual", "times": 10**9})
    batch_jobs_run_here(patch, lambda job: play(job, jobs_dir))


def hook_lambda(patch: pytest.MonkeyPatch) -> None:
    """lambda:invoke runs pipegen.runtime.lambda_handler.handler here, with the function's environment."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from pipegen.runtime.lambda_handler import handler

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        function = self.get_function(function_name, qualifier)
        event = json.loads(body)
        # os.environ is process-wide and moto serves requests on threads: one invocation at a time.
        with _LAMBDA_LOCK:
            saved = dict(os.environ)
            os.environ.update(function.environment_vars or {})
            try:
                result = handler(event)
            except Exception as exc:  # noqa: BLE001 - every error reaches the state machine, as on AWS
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
            finally:
                os.environ.clear()
                os.environ.update(saved)
        return json.dumps(result).encode()

    patch.setattr(LambdaSimpleBackend, "invoke", invoke)


def hook_landing(patch: pytest.MonkeyPatch) -> None:
    """In a `diff-landing-<N>s` bucket, a listed prefix gets its object N seconds after its first listing."""
    from moto.s3.models import S3Backend

    original = S3Backend.list_objects
    first_seen: dict[tuple[str, str], float] = {}

    def list_objects(self: Any, bucket: Any, prefix: str | None, *args: Any, **kwargs: Any) -> Any:
        match = LANDING.match(bucket.name)
        if match and prefix:
            seen = first_seen.setdefault((bucket.name, prefix), time.monotonic())
            if time.monotonic() - seen >= int(match.group(1)) and not any(k.startswith(prefix) for k in bucket.keys):
                self.put_object(bucket.name, f"{prefix.rstrip('/')}/part-00000", b"landed\n")
        return original(self, bucket, prefix, *args, **kwargs)

    patch.setattr(S3Backend, "list_objects", list_objects)


def serve(workdir: Path) -> None:
    """Start the hooked server, announce its endpoint in workdir/endpoint, serve until stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    from tests.stepfunctions.support import fix_batch_sync

    jobs_dir = workdir / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    (workdir / "records").mkdir(exist_ok=True)
    port = free_port()
    # The Step Functions executor reaches Batch and Lambda at http://localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise in the harness log
    patch = pytest.MonkeyPatch()
    hook_batch(patch, jobs_dir)
    hook_lambda(patch)
    hook_landing(patch)
    fix_batch_sync(patch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    configure(endpoint)
    (workdir / "endpoint.tmp").write_text(endpoint)
    (workdir / "endpoint.tmp").rename(workdir / "endpoint")
    try:
        sys.stdin.read()  # the parent holds our stdin open; EOF (or SIGTERM) ends the server
    finally:
        server.stop()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
