"""AWS resources on moto's server that tests need before they submit work."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    import pytest


def batch_queue(queue: str, definition: str) -> dict[str, str]:
    """A Fargate compute environment serving the named queue, and job definition NAME[:REVISION].

    Idempotent within one moto server: an existing queue is reused, and revisions are registered
    until NAME:REVISION exists. Returns {"queue": ARN, "definition": ARN of the newest revision}.
    """
    name, _, revision = definition.partition(":")
    batch = boto3.client("batch")
    found = batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
    if found:
        queue_arn = found[0]["jobQueueArn"]
    else:
        role = boto3.client("iam").create_role(RoleName=f"{queue}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=queue, Description="x", VpcId=vpc)["GroupId"]
        env = batch.create_compute_environment(
            computeEnvironmentName=queue,
            type="MANAGED",
            state="ENABLED",
            serviceRole=role,
            computeResources={"type": "FARGATE", "maxvCpus": 256, "subnets": [subnet], "securityGroupIds": [group]},
        )["computeEnvironmentArn"]
        queue_arn = batch.create_job_queue(
            jobQueueName=queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
        )["jobQueueArn"]
    registered = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
    arns = [d["jobDefinitionArn"] for d in sorted(registered, key=lambda d: d["revision"])]
    while len(arns) < int(revision or 1):
        arns.append(
            batch.register_job_definition(
                jobDefinitionName=name,
                type="container",
                containerProperties={
                    "image": "train:1",
                    "command": ["true"],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
                },
            )["jobDefinitionArn"]
        )
    return {"queue": queue_arn, "definition": arns[-1]}


def batch_jobs_run_here(patch: pytest.MonkeyPatch, runner: Callable[[Any], None]) -> None:
    """moto's Batch without docker, in this process: a submitted job is RUNNING until runner(job) ends it.

    Without docker, moto marks a job finished as soon as it is submitted; this hook (on moto's
    BatchSimpleBackend, undone with `patch`) starts runner(job) in a thread instead, which runs the job's
    command and ends it with job._mark_stopped(success=...) by its exit code. Each suite keeps its own runner.
    """
    from moto.batch_simple.models import BatchSimpleBackend

    def mark(self: Any, include_start_attempt: bool, job: Any) -> None:
        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.datetime.now()
        job.log_stream_name = job._stream_name
        if include_start_attempt:
            job._start_attempt()
        job.status = "RUNNING"
        threading.Thread(target=runner, args=(job,), daemon=True).start()

    patch.setattr(BatchSimpleBackend, "_mark_job_as_finished", mark)


def lambda_function(name: str, handler: str = "pipegen.runtime.lambda_handler.handler") -> str:
    """A Lambda function in moto (the code is a placeholder: tests route invocations elsewhere); returns its ARN."""
    import io
    import json
    import zipfile

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = boto3.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")
    created = boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler=handler,
        Code={"ZipFile": code.getvalue()},
    )
    return str(created["FunctionArn"])


def deploy_stack(name: str, template: str, parameters: dict[str, str], timeout: float = 60) -> dict[str, str]:
    """Create a CloudFormation stack (named IAM resources not allowed: CAPABILITY_IAM) and wait for it; its outputs."""
    import time

    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            assert stack["StackStatus"] == "CREATE_COMPLETE", stack
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        time.sleep(0.2)
    raise AssertionError(f"stack {name} not created after {timeout}s")


def stacks_make_executable_state_machines(patch: pytest.MonkeyPatch) -> None:
    """moto's CloudFormation creates state machines where its ASL executor finds them.

    With stepfunctions.execute_state_machine on, moto's API serves state machines from its parser
    backend, but its CloudFormation model (AWS::StepFunctions::StateMachine) creates, updates and deletes
    them in the plain backend, where that API never looks. The three CloudFormation methods are the only
    users of the module's `stepfunctions_backends`: point it at the parser's (undone with `patch`).
    """
    import moto.stepfunctions.models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    patch.setattr(moto.stepfunctions.models, "stepfunctions_backends", stepfunctions_parser_backends)
