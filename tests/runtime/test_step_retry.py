"""Steps that KFP must not retry (evaluate) retry infrastructure errors inside the runtime, never a verdict."""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.retrying import is_infrastructure_error, retry_delays
from pipegen.runtime.step import run_step
from tests.runtime.test_mlflow_runtime import trained
from tests.support_mlflow import MlflowServer

pytestmark = pytest.mark.xdist_group("mlflow")

RETRY = {"retries": 2, "delay_seconds": 0.01, "backoff": 2.0, "max_delay_seconds": None}


def evaluate_spec(tracking_uri: str) -> dict[str, object]:
    return {"thresholds": ["auc > 0.8"], "on_fail": "fail", "tracking_uri": tracking_uri}


def test_a_failed_judgement_is_final(mlflow_server: MlflowServer, name: str, caplog: pytest.LogCaptureFixture) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.5})
    mlflow_run = {"run_id": run_id, "experiment_id": "", "tracking_uri": mlflow_server.uri}
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeFailure, match=r"auc > 0\.8: failed \(auc = 0\.5\)"):
        run_step(
            "evaluate", evaluate_spec(mlflow_server.uri), params={}, run_id="r", mlflow_run=mlflow_run, retry=RETRY
        )
    assert "retrying" not in caplog.text


def test_an_unreachable_tracking_server_is_retried_by_the_policy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = "http://127.0.0.1:9"
    mlflow_run = {"run_id": "0" * 32, "experiment_id": "", "tracking_uri": uri}
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(RuntimeFailure, match="cannot reach the MLflow tracking server"),
    ):
        run_step("evaluate", evaluate_spec(uri), params={}, run_id="r", mlflow_run=mlflow_run, retry=RETRY)
    assert [r.getMessage().split(" failed")[0] for r in caplog.records if "retrying in" in r.getMessage()] == [
        "attempt 1",
        "attempt 2",
    ]


def test_what_counts_as_infrastructure() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DescribeJobs")
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "SubmitJob")
    assert is_infrastructure_error(throttled)
    assert is_infrastructure_error(EndpointConnectionError(endpoint_url="https://batch.example"))
    assert is_infrastructure_error(ConnectionRefusedError())
    assert is_infrastructure_error(RuntimeFailure("cannot reach the MLflow tracking server at http://x while reading"))
    assert not is_infrastructure_error(denied)
    assert not is_infrastructure_error(RuntimeFailure("auc > 0.8: failed (auc = 0.5)"))
    assert not is_infrastructure_error(ValueError("bad spec"))


def test_retry_delays_follow_the_spec_policy() -> None:
    assert retry_delays({"retries": 4, "delay_seconds": 300, "backoff": 2.0, "max_delay_seconds": 1800}) == [
        300,
        600,
        1200,
        1800,
    ]
    assert retry_delays({"retries": 2, "delay_seconds": 60, "backoff": 1.0, "max_delay_seconds": None}) == [60, 60]
