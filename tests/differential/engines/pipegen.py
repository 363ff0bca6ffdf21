"""The `pipegen run` engine: the local orchestrator, run through its command line as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from tests.differential.engines import Request, Result, StepResult, load_pipeline, main, settle_evaluations

# `pipegen run`'s summary status words -> the harness's outcomes.
_OUTCOMES = {"passed": "passed", "failed": "failed", "skipped": "skipped", "not run": "not_run"}


def command(request: Request) -> list[str]:
    """The `pipegen run` command line for a request: its params, its tracking server and its run date."""
    argv = [str(Path(sys.executable).parent / "pipegen"), "run", request.spec, "--tracking-uri", request.tracking_uri]
    for key, value in sorted(request.params.items()):
        argv += ["--param", f"{key}={value}"]
    if request.scheduled_time:
        # `pipegen run` takes the logical date, not an instant: the scheduled instant's date in the spec's zone.
        argv += ["--date", request.run_date()]
    return argv


def parse_summary(stdout: str, step_names: list[str]) -> tuple[str, dict[str, StepResult]]:
    """The pipeline status and each step's outcome from `pipegen run`'s closing summary."""
    head = re.search(r"^pipeline \S+: (succeeded|FAILED)$", stdout, re.MULTILINE)
    if head is None:
        raise RuntimeError(f"no summary in `pipegen run` output:\n{stdout[-2000:]}")
    body = stdout[head.end() :]
    steps: dict[str, StepResult] = {}
    for name in step_names:
        line = re.search(rf"^  {re.escape(name)} +(passed|failed|skipped|not run) *(.*)$", body, re.MULTILINE)
        if line is None:
            raise RuntimeError(f"step {name} missing from `pipegen run`'s summary:\n{body[-2000:]}")
        steps[name] = StepResult(_OUTCOMES[line.group(1)], line.group(2).strip() or None)
    return ("succeeded" if head.group(1) == "succeeded" else "failed"), steps


def run(request: Request) -> Result:
    """Run the spec once with `pipegen run` in the request's workdir."""
    workdir = Path(request.workdir)
    log = workdir / "engine.log"
    pipeline = load_pipeline(request.spec)
    started = time.monotonic()
    proc = subprocess.run(
        command(request), cwd=workdir, env=request.environment(), capture_output=True, text=True, timeout=900
    )
    wall = time.monotonic() - started
    log.write_text(f"$ {' '.join(command(request))}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"`pipegen run` exited {proc.returncode}; see {log}")
    status, steps = parse_summary(proc.stdout, [s.name for s in pipeline.steps])
    return Result(request.engine, status, settle_evaluations(request, steps), round(wall, 2), str(log))


if __name__ == "__main__":
    sys.exit(main(run))
