"""A secret in mlflow.tracking_uri never reaches a job's Environment or the execution history (issue 15).

prepare puts the rendered URI into a Batch or SageMaker job's Environment, which Step Functions records in
the execution history (and the services show): a secret there is a located PG602. A pod (eks:runJob) takes a
URI that is exactly ${secret.NAME} from the Kubernetes secret, as it takes other secret env values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stepfunctions.asl import compile_text

BACKENDS = {
    "batch": "{type: aws_batch, job_queue: ml-cpu-64, job_definition: 'pricing-train:3'}",
    "sm": "{type: sagemaker, image: 'registry.example.com/train:1', role_arn: 'arn:aws:iam::1:role/r', "
    "instance_type: ml.m5.large, output_path: 's3://b/out'}",
    "pods": "{type: kubernetes, image: 'registry.example.com/train:1'}",
}
EKS = "targets: {stepfunctions: {eks_cluster: {name: c, endpoint: 'https://eks.example.com', certificate_authority: Q0E=}}}\n"


def spec(uri: str, backend: str, env: str = "{}") -> str:
    return (
        "pipegen: 1\nname: uri\n"
        f"mlflow: {{tracking_uri: {json.dumps(uri)}, experiment: uri}}\n"
        f"backends:\n  {backend}: {BACKENDS[backend]}\n"
        "steps:\n"
        f"  - name: train\n    train: {{backend: {backend}, command: [train], env: {env}, metrics: [auc]}}\n"
        "  - name: judge\n    evaluate: {run_of: train, thresholds: ['auc > 0.5'], on_fail: fail}\n" + EKS
    )


@pytest.mark.parametrize(
    ("uri", "backend", "shown"),
    [
        ("https://u:${secret.mlflow_pw}@mlflow.example.com", "batch", "aws_batch"),
        ("${secret.mlflow_uri}", "sm", "sagemaker"),
        ("https://u:${secret.mlflow_pw}@mlflow.example.com", "pods", "kubernetes"),
    ],
    ids=["batch-secret-inside", "sagemaker-whole-secret", "pod-secret-inside"],
)
def test_a_secret_a_job_would_hold_in_plain_is_a_located_diagnostic(
    uri: str, backend: str, shown: str, tmp_path: Path
) -> None:
    outputs, diagnostics = compile_text(spec(uri, backend), tmp_path, "uri.yaml")
    assert outputs == {}
    assert diagnostics == [
        f"{tmp_path}/uri.yaml:3:24: error[PG602]: target 'stepfunctions' can pass a secret in mlflow.tracking_uri to "
        f"training step 'train' on {shown} only as a Kubernetes secret: the whole URI must be ${{secret.NAME}} on a "
        "kubernetes pod; hint: keep the credentials out of the URI (e.g. MLFLOW_TRACKING_TOKEN from a secret), or "
        "make the whole tracking_uri ${secret.NAME} and train on kubernetes"
    ]


def prepare_request(definition: str) -> dict[str, Any]:
    """The spec the train step's prepare Lambda state sends (JSONata or JSONPath)."""
    states = json.loads(definition)["States"]
    state = states["train"]
    args = state.get("Arguments", state.get("Parameters"))["Payload"]["args"]
    # JSONPath requests carry the spec as one JSON string (spec_json), JSONata ones as an object.
    spec: dict[str, Any] = json.loads(args["spec_json"]) if "spec_json" in args else args["spec"]
    return spec


def test_a_whole_secret_uri_reaches_the_pod_as_a_secret_reference(tmp_path: Path) -> None:
    text = spec("${secret.mlflow_uri}", "pods", env="{MLFLOW_TRACKING_URI: 'overridden'}")
    outputs, diagnostics = compile_text(text, tmp_path, "uri.yaml")
    assert diagnostics == []
    request = prepare_request(outputs["stepfunctions/uri.asl.json"])
    assert request["secret_env"] == {"MLFLOW_TRACKING_URI": {"secret": "mlflow-uri", "key": "mlflow_uri"}}
    assert "MLFLOW_TRACKING_URI" not in request["env"]


def test_a_uri_without_secrets_still_compiles_for_aws_jobs(tmp_path: Path) -> None:
    for backend in ("batch", "sm"):
        outputs, diagnostics = compile_text(spec("https://${env.MLFLOW_HOST}/", backend), tmp_path, "uri.yaml")
        assert diagnostics == [] and outputs, backend
