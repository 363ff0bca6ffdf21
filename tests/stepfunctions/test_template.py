"""The CloudFormation deploy template: cfn-lint (pinned) accepts it, and its IAM is exactly what the states need.

The policy check computes, from nothing but the Resource fields of the generated ASL, the actions each
service integration needs (AWS's "IAM policies for integrated services" pages), and compares them with
the role the template creates; it also checks that every resource is an ARN, Fn::Sub or Ref, the single
documented `*` aside, and that the template's definition is the .asl.json with only the function changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cases import GOLDEN, REPO
from tests.hostile import HOSTILE
from tests.stepfunctions.asl import compile_text, hostile_spec, with_targets

TEMPLATES = sorted((GOLDEN / "stepfunctions").glob("*.template.json"))
SCENARIOS = sorted((REPO / "tests" / "differential" / "scenarios").glob("*.yaml"))
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:pipegen-runtime"

# What each service integration's Task needs (AWS Step Functions guide, "IAM policies for integrated services").
EVENTS = {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
NEEDS = {
    "arn:aws:states:::lambda:invoke": {"lambda:InvokeFunction"},
    "arn:aws:states:::batch:submitJob.sync": {"batch:SubmitJob", "batch:DescribeJobs", "batch:TerminateJob", *EVENTS},
    "arn:aws:states:::sagemaker:createTrainingJob.sync": {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:ListTags",
        "iam:PassRole",
        *EVENTS,
    },
    "arn:aws:states:::eks:runJob.sync": {"eks:DescribeCluster"},
    "arn:aws:states:::eks:call": {"eks:DescribeCluster"},
    "arn:aws:states:::elasticmapreduce:addStep.sync": {
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:CancelSteps",
        *EVENTS,
    },
    "arn:aws:states:::emr-serverless:startJobRun.sync": {
        "emr-serverless:StartJobRun",
        "emr-serverless:GetJobRun",
        "emr-serverless:CancelJobRun",
        "iam:PassRole",
        *EVENTS,
    },
    # AWS CDK's EmrContainersStartJobRun grants these (no managed rule: Step Functions polls).
    "arn:aws:states:::emr-containers:startJobRun.sync": {
        "emr-containers:StartJobRun",
        "emr-containers:DescribeJobRun",
        "emr-containers:CancelJobRun",
    },
    "arn:aws:states:::glue:startJobRun.sync": {
        "glue:StartJobRun",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
    },
}
# Actions the Service Authorization Reference lists without a resource type: "*" is all they accept.
NO_RESOURCE_TYPE = {"batch:DescribeJobs"}

SAGEMAKER = (
    "backends:\n  sm:\n    type: sagemaker\n    role_arn: arn:aws:iam::123456789012:role/trainer\n"
    "    image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1\n    instance_type: ml.m5.xlarge\n"
    "    output_path: s3://models/out\n"
    "  queue:\n    type: aws_batch\n    job_queue: arn:aws:batch:eu-west-1:123456789012:job-queue/shared\n"
    "    job_definition: prep\n"
)
# Specs beside the goldens, for what they do not show: SageMaker, a queue ARN, a job definition without
# revision, secrets in a JSONPath spec, no schedule, and a spec whose every field is hostile text.
EXTRA = {
    "sagemaker": "pipegen: 1\nname: sm\n"
    + SAGEMAKER
    + "steps:\n  - name: rows\n    gate: {check: row_count, connection: '${secret.token}', query: 'SELECT 1', min_rows: 1}\n"
    "  - name: prep\n    task: {backend: queue, command: [prep]}\n"
    "  - name: train\n    train: {backend: sm, command: [train], metrics: [m]}\n"
    "  - name: judge\n    evaluate: {run_of: train, thresholds: ['m > 0']}\n",
    "s3gates": "pipegen: 1\nname: s3gates\nparams: {env: prod}\n"
    "backends:\n  q: {type: aws_batch, job_queue: q, job_definition: d}\nsteps:\n"
    "  - name: events\n    gate: {check: partition_exists, path: 's3://raw-${params.env}/events/dt=${run.date}/'}\n"
    "  - name: users\n    gate: {check: freshness, path: 's3://ref/tables/users$${x}.parquet', max_age: 1d}\n"
    "  - name: landing\n    gate: {check: partition_exists, path: 's3://landing'}\n"
    "  - name: job\n    after: [events, users, landing]\n    task: {backend: q, command: [run]}\n",
    "hostile-jsonpath": hostile_spec(HOSTILE, "JSONPath"),
    "hostile-jsonata": hostile_spec(HOSTILE, "JSONata"),
}


def _extra_templates(tmp_path: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """{case: (template, its definition)} for the EXTRA specs."""
    found = {}
    for case, text in EXTRA.items():
        outputs, diags = compile_text(text, tmp_path, f"{case}.yaml")
        assert outputs, diags
        (name,) = {p.split("/")[1].split(".")[0] for p in outputs}
        found[case] = (
            json.loads(outputs[f"stepfunctions/{name}.template.json"]),
            json.loads(outputs[f"stepfunctions/{name}.asl.json"]),
        )
    return found


def _scenario_templates() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """{case: (template, definition)} for each differential scenario Step Functions compiles (a local backend it cannot)."""
    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_file

    found = {}
    for spec in SCENARIOS:
        result = compile_checked(check_file(str(spec)), ["stepfunctions"])
        if result.ok:
            texts = {o.path.rsplit(".", 2)[-2]: json.loads(o.text) for o in result.outputs if o.path.endswith(".json")}
            found[spec.name] = (texts["template"], texts["asl"])
    return found


def _cases(tmp_path: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The goldens, the scenarios and the extra specs: {case: (template, definition)}."""
    cases = {
        path.name: (
            json.loads(path.read_text()),
            json.loads(path.with_name(path.name.replace("template", "asl")).read_text()),
        )
        for path in TEMPLATES
    }
    return cases | _scenario_templates() | _extra_templates(tmp_path)


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint, as pinned in the lock, on the given templates."""
    assert CFN_LINT.exists(), "cfn-lint is in the core environment: make env-core"
    return subprocess.run([str(CFN_LINT), *map(str, paths)], capture_output=True, text=True, check=False, timeout=300)


def test_goldens_have_templates() -> None:
    assert [p.name for p in TEMPLATES] == [
        "clicks.template.json",
        "feed-ranking-16gpu-batch.template.json",
        "feed-ranking-16gpu-sagemaker.template.json",
        "feed-ranking-16gpu.template.json",
        "feed-ranking.template.json",
        "pricing.template.json",
    ]


def test_cfn_lint_accepts_every_template(tmp_path: Path) -> None:
    paths = list(TEMPLATES)
    scenarios = _scenario_templates()
    assert scenarios, "no differential scenario compiles for Step Functions"
    for case, (doc, _) in scenarios.items():
        path = tmp_path / f"scenario-{case}.template.json"
        path.write_text(json.dumps(doc, indent=2))
        paths.append(path)
    hostile = []
    for case, (doc, _) in _extra_templates(tmp_path).items():
        path = tmp_path / f"{case}.template.json"
        path.write_text(json.dumps(doc, indent=2))
        (hostile if case.startswith("hostile") else paths).append(path)
    proc = lint(*paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The hostile spec names its EKS cluster with a line break, quotes and braces: the ARN built from it
    # stays that literal text, which W1031 (a warning: exit code 4, no error bit 2) says no ARN can be.
    proc = lint(*hostile)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    findings = [line for line in proc.stdout.splitlines() if line[:1] in "EWI" and line[1:5].isdigit()]
    assert findings and all(f.startswith("W1031 ") and ":eks:" in f for f in findings), proc.stdout


def test_cfn_lint_rejects_a_broken_reference(tmp_path: Path) -> None:
    doc = json.loads((GOLDEN / "stepfunctions" / "pricing.template.json").read_text())
    doc["Resources"]["StateMachine"]["Properties"]["RoleArn"] = {"Fn::GetAtt": ["StateMachineRoel", "Arn"]}
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps(doc))
    proc = lint(broken)
    assert proc.returncode != 0 and "StateMachineRoel" in proc.stdout, proc.stdout + proc.stderr


def _task_resources(value: Any) -> set[str]:
    """The Resource of every Task state anywhere in a definition (a plain walk of the JSON)."""
    if isinstance(value, list):
        return set().union(*map(_task_resources, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    own = {value["Resource"]} if value.get("Type") == "Task" else set()
    return own.union(*map(_task_resources, value.values()))


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    return list(policy["PolicyDocument"]["Statement"])


def test_role_allows_exactly_what_the_states_need(tmp_path: Path) -> None:
    for case, (template, definition) in _cases(tmp_path).items():
        resources = _task_resources(definition)
        assert resources <= NEEDS.keys(), f"{case}: no IAM mapping for {resources - NEEDS.keys()}"
        needed = set().union(*(NEEDS[r] for r in resources))
        statements = _statements(template, "StateMachineRole")
        granted = {a for s in statements for a in s["Action"]}
        assert granted == needed, case
        for s in statements:
            assert s["Effect"] == "Allow" and s["Resource"], (case, s)
            for resource in s["Resource"]:
                if resource == "*":
                    assert set(s["Action"]) <= NO_RESOURCE_TYPE, (case, s)
                elif isinstance(resource, str):
                    assert resource.startswith("arn:aws:"), (case, s)
                elif "Ref" in resource:
                    assert resource == {"Ref": "RuntimeFunctionArn"}, (case, s)
                else:
                    (arn,) = resource.values()
                    assert set(resource) == {"Fn::Sub"}, (case, s)
                    assert arn.startswith(("arn:${AWS::Partition}:", "${RuntimeFunctionArn}:")), (case, s)


def test_resources_are_the_ones_the_states_name() -> None:
    template = json.loads((GOLDEN / "stepfunctions" / "pricing.template.json").read_text())
    by_sid = {s["Sid"]: s["Resource"] for s in _statements(template, "StateMachineRole")}
    account = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    assert by_sid["InvokeRuntime"] == [{"Fn::Sub": "${RuntimeFunctionArn}:*"}, {"Ref": "RuntimeFunctionArn"}]
    assert by_sid["SubmitBatchJobs"] == [
        {"Fn::Sub": account % "batch" + "job-definition/pricing-train:3"},
        {"Fn::Sub": account % "batch" + "job-queue/ml-cpu-64"},
    ]
    assert by_sid["StopBatchJobs"] == [{"Fn::Sub": account % "batch" + "job/*"}]
    assert by_sid["BatchJobEvents"] == [{"Fn::Sub": account % "events" + "rule/StepFunctionsGetEventsForBatchJobsRule"}]
    # The schedule's role starts this state machine and nothing else.
    assert _statements(template, "SchedulerRole") == [
        {
            "Sid": "StartThisStateMachine",
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": [{"Ref": "StateMachine"}],
        }
    ]
    feed = json.loads((GOLDEN / "stepfunctions" / "feed-ranking.template.json").read_text())
    by_sid = {s["Sid"]: s["Resource"] for s in _statements(feed, "StateMachineRole")}
    assert by_sid["DescribeCluster"] == [{"Fn::Sub": account % "eks" + "cluster/ml-training"}]
    # The gate's ${secret.warehouse_url} is read by the runtime Lambda: a policy for its role, not the state machine's.
    secrets = feed["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert secrets == [
        {
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [{"Fn::Sub": account % "secretsmanager" + "secret:${SecretsPrefix}warehouse_url-??????"}],
        }
    ]
    # pricing's gate lists s3://pricing-data/quotes/dt=${run.date}/: that prefix of that bucket, any date.
    assert template["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ListGateData1",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::pricing-data"}],
            "Condition": {"StringLike": {"s3:prefix": ["quotes/dt=*/"]}},
        }
    ]
    assert "SecretsPrefix" not in template["Parameters"] and "SecretsPrefix" in feed["Parameters"]


def test_sagemaker_and_batch_arns(tmp_path: Path) -> None:
    template, _ = _extra_templates(tmp_path)["sagemaker"]
    by_sid = {s["Sid"]: s for s in _statements(template, "StateMachineRole")}
    account = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    # A queue given as an ARN is used as given; a job definition without revision means any of its revisions.
    assert by_sid["SubmitBatchJobs"]["Resource"] == [
        "arn:aws:batch:eu-west-1:123456789012:job-queue/shared",
        {"Fn::Sub": account % "batch" + "job-definition/prep"},
        {"Fn::Sub": account % "batch" + "job-definition/prep:*"},
    ]
    # Training jobs are named <pipeline>-<step>-<run id>: the role reaches those of this step only.
    jobs = [{"Fn::Sub": account % "sagemaker" + "training-job/sm-train*"}]
    assert by_sid["RunTrainingJobs"]["Resource"] == jobs == by_sid["ReadTrainingJobTags"]["Resource"]
    assert by_sid["PassTrainingRole"] == {
        "Sid": "PassTrainingRole",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": ["arn:aws:iam::123456789012:role/trainer"],
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    # The gate's ${secret.token} is read by the runtime Lambda: its role's policy names it.
    (statement,) = template["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == [{"Fn::Sub": account % "secretsmanager" + "secret:${SecretsPrefix}token-??????"}]
    assert "Schedule" not in template["Resources"] and "SchedulerRole" not in template["Resources"]


def test_runtime_policy_reads_only_the_gates_data(tmp_path: Path) -> None:
    template, _ = _extra_templates(tmp_path)["s3gates"]
    s3 = "arn:${AWS::Partition}:s3:::"
    assert template["Resources"]["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"] == [
        # A whole bucket: listing it is the check.
        {
            "Sid": "ListGateData1",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [{"Fn::Sub": s3 + "landing"}],
        },
        # A prefix in a bucket named by a parameter: any such bucket, that prefix only.
        {
            "Sid": "ListGateData2",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [{"Fn::Sub": s3 + "raw-*"}],
            "Condition": {"StringLike": {"s3:prefix": ["events/dt=*/"]}},
        },
        # An object: without s3:ListBucket S3 answers a missing key 403, not 404, and the gate could not wait.
        {"Sid": "ListGateData3", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [{"Fn::Sub": s3 + "ref"}]},
        # The literal `${x}` ($${x} in the spec) is `${$}{x}` to IAM and `${!$}{x}` to Fn::Sub.
        {
            "Sid": "ReadGateObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [{"Fn::Sub": s3 + "ref/tables/users${!$}{x}.parquet"}],
        },
    ]
    assert not {"SecretsPrefix", "RuntimeSecretsPolicy"} & {*template["Parameters"], *template["Resources"]}


def test_training_job_prefix_matches_the_runtime_names() -> None:
    from pipegen.runtime.aws_jobs import sagemaker_job_name
    from pipegen.targets.stepfunctions.iam import sagemaker_prefix

    for base in ["sm-train", "a_b.c", "x" * 70, "-lead-", "Ünï-çode step"]:
        prefix = sagemaker_prefix(base)
        assert sagemaker_job_name(base, "run-0123456789abcdef0123456789").startswith(prefix), base


def _resolve(value: Any, function: str) -> str:
    """The template's DefinitionString with RuntimeFunctionArn = function (the only reference it holds)."""
    (separator, parts) = value["Fn::Join"]
    assert separator == ""
    out = []
    for part in parts:
        if isinstance(part, dict):
            assert part == {"Ref": "RuntimeFunctionArn"}
            out.append(function)
        else:
            out.append(part)
    return "".join(out)


