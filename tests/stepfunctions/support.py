"""Running generated state machines in moto's Step Functions executor (LocalStack's ASL interpreter).

moto runs no Lambda code and no containers, so two hooks stand in for AWS: Lambda invocations go
to pipegen's own handler, in this process; a submitted Batch job runs a test-supplied function
(playing the training job) before moto marks it SUCCEEDED. Both touch moto internals: moto is pinned.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import pytest

# What a Batch job does instead of running: gets the job's environment (MLFLOW_RUN_ID, ...).
JobPlayer = Callable[[dict[str, str]], None]


def configure_moto(endpoint: str) -> None:
    """Execute state machines, and run neither Lambda functions nor Batch jobs in docker."""
    config = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
        "batch": {"use_docker": False},
    }
    request = urllib.request.Request(f"{endpoint}/moto-api/config", data=json.dumps(config).encode(), method="POST")
    urllib.request.urlopen(request).close()


def route_lambda_to_runtime(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every lambda:invoke runs pipegen.runtime.lambda_handler.handler; returns the list of events seen.

    An exception becomes what AWS Lambda answers for an unhandled error (X-Amz-Function-Error and
    {"errorType", "errorMessage"}), which Step Functions turns into the error name the Retry/Catch see.
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from pipegen.runtime.lambda_handler import handler

    events: list[dict[str, Any]] = []

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        event = json.loads(body)
        events.append(event)
        try:
            result = handler(event)
        except Exception as exc:  # noqa: BLE001 - every error reaches the state machine, as on AWS
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return events


def _operation(action: str) -> str:
    """submitJob / describe_jobs -> SubmitJob / DescribeJobs (botocore operation names)."""
    if "_" in action:
        return "".join(part.capitalize() for part in action.split("_"))
    return action[0].upper() + action[1:]


def fix_batch_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give moto's Batch integration the request/response normalisation its port left empty.

    LocalStack converts a Task's PascalCase parameters to the boto3 request shape (JobName -> jobName)
    and the service's answer back (jobId -> JobId) in these two methods; moto 5.2.5 has them as
    no-ops, so `batch:submitJob(.sync)` calls boto3 with unknown parameters and never finds "JobId".
    Both use moto's own converters with botocore's Batch model, as LocalStack does.
    """
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
        StateTaskServiceBatch,
    )

    model = botocore.session.get_session().get_service_model("batch")

    def normalise_parameters(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        shape = model.operation_model(_operation(self.resource.api_action)).input_shape
        self._to_boto_request(parameters, shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        shape = model.operation_model(_operation(service_action_name or self.resource.api_action)).output_shape
        self._from_boto_response(response, shape)

    monkeypatch.setattr(StateTaskServiceBatch, "_normalise_parameters", normalise_parameters)
    monkeypatch.setattr(StateTaskServiceBatch, "_normalise_response", normalise_response)


def fix_glue_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let moto's `glue:startJobRun.sync` end: its port calls `interrupt_all()` on the waitForTaskToken endpoint
    in a `finally` even for a service without that pattern (Glue has none, so the endpoint is None and every Glue
    Task fails with "'NoneType' object has no attribute 'interrupt_all'"). This is moto's own integration-pattern
    evaluation for `.sync`, the same steps in the same order, without that call.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue import (
        StateTaskServiceGlue,
    )

    def eval_integration_pattern(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        task_output = env.stack.pop()
        self.timeout.eval(env=env)
        timeout_seconds = env.stack.pop()
        env.stack.append(task_output)
        resolver = self._build_sync_resolver(
            env=env,
            resource_runtime_part=resource_runtime_part,
            normalised_parameters=normalised_parameters,
            state_credentials=state_credentials,
        )
        outcome = self._eval_sync(
            env=env,
            timeout_seconds=timeout_seconds,
            callback_endpoint=None,
            heartbeat_endpoint=None,
            sync_resolver=resolver,
        )
        env.stack.append(outcome)

    monkeypatch.setattr(StateTaskServiceGlue, "_eval_integration_pattern", eval_integration_pattern)


def play_batch_jobs(monkeypatch: pytest.MonkeyPatch, player: JobPlayer) -> list[dict[str, Any]]:
    """Run player with each submitted job's environment before moto marks the job SUCCEEDED."""
    # With batch.use_docker false, moto's server answers Batch calls from its "simple" backend.
    from moto.batch_simple.models import BatchSimpleBackend

    original = BatchSimpleBackend.submit_job
    submitted: list[dict[str, Any]] = []

    def submit_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        overrides = kwargs.get("container_overrides") or {}
        env = {e["name"]: e["value"] for e in overrides.get("environment", [])}
        submitted.append({"command": overrides.get("command"), "environment": env})
        player(env)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BatchSimpleBackend, "submit_job", submit_job)
    return submitted


def run_state_machine(
    definition: str, name: str, execution_input: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    """Create the state machine, start one execution and wait for it to end; returns describe_execution."""
    arn = boto3.client("stepfunctions").create_state_machine(
        name=name, definition=definition, roleArn="arn:aws:iam::123456789012:role/pipegen-test"
    )["stateMachineArn"]
    return start_and_wait(arn, name, execution_input, timeout)


def start_and_wait(arn: str, name: str, execution_input: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Start one execution `<name>-run` of a state machine and wait for it to end; returns describe_execution."""
    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-run", input=json.dumps(execution_input))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.2)
    raise AssertionError(f"execution {name} still running after {timeout}s")


def history(execution_arn: str) -> list[dict[str, Any]]:
    """The execution's events, oldest first."""
    return list(boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"])
