"""Waiting gates run in Airflow's own sensor machinery (dag.test): the wait, not the step timeout, bounds them."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source


def load_dag(dags_folder: Path, name: str, text: str) -> object:
    from airflow.dag_processing.dagbag import DagBag

    result = compile_checked(check_source(Source(f"{name}.yaml", text)), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (dags_folder / f"{name}.py").write_text(result.outputs[0].text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag.dags[name]


def gate_spec(name: str, path: Path, *, timeout: str, wait: str, retries: int) -> str:
    return (
        f"pipegen: 1\nname: {name}\n"
        f"defaults: {{retries: {retries}, retry_delay: 1s, backoff: fixed, timeout: {timeout}}}\n"
        "steps:\n"
        "  - name: ready\n    gate:\n      check: partition_exists\n"
        f"      path: {path.as_uri()}/\n      wait: {{timeout: {wait}, interval: 1s}}\n"
    )


def later(seconds: float, action: object) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def gate_tries(run: object) -> tuple[str, int]:
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "ready"]  # type: ignore[attr-defined]
    return str(ti.state), int(ti.try_number)


def test_data_landing_after_the_step_timeout_but_within_the_wait_passes(
    airflow_db: Path, dags_folder: Path, tmp_path: Path
) -> None:
    partition = tmp_path / "partition-2026-01-15"
    dag = load_dag(dags_folder, "late-data", gate_spec("late-data", partition, timeout="3s", wait="30s", retries=0))
    writer = later(6, lambda: (partition.mkdir(), (partition / "part-0").write_text("rows")))
    started = time.monotonic()
    run = dag.test()  # type: ignore[attr-defined]
    writer.join()
    assert time.monotonic() - started > 6  # it did wait past the step's 3 s timeout
    assert str(run.state) == "success", gate_tries(run)
    assert gate_tries(run) == ("success", 1)


def test_a_retry_resumes_the_wait_instead_of_starting_it_again(
    airflow_db: Path, dags_folder: Path, tmp_path: Path
) -> None:
    """A check error mid-wait makes Airflow retry the sensor; the retry must not get a fresh wait.timeout.

    Times are counted from the gate's first check (seen in Airflow's own database, as a busy machine
    may be slow to get there): from 5 s the partition path is a symlink loop, so each check raises
    ELOOP (an error, not "missing") until Airflow retries the gate; the data lands at 13 s, after the
    10 s wait, but within a wait that a retry at 5 s or later would have restarted.
    """
    partition = tmp_path / "partition-2026-01-15"
    dag = load_dag(dags_folder, "retried", gate_spec("retried", partition, timeout="3s", wait="10s", retries=5))

    def query(sql: str) -> tuple[object, ...] | None:
        while True:
            try:
                with sqlite3.connect(airflow_db / "airflow.db", timeout=30) as conn:
                    row = conn.execute(sql).fetchone()
                return tuple(row) if row else None
            except sqlite3.OperationalError:
                time.sleep(0.1)

    def play() -> None:
        # The first check found nothing: Airflow recorded the sensor's first reschedule.
        while query("SELECT id FROM task_reschedule") is None:
            time.sleep(0.1)
        first_check = time.monotonic()
        time.sleep(5)
        os.symlink(partition, partition)
        retried = "SELECT try_number FROM task_instance WHERE dag_id = 'retried' AND try_number > 1"
        while query(retried) is None:
            time.sleep(0.1)
        partition.unlink()
        time.sleep(max(0.0, first_check + 13 - time.monotonic()))
        partition.mkdir()
        (partition / "part-0").write_text("rows")

    player = threading.Thread(target=play, daemon=True)
    player.start()
    run = dag.test()  # type: ignore[attr-defined]
    player.join(timeout=60)
    state, tries = gate_tries(run)
    assert tries > 1, "the check error did not make Airflow retry the gate"
    assert (str(run.state), state) == ("failed", "failed")


def test_run_date_is_the_date_in_the_schedules_timezone(airflow_db: Path, dags_folder: Path, tmp_path: Path) -> None:
    """The 20:00 Los Angeles run of 15 Jan fires at 04:00Z on the 16th: ${run.date} is 2026-01-15.

    A run without a logical date (Airflow 3's manual runs may have none) gets today's date there.
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    text = (
        "pipegen: 1\nname: dated\n"
        "schedule: {cron: '0 20 * * *', timezone: America/Los_Angeles}\n"
        "defaults: {retries: 0}\n"
        "steps:\n"
        "  - name: ready\n    gate:\n      check: partition_exists\n"
        f"      path: {tmp_path.as_uri()}/dt=${{run.date}}\n"
    )
    dag = load_dag(dags_folder, "dated", text)
    (tmp_path / "dt=2026-01-15").write_text("rows")
    scheduled = dag.test(logical_date=datetime(2026, 1, 16, 4, 0, tzinfo=ZoneInfo("UTC")))  # type: ignore[attr-defined]
    assert gate_tries(scheduled)[0] == "success"

    today = datetime.now(ZoneInfo("America/Los_Angeles")).date().isoformat()
    (tmp_path / f"dt={today}").write_text("rows")
    manual = dag.test(logical_date=None)  # type: ignore[attr-defined]
    assert gate_tries(manual)[0] == "success"
