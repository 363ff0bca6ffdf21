"""The Prefect engine: the compiled flow run once in Prefect's own engine (run with .venv-prefect).

The flow module is imported from the compiled output and run against the session's Prefect API server (one
per differential session, tests/differential/prefect_server.py; without one, Prefect's test harness starts a
server here on a temporary database). A scheduled run is a flow run created in the Scheduled state
at the scheduled instant, then run by Prefect's flow engine, so `prefect.runtime.flow_run.scheduled_start_time`
is that instant as on a deployment; a manual run is the flow called. Outcomes are read back from the API server:
each step's task run and its final state. A step with no task run was never submitted: skipped when the run
Completed (only a failed `on_fail: skip` evaluation ends a run without submitting its downstream), else not_run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.differential.engines import Request, Result, StepResult, load_pipeline, settle_evaluations
from tests.differential.engines.supervise import Progress, engine_main, log_path, scheduled_instant, typed_params

# Prefect's ephemeral API server takes 25-40 s to start on a busy 2-core machine, over its default 20 s.
STARTUP_SECONDS = 180


def load_flow(request: Request) -> Any:
    """The flow the compiled module defines: the spec's name with `-` as `_`."""
    source = request.compiled_file("prefect", ".py")
    spec = importlib.util.spec_from_file_location(f"pipegen_diff_{source.stem.replace('-', '_')}", source)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, source.stem.replace("-", "_"))


def run_once(flow: Any, params: dict[str, Any], request: Request) -> Any:
    """Run the flow once (scheduled at the request's instant, else manually); its final state."""
    when = scheduled_instant(request)
    if when is None:
        return flow(**params, return_state=True)
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(flow, parameters=params, state=Scheduled(scheduled_time=when))
    return run_flow(flow, flow_run=flow_run, parameters=params, return_type="state")


def task_states(flow_run_id: Any) -> dict[str, Any]:
    """The flow run's task runs by task name (a task run is named `<task>-<suffix>`)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name.rsplit("-", 1)[0]: run.state for run in runs}


def step_outcomes(request: Request, completed: bool, states: dict[str, Any]) -> dict[str, StepResult]:
    """Each spec step's outcome from its task run's final state, or why it has none."""
    pipeline = load_pipeline(request.spec)
    steps: dict[str, StepResult] = {}
    for step in pipeline.steps:
        state = states.get(step.name)
        if state is None:
            steps[step.name] = StepResult("skipped" if completed else "not_run")
        elif state.is_completed():
            steps[step.name] = StepResult("passed")
        elif state.is_failed() or state.is_crashed():
            steps[step.name] = StepResult("failed", state.message or None)
        else:  # submitted, never started: an upstream step failed (Prefect's NotReady)
            steps[step.name] = StepResult("not_run", state.name)
    # An evaluation that passed lets its downstream run; one whose downstream was skipped judged against the
    # run: settle_evaluations reads that verdict (and its reasons) from MLflow as for every engine.
    for step in pipeline.steps:
        downstream = [s for s in pipeline.steps if step.name in s.upstream]
        if step.kind == "evaluate" and any(steps[s.name].outcome == "skipped" for s in downstream):
            steps[step.name] = StepResult("failed")
    return steps


def api_server(request: Request) -> contextlib.AbstractContextManager[Any]:
    """The session's Prefect server when the request names one (nothing to start), else the test harness's own."""
    if request.prefect_api:
        return contextlib.nullcontext()
    from prefect.testing.utilities import prefect_test_harness

    return prefect_test_harness(server_startup_timeout=STARTUP_SECONDS)


def run(request: Request, progress: Progress) -> Result:
    """Run the compiled flow once in Prefect's engine, params as flow arguments."""
    workdir = Path(request.workdir)
    params = typed_params(request)
    os.environ.update(request.env)
    # The tasks read the tracking server from the worker's environment, as on a real worker.
    os.environ["MLFLOW_TRACKING_URI"] = request.tracking_uri
    for variable in [v for v in os.environ if v.startswith("PREFECT_")]:
        del os.environ[variable]
    os.environ.update(
        {
            "PREFECT_HOME": tempfile.mkdtemp(prefix="prefect-home-", dir=workdir),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(STARTUP_SECONDS),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
    )
    if request.prefect_api:
        # The session's server (tests/differential/prefect_server.py): read before Prefect is imported.
        os.environ["PREFECT_API_URL"] = request.prefect_api
    os.chdir(workdir)

    flow = load_flow(request)
    with api_server(request):
        started = time.monotonic()
        state = run_once(flow, params, request)
        wall = time.monotonic() - started
        print(f"prefect flow run ended after {wall:.1f}s in {state!r}", flush=True)
        states = task_states(state.state_details.flow_run_id)
    steps = step_outcomes(request, state.is_completed(), states)
    for name, result in steps.items():
        progress.record(name, result)
    status = "succeeded" if state.is_completed() else "failed"
    log = str(log_path(request))
    progress.engine_ended(Result(request.engine, status, steps, round(wall, 2), log))
    return Result(request.engine, status, settle_evaluations(request, steps), round(wall, 2), log)


if __name__ == "__main__":
    sys.exit(engine_main(run))
