"""How a run ends: the notifications the spec's `notify` lists ask for, then the Fail or the Succeed state.

Every path that fails goes through one `pipegen.notify_failure` state (from the top-level Catches and
the judgements that fail the run); every path that ends the run successfully (the last step, a gate or
evaluation past the last step, a skip that ends the run, the last Parallel) goes through one
`pipegen.notify_success` state. A notification is told, never decisive: when its Lambda fails (after
the service-error retries and the runtime's own webhook retries) the run keeps its result, as
`pipegen run` and Airflow's DAG callbacks do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipegen.resolve import Pipeline
from pipegen.targets.asl import Dialect, Slot
from pipegen.targets.stepfunctions.options import DONE, FAILED, LAMBDA_RETRIER, NOTIFY_FAILURE, NOTIFY_SUCCESS

# The lowering's runtime call: (comment, `step` action arguments) -> a lambda:invoke Task that keeps nothing.
Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


def failure_entry(pipeline: Pipeline) -> str:
    """The state a failing run goes to."""
    return NOTIFY_FAILURE if pipeline.spec.notify.on_failure else FAILED


def success_entry(pipeline: Pipeline) -> str:
    """The state a run that ends well goes to (DONE: the last state ends the run itself where it can)."""
    return NOTIFY_SUCCESS if pipeline.spec.notify.on_success else DONE


def end_states(pipeline: Pipeline, dialect: Dialect, invoke: Invoke, done_reached: bool) -> dict[str, dict[str, Any]]:
    """The notification states the spec asks for, the Fail state, and the Succeed state when a state goes to it."""
    states: dict[str, dict[str, Any]] = {}
    notify = pipeline.spec.notify
    if notify.on_failure:
        state = _notification(pipeline, dialect, invoke, "failed", failed=True)
        state["Catch"] = [dialect.catch(FAILED, keep_failure=True)]
        states[NOTIFY_FAILURE] = state | {"Next": FAILED}
    states[FAILED] = dialect.fail_state()
    if notify.on_success:
        state = _notification(pipeline, dialect, invoke, "succeeded", failed=False)
        # A webhook that cannot be told does not fail a run that succeeded: its error stays in the history
        # (and, in JSONPath, in the output's notification_failure).
        state["Catch"] = [dialect.catch(DONE, keep_failure=True)]
        states[NOTIFY_SUCCESS] = state | {"Next": DONE}
        states[DONE] = {"Type": "Succeed", "Comment": "Ends the run once notify.on_success was told."}
    elif done_reached:
        states[DONE] = {"Type": "Succeed", "Comment": "Ends the run without the steps an evaluation skipped."}
    return states


def _notification(pipeline: Pipeline, dialect: Dialect, invoke: Invoke, event: str, failed: bool) -> dict[str, Any]:
    """A runtime `notify` call; the runtime adds the run id, and for a failure what the Catch recorded."""
    hooks = pipeline.spec.notify.on_failure if failed else pipeline.spec.notify.on_success
    spec = {"webhooks": [n.webhook for n in hooks], "message": {"pipeline": pipeline.name, "event": event}}
    args: dict[str, Any] = {"kind": "notify", **dialect.request_spec(spec), "context": Slot(("pipegen",))}
    if failed:
        args["failure"] = Slot(("failure",))
        comment = "Tell notify.on_failure that the run failed, then fail."
    else:
        comment = "Tell notify.on_success that the run succeeded, then succeed (a failed notification too)."
    state = invoke(comment, args)
    state["Retry"] = [LAMBDA_RETRIER]
    return state