def _with_function(value: Any, function: str, seen: list[str]) -> Any:
    """The definition with every FunctionName set to function (the ones it had appended to seen)."""
    if isinstance(value, list):
        return [_with_function(v, function, seen) for v in value]
    if not isinstance(value, dict):
        return value
    if "FunctionName" in value:
        seen.append(value["FunctionName"])
    return {k: function if k == "FunctionName" else _with_function(v, function, seen) for k, v in value.items()}


def test_template_definition_is_the_asl_with_the_function_parameter(tmp_path: Path) -> None:
    for case, (template, definition) in _cases(tmp_path).items():
        deployed = json.loads(_resolve(template["Resources"]["StateMachine"]["Properties"]["DefinitionString"], ARN))
        functions: list[str] = []
        assert deployed == _with_function(definition, ARN, functions), case
        assert functions, case


@pytest.mark.parametrize("arn", [ARN, "arn:aws:lambda:eu-west-1:111122223333:function:pipegen-runtime:live"])
def test_a_function_arn_in_the_spec_is_the_parameter_default(tmp_path: Path, arn: str) -> None:
    text = with_targets((Path(__file__).parents[2] / "specs" / "pricing.yaml").read_text(), runtime_function=arn)
    outputs, diags = compile_text(text, tmp_path, "pricing.yaml")
    assert outputs, diags
    template = json.loads(outputs["stepfunctions/pricing.template.json"])
    assert template["Parameters"]["RuntimeFunctionArn"]["Default"] == arn
    golden = json.loads((GOLDEN / "stepfunctions" / "pricing.template.json").read_text())
    assert "Default" not in golden["Parameters"]["RuntimeFunctionArn"]


