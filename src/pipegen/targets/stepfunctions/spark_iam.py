"""The state machine role's statements for Spark Tasks, as AWS documents them for each `.sync` integration.

Sources: the Step Functions guide's "IAM policies for integrated services" pages for Amazon EMR (addStep), EMR
Serverless (StartJobRun, Run a Job) and AWS Glue (startJobRun .sync), and for EMR on EKS the same statements AWS
CDK's EmrContainersStartJobRun grants (StartJobRun on the virtual cluster, conditioned on the execution role;
DescribeJobRun/CancelJobRun on its job runs). Each is scoped to the ids the Task names; a `.sync` Task stopped by
its timeout or by a stopped execution has Step Functions cancel the step or job run, hence the cancel rights.
"""

from __future__ import annotations

from typing import Any

from pipegen.targets.stepfunctions import iam
from pipegen.targets.stepfunctions.spark import EMR_ON_EKS_SYNC, EMR_SERVERLESS_SYNC, EMR_SYNC, GLUE_SYNC

EMR_RULE = "StepFunctionsGetEventForEMRAddJobFlowStepsRule"
EMR_SERVERLESS_RULE = "StepFunctionsGetEventsForEMRServerlessJobRule"


def spark_statements(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the Spark Tasks among found (Task states) need, on what they name."""

    def requests(resource: str) -> list[dict[str, Any]]:
        return [iam.arguments(t) for t in found if t["Resource"] == resource]

    statements: list[dict[str, Any]] = []
    emr = requests(EMR_SYNC)
    if emr:
        clusters = [_named("elasticmapreduce", "cluster/", r.get("ClusterId")) for r in emr]
        actions = ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:DescribeStep", "elasticmapreduce:CancelSteps"]
        statements += [
            iam._allow("RunEmrSteps", actions, clusters),
            iam._allow("EmrStepEvents", iam.EVENTS_ACTIONS, [iam.sub("events", f"rule/{EMR_RULE}")]),
        ]
    serverless = requests(EMR_SERVERLESS_SYNC)
    if serverless:
        apps = [iam.literal(r.get("ApplicationId")) for r in serverless]
        statements += [
            iam._allow("StartServerlessJobRuns", ["emr-serverless:StartJobRun"], [_app(a) for a in apps]),
            iam._allow(
                "WatchServerlessJobRuns",
                ["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"],
                [_app(a, "/jobruns/*") for a in apps],
            ),
        ]
        roles = [r for r in (iam.literal(q.get("ExecutionRoleArn")) for q in serverless) if r is not None]
        if roles:
            passes = iam._allow("PassServerlessExecutionRole", ["iam:PassRole"], roles)
            passes["Condition"] = {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}}
            statements.append(passes)
        rule = [iam.sub("events", f"rule/{EMR_SERVERLESS_RULE}")]
        statements.append(iam._allow("ServerlessJobRunEvents", iam.EVENTS_ACTIONS, rule))
    on_eks = requests(EMR_ON_EKS_SYNC)
    # One statement per virtual cluster: its StartJobRun is allowed for that cluster's execution role only.
    for i, request in enumerate(on_eks):
        cluster = iam.literal(request.get("VirtualClusterId"))
        start = iam._allow(f"StartEksJobRuns{i}", ["emr-containers:StartJobRun"], [_virtual(cluster)])
        role = iam.literal(request.get("ExecutionRoleArn"))
        if role is not None:
            start["Condition"] = {"StringEquals": {"emr-containers:ExecutionRoleArn": iam.iam_text(role)}}
        statements.append(start)
    if on_eks:
        runs = [_virtual(iam.literal(r.get("VirtualClusterId")), "/jobruns/*") for r in on_eks]
        actions = ["emr-containers:DescribeJobRun", "emr-containers:CancelJobRun"]
        statements.append(iam._allow("WatchEksJobRuns", actions, runs))
    glue = requests(GLUE_SYNC)
    if glue:
        jobs = [_named("glue", "job/", r.get("JobName")) for r in glue]
        actions = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
        statements.append(iam._allow("RunGlueJobs", actions, jobs))
    return statements


def _named(service: str, kind: str, value: Any) -> dict[str, str]:
    name = iam.literal(value)
    return iam.sub(service, kind + (name if name is not None else "*"))


def _app(application: str | None, tail: str = "") -> dict[str, str]:
    # EMR Serverless ARNs have a slash before the resource: arn:aws:emr-serverless:REGION:ACCOUNT:/applications/ID
    return iam.sub("emr-serverless", f"/applications/{application or '*'}{tail}")


def _virtual(cluster: str | None, tail: str = "") -> dict[str, str]:
    return iam.sub("emr-containers", f"/virtualclusters/{cluster or '*'}{tail}")
