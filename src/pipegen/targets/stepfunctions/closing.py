"""A train step whose job a service integration runs ends the MLflow run the job left RUNNING.

A `.sync` Task (Batch, SageMaker, EKS, the Spark services) runs the job itself, so no runtime code sees it end:
a job killed for its memory, a lost node, a timeout or a script that never called MLflow leaves the run that
prepare started RUNNING. As the runtime's own steps do (runtime.step._closing, `pipegen run`), the state machine
ends it as the job ended, unless the job ended it itself (then its status stands):

- `S.close` after the job succeeded: the runtime's close_run with FINISHED, then the step's onward route.
  A run that cannot be ended does not fail a step whose job succeeded (its error stays in the history).
- `S.closing` when the job failed (a Catch of every error, States.Timeout too, after the step's Retry): close_run
  with FAILED, then the route the failure had: at the top level the failure entry, with the job's error
  recorded by the Catch (the notification and the Fail state tell it); in a Parallel branch `S.failed`, a Fail
  state `pipegen.StepFailed` whose Cause is the job's "<Error>: <Cause>" (a Fail state cannot take the job's own
  error name: `States.TaskFailed` and `States.Timeout` are reserved, and the service fails such a state with
  States.Runtime), which the Parallel's Catch records for the notification. The closing never replaces the
  job's error: when it fails too
  (MLflow unreachable, after the runtime's own bounded retries and the Lambda service retrier), the run still
  fails with the job's error.

Both call the `step` action's `close_run` kind, which renders the spec's tracking URI (${env.X}, ${secret.X})
in the Lambda as prepare did when it started the run, then runs the runtime's close_run action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipegen.resolve import ResolvedStep
from pipegen.targets.asl import Slot
from pipegen.targets.stepfunctions.jobs import LoweringParts
from pipegen.targets.stepfunctions.options import DONE, LAMBDA_RETRIER

# A branch's train step whose job failed (as eks_nodes names a branch's failed multi-node Job).
STEP_FAILED = "pipegen.StepFailed"


class ClosingStates(LoweringParts):
    """The close states of train steps (mixed into the lowering, like JobStates)."""

    _tracking: Callable[[], dict[str, str]]  # JobStates'

    def _end_job(
        self, step: ResolvedStep, state: str, task: dict[str, Any], policy: dict[str, Any], after: dict[str, Any]
    ) -> None:
        """Add a job's Task with its Retry/Catch and next state; a train step's go through its close states."""
        if step.kind != "train":
            self.states[state] = task | policy | after
            return
        self.states[state] = task | policy | {"Catch": [self._closing_catch(step)], "Next": f"{step.name}.close"}
        self._close_states(step, after)

    def _closing_catch(self, step: ResolvedStep, next_state: str | None = None) -> dict[str, Any]:
        """The catcher of a job's states: keeps the job's error (recorded at the top level, in a branch where its Fail
        state reads it), then goes to next_state; by default a train step's `S.closing`, which ends the run FAILED."""
        target = next_state or f"{step.name}.closing"
        if not self.scope[step.name]:
            return self.d.catch(target)
        return self.d.catch_into(self._failure(step), target)

    def _failure(self, step: ResolvedStep) -> Slot:
        """Where a step inside a Parallel branch keeps its job's error for the branch's Fail state."""
        return self._own("failures", step.name)

    def _close_states(self, step: ResolvedStep, after: dict[str, Any]) -> None:
        """`S.close` (FINISHED, then after), `S.closing` (FAILED, then the failure route) and a branch's `S.failed`."""
        name = step.name
        top = not self.scope[name]
        # A close that fails leaves the run as the job left it: a Catch that keeps the state data as it was.
        onward = after.get("Next", DONE)
        self.states[f"{name}.close"] = (
            self._close_run(step, "FINISHED", f"Step '{name}': end its MLflow run FINISHED if the job left it RUNNING.")
            | {"Catch": [self._ignore(onward)]}
            | after
        )
        failed = self.fail_entry if top else f"{name}.failed"
        self.states[f"{name}.closing"] = self._close_run(
            step,
            "FAILED",
            f"Step '{name}' failed: end its MLflow run FAILED if the job left it RUNNING, then fail with the job's error.",
        ) | {"Catch": [self._ignore(failed)], "Next": failed}
        if not top:
            self.states[failed] = self.d.fail_from(STEP_FAILED, self._failure(step))

    def _close_run(self, step: ResolvedStep, status: str, comment: str) -> dict[str, Any]:
        """A runtime Task ending the step's run with status if it is RUNNING; only Lambda's own errors are retried."""
        args: dict[str, Any] = {
            "kind": "close_run",
            **self.d.request_spec({"status": status, **self._tracking()}),
            "context": Slot(("pipegen",)),
            "mlflow_run": self._own("prepared", step.name, "run"),
        }
        return self._lambda(comment, args, {}, None) | {"Retry": [LAMBDA_RETRIER]}
