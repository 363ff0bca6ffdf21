"""One step of a local run, with its retries: gates, commands, training runs, evaluation and promotion."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipegen.localrun.jobs import git_commit, run_command
from pipegen.localrun.outcome import FinalFailure, Interrupted, Outcome, StepFailed, Stop
from pipegen.localrun.setup import retry_delays
from pipegen.localrun.tracker import Tracker
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.templating import Values

Result = tuple[str, str, dict[str, Any]]


class StepRunner:
    """Runs single steps of one pipeline run; safe to call from several threads at once (one step each)."""

    def __init__(
        self,
        pipeline: Pipeline,
        values: Values,
        tracking_uri: str,
        logs: Path,
        outcomes: Mapping[str, Outcome],
        stop: Stop,
        on_retry: Callable[[str, int, float, str], None],
        on_note: Callable[[str], None],
        tracker: Tracker,
    ) -> None:
        self.pipeline = pipeline
        self.values = values
        self.tracking_uri = tracking_uri
        self.logs = logs
        # Read only for steps whose upstream steps have ended (an evaluation reads its training run).
        self.outcomes = outcomes
        self.stop = stop
        self.on_retry = on_retry
        self.on_note = on_note
        # MLflow is reached through the tracker: this process never imports it (see tracker.py).
        self.tracker = tracker

    def attempt(self, step: ResolvedStep, outcome: Outcome) -> None:
        """Run the step, retrying as its policy says; the result lands in outcome. Interrupted propagates."""
        delays = retry_delays(step.policy)
        for attempt in range(len(delays) + 1):
            self.stop.check()
            outcome.attempts = attempt + 1
            try:
                outcome.status, outcome.detail, outcome.result = self._run(step)
                return
            except FinalFailure as exc:
                outcome.status, outcome.detail = "failed", str(exc)
                return
            except StepFailed as exc:
                outcome.status, outcome.detail = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - any error in a step is that step's failure, retried like one
                outcome.status, outcome.detail = "failed", f"{type(exc).__name__}: {exc}"
            if attempt < len(delays):
                self.on_retry(step.name, attempt + 1, delays[attempt], outcome.detail)
                self.stop.sleep(delays[attempt])

    def _run(self, step: ResolvedStep) -> Result:
        handler = {
            "gate": self._gate,
            "task": self._task,
            "train": self._train,
            "evaluate": self._evaluate,
            "promote": self._promote,
        }[step.kind]
        return handler(step)

    def log_path(self, step: ResolvedStep) -> Path:
        """The step's log file (its command's output, the runtime's messages for it)."""
        return self.logs / f"{step.name}.log"

    def _gate(self, step: ResolvedStep) -> Result:
        from pipegen.runtime.gates import run_gate
        from pipegen.runtime.sqlparams import render_gate

        gate = render_gate(step.gate or {}, self.values)
        result = run_gate(gate, sleep=self.stop.sleep)
        if not result["passed"]:
            # A wait that ran out is final (as an Airflow sensor's timeout is); a single check is retried.
            raise (FinalFailure if gate.get("wait") else StepFailed)(str(result["reason"]))
        return "passed", str(result["reason"]), result

    def _task(self, step: ResolvedStep) -> Result:
        detail = run_command(self.pipeline.name, step, self.values, {}, self.log_path(step), self.stop)
        return "passed", detail, {}

    def _train(self, step: ResolvedStep) -> Result:
        from pipegen.runtime.start_run import training_env

        run = self.tracker.call(
            "start_run",
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
        try:
            self.stop.check()
            detail = run_command(
                self.pipeline.name,
                step,
                self.values,
                training_env(run, self.tracking_uri),
                self.log_path(step),
                self.stop,
            )
        except Interrupted:
            self._close_run(run, "KILLED")
            raise
        except Exception:
            # A job that failed or timed out leaves its run RUNNING: mark it as the job ended.
            self._close_run(run, "FAILED")
            raise
        self._close_run(run, "FINISHED")
        return "passed", f"MLflow run {run['run_id']} ({detail})", run

    def _close_run(self, run: dict[str, Any], status: str) -> None:
        """Close a training run its job left RUNNING; a failure to do so is reported, not raised."""
        try:
            self.tracker.call("close_run", run=run, status=status, tracking_uri=self.tracking_uri)
        except Exception as exc:  # noqa: BLE001 - the step's own outcome matters more than this bookkeeping
            self.on_note(f"could not close MLflow run {run['run_id']}: {exc}")

    def _evaluate(self, step: ResolvedStep) -> Result:
        body = step.body
        result = self.tracker.call(
            "evaluate",
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

    def _promote(self, step: ResolvedStep) -> Result:
        from pipegen.runtime.notify import notify

        body = step.body
        result = self.tracker.call(
            "promote",
            run_id=self.outcomes[body.run_of].result["run_id"],
            model=body.model,
            alias=body.alias,
            artifact=body.artifact,
            champion=step.champion,
            thresholds=list(step.judged_by),
            tracking_uri=self.tracking_uri,
        )
        if body.notify:
            # The body every target posts (runtime.step, the Airflow DAG): the differential suite compares them.
            message = {"pipeline": self.pipeline.name, "event": "promoted", **result}
            notify(webhooks=[self.values.string(n.webhook) for n in body.notify], message=message)
        detail = f"{result['model']} version {result['version']}; {result['alias']} -> version {result['holder']}"
        return "passed", detail, result
