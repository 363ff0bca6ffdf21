"""The differential suite's fan-out on a real Airflow 3 scheduler: two parallel 3-second Batch jobs against one.

    .venv/bin/python -m benchmarks.fanout_airflow [--json PATH]

`dag.test()` runs one task at a time, so the suite cannot show Airflow's parallelism. This runs the fan-out
scenario's compiled DAG (tests/differential/scenarios/fanout.yaml: two branches train -> judge -> promote,
each job sleeping 3 s) the way a deployment does: `airflow api-server`, `airflow scheduler` with the
LocalExecutor and `airflow dag-processor`, on the differential harness's services (moto whose Batch jobs
really run, an MLflow server, a migrated metadata DB). Airflow 3 removed the SequentialExecutor and accepts
the LocalExecutor on SQLite (its config validation checks only the SQLite version), so no PostgreSQL is
needed. It runs the fan-out, then the same spec with one branch, and prints each DAG run's wall time, how
long the two jobs spanned together against the longest one, and the ratio of the two runs. Figures, not
pass/fail: BENCHMARKS.md's fan-out section quotes them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import ROOT
from tests.differential.aws import record_path
from tests.differential.engines.airflow import airflow_environment
from tests.differential.harness import Services, _request, prepare_aws, session_dir
from tests.differential.state import job_records
from tests.support_tools import free_port

FANOUT = ROOT / "tests" / "differential" / "scenarios" / "fanout.yaml"
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
# Long enough for three Airflow processes to start and a 6-task DAG to run on a busy 2-core machine.
RUN_DEADLINE = 900.0


def one_branch(root: Path) -> Path:
    """The fan-out spec with branch b removed (same steps, same jobs): the one-job baseline."""
    spec = yaml.safe_load(FANOUT.read_text())
    spec["name"] = spec["mlflow"]["experiment"] = "diff-fanout-one"
    spec["steps"] = [s for s in spec["steps"] if not s["name"].endswith("_b")]
    path = root / "fanout_one.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def airflow_env(base: dict[str, str], port: int, secret: str) -> dict[str, str]:
    """The scheduler's, api-server's and dag-processor's environment: LocalExecutor, one shared JWT secret."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(base)
    env.update(
        PYTHONPATH=str(ROOT),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=secret,
        AIRFLOW__API_AUTH__JWT_SECRET=secret,
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
    )
    return env


def wait_for(what: str, check: Any, deadline: float, processes: list[subprocess.Popen[bytes]]) -> Any:
    """Poll check() until it returns something truthy; fail early when an Airflow process died."""
    while time.monotonic() < deadline:
        for proc in processes:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[1:3]} exited {proc.returncode} while waiting for {what}")
        found = check()
        if found:
            return found
        time.sleep(1)
    raise TimeoutError(f"timed out waiting for {what}")


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the metadata DB directly (an `airflow` CLI call costs ~10 s of CPU here)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return list(conn.execute(sql, args).fetchall())


def seconds(start: str, end: str) -> float:
    """Between two of the metadata DB's timestamps."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_on_scheduler(spec: Path, services: Services, workdir: Path) -> dict[str, Any]:
    """Compile the spec for Airflow, run it once on api-server + scheduler + dag-processor, read the figures."""
    out = workdir / "compiled"
    subprocess.run(
        [str(ROOT / ".venv/bin/pipegen"), "compile", str(spec), "-t", "airflow", "-o", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    prepare_aws(str(spec), services)
    request = _request("airflow", str(spec), out, workdir / "airflow", services, {}, None)
    name = yaml.safe_load(spec.read_text())["name"]
    home = workdir / "airflow" / "airflow-home"
    (home / "dags").mkdir(parents=True)
    assert services.airflow_db is not None
    shutil.copyfile(services.airflow_db, home / "airflow.db")
    shutil.copyfile(out / "airflow" / f"{name}.py", home / "dags" / f"{name}.py")
    env = airflow_env(airflow_environment(request, home), free_port(), secrets.token_hex(16))
    db = home / "airflow.db"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in ("api-server", "scheduler", "dag-processor"):
            log = (workdir / f"{command}.log").open("ab")
            processes.append(
                subprocess.Popen(
                    [str(AIRFLOW), command],
                    env=env,
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + RUN_DEADLINE
        wait_for(
            "the DAG to be parsed",
            lambda: query(db, "select 1 from serialized_dag where dag_id = ?", name),
            deadline,
            processes,
        )
        subprocess.run([str(AIRFLOW), "dags", "trigger", name], env=env, check=True, capture_output=True)
        done = wait_for(
            "the DAG run to end",
            lambda: query(
                db,
                "select state, start_date, end_date from dag_run where dag_id = ? and state in ('success', 'failed')",
                name,
            ),
            deadline,
            processes,
        )
    finally:
        for proc in processes:
            with_group(proc, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_group(proc, signal.SIGKILL)
                proc.wait()
    state, start, end = done[0]
    tasks = query(db, "select task_id, state, start_date, end_date from task_instance where dag_id = ?", name)
    jobs = job_records(record_path(services.root / "aws", request.tracking_uri))
    record_path(services.root / "aws", request.tracking_uri).unlink(missing_ok=True)
    figures: dict[str, Any] = {
        "dag": name,
        "state": state,
        "run_seconds": round(seconds(start, end), 2),
        "tasks": {t: {"state": s, "seconds": round(seconds(a, b), 2) if a and b else None} for t, s, a, b in tasks},
        "jobs": len(jobs),
    }
    if jobs:
        figures["jobs_span_seconds"] = round(max(j["ended"] for j in jobs) - min(j["started"] for j in jobs), 2)
        figures["longest_job_seconds"] = round(max(j["ended"] - j["started"] for j in jobs), 2)
    return figures


def with_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal a process started in its own session and everything it started (LocalExecutor workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def main(argv: list[str] | None = None) -> int:
    """Run both DAGs on one set of services, print the figures (and write them as JSON when asked)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout_airflow")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    root = session_dir()
    services = Services(root, ["airflow"], aws=True)
    services.start()
    try:
        two = run_on_scheduler(FANOUT, services, root / "two")
        one = run_on_scheduler(one_branch(root), services, root / "one")
    finally:
        services.stop()
    figures = {"two_branches": two, "one_branch": one, "ratio": round(two["run_seconds"] / one["run_seconds"], 2)}
    for label, run in (("two branches", two), ("one branch", one)):
        span = f"; its {run['jobs']} job(s) spanned {run.get('jobs_span_seconds')} s, the longest {run.get('longest_job_seconds')} s"
        print(f"{label}: DAG run {run['state']} in {run['run_seconds']} s{span}")
    print(f"two branches / one branch: {figures['ratio']}x (scratch: {root})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0 if two["state"] == one["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
