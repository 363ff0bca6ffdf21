"""Step Functions fixtures: moto's server executing ASL, the runtime's Lambda handler, a real MLflow server."""

from __future__ import annotations

import pytest

from tests.runtime.conftest import _bounded_mlflow_retries, aws, mlflow_server, moto_endpoint, name  # noqa: F401
from tests.stepfunctions.support import configure_moto, fix_batch_sync, route_lambda_to_runtime


@pytest.fixture
def sfn(aws: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:  # noqa: F811
    """moto ready to execute state machines; returns the Lambda events the runtime handled."""
    configure_moto(aws)
    monkeypatch.setenv("MOTO_PORT", aws.rsplit(":", 1)[1])
    fix_batch_sync(monkeypatch)
    return route_lambda_to_runtime(monkeypatch)
