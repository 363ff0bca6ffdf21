"""Shared fixtures: the repository root and an in-process CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cases import REPO


@dataclass
class CliResult:
    """What a pipegen command returned and printed."""

    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _in_repo() -> Iterator[None]:
    """Run every test from the repository root, as users and CI run pipegen."""
    before = Path.cwd()
    os.chdir(REPO)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(autouse=True)
def _fresh_redactor() -> Iterator[None]:
    """Secrets one test registers are not masked in the next: the redactor is process-wide, tests share a process."""
    from pipegen.runtime import redact

    yield
    redact.forget()


@pytest.fixture(autouse=True)
def _process_tracking_uris() -> Iterator[None]:
    """A runtime call made in the test process (runtime.tracking.client) sets MLflow's process-wide tracking and
    registry URIs, and mlflow.set_registry_uri exports MLFLOW_REGISTRY_URI for subprocesses: they outlive the
    test's MLFLOW_TRACKING_URI, so the next test's MlflowClient() (and its kfp.local tasks) would read the old store.
    Each test ends with the URIs and the environment it started with."""
    import os
    import sys

    modules = ("mlflow.tracking._tracking_service.utils", "mlflow.tracking._model_registry.utils")
    names = ("_tracking_uri", "_registry_uri")
    before = [getattr(sys.modules.get(m), n, None) for m, n in zip(modules, names, strict=True)]
    environ = dict(os.environ)
    yield
    for module, name, value in zip(modules, names, before, strict=True):
        if module in sys.modules:  # imported by the test, or before it
            setattr(sys.modules[module], name, value)
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    os.environ.update(environ)


@pytest.fixture
def demo_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's example folder in a scratch directory, run from there, with an sqlite MLflow store there."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `pipegen ARGS...` in-process and capture its exit code and output."""
    from pipegen.cli import main

    def run(*args: str) -> CliResult:
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True)
def _short_lived_tracking_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    # A `pipegen run` leaves its MLflow worker for the next run (300 s by default): tests (runtime, docs,
    # differential), each in its own directory, let theirs go soon after, so none leaves a process for minutes.
    monkeypatch.setenv("PIPEGEN_RUN_WORKER_IDLE", "3")
