"""The generated pricing template deployed into moto's CloudFormation, and the state machine it created run there.

moto's CloudFormation creates the IAM roles and the state machine (it does not model AWS::Scheduler::Schedule
and skips it with a warning; a hook puts the state machine where moto's executor looks); its Step Functions executor then runs the deployed definition, Lambda calls
routed to pipegen's handler and the Batch job played as in test_execution.py, against a real MLflow server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.cases import GOLDEN
from tests.stepfunctions.support import history, play_batch_jobs, start_and_wait
from tests.support_aws import batch_queue, deploy_stack, lambda_function, stacks_make_executable_state_machines
from tests.support_mlflow import MlflowServer, play_training

TEMPLATE = GOLDEN / "stepfunctions" / "pricing.template.json"


@pytest.mark.filterwarnings("ignore:Tried to parse AWS..Scheduler..Schedule but")
def test_deployed_pricing_stack_runs_and_promotes(
    sfn: list[dict[str, Any]],
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    name: str,
) -> None:
    # The world the pricing spec names: its queue and job definition, today's partition, a job logging metrics.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    batch = batch_queue("ml-cpu-64", "pricing-train:3")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pricing-data")
    today = datetime.now(UTC).date().isoformat()
    s3.put_object(Bucket="pricing-data", Key=f"quotes/dt={today}/part-0.parquet", Body=b"rows")
    jobs = play_batch_jobs(
        monkeypatch,
        lambda env: play_training(
            env["MLFLOW_TRACKING_URI"], env["MLFLOW_RUN_ID"], {"mae": 9.0, "model_size_mb": 80.0}
        ),
    )
    # Which function each lambda:invoke named (the fixture's routing to the runtime handler still runs it).
    from moto.awslambda_simple.models import LambdaSimpleBackend

    routed, called = LambdaSimpleBackend.invoke, []

    def invoke(self: Any, function_name: str, *args: Any) -> Any:
        called.append(function_name)
        return routed(self, function_name, *args)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    function = lambda_function(f"{name}-runtime")
    stacks_make_executable_state_machines(monkeypatch)

    outputs = deploy_stack(name, TEMPLATE.read_text(), {"RuntimeFunctionArn": function})
    request.addfinalizer(lambda: boto3.client("cloudformation").delete_stack(StackName=name))

    # The stack's role holds the template's policy, its Fn::Sub ARNs resolved to the resources moto made.
    resources = boto3.client("cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    # (moto lists the schedule it skipped without ids.)
    by_id = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if "LogicalResourceId" in r}
    assert {"StateMachine", "StateMachineRole", "SchedulerRole"} <= by_id.keys(), by_id
    iam = boto3.client("iam")
    role = by_id["StateMachineRole"]
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):  # moto 5.2.5 stores a CloudFormation-made inline policy as the dict's repr
        import ast

        document = ast.literal_eval(document)
    by_sid = {s["Sid"]: s["Resource"] for s in document["Statement"]}
    assert sorted(by_sid["SubmitBatchJobs"]) == sorted([batch["queue"], batch["definition"]])
    assert sorted(by_sid["InvokeRuntime"]) == sorted([function, f"{function}:*"])
    # The runtime's policy, for the function's role: pricing's gate lists its partitions' prefix.
    runtime = iam.get_policy(PolicyArn=outputs["RuntimePolicyArn"])["Policy"]
    iam.attach_role_policy(RoleName=f"{name}-runtime-role", PolicyArn=runtime["Arn"])
    machine = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=outputs["StateMachineArn"])
    assert machine["name"] == "pricing"
    assert machine["roleArn"] == iam.get_role(RoleName=role)["Role"]["Arn"]

    result = start_and_wait(outputs["StateMachineArn"], name, {})
    failed = [e for e in history(result["executionArn"]) if "Failed" in e["type"]]
    assert result["status"] == "SUCCEEDED", (result, json.dumps(failed, default=str)[:3000])

    (job,) = jobs
    run_id = job["environment"]["MLFLOW_RUN_ID"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    assert client.get_model_version_by_alias("pricing", "champion").run_id == run_id
    assert [e["args"]["kind"] for e in sfn] == ["gate_check", "prepare", "close_run", "evaluate", "promote"]
    # Every runtime call went to the function the stack was given, by its ARN.
    assert called == [function] * 5
