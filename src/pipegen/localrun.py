"""`pipegen run`: execute a pipeline on this machine with the local backend and the shared runtime."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.progress import Progress
from pipegen.resolve import Pipeline, ResolvedStep, RetryPolicy
from pipegen.runtime.redacted_output import run_redacted
from pipegen.runtime.templating import Values

DEFAULT_DB = "mlflow.db"
LOG_DIR = Path(".pipegen") / "logs"


class StepFailed(Exception):
    """A step could not complete; the message is the reason shown in the summary."""


class FinalFailure(StepFailed):
    """A failure a retry cannot change: a failed judgement, a gate whose wait ran out. Never retried.

    Every target treats these the same way: Airflow fails the evaluation without retrying and does not
    retry a sensor's timeout, Step Functions ends in its Fail state, KFP retries only errors.
    """


@dataclass
class Outcome:
    """What happened to one step."""

    name: str
    kind: str
    status: str = "not run"  # passed | failed | skipped | not run
    detail: str = ""
    seconds: float = 0.0
    attempts: int = 0
    result: dict[str, Any] = field(default_factory=dict)


def unsupported_backends(pipeline: Pipeline) -> list[Diagnostic]:
    """Steps on any backend but 'local' cannot run here: say so, located at the backend reference."""
    return [
        diag(
            "PG602",
            f"`pipegen run` cannot run step '{s.name}' on backend '{s.backend_name}' ({s.backend.type}); "
            "it runs only the local backend",
            pipeline.locate(s, s.kind, "backend"),
            "compile for the orchestrator that runs this backend: pipegen compile SPEC -t airflow|kfp|stepfunctions",
        )
        for s in pipeline.steps
        if s.backend is not None and s.backend.type != "local"
    ]


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


class LocalRun:
    """Runs the steps of a pipeline in dependency order, one at a time."""

    def __init__(
        self,
        pipeline: Pipeline,
        values: Values,
        tracking_uri: str,
        progress: Progress,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pipeline = pipeline
        self.values = values
        self.tracking_uri = tracking_uri
        self.progress = progress
        self.sleep = sleep
        self.outcomes = {s.name: Outcome(s.name, s.kind) for s in pipeline.steps}
        self.logs = LOG_DIR / values.run_id.replace(":", "-")
        self.interrupted = False
        # The training run of the step now running, so an interrupt can close it.
        self._open_run: dict[str, Any] | None = None

    def execute(self) -> list[Outcome]:
        """Run every step whose upstream steps passed; return the outcomes in order.

        An interrupt (Ctrl-C, SIGTERM) ends the running step's processes, closes the MLflow run it had
        open as KILLED, and leaves the rest not run; the caller still gets every outcome to report.
        """
        total = len(self.pipeline.steps)
        for index, step in enumerate(self.pipeline.steps, 1):
            outcome = self.outcomes[step.name]
            if self.interrupted:
                outcome.detail = "the run was interrupted"
                self.progress.finish(index, total, outcome)
                continue
            blocked = [u for u in step.upstream if self.outcomes[u].status != "passed"]
            if blocked:
                upstream = self.outcomes[blocked[0]]
                outcome.status = "skipped" if upstream.status == "skipped" else "not run"
                outcome.detail = f"{upstream.name} {upstream.status}"
                self.progress.finish(index, total, outcome)
                continue
            self.progress.start(index, total, step.name, step.kind)
            started = time.monotonic()
            try:
                self._attempt(step, outcome)
            except KeyboardInterrupt:
                self.interrupted = True
                outcome.status, outcome.detail = "failed", "interrupted"
                if self._open_run is not None:
                    self._close_open_run(self._open_run, "KILLED")
            outcome.seconds = time.monotonic() - started
            self.progress.finish(index, total, outcome)
        if not self.interrupted:
            self._notify_pipeline()
        return [self.outcomes[s.name] for s in self.pipeline.steps]

    def _close_open_run(self, run: dict[str, Any], status: str) -> None:
        """Close a training run its job left RUNNING; a failure to do so is reported, not raised."""
        from pipegen.runtime.start_run import close_run

        try:
            close_run(run, status)
        except Exception as exc:  # noqa: BLE001 - the step's own outcome matters more than this bookkeeping
            self.progress.note(f"could not close MLflow run {run['run_id']}: {exc}")

    def _attempt(self, step: ResolvedStep, outcome: Outcome) -> None:
        delays = retry_delays(step.policy)
        for attempt in range(len(delays) + 1):
            outcome.attempts = attempt + 1
            try:
                outcome.status, outcome.detail, outcome.result = self._run_step(step)
                return
            except FinalFailure as exc:
                outcome.status, outcome.detail = "failed", str(exc)
                return
            except StepFailed as exc:
                outcome.status, outcome.detail = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - any error in a step is that step's failure, retried like one
                outcome.status, outcome.detail = "failed", f"{type(exc).__name__}: {exc}"
            if attempt < len(delays):
                self.progress.retry(step.name, attempt + 1, delays[attempt], outcome.detail)
                self.sleep(delays[attempt])

    def _run_step(self, step: ResolvedStep) -> tuple[str, str, dict[str, Any]]:
        handler = {
            "gate": self._gate,
            "task": self._task,
            "train": self._train,
            "evaluate": self._evaluate,
            "promote": self._promote,
        }[step.kind]
        return handler(step)

    def _gate(self, step: ResolvedStep) -> tuple[str, str, dict[str, Any]]:
        from pipegen.runtime.gates import run_gate
        from pipegen.runtime.sqlparams import render_gate

        gate = render_gate(step.gate or {}, self.values)
        result = run_gate(gate)
        if not result["passed"]:
            # A wait that ran out is final (as an Airflow sensor's timeout is); a single check is retried.
            raise (FinalFailure if gate.get("wait") else StepFailed)(str(result["reason"]))
        return "passed", str(result["reason"]), result

    def _command(self, step: ResolvedStep, extra_env: Mapping[str, str]) -> str:
        body = step.body
        backend = step.backend
        argv = [self.values.string(arg) for arg in body.command]
        env = dict(os.environ)
        # `python` in a command means the environment pipegen runs in, as with an activated virtualenv.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        for source in (getattr(backend, "env", {}), body.env):
            env.update({k: self.values.string(v) for k, v in source.items()})
        env.update(extra_env)
        cwd = getattr(backend, "working_dir", None) or None
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{step.name}.log"
        with log_path.open("ab") as log:
            try:
                # The job's env holds rendered secrets: its output reaches the log redacted.
                returncode = run_redacted(argv, cwd=cwd, env=env, timeout=step.policy.timeout, output=log)
            except FileNotFoundError:
                raise StepFailed(f"command not found: {argv[0]}") from None
            except subprocess.TimeoutExpired:
                raise StepFailed(f"timed out after {step.policy.timeout}s (log: {log_path})") from None
        if returncode != 0:
            raise StepFailed(f"exit code {returncode}: {last_line(log_path)[:200]} (log: {log_path})")
        return str(log_path)

    def _task(self, step: ResolvedStep) -> tuple[str, str, dict[str, Any]]:
        log = self._command(step, {})
        return "passed", f"log: {log}", {}

    def _train(self, step: ResolvedStep) -> tuple[str, str, dict[str, Any]]:
        from pipegen.runtime.start_run import start_run, training_env

        run = start_run(
            pipeline=self.pipeline.name,
            step=step.name,
            spec_sha256=self.pipeline.spec_sha256,
            target="local",
            run_key=self.values.run_id,
            experiment=self.pipeline.experiment,
            tracking_uri=self.tracking_uri,
            git_commit=git_commit(Path(self.pipeline.spec_path).parent),
            params=dict(self.values.params),
        )
        self._open_run = run
        try:
            log = self._command(step, training_env(run))
        except StepFailed:
            # A job that failed or timed out leaves its run RUNNING: mark it as the job ended.
            self._close_open_run(run, "FAILED")
            raise
        self._close_open_run(run, "FINISHED")
        self._open_run = None
        return "passed", f"MLflow run {run['run_id']} (log: {log})", run

    def _evaluate(self, step: ResolvedStep) -> tuple[str, str, dict[str, Any]]:
        from pipegen.runtime.evaluate import evaluate

        body = step.body
        result = evaluate(
            run_id=self.outcomes[body.run_of].result["run_id"],
            thresholds=list(body.thresholds),
            champion=step.champion,
            tracking_uri=self.tracking_uri,
        )
        summary = "; ".join(result["reasons"])
        if result["passed"]:
            return "passed", summary, result
        if body.on_fail == "skip":
            return "skipped", summary, result
        # The metrics will not change on a second look: only errors reaching MLflow are retried.
        raise FinalFailure(summary)

    def _promote(self, step: ResolvedStep) -> tuple[str, str, dict[str, Any]]:
        from pipegen.runtime.notify import notify
        from pipegen.runtime.promote import promote

        body = step.body
        result = promote(
            run_id=self.outcomes[body.run_of].result["run_id"],
            model=body.model,
            alias=body.alias,
            artifact=body.artifact,
            champion=step.champion,
            thresholds=list(step.judged_by),
            tracking_uri=self.tracking_uri,
        )
        if body.notify:
            message = {"pipeline": self.pipeline.name, "run": self.values.run_id, "event": "promoted", **result}
            notify(webhooks=[self.values.string(n.webhook) for n in body.notify], message=message)
        detail = f"{result['model']} version {result['version']}; {result['alias']} -> version {result['holder']}"
        return "passed", detail, result

    def _notify_pipeline(self) -> None:
        from pipegen.runtime.notify import notify

        failed = [o for o in self.outcomes.values() if o.status == "failed"]
        targets = self.pipeline.spec.notify.on_failure if failed else self.pipeline.spec.notify.on_success
        if not targets:
            return
        message = {
            "pipeline": self.pipeline.name,
            "run": self.values.run_id,
            "event": "failed" if failed else "succeeded",
            "failed_steps": [o.name for o in failed],
        }
        try:
            notify(webhooks=[self.values.string(n.webhook) for n in targets], message=message)
        except Exception as exc:  # noqa: BLE001 - a failed alert must not hide the run's own result
            self.progress.note(f"pipeline notification failed: {exc}")


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


def default_tracking_uri(cwd: Path) -> str:
    """The embedded default: a sqlite store in the working directory."""
    return f"sqlite:///{(cwd / DEFAULT_DB).resolve()}"


def run_key_for(today: date) -> str:
    """A run key like Airflow's manual run ids, unique per invocation."""
    return f"local__{today.isoformat()}T{time.strftime('%H%M%S')}_{os.getpid()}"
