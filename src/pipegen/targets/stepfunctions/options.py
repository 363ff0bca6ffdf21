"""`targets: {stepfunctions: {...}}` in a spec, and the constants every part of the target shares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LAMBDA_MAX_SECONDS = 900
# Errors a Lambda invocation raises on service-side trouble: always worth a quick retry (AWS's advice).
LAMBDA_RETRIER = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 1,
    "MaxAttempts": 3,
    "BackoffRate": 2.0,
}
NOTIFY_FAILURE, FAILED, DONE = "pipegen.notify_failure", "pipegen.failed", "pipegen.done"
NOTIFY_SUCCESS = "pipegen.notify_success"


class EksCluster(BaseModel):
    """The EKS cluster that `kubernetes` steps run on (eks:runJob needs its endpoint and CA)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str
    endpoint: str
    certificate_authority: str


class StepFunctionsOptions(BaseModel):
    """`targets: {stepfunctions: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # JSONPath by default: literal values can never be evaluated (only keys ending in `.$` are), and
    # it runs unchanged in local ASL interpreters; JSONata is the service's newer alternative.
    query_language: Literal["JSONPath", "JSONata"] = "JSONPath"
    # The Lambda function (name, ARN or alias ARN) that runs pipegen.runtime.lambda_handler.handler.
    runtime_function: str = "pipegen-runtime"
    eks_cluster: EksCluster | None = None
    # Filled into <name>.schedule.json; placeholders when not given.
    state_machine_arn: str | None = None
    scheduler_role_arn: str | None = None
