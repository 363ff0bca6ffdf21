"""Least-privilege IAM for a generated state machine, derived from the Task states of its definition.

`role_statements` walks the definition (Parallel branches and Map processors too) and grants each
service integration it finds exactly what AWS documents for it ("IAM policies for integrated
services" in the Step Functions guide), on the resources the states name:

- `lambda:invoke`: lambda:InvokeFunction on the runtime function (and its versions/aliases) only.
- `batch:submitJob.sync`: batch:SubmitJob on the named job queues and job definitions;
  batch:TerminateJob on this account's jobs (a job id exists only once submitted); batch:DescribeJobs
  takes no resource (the Service Authorization Reference lists no resource type for it), so it is
  the one `*`; events rights on the managed rule `.sync` uses to hear of the job's end.
- `sagemaker:createTrainingJob.sync`: create/describe/stop and ListTags on training jobs named
  after the step (the runtime appends the run id), iam:PassRole on the named role to SageMaker only,
  events rights on the managed rule.
- `eks:runJob.sync`, `eks:call` (a multi-node step's headless Service): eks:DescribeCluster on the named
  cluster (what the role may do inside it is the cluster's RBAC: create/get Jobs and list pods, create/delete
  Services in the namespace).
- Spark (spark_iam.py): `elasticmapreduce:addStep.sync` (add/describe/cancel steps on the named cluster),
  `emr-serverless:startJobRun.sync` (start on the application, get/cancel its job runs, iam:PassRole of the
  execution role to EMR Serverless), `emr-containers:startJobRun.sync` (start on the virtual cluster for the named
  execution role only, describe/cancel its job runs), `glue:startJobRun.sync` (start/get/stop runs of the named
  job), each `.sync` with its managed EventBridge rule where AWS documents one.

`secret_names` lists the ${secret.X} the runtime Lambda reads (from the requests the states send it):
they are read by the Lambda's role, not the state machine's (see runtime_policy.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pipegen.expr import ExpressionError, parse_template
from pipegen.targets.asl.base import LAMBDA_INVOKE

BATCH_SYNC = "arn:aws:states:::batch:submitJob.sync"
SAGEMAKER_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
EKS_SYNC = "arn:aws:states:::eks:runJob.sync"
EKS_CALL = "arn:aws:states:::eks:call"
# The EventBridge rules Step Functions manages in the account to learn that a `.sync` job ended.
BATCH_RULE = "StepFunctionsGetEventsForBatchJobsRule"
SAGEMAKER_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
EVENTS_ACTIONS = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
RUNTIME_FUNCTION = "RuntimeFunctionArn"
_ACCOUNT = "${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"


def tasks(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every Task state, those inside Parallel branches and Map processors included."""
    for state in states.values():
        if state.get("Type") == "Task":
            yield state
        for branch in state.get("Branches", []):
            yield from tasks(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is not None:
            yield from tasks(processor["States"])


def arguments(task: dict[str, Any]) -> dict[str, Any]:
    """A Task's request: Parameters (JSONPath) or Arguments (JSONata)."""
    found = task.get("Parameters", task.get("Arguments", {}))
    return found if isinstance(found, dict) else {}


def literal(value: Any) -> str | None:
    """A request value the definition fixes (not a JSONata expression; JSONPath ones sit under `Key.$`)."""
    if isinstance(value, str) and not (value.startswith("{%") and value.endswith("%}")):
        return value
    return None


def iam_text(text: str) -> str:
    """Literal text in an IAM resource or condition value: IAM reads `${...}` as a policy variable, `${$}` is `$`."""
    return text.replace("$", "${$}")


def sub_text(text: str) -> str:
    """Literal text inside Fn::Sub, which reads `${...}` as a variable and `${!...}` as the text `${...}`."""
    return text.replace("${", "${!")


def sub(service: str, tail: str) -> dict[str, str]:
    """An ARN in this stack's partition, region and account; `tail` is literal text."""
    return {"Fn::Sub": "arn:" + _ACCOUNT % service + sub_text(iam_text(tail))}


def sagemaker_prefix(base: str) -> str:
    """What every training job name of a step starts with: runtime.aws_jobs.sagemaker_job_name's first part."""
    return re.sub(r"[^A-Za-z0-9]+", "-", base[:40]).strip("-")


def role_statements(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The state machine role's policy statements: what its Task states call, on what they name."""
    found = list(tasks(definition["States"]))
    resources = {t["Resource"] for t in found}
    statements: list[dict[str, Any]] = []
    if LAMBDA_INVOKE in resources:
        function = {"Ref": RUNTIME_FUNCTION}
        statements.append(
            _allow("InvokeRuntime", ["lambda:InvokeFunction"], [function, {"Fn::Sub": f"${{{RUNTIME_FUNCTION}}}:*"}])
        )
    batch = [arguments(t) for t in found if t["Resource"] == BATCH_SYNC]
    if batch:
        submit: list[Any] = []
        for request in batch:
            submit += [_batch_arn("job-queue", request.get("JobQueue"))]
            submit += _job_definition_arns(request.get("JobDefinition"))
        statements += [
            _allow("SubmitBatchJobs", ["batch:SubmitJob"], submit),
            _allow("StopBatchJobs", ["batch:TerminateJob"], [sub("batch", "job/*")]),
            # DescribeJobs supports no resource-level permissions: "*" is the only resource it accepts.
            _allow("WatchBatchJobs", ["batch:DescribeJobs"], ["*"]),
            _allow("BatchJobEvents", EVENTS_ACTIONS, [sub("events", f"rule/{BATCH_RULE}")]),
        ]
    sagemaker = [arguments(t) for t in found if t["Resource"] == SAGEMAKER_SYNC]
    if sagemaker:
        names = _sagemaker_job_names(found)
        jobs = [sub("sagemaker", f"training-job/{sagemaker_prefix(n)}*") for n in names] or [
            sub("sagemaker", "training-job/*")
        ]
        roles = [r for r in (literal(a.get("RoleArn")) for a in sagemaker) if r is not None]
        actions = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"]
        statements += [
            _allow("RunTrainingJobs", actions, jobs),
            _allow("ReadTrainingJobTags", ["sagemaker:ListTags"], jobs),
        ]
        if roles:
            passes = _allow("PassTrainingRole", ["iam:PassRole"], roles)
            passes["Condition"] = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
            statements.append(passes)
        statements.append(_allow("TrainingJobEvents", EVENTS_ACTIONS, [sub("events", f"rule/{SAGEMAKER_RULE}")]))
    from pipegen.targets.stepfunctions.spark_iam import spark_statements

    statements += spark_statements(found)
    eks = (EKS_SYNC, EKS_CALL)
    clusters = [literal(arguments(t).get("ClusterName")) for t in found if t["Resource"] in eks]
    if clusters:
        arns = [sub("eks", f"cluster/{c}") if c is not None else sub("eks", "cluster/*") for c in clusters]
        statements.append(_allow("DescribeCluster", ["eks:DescribeCluster"], arns))
    return statements


def secret_names(definition: dict[str, Any]) -> list[str]:
    """The ${secret.X} names in the requests the states send the runtime Lambda, sorted."""
    names: set[str] = set()
    for task in tasks(definition["States"]):
        if task["Resource"] == LAMBDA_INVOKE:
            for text in _spec_strings(arguments(task).get("Payload")):
                try:
                    refs = parse_template(text).refs
                except ExpressionError:  # not spec text (the runtime would not render it either)
                    continue
                names.update(r.name for r in refs if r.namespace == "secret")
    return sorted(names)


def _allow(sid: str, actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": _unique(resources)}


def _unique(values: list[Any]) -> list[Any]:
    """Each resource once, in a stable order (strings and Fn::Sub objects compared by their JSON)."""
    return [json.loads(k) for k in sorted({json.dumps(v, sort_keys=True) for v in values})]


def _batch_arn(kind: str, value: Any) -> Any:
    name = literal(value)
    if name is None:
        return sub("batch", f"{kind}/*")
    return name if name.startswith("arn:") else sub("batch", f"{kind}/{name}")


def _job_definition_arns(value: Any) -> list[Any]:
    """NAME:REVISION as given; a bare NAME means its latest revision: allow NAME and any NAME:REVISION."""
    name = literal(value)
    if name is None or name.startswith("arn:") or ":" in name:
        return [_batch_arn("job-definition", value)]
    return [sub("batch", f"job-definition/{name}"), sub("batch", f"job-definition/{name}:*")]


def _sagemaker_job_names(found: list[dict[str, Any]]) -> list[str]:
    """The job names the prepare requests give SageMaker jobs (the runtime adds the run id to each)."""
    names = []
    for task in found:
        if task["Resource"] != LAMBDA_INVOKE:
            continue
        for request in spec_requests(arguments(task).get("Payload")):
            if request.get("service") == "sagemaker" and isinstance(request.get("job_name"), str):
                names.append(request["job_name"])
    return names


def spec_requests(payload: Any) -> Iterator[dict[str, Any]]:
    """The runtime request in a lambda:invoke payload: `args.spec` (JSONata) or `args.spec_json`, its JSON text."""
    args = payload.get("args") if isinstance(payload, dict) else None
    if not isinstance(args, dict):
        return
    if isinstance(args.get("spec"), dict):
        yield args["spec"]
    text = args.get("spec_json")
    if isinstance(text, str):
        request = json.loads(text)
        if isinstance(request, dict):
            yield request


def _spec_strings(payload: Any) -> Iterator[str]:
    """Every string in a payload's runtime request: spec text, where ${...} means what the spec says."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    for request in spec_requests(payload):
        yield from walk(request)
