"""What the runtime Lambda's role needs for this pipeline: its secrets and the S3 data its gates look at.

The function and its role are the user's (the template takes the function's ARN), so the template
makes a managed policy for them to attach, derived like the state machine's from the definition: the
requests its states send the Lambda name the ${secret.X} and the gates' s3:// paths. A path's ${...}
parts (run date, params) become `*`. MLflow and the SQL gates' databases are reached over the network
with the credentials in those secrets: no IAM is involved.
"""

from __future__ import annotations

from typing import Any

from pipegen.expr import ExpressionError, Lit, parse_template
from pipegen.targets.asl.base import LAMBDA_INVOKE
from pipegen.targets.stepfunctions.iam import arguments, iam_text, secret_names, spec_requests, sub_text, tasks

SECRETS_PREFIX = "SecretsPrefix"
S3_CHECKS = ("partition_exists", "freshness")


def gate_paths(definition: dict[str, Any]) -> list[str]:
    """The s3:// paths the definition's partition_exists and freshness gates check, sorted."""
    paths = set()
    for task in tasks(definition["States"]):
        if task["Resource"] != LAMBDA_INVOKE:
            continue
        for request in spec_requests(arguments(task).get("Payload")):
            gate = request.get("gate")
            path = gate.get("path") if isinstance(gate, dict) and gate.get("check") in S3_CHECKS else None
            if isinstance(path, str) and path[:5].lower() == "s3://":
                paths.add(path)
    return sorted(paths)


def runtime_policy(name: str, definition: dict[str, Any]) -> dict[str, Any] | None:
    """The AWS::IAM::ManagedPolicy for the runtime Lambda's role, or None when the pipeline needs nothing of it."""
    statements = []
    secrets = secret_names(definition)
    if secrets:
        # Secrets Manager ends a secret's ARN with `-` and six random characters: AWS's pattern is `-??????`.
        arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${" + SECRETS_PREFIX + "}"
        resources = [{"Fn::Sub": f"{arn}{s}-??????"} for s in secrets]
        statements.append(_allow("ReadSecrets", ["secretsmanager:GetSecretValue"], resources))
    lists: dict[str, set[str]] = {}
    objects: set[str] = set()
    for path in gate_paths(definition):
        pattern = _pattern(path[5:])
        if pattern is None:
            continue
        bucket, _, key = pattern.partition("/")
        if path.endswith("/") or not key:
            # A prefix: ListObjectsV2 with Prefix=key (StartAfter too), allowed for that prefix only.
            lists.setdefault(bucket, set()).add(key)
        else:
            # An object: HeadObject, which needs s3:GetObject; without s3:ListBucket on the bucket S3 answers
            # a missing object with 403 rather than 404, and the gate would fail instead of waiting.
            objects.add(f"{bucket}/{key}")
            lists.setdefault(bucket, set()).add("")
    for i, (bucket, keys) in enumerate(sorted(lists.items()), 1):
        listing = _allow(f"ListGateData{i}", ["s3:ListBucket"], [_s3(bucket)])
        if "" not in keys:
            listing["Condition"] = {"StringLike": {"s3:prefix": sorted(iam_text(k) for k in keys)}}
        statements.append(listing)
    if objects:
        statements.append(_allow("ReadGateObjects", ["s3:GetObject"], [_s3(o) for o in sorted(objects)]))
    if not statements:
        return None
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": f"What the {name} pipeline's runtime Lambda reads: attach to the function's role.",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        },
    }


def secrets_parameter() -> dict[str, Any]:
    """The SecretsPrefix parameter: where the runtime looks for ${secret.X}."""
    return {
        "Type": "String",
        "Description": "The runtime's PIPEGEN_SECRETS_PREFIX: ${secret.X} is the secret named PREFIX + X.",
        "Default": "pipegen/",
        "AllowedPattern": r"^[A-Za-z0-9/_+=.@-]*$",
    }


def _pattern(text: str) -> str | None:
    """The path with each ${...} as `*` (None when it is not spec text: the runtime would not render it)."""
    try:
        parts = parse_template(text).parts
    except ExpressionError:
        return None
    return "".join(p.text if isinstance(p, Lit) else "*" for p in parts)


def _s3(resource: str) -> dict[str, str]:
    return {"Fn::Sub": "arn:${AWS::Partition}:s3:::" + sub_text(iam_text(resource))}


def _allow(sid: str, actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
