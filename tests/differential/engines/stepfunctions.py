"""The Step Functions engine: the compiled state machine run once on moto's executor (run with .venv).

moto's server is the parent's (tests/differential/aws.py, reached through AWS_ENDPOINT_URL): it executes the
state machine with LocalStack's ASL interpreter, runs Batch jobs as local processes and routes `lambda:invoke`
to pipegen's runtime handler with the invoked function's environment. This module deploys what the generated
machine needs (the runtime Lambda with this engine's MLflow server in its environment, as a deployment sets
MLFLOW_TRACKING_URI on it), starts one execution with {"params", "scheduled_time"} and reads each step's
outcome from the execution history.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.differential.engines import Request, Result, StepResult, load_pipeline, settle_evaluations
from tests.differential.engines.supervise import Progress, engine_main, log_path, timeout_of, typed_params

ROLE = "pipegen-diff-runtime"
# Variables AWS Lambda sets itself and refuses in a function's configuration.
RESERVED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")
SUCCEEDED = {"TaskSucceeded", "LambdaFunctionSucceeded"}
FAILED = {
    "TaskFailed",
    "TaskTimedOut",
    "TaskSubmitFailed",
    "TaskStartFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
}
# The deadline of the execution itself; the watchdog (timeout_of) stays the last resort behind it.
MARGIN_SECONDS = 20.0


def client(service: str) -> Any:
    """A boto3 client for moto with bounded connect/read times (a hung server fails the run, never hangs it)."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}))


def configure_moto(endpoint: str) -> None:
    """Execute state machines; no docker for Lambda or Batch (the parent's launcher does it too: harmless)."""
    config = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
        "batch": {"use_docker": False},
    }
    request = urllib.request.Request(f"{endpoint}/moto-api/config", data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(request, timeout=30).close()


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of the machine by name, including those inside Parallel branches and Map processors."""
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            found[name] = state
            for branch in state.get("Branches", []):
                walk(branch["States"])
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    walk(state[key]["States"])

    walk(definition["States"])
    return found


def lambda_functions(definition: dict[str, Any]) -> list[str]:
    """The Lambda functions the machine invokes (the target's runtime_function)."""
    names = set()
    for state in all_states(definition).values():
        arguments = state.get("Parameters") or state.get("Arguments") or {}
        if isinstance(arguments, dict) and isinstance(arguments.get("FunctionName"), str):
            names.add(arguments["FunctionName"])
    return sorted(names)


def lambda_environment(request: Request) -> dict[str, str]:
    """The runtime Lambda's configured environment: the request's (minus what Lambda reserves) and MLflow's URI."""
    env = {k: v for k, v in request.env.items() if k not in RESERVED}
    env["MLFLOW_TRACKING_URI"] = request.tracking_uri
    return dict(sorted(env.items()))


def deploy_runtime(request: Request, names: list[str]) -> None:
    """Create (or reconfigure) each runtime Lambda; moto runs pipegen's handler for it, with this environment."""
    iam = client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        role = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    lam = client("lambda")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "from pipegen.runtime.lambda_handler import handler\n")
    env = {"Variables": lambda_environment(request)}
    for name in names:
        try:
            lam.get_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler="handler.handler",
                Code={"ZipFile": code.getvalue()},
                Timeout=900,
                Environment=env,
            )
        else:
            # One moto server serves every scenario: this run's MLflow server replaces the last one's.
            lam.update_function_configuration(FunctionName=name, Environment=env)


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's events, oldest first."""
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return sorted(events, key=lambda e: int(e["id"]))


def _entered_name(event: dict[str, Any]) -> str | None:
    details = next((v for k, v in event.items() if k == "stateEnteredEventDetails"), None)
    return str(details["name"]) if details else None


def _exited_name(event: dict[str, Any]) -> str | None:
    details = next((v for k, v in event.items() if k == "stateExitedEventDetails"), None)
    return str(details["name"]) if details else None


