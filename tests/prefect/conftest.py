"""Prefect fixtures: Prefect's test harness (an ephemeral API server), an `mlflow server` and, for the one deploy
test, a `prefect server start`, each once per session.

Prefect reads its settings from the environment when it is first imported, so PREFECT_HOME (a temporary
directory: no profile, database or API URL of the machine leaks in) and the server startup timeout are set
here, before any test module imports prefect. The ephemeral server is a subprocess that takes 25-40 s to
answer on a busy 2-core machine, over Prefect's default 20 s (DESIGN.md §7). The MLflow and Prefect servers
the session needs start side by side at its beginning, while the harness starts, not one after the other.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.prefect.support import STARTUP_SECONDS, PrefectServer, start_prefect_server
from tests.runtime.conftest import aws, moto_endpoint  # noqa: F401  (moto's server, boto3 pointed at it)
from tests.support_mlflow import MlflowServer, start_mlflow_server
from tests.support_ray import ray_client_env, ray_head  # noqa: F401  (the session's Ray head, started on first use)

PREFECT_HOME = Path(tempfile.mkdtemp(prefix="pipegen-prefect-home-"))
for _variable in [v for v in os.environ if v.startswith("PREFECT_")]:
    del os.environ[_variable]
os.environ.update(
    {
        "PREFECT_HOME": str(PREFECT_HOME),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(STARTUP_SECONDS),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        # Task results stay in memory: no result files under PREFECT_HOME between tests.
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    }
)


@pytest.fixture(scope="session", autouse=True)
def _servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[MlflowServer] | Future[PrefectServer]]]:
    """Start, in the background, the servers the collected tests will ask for."""
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    started: dict[str, Future[MlflowServer] | Future[PrefectServer]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        if "mlflow_server" in wanted:
            started["mlflow"] = pool.submit(start_mlflow_server, tmp_path_factory.mktemp("mlflow"))
        if "prefect_server" in wanted:
            started["prefect"] = pool.submit(start_prefect_server, tmp_path_factory.mktemp("prefect-server"))
        try:
            yield started
        finally:
            for future in started.values():
                if future.exception() is None:
                    future.result().stop()
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's own test harness (a temporary database behind a local API server), once per session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=STARTUP_SECONDS):
        yield


@pytest.fixture(scope="session")
def mlflow_server(_servers: dict[str, Future[MlflowServer]]) -> MlflowServer:
    return _servers["mlflow"].result()


@pytest.fixture(scope="session")
def prefect_server(_servers: dict[str, Future[PrefectServer]]) -> PrefectServer:
    """A real `prefect server start` (its own PREFECT_HOME and port), for deployments and workers."""
    return _servers["prefect"].result()


@pytest.fixture
def tracking(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's MLflow server as the tracking URI the flow's tasks read from their environment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    # A test that stops short of a server fails in seconds, not after MLflow's long default retries.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    return mlflow_server.uri


@pytest.fixture
def name() -> str:
    """A fresh name for models and experiments, so tests sharing the MLflow server never collide."""
    return f"t{uuid.uuid4().hex[:10]}"
