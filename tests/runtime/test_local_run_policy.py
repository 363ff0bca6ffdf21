"""`pipegen run` keeps the spec's retry and timeout semantics as every target does.

A failed judgement and a gate whose wait ran out are final (no retry); a gate waits its whole
`wait.timeout` even when that is longer than the step's `timeout`; a job that times out is ended with
every process it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import mlflow
import pytest

from tests.support_tools import interruptible

pytestmark = pytest.mark.xdist_group("local_run")

HEADER = """\
pipegen: 1
name: policy
defaults: {{retries: 2, retry_delay: 1s, timeout: {timeout}}}
backends:
  here: {{type: local}}
steps:
"""


def run(workdir: Path, steps: str, timeout: str = "10m") -> subprocess.CompletedProcess[str]:
    spec = workdir / "policy.yaml"
    spec.write_text(HEADER.format(timeout=timeout) + textwrap.indent(textwrap.dedent(steps), "  "))
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    return subprocess.run(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=env,
    )


def test_a_failed_judgement_is_not_retried(tmp_path: Path) -> None:
    proc = run(
        tmp_path,
        """\
        - name: train
          train:
            backend: here
            command: [python, -c, "import mlflow; mlflow.start_run(); mlflow.log_metric('auc', 0.5); mlflow.end_run()"]
            metrics: [auc]
        - name: quality
          evaluate: {run_of: train, thresholds: ["auc > 0.9"], on_fail: fail}
        """,
    )
    assert proc.returncode == 1, proc.stderr
    assert "auc > 0.9: failed" in proc.stdout
    assert "quality: attempt" not in proc.stderr, "the judgement was retried"
    # MLflow's own console lines stay out of pipegen's output.
    assert "INFO mlflow" not in proc.stderr


def test_a_gate_whose_wait_ran_out_is_not_retried(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = run(
        tmp_path,
        """\
        - name: ready
          gate: {check: partition_exists, path: never/, wait: {timeout: 3s, interval: 1s}}
        """,
    )
    assert proc.returncode == 1
    assert "ready: attempt" not in proc.stderr, "the wait started over on a retry"
    assert "after waiting" in proc.stdout
    # Two retries of a 3 s wait with 1 s and 2 s delays would take over 12 s.
    assert time.monotonic() - started < 12 + 10


def test_a_gate_waits_past_the_step_timeout(tmp_path: Path) -> None:
    """The data lands after the step's timeout (2 s) but within the gate's wait (30 s): the gate passes."""
    landing = tmp_path / "landing"

    def land() -> None:
        time.sleep(6)
        landing.mkdir()
        (landing / "part-0").write_text("rows\n")

    lander = threading.Thread(target=land)
    lander.start()
    proc = run(
        tmp_path,
        """\
        - name: ready
          gate: {check: partition_exists, path: landing/, wait: {timeout: 30s, interval: 1s}}
        - name: after
          task: {backend: here, command: [python, -c, "print('ran')"]}
        """,
        timeout="2s",
    )
    lander.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[1/2] ready (gate) ok" in proc.stderr
    assert "ready: attempt" not in proc.stderr


def test_a_timed_out_job_ends_every_process_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen(['sleep', '300']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)"
    )
    proc = run(
        tmp_path,
        f"""\
        - name: slow
          retries: 0
          task: {{backend: here, command: [python, -c, {script!r}]}}
        """,
        timeout="3s",
    )
    assert proc.returncode == 1
    assert "timed out after 3s" in proc.stdout
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.2)
    assert not _alive(grandchild), "the job's child process outlived the step"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended: only its parent has not collected it.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_the_step_closes_its_run_and_reports(tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C (or SIGTERM): the job's processes end, its MLflow run is KILLED, the summary prints, exit 130."""
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, time, mlflow; mlflow.start_run(); "
        f"p = subprocess.Popen(['sleep', '300']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)"
    )
    spec = tmp_path / "policy.yaml"
    spec.write_text(
        HEADER.format(timeout="10m")
        + textwrap.indent(
            textwrap.dedent(
                f"""\
                - name: train
                  train: {{backend: here, command: [python, -c, {script!r}], metrics: [auc]}}
                - name: quality
                  evaluate: {{run_of: train, thresholds: ["auc > 0.5"]}}
                """
            ),
            "  ",
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 240
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), proc.communicate(timeout=60)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "pipeline policy: FAILED" in out, out
    assert re.search(r"train +failed +interrupted", out) and re.search(
        r"quality +not run +the run was interrupted", out
    )
    assert "Traceback" not in err
    grandchild = int(pid_file.read_text())
    assert not _alive(grandchild), "the job's child process outlived the interrupt"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["KILLED"]


def test_a_run_its_job_never_ended_is_closed(tmp_path: Path) -> None:
    """A training script that never calls mlflow.end_run (os._exit) still leaves a finished run."""
    proc = run(
        tmp_path,
        """\
        - name: train
          train:
            backend: here
            command: [python, -c, "import os, mlflow; mlflow.start_run(); mlflow.log_metric('auc', 0.9); os._exit(0)"]
            metrics: [auc]
        - name: crash
          after: []
          retries: 0
          train:
            backend: here
            command: [python, -c, "import os, mlflow; mlflow.start_run(); os._exit(3)"]
        """,
    )
    assert proc.returncode == 1, proc.stderr
    assert "crash (train) FAILED" in proc.stderr
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted((r.data.tags["pipegen.step"], r.info.status) for r in runs) == [
        ("crash", "FAILED"),
        ("train", "FINISHED"),
    ]


def test_the_failure_line_reads_only_the_end_of_a_large_log(tmp_path: Path) -> None:
    from pipegen.localrun import last_line

    log = tmp_path / "big.log"
    with log.open("wb") as handle:
        handle.write(b"x" * 50_000_000 + b"\nTraceback...\nValueError: bad input\n\n")
    assert last_line(log) == "ValueError: bad input"
    (tmp_path / "empty.log").write_bytes(b"")
    assert last_line(tmp_path / "empty.log") == ""