class History:
    """An execution's events with each one's state: the nearest StateEntered up its previousEventId chain.

    The chain, not the event order, says which state an event belongs to: Parallel branches interleave.
    """

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.owner: dict[int, str | None] = {}
        by_id = {int(e["id"]): e for e in events}
        for event in events:
            eid = int(event["id"])
            entered = _entered_name(event)
            if entered is not None:
                self.owner[eid] = entered
            elif (exited := _exited_name(event)) is not None:
                self.owner[eid] = exited
            else:
                previous = int(event.get("previousEventId") or 0)
                self.owner[eid] = self.owner.get(previous) if previous in by_id else None
        self.next_state: dict[int, str] = {}
        for event in events:
            entered = _entered_name(event)
            previous = int(event.get("previousEventId") or 0)
            if entered is not None and previous:
                self.next_state[previous] = entered

    def entered(self) -> list[str]:
        """The names of the states entered, in order."""
        return [name for e in self.events if (name := _entered_name(e)) is not None]

    def exited(self) -> set[str]:
        """The states that were left."""
        return {name for e in self.events if (name := _exited_name(e)) is not None}

    def after(self, state: str) -> list[str]:
        """The states entered right after each exit of `state` (where a Choice went)."""
        return [
            self.next_state[int(e["id"])]
            for e in self.events
            if _exited_name(e) == state and int(e["id"]) in self.next_state
        ]

    def last_results(self) -> dict[str, str]:
        """Each Task state's last result event type (TaskSucceeded, TaskFailed, LambdaFunctionFailed...)."""
        results: dict[str, str] = {}
        for event in self.events:
            kind = str(event["type"])
            owner = self.owner.get(int(event["id"]))
            if owner is not None and (kind in SUCCEEDED or kind in FAILED):
                results[owner] = kind
        return results


def _step_of(state: str, steps: set[str]) -> str | None:
    """pipegen names a step's states `<step>` and `<step>.<part>`; its own states are `pipegen.*`."""
    head = state.split(".", 1)[0]
    return head if head in steps else None


def _runs_the_step(state: str, step: str, states: dict[str, dict[str, Any]]) -> bool:
    """Whether entering this state of the step means the step ran.

    Not its guard (`<step>.enabled` decides whether it runs), nor the structure a fan-out is named after
    its first step by (`<step>.parallel`, its joins and branch ends), which is entered before any branch runs.
    """
    if state == f"{step}.enabled" or states.get(state, {}).get("Type") in ("Parallel", "Map"):
        return False
    return not state.startswith(f"{step}.parallel")


def step_outcomes(request: Request, definition: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, StepResult]:
    """Each spec step's outcome from the history: its Task results, its Choice's way, its failure states."""
    pipeline = load_pipeline(request.spec)
    names = {s.name for s in pipeline.steps}
    states = all_states(definition)
    log = History(events)
    entered = log.entered()
    exited = log.exited()
    results = log.last_results()
    ran: dict[str, list[str]] = {}
    for state in entered:
        step = _step_of(state, names)
        if step is not None and _runs_the_step(state, step, states):
            ran.setdefault(step, []).append(state)
    rejected: set[str] = set()
    steps: dict[str, StepResult] = {}
    for step in pipeline.steps:
        mine = ran.get(step.name, [])
        if not mine:
            continue
        failed_tasks = [s for s in dict.fromkeys(mine) if results.get(s) in FAILED]
        unfinished = [s for s in dict.fromkeys(mine) if s not in exited and states.get(s, {}).get("Type") == "Task"]
        if f"{step.name}.failed" in mine and step.kind == "evaluate":
            rejected.add(step.name)
            steps[step.name] = StepResult("rejected")
        elif failed_tasks or f"{step.name}.timed_out" in mine:
            steps[step.name] = StepResult("failed")
        elif unfinished:
            # Started, never ended: the execution stopped first (another branch of a Parallel failed, or a timeout).
            steps[step.name] = StepResult("failed", f"state {unfinished[0]} did not finish before the execution ended")
        elif step.kind == "evaluate" and step.body.on_fail == "skip" and _choice_declined(step.name, states, log):
            rejected.add(step.name)
            steps[step.name] = StepResult("rejected")
        else:
            steps[step.name] = StepResult("passed")
    down = _descendants(pipeline)
    for step in pipeline.steps:
        if step.name in steps:
            continue
        skipped_by = [e for e in rejected if step.name in down.get(e, set())]
        steps[step.name] = StepResult("skipped" if skipped_by else "not_run")
    return {s.name: steps[s.name] for s in pipeline.steps}


