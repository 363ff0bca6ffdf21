"""`python -m pipegen.runtime.kfp_executor ACTION EXECUTOR_INPUT RUN_ID SCHEDULED CREATED [--zone Z]`: a KFP task.

pipegen's KFP target (`targets.kfp.runtime_components: container`) runs its runtime steps as container
components whose argument is kfp's executor input (`{{$}}`): the task's typed input values and the files
its output parameters go to. Reading the values from it keeps them typed and whole (kfp substitutes
`{{$.inputs.parameters[...]}}` in args one input at a time, so one value could take part in another's
substitution), and the image needs pipegen's runtime only: no kfp, no pip install at start.

Inputs named pipegen_* are pipegen's own (the step's spec, the MLflow run, a gate's wait anchor, an exit task's
final status); every other input is a pipeline parameter. The run's id and ${run.date} come from kfp's
placeholders for the job's id, schedule time and creation time, the same for every task of a run. Outputs are written as kfp's
own executor writes them (the executor output file, typed) and to each output parameter's file. The python
form's lightweight components call the same actions with their arguments (run_python).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pipegen.runtime.errors import report_failure
from pipegen.runtime.redact import install_log_redaction, redact, redact_data
from pipegen.runtime.step import decode, run_date_from, run_step

ACTIONS = (
    "context",
    "clock",
    "start_run",
    "gate",
    "local",
    "aws_batch",
    "sagemaker",
    "spark",
    "ray",
    "kubernetes_resource",
    "evaluate",
    "promote",
    "notify",
    "close_run",
)
# Ends the exit task without a notification: the run was stopped on purpose (as `pipegen run` interrupted).
CANCELLED = ("CANCELED", "CANCELLED", "CANCELING")
# A task's final state when it succeeded: kfp.local's and Vertex AI's, the KFP backend's.
SUCCEEDED = ("SUCCEEDED", "COMPLETE")


def run_action(action: str, zone: str, values: dict[str, Any]) -> dict[str, Any]:
    """The output parameters of one action, from the task's input values (zone: the ${run.date} timezone)."""
    params = {k: v for k, v in sorted(values.items()) if not k.startswith("pipegen_")}
    run_id, run_date = str(values.get("pipegen_run_key", "")), _run_date(values, zone)
    if action == "context":
        return {"run_id": run_id, "run_date": run_date}
    if action == "clock":
        return {"started": repr(time.time())}
    if action == "notify":
        return _notify(values, params, zone)
    if action == "close_run":
        return _close_run(values, params, zone)
    spec = decode(str(values["pipegen_spec"]))
    if action == "start_run":
        run = run_step("start_run", spec, params=params, run_id=run_id, run_date=run_date)
        return {"run_id": run["run_id"], "experiment_id": run["experiment_id"]}
    mlflow_run = None
    if "pipegen_mlflow_run_id" in values:
        mlflow_run = {
            "run_id": values["pipegen_mlflow_run_id"],
            "experiment_id": values["pipegen_mlflow_experiment_id"],
        }
    result = run_step(
        action,
        spec,
        params=params,
        run_id=run_id,
        run_date=run_date,
        mlflow_run=mlflow_run,
        wait_started=str(values.get("pipegen_wait_started", "")),
        # A failed judgement is final: only evaluate's infrastructure errors are retried, here.
        retry=spec.get("retry") if action == "evaluate" else None,
    )
    print(json.dumps(redact_data(result), sort_keys=True))
    return {"passed": bool(result["passed"])} if action == "evaluate" else {}


def _run_date(values: dict[str, Any], zone: str) -> str:
    """${run.date}: the input that holds it, else the scheduled time's date in zone, else the run's creation's.

    KFP gives a run no schedule started the epoch as its schedule time; its creation time is the same for every
    task of the run, so each container computes the same date (`now` would differ across midnight).
    """
    if "pipegen_run_date" in values:
        return str(values["pipegen_run_date"])
    when = str(values.get("pipegen_schedule_time", ""))
    if not (len(when) >= 10 and when[:4].isdigit() and not when.startswith("1970")):
        when = str(values.get("pipegen_create_time", ""))
    return run_date_from(when, zone)


def _notify(values: dict[str, Any], params: dict[str, Any], zone: str) -> dict[str, Any]:
    """The exit task: post to the webhooks the run's final state calls for; a failed post changes nothing."""
    spec = decode(str(values["pipegen_spec"]))
    status = values["pipegen_status"]
    state = str(status.get("state", ""))
    error = (status.get("error") or {}).get("message") or "no error"
    print(f"pipeline run ended {state}: {error}")
    if state in CANCELLED:
        return {}
    # FAILED, or SUCCEEDED (kfp.local, Vertex AI) / COMPLETE (the KFP backend); any other state is told as failed.
    event = "succeeded" if state in SUCCEEDED else "failed"
    if not spec[event]:
        return {}
    run_id = str(values["pipegen_run_key"])
    message = {"pipeline": spec["pipeline"], "event": event, "run": run_id}
    try:
        run_step(
            "notify",
            {"webhooks": spec[event], "message": message},
            params=params,
            run_id=run_id,
            run_date=_run_date(values, zone),
        )
    except Exception as exc:  # noqa: BLE001 - a failed alert must not change how the run ended
        print(redact(f"pipeline notification failed: {exc}"))
    return {}


