"""What the Airflow, KFP and Step Functions engine modules share: their log, their deadline, typed params.

An engine module runs in its own venv and must never hang the suite nor lose its engine's output: its
stdout and stderr (the engine's own logging, and every job it starts) go to `engine.log` in the workdir,
and a watchdog ends the run at a deadline, writing a failed RESULT.json and ending the processes the
engine started (jobs run in process groups of their own, so they are found as descendants, not by group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.differential.engines import Request, Result, StepResult, load_pipeline, main

# A run that takes longer than this is a hung engine. A 3-step pipeline takes 1-4 min on a busy 2-core machine
# (each KFP component and Airflow task imports mlflow); the harness kills the module at 840 s
# (harness.ENGINE_TIMEOUT), and before that the module must have written its RESULT.json.
DEFAULT_TIMEOUT_SECONDS = 780.0
TIMEOUT_VARIABLE = "PIPEGEN_DIFF_ENGINE_TIMEOUT"
LOG_NAME = "engine.log"


class Progress:
    """Step outcomes an engine module has seen so far, so a timed-out run still reports what it reached."""

    def __init__(self) -> None:
        self.steps: dict[str, StepResult] = {}
        self.ended: Result | None = None
        self.lock = threading.Lock()

    def record(self, step: str, result: StepResult) -> None:
        """Remember one step's outcome."""
        with self.lock:
            self.steps[step] = result

    def engine_ended(self, result: Result) -> None:
        """The engine's own verdict, before the module reads MLflow for the evaluations' reasons."""
        with self.lock:
            self.ended = result

    def snapshot(self) -> dict[str, StepResult]:
        """The outcomes seen so far."""
        with self.lock:
            return dict(self.steps)


def log_path(request: Request) -> Path:
    """Where the engine's own output goes."""
    return Path(request.workdir) / LOG_NAME


def timeout_of(request: Request) -> float:
    """The run's deadline in seconds (REQUEST env PIPEGEN_DIFF_ENGINE_TIMEOUT, else the default)."""
    return float(request.env.get(TIMEOUT_VARIABLE) or os.environ.get(TIMEOUT_VARIABLE) or DEFAULT_TIMEOUT_SECONDS)


def typed_params(request: Request) -> dict[str, Any]:
    """The run-time overrides typed as `pipegen run --param` types them (by the spec's default's type)."""
    from pipegen.localrun import coerce_param

    declared = dict(load_pipeline(request.spec).spec.params)
    unknown = sorted(set(request.params) - set(declared))
    if unknown:
        raise ValueError(f"params {unknown} are not declared by {request.spec} (declared: {sorted(declared)})")
    return {key: coerce_param(key, raw, declared[key]) for key, raw in sorted(request.params.items())}


def scheduled_instant(request: Request) -> datetime | None:
    """The scheduled instant as an aware UTC datetime; None for a manual run."""
    if not request.scheduled_time:
        return None
    when = datetime.fromisoformat(request.scheduled_time.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def step_names(request: Request) -> list[str]:
    """The spec's steps, in pipegen's order."""
    return [s.name for s in load_pipeline(request.spec).steps]


def descendants(pid: int) -> list[int]:
    """Every live process below pid (Linux /proc), children first found first."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    pending.append(child)
    return found


def end_descendants() -> None:
    """Kill what this engine module started (jobs, task runners), so a timed-out run leaves nothing behind."""
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def timed_out_result(request: Request, progress: Progress, seconds: float, wall: float) -> Result:
    """A failed run: what was seen is kept, every other step is `not_run` (the engine did not get there).

    When the engine itself had ended (the module was still reading MLflow), its verdict stands as it was.
    """
    with progress.lock:
        ended = progress.ended
    if ended is not None:
        return ended
    seen = progress.snapshot()
    reason = f"engine timed out after {seconds:g}s"
    steps = {name: seen.get(name) or StepResult("not_run", reason) for name in step_names(request)}
    return Result(request.engine, "failed", steps, round(wall, 2), str(log_path(request)))


def _redirect_output(path: Path) -> int:
    """Send fds 1 and 2 (this process's and every child's output) to path; returns a copy of the old stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return saved


def engine_main(run: Callable[[Request, Progress], Result], argv: list[str] | None = None) -> int:
    """An engine module's entry point: engine output to engine.log, a deadline, then the shared main()."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        return main(lambda r: run(r, Progress()), args)
    request = Request.read(args[0])
    workdir = Path(request.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = log_path(request)
    saved_stderr = _redirect_output(log)
    progress = Progress()
    started = time.monotonic()
    seconds = timeout_of(request)

    def expire() -> None:
        # The engine hangs in this process's main thread: write the verdict, end its children, leave at once.
        end_descendants()
        timed_out_result(request, progress, seconds, time.monotonic() - started).write(request.result_path)
        os.write(saved_stderr, f"{request.engine}: engine timed out after {seconds:g}s; log: {log}\n".encode())
        os._exit(0)

    watchdog = threading.Timer(seconds, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        code = main(lambda r: run(r, progress), args)
    finally:
        watchdog.cancel()
    if code != 0:
        os.write(saved_stderr, f"{request.engine}: engine module broke; traceback in {log}\n".encode())
    return code
