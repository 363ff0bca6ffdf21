"""One real Ray head per test session, on 127.0.0.1, for the tests that submit Ray jobs.

It is pipegen's own `address: local` head (pipegen.localrun.ray.LocalRayHead): free ports, a temporary
directory of its own, RAY_AUTH_MODE set explicitly, and here a HOME of its own too, so that a token an
in-process `ray.init()` once left in ~/.ray/auth_token cannot turn authentication on. Stopped at the end.
Tests that use it share an xdist group (`RAY_GROUP`), so one worker starts one head (~15-30 s, ~730 MB).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from pipegen.localrun.ray import LocalRayHead

RAY_GROUP = "ray"


def isolated_head(home: Path, env: Mapping[str, str] | None = None) -> LocalRayHead:
    """A Ray head (not started yet) with HOME home and RAY_AUTH_MODE explicit; env: more of its environment."""
    home.mkdir(parents=True, exist_ok=True)
    return LocalRayHead(num_cpus=2, env={**(env or {}), "HOME": str(home), "RAY_AUTH_MODE": "disabled"})


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The job server address of the session's Ray head."""
    head = isolated_head(tmp_path_factory.mktemp("ray-home"))
    try:
        yield head.start()
    finally:
        # Ray's logs stay in pytest's temporary directory (the last few sessions are kept) for a failure's post-mortem.
        head.stop(keep_logs=tmp_path_factory.mktemp("ray-logs"))


@pytest.fixture
def ray_client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The submitting side as isolated as the head: its own HOME, authentication off explicitly."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
