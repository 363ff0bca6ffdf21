"""Runtime fixtures: one real `mlflow server` per test session (it takes ~20-30 s to start)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support_mlflow import MlflowServer, start_mlflow_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


@pytest.fixture
def name() -> str:
    """A fresh name for models, experiments and run keys, so tests sharing a server never collide."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def _bounded_mlflow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep MLflow's HTTP retries short so a test that stops the server fails in seconds.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
