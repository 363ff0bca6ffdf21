"""`compile -j N`: a large spec's targets lowered in forked workers write the same bytes as in one process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.synth import spec_text
from pipegen import lowering
from pipegen.lowering import PARALLEL_STEPS, worker_count
from tests.cases import REPO
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

STEPS = PARALLEL_STEPS + 40

# `pipegen compile` in a fresh process (the test process may run other threads, which rule workers out), which
# first asserts that with -j N above 1 it will really lower in N workers.
COMPILE = """
import sys
from pipegen.cli import main
from pipegen.lowering import worker_count
spec, out, jobs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
assert jobs == 1 or worker_count(steps, 5, jobs) == jobs, "workers would not be used here"
raise SystemExit(main(["compile", spec, "-t", "all", "-o", out, "-j", str(jobs)]))
"""


def compile_in_process(spec: Path, out: Path, jobs: int) -> CliResult:
    """`pipegen compile spec -t all -o out -j jobs` in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", COMPILE, str(spec), str(out), str(jobs), str(STEPS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "AssertionError" not in proc.stderr, proc.stderr
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def large_spec(tmp_path: Path) -> Path:
    """A fan-out of Batch jobs, large enough to be lowered in workers."""
    spec = tmp_path / "wide.yaml"
    spec.write_text(spec_text("fanout", STEPS), encoding="utf-8")
    return spec


def test_workers_write_the_bytes_one_process_writes(large_spec: Path, tmp_path: Path) -> None:
    serial = compile_in_process(large_spec, tmp_path / "serial", 1)
    forked = compile_in_process(large_spec, tmp_path / "forked", 2)
    assert serial.code == forked.code == 0, forked.err
    written = files(tmp_path / "serial")
    assert len(written) == 7  # five targets; Prefect's prefect.yaml and the Step Functions template beside them
    assert files(tmp_path / "forked") == written
    assert forked.err.replace("forked", "serial") == serial.err


def test_an_error_found_in_a_worker_stops_every_output(large_spec: Path, tmp_path: Path) -> None:
    """Argo without a runtime image (PG604): the same diagnostic as in one process, and nothing written."""
    text = large_spec.read_text().replace("  argo: {runtime_image: registry.example.com/ml/pipegen-runtime:0.1}\n", "")
    large_spec.write_text(text, encoding="utf-8")
    serial = compile_in_process(large_spec, tmp_path / "serial", 1)
    forked = compile_in_process(large_spec, tmp_path / "forked", 3)
    assert serial.code == forked.code == 1
    assert "error[PG604]" in forked.err
    assert forked.err == serial.err
    assert not (tmp_path / "forked").exists() and not (tmp_path / "serial").exists()


def test_workers_only_when_they_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lowering.threading, "active_count", lambda: 1)  # as in `pipegen compile`
    assert worker_count(STEPS, 5, 8) == 5  # no more workers than targets
    assert worker_count(STEPS, 1, 8) == 0  # one target: nothing to share out
    assert worker_count(STEPS, 5, 1) == 0  # -j 1
    assert worker_count(PARALLEL_STEPS - 1, 5, 8) == 0  # a small spec: starting workers costs more
    monkeypatch.setattr(lowering.sys, "platform", "darwin")
    assert worker_count(STEPS, 5, 8) == 0  # fork is not safe there


def test_no_fork_beside_another_thread() -> None:
    import threading

    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert worker_count(STEPS, 5, 8) == 0
    finally:
        release.set()
        other.join()


def test_jobs_is_a_positive_whole_number(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-2", "many"):
        with pytest.raises(SystemExit) as exc:
            cli("compile", "specs/demo.yaml", "-t", "all", "-o", "out", "-j", bad)
        assert exc.value.code == 2
        assert f"argument -j/--jobs: expected a whole number of at least 1, got '{bad}'" in capsys.readouterr().err


def test_usable_cores_is_what_this_process_may_use() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert lowering.usable_cores() == expected
