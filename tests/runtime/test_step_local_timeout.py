"""A local step's command ends at the step's timeout inside run_step: Prefect's timeout_seconds cannot stop a sync
task started with .submit() (PrefectHQ/prefect#15760), so the generated Prefect tasks pass the timeout in the spec."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.step import run_step


def test_local_command_is_ended_with_its_children_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # A command that starts a child of its own and would run for a minute.
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    with pytest.raises(RuntimeFailure, match=r"command timed out after 1s and was ended: sh"):
        run_step(
            "local",
            {"command": ["sh", "-c", script], "env": {}, "timeout_seconds": 1},
            params={},
            run_id="r1",
            run_date="2026-12-01",
            target="prefect",
        )
    assert time.monotonic() - started < 30
    # The whole process group ended: the background child is gone too.
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not running(child)


def running(pid: int) -> bool:
    """Whether pid is a live process (an exited one its parent has not reaped yet does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_without_a_timeout_the_command_runs_to_its_end() -> None:
    result = run_step(
        "local",
        {"command": ["sh", "-c", "sleep 1"], "env": {}},
        params={},
        run_id="r1",
        run_date="2026-12-01",
        target="kfp",
    )
    assert result == {"passed": True}
