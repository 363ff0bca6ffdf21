"""A real `mlflow server` for the tests that run a manifest's containers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support_mlflow import MlflowServer, start_mlflow_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()
