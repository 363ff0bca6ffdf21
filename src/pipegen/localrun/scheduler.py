"""`pipegen run`'s scheduler: every step whose upstream steps passed runs, up to `parallelism` at once.

Semantics are Airflow's defaults (trigger rule all_success), which the sequential run had too:
- a step runs once all its upstream steps passed; one that failed, was skipped or did not run leaves its
  descendants skipped (after an `on_fail: skip` evaluation) or not run (the `upstream_failed` of Airflow);
- a failed step stops nothing else: steps already running finish, and independent branches go on, so the
  run reports everything that could be learnt from it; it then fails as a whole;
- an interrupt (Ctrl-C, SIGTERM) stops every running step (process groups ended, AWS jobs terminated,
  training runs closed as KILLED), starts nothing more, and leaves the rest not run.
With parallelism 1, steps run one at a time in the spec's topological order, as before.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path

from pipegen.localrun.outcome import Interrupted, Outcome, Stop
from pipegen.localrun.progress import Progress
from pipegen.localrun.setup import LOG_DIR, default_parallelism
from pipegen.localrun.steplogs import StepLogs, routed
from pipegen.localrun.steps import StepRunner
from pipegen.localrun.tracker import InProcess, Tracker, tracker_for
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.templating import Values

MLFLOW_KINDS = ("train", "evaluate", "promote")


class LocalRun:
    """Runs the steps of a pipeline in dependency order, independent steps side by side."""

    def __init__(
        self,
        pipeline: Pipeline,
        values: Values,
        tracking_uri: str,
        progress: Progress,
        parallelism: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.values = values
        self.tracking_uri = tracking_uri
        self.progress = progress
        self.parallelism = max(1, parallelism or default_parallelism())
        self.outcomes = {s.name: Outcome(s.name, s.kind) for s in pipeline.steps}
        self.logs = LOG_DIR / values.run_id.replace(":", "-")
        self.interrupted = False
        self.stop = Stop()
        # Started now, so that MLflow warms up in the worker while the first steps run; nothing starts
        # for a spec without MLflow steps.
        uses_mlflow = any(s.kind in MLFLOW_KINDS for s in pipeline.steps)
        self.tracker: Tracker = tracker_for(Path.cwd(), tracking_uri) if uses_mlflow else InProcess()
        self.runner = StepRunner(
            pipeline,
            values,
            tracking_uri,
            self.logs,
            self.outcomes,
            self.stop,
            progress.retry,
            progress.note,
            self.tracker,
        )
        self._index = {s.name: i for i, s in enumerate(pipeline.steps, 1)}
        self._done: queue.Queue[str] = queue.Queue()
        self._threads: dict[str, threading.Thread] = {}  # the running steps
        self._ended: set[str] = set()  # steps whose outcome is final (collected, or resolved as blocked)

    def execute(self) -> list[Outcome]:
        """Run every step whose upstream steps passed; return the outcomes in the spec's order.

        An interrupt (KeyboardInterrupt in this thread: Ctrl-C, or SIGTERM turned into one) ends every
        running step's processes and jobs, closes the MLflow runs they had open as KILLED, and leaves the
        rest not run; the caller still gets every outcome to report.
        """
        step_logs = StepLogs(self.progress.note)
        with routed(step_logs):
            try:
                self._schedule(step_logs)
            except KeyboardInterrupt:
                self.interrupted = True
                self.stop.set()
            self._drain()
        self.tracker.close()  # the run's MLflow calls are over: the worker's idle time starts
        for step in self.pipeline.steps:  # what never started, or ended unreported when the interrupt came
            if step.name not in self._ended:
                outcome = self.outcomes[step.name]
                if outcome.status == "not run" and not outcome.detail:
                    outcome.detail = "the run was interrupted"
                self._finish(step)
        self.progress.close()
        if not self.interrupted:
            self._notify_pipeline()
        return [self.outcomes[s.name] for s in self.pipeline.steps]

    def _schedule(self, step_logs: StepLogs) -> None:
        pending = list(self.pipeline.steps)  # topological order: upstream steps come first
        while pending or self._threads:
            for step in list(pending):
                verdict = self._upstream_verdict(step)
                if verdict == "wait" or (verdict == "run" and len(self._threads) >= self.parallelism):
                    continue
                pending.remove(step)
                if verdict == "run":
                    self._launch(step, step_logs)
                else:
                    self._finish(step)  # blocked: skipped or not run, said so in the order steps resolve
            if not self._threads:
                continue  # every pending step was just resolved as blocked, or there is none
            self._collect(self._done.get())

    def _upstream_verdict(self, step: ResolvedStep) -> str:
        """'run', 'wait' (an upstream step is still to end), or 'blocked' (the step's outcome then says why)."""
        ended = [self.outcomes[u] for u in step.upstream if u in self._ended]
        # As Airflow's all_success: one upstream step that did not pass decides, whatever the others do.
        blocked = [u for u in ended if u.status != "passed"]
        if blocked:
            outcome = self.outcomes[step.name]
            outcome.status = "skipped" if blocked[0].status == "skipped" else "not run"
            outcome.detail = f"{blocked[0].name} {blocked[0].status}"
            return "blocked"
        return "run" if len(ended) == len(step.upstream) else "wait"

    def _launch(self, step: ResolvedStep, step_logs: StepLogs) -> None:
        self.progress.start(self._index[step.name], len(self.pipeline.steps), step.name, step.kind)
        thread = threading.Thread(target=self._run_one, args=(step, step_logs), name=f"pipegen-step-{step.name}")
        self._threads[step.name] = thread
        thread.start()

    def _run_one(self, step: ResolvedStep, step_logs: StepLogs) -> None:
        outcome = self.outcomes[step.name]
        started = time.monotonic()
        try:
            with step_logs.step(step.name, self.runner.log_path(step)):
                self.runner.attempt(step, outcome)
        except Interrupted:
            outcome.status, outcome.detail = "failed", "interrupted"
        except BaseException as exc:  # noqa: BLE001 - a thread must always report back, or the run would hang
            outcome.status, outcome.detail = "failed", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            outcome.seconds = time.monotonic() - started
            self._done.put(step.name)

    def _collect(self, name: str) -> None:
        thread = self._threads.pop(name)
        if thread.ident is None:  # interrupted between creating its thread and starting it
            self.outcomes[name].detail = "the run was interrupted"
        else:
            thread.join()
        self._finish(self.pipeline.step(name))

    def _finish(self, step: ResolvedStep) -> None:
        self._ended.add(step.name)
        self.progress.finish(self._index[step.name], len(self.pipeline.steps), self.outcomes[step.name])

    def _drain(self) -> None:
        """Wait for the running steps to end (an interrupt told them to stop; they close their runs first).

        Threads are checked directly, not only through the queue: the interrupt may have come between
        taking a step's name off the queue and collecting it.
        """
        while self._threads:
            try:
                with contextlib.suppress(queue.Empty):
                    self._done.get(timeout=0.2)
                for name, thread in list(self._threads.items()):
                    if thread.ident is None or not thread.is_alive():
                        self._collect(name)
            except KeyboardInterrupt:  # another Ctrl-C: the steps are already stopping, within their grace period
                self.interrupted = True
                self.stop.set()

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
        }
        try:
            notify(webhooks=[self.values.string(n.webhook) for n in targets], message=message)
        except Exception as exc:  # noqa: BLE001 - a failed alert must not hide the run's own result
            self.progress.note(f"pipeline notification failed: {exc}")