def _choice_declined(step: str, states: dict[str, dict[str, Any]], log: History) -> bool:
    """Whether the evaluation's Choice (`<step>.passed`) went its default way (the thresholds did not hold)."""
    choice = states.get(f"{step}.passed")
    if choice is None or choice.get("Type") != "Choice":
        raise RuntimeError(f"no Choice state '{step}.passed' for evaluate step '{step}' in the definition")
    passing = {c["Next"] for c in choice.get("Choices", [])}
    return any(state not in passing for state in log.after(f"{step}.passed"))


def _descendants(pipeline: Any) -> dict[str, set[str]]:
    """Each step -> every step downstream of it."""
    children: dict[str, set[str]] = {s.name: set() for s in pipeline.steps}
    for s in pipeline.steps:
        for up in s.upstream:
            children[up].add(s.name)

    def below(name: str) -> Iterator[str]:
        for child in children[name]:
            yield child
            yield from below(child)

    return {name: set(below(name)) for name in children}


def execution_input(request: Request) -> dict[str, Any]:
    """{"params": {...}, "scheduled_time": "<ISO instant>"}: what the target's input state reads (both optional)."""
    data: dict[str, Any] = {"params": typed_params(request)}
    if request.scheduled_time:
        data["scheduled_time"] = request.scheduled_time
    return data


def run(request: Request, progress: Progress) -> Result:
    """Deploy the runtime Lambda, create the state machine, run one execution, read its history."""
    pipeline = load_pipeline(request.spec)
    os.environ.update(request.env)
    os.chdir(request.workdir)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise RuntimeError("the stepfunctions engine needs AWS_ENDPOINT_URL (the parent's moto server) in its env")
    configure_moto(endpoint)
    text = request.compiled_file("stepfunctions", ".asl.json").read_text()
    definition = json.loads(text)
    deploy_runtime(request, lambda_functions(definition))
    sfn = client("stepfunctions")
    suffix = uuid.uuid4().hex[:8]
    machine = sfn.create_state_machine(
        name=f"{pipeline.name}-{suffix}"[:80],
        definition=text,
        roleArn=f"arn:aws:iam::123456789012:role/{ROLE}",
    )["stateMachineArn"]
    given = execution_input(request)
    print(f"execution input: {json.dumps(given, sort_keys=True)}", flush=True)
    started = time.monotonic()
    execution = sfn.start_execution(
        stateMachineArn=machine, name=f"{pipeline.name}-{suffix}"[:80], input=json.dumps(given)
    )
    arn = execution["executionArn"]
    deadline = started + max(30.0, timeout_of(request) - MARGIN_SECONDS)
    described = sfn.describe_execution(executionArn=arn)
    while described["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        described = sfn.describe_execution(executionArn=arn)
    wall = time.monotonic() - started
    if described["status"] == "RUNNING":
        print(f"execution still running after {wall:.0f}s: stopping it", flush=True)
        sfn.stop_execution(executionArn=arn, error="pipegen.diff.Timeout", cause="the harness's deadline passed")
    events = history(sfn, arn)
    log = log_path(request)
    with Path(str(log) + ".history.json").open("w") as out:
        json.dump(events, out, indent=1, default=str)
    print(
        f"execution {described['status']} after {wall:.1f}s: {described.get('error')} {described.get('cause')}",
        flush=True,
    )
    steps = step_outcomes(request, definition, events)
    status = "succeeded" if described["status"] == "SUCCEEDED" else "failed"
    progress.engine_ended(Result(request.engine, status, steps, round(wall, 2), str(log)))
    return Result(request.engine, status, settle_evaluations(request, steps), round(wall, 2), str(log))


if __name__ == "__main__":
    sys.exit(engine_main(run))