def test_spark_statements_name_the_cluster_application_virtual_cluster_and_job() -> None:
    template = json.loads((GOLDEN / "stepfunctions" / "clicks.template.json").read_text())
    by_sid = {s["Sid"]: s for s in _statements(template, "StateMachineRole")}
    account = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    assert by_sid["RunEmrSteps"]["Resource"] == [{"Fn::Sub": account % "elasticmapreduce" + "cluster/j-2AXXXXXXGAPLF"}]
    assert by_sid["EmrStepEvents"]["Resource"] == [
        {"Fn::Sub": account % "events" + "rule/StepFunctionsGetEventForEMRAddJobFlowStepsRule"}
    ]
    app = account % "emr-serverless" + "/applications/00fev6mdkexample"
    assert by_sid["StartServerlessJobRuns"]["Resource"] == [{"Fn::Sub": app}]
    assert by_sid["WatchServerlessJobRuns"]["Resource"] == [{"Fn::Sub": app + "/jobruns/*"}]
    assert by_sid["PassServerlessExecutionRole"]["Resource"] == ["arn:aws:iam::123456789012:role/clicks-emr-serverless"]
    assert by_sid["PassServerlessExecutionRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}
    }
    cluster = account % "emr-containers" + "/virtualclusters/7n6o2zt9rhil1isqqznnqdenp"
    assert by_sid["StartEksJobRuns0"]["Resource"] == [{"Fn::Sub": cluster}]
    # Only with the step's own execution role: starting a job under another role is refused.
    assert by_sid["StartEksJobRuns0"]["Condition"] == {
        "StringEquals": {"emr-containers:ExecutionRoleArn": "arn:aws:iam::123456789012:role/clicks-emr-eks"}
    }
    assert by_sid["WatchEksJobRuns"]["Resource"] == [{"Fn::Sub": cluster + "/jobruns/*"}]
    assert by_sid["RunGlueJobs"]["Resource"] == [{"Fn::Sub": account % "glue" + "job/clicks-export"}]
