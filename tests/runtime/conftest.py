"""Runtime fixtures: one real `mlflow server` per test session (it takes ~20-30 s to start)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support_mlflow import MlflowServer, start_mlflow_server
from tests.support_tools import moto_server_process


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


# ---- AWS: moto's server on 127.0.0.1, reached through the standard AWS_ENDPOINT_URL ----------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 as a real HTTP server on a free port, shared by the session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        # The runtime-only environment has no moto: the tools environment's `moto_server` serves it.
        with moto_server_process() as url:
            yield url
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No profile, config file or instance metadata of the machine running the tests leaks in."""
    for var in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point boto3 at moto through the standard AWS_ENDPOINT_URL variable only."""
    isolate_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_endpoint


# ---- Ray: one head per session, shared by every module that asks for it (tests/support_ray.py) ----------
from tests.support_ray import ray_client_env, ray_head  # noqa: E402, F401 - fixtures, registered here once