def _close_run(values: dict[str, Any], params: dict[str, Any], zone: str) -> dict[str, Any]:
    """A training container's closer: end the run it left RUNNING as its task ended; a failure here changes nothing.

    FINISHED when the task succeeded, KILLED when the run was cancelled (as `pipegen run` interrupted), else FAILED.
    The run is found by the run key and the step (the closer may take no task's output: targets.kfp.close_run).
    """
    from pipegen.runtime.start_run import close_run_action, find_step_run
    from pipegen.runtime.templating import Values

    spec = decode(str(values["pipegen_spec"]))
    state = str(values["pipegen_status"].get("state", ""))
    status = "FINISHED" if state in SUCCEEDED else "KILLED" if state in CANCELLED else "FAILED"
    run_key = str(values["pipegen_run_key"])
    try:
        uri = Values(params, run_key, _run_date(values, zone)).string(spec.get("tracking_uri", "")) or None
        run = find_step_run(spec, run_key=run_key, tracking_uri=uri)
        if run is None:
            print(f"step {spec['step']} ended {state}: it made no MLflow run")
            return {}
        result = close_run_action(run, status, uri)
        print(f"step {spec['step']} ended {state}: " + json.dumps(result, sort_keys=True))
    except Exception as exc:  # noqa: BLE001 - the step's own outcome matters more than this bookkeeping
        print(redact(f"pipegen: could not end the MLflow run of step {spec['step']} as {status}: {exc}"))
    return {}


def run_python(action: str, arguments: dict[str, Any], zone: str = "UTC") -> Any:
    """What a lightweight component (runtime_components: python) returns: the action run on its arguments.

    kfp's executor hands an exit task's final status as a PipelineTaskFinalStatus; the action reads the keys
    the container form gets.
    """
    from collections import namedtuple

    values = dict(arguments)
    status = values.get("pipegen_status")
    if status is not None and not isinstance(status, dict):
        values["pipegen_status"] = {"state": status.state, "error": {"message": status.error_message}}
    outputs = run_action(action, zone, values)
    if action in ("start_run", "context"):
        names = ["run_id", "experiment_id"] if action == "start_run" else ["run_id", "run_date"]
        return namedtuple("Outputs", names)(*(outputs[n] for n in names))
    if action == "clock":
        return outputs["started"]
    return outputs["passed"] if action == "evaluate" else None


def write_outputs(executor_input: dict[str, Any], outputs: dict[str, Any]) -> None:
    """The outputs where kfp reads them: its executor output file (typed) and each parameter's own file."""
    places = executor_input.get("outputs", {})
    for name, value in outputs.items():
        path = places.get("parameters", {}).get(name, {}).get("outputFile")
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(value) if isinstance(value, bool) else str(value))
    if places.get("outputFile"):
        target = Path(places["outputFile"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"parameterValues": outputs}, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    """Run one action of a KFP container component; exit 1 with the reason on stderr when it fails."""
    parser = argparse.ArgumentParser(prog="python -m pipegen.runtime.kfp_executor")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("executor_input", help="kfp's executor input ({{$}}): the task's values, its output files")
    # The run's id and times, which kfp substitutes in a container's args: the same for every task of the run.
    parser.add_argument("run_id", help="the pipeline job's id ({{$.pipeline_job_uuid}})")
    parser.add_argument("schedule_time", help="{{$.pipeline_job_schedule_time_utc}}")
    parser.add_argument("create_time", help="{{$.pipeline_job_create_time_utc}}")
    parser.add_argument("--zone", default="UTC", help="the timezone ${run.date} is a date in")
    parser.add_argument("--numbers", default="", help="NAME:int|float,...: the types of numeric parameters")
    ns = parser.parse_args(argv)
    install_log_redaction()
    try:
        executor_input = json.loads(ns.executor_input)
        values = dict(executor_input.get("inputs", {}).get("parameterValues", {}))
        for item in filter(None, ns.numbers.split(",")):
            name, kind = item.split(":")
            if name in values:
                values[name] = int(values[name]) if kind == "int" else float(values[name])
        values |= {"pipegen_run_key": ns.run_id, "pipegen_schedule_time": ns.schedule_time}
        values["pipegen_create_time"] = ns.create_time
        write_outputs(executor_input, run_action(ns.action, ns.zone, values))
    except Exception as exc:  # noqa: BLE001 - every failure is reported (masked) and ends the command with 1
        return report_failure(ns.action, exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
