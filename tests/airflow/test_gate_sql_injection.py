"""A gate's query reaches the database as its template with bound parameters, never with values pasted in.

Run through Airflow itself (dag.test): `${params.dt}` holding `x' UNION SELECT password FROM users --` once
turned the gate's SQL into a UNION that returned the password, and the gate passed on it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.airflow.test_gate_wait import load_dag

INJECTION = "x' UNION SELECT password FROM users --"
PASSWORD = "hunter2-SECRET"


def warehouse(path: Path) -> str:
    """A database whose flags table holds the injection text itself as a date, flagged not ready (0)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE flags (dt TEXT, ok INTEGER)")
        conn.execute("INSERT INTO flags VALUES (?, 0)", (INJECTION,))
        conn.execute("CREATE TABLE users (password TEXT)")
        conn.execute("INSERT INTO users VALUES (?)", (PASSWORD,))
    return f"sqlite:///{path}"


def spec(url: str) -> str:
    query = json.dumps("SELECT ok FROM flags WHERE dt = '${params.dt}' AND '${run.date}' LIKE '2026-%'")
    gate = f"{{check: sql, connection: {json.dumps(url)}, query: {query}"
    return (
        f"pipegen: 1\nname: injected-gate\nparams: {{dt: '2026-01-01'}}\ndefaults: {{retries: 0}}\nsteps:\n"
        f"  - name: once\n    gate: {gate}}}\n"
        f"  - name: waiting\n    after: []\n    gate: {gate}, wait: {{timeout: 2s, interval: 1s}}}}\n"
    )


def test_a_parameter_is_a_bound_value_in_the_gate_query(
    airflow_db: Path, dags_folder: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    dag = load_dag(dags_folder, "injected-gate", spec(warehouse(tmp_path / "wh.db")))
    run = dag.test(logical_date=datetime(2026, 3, 8, tzinfo=UTC), run_conf={"dt": INJECTION})  # type: ignore[attr-defined]
    out = capfd.readouterr()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]
    # Pasted in, the UNION returned the password and both gates passed. Bound, the query compares dt with the
    # whole text, finds the one row that holds it, and reads its 0: not ready.
    assert states == {"once": "failed", "waiting": "failed"}
    log = out.out + out.err
    assert "query on sqlite:///" in log and "returned 0, which is not true" in log
    assert PASSWORD not in log


def test_the_gate_passes_on_the_bound_value(airflow_db: Path, dags_folder: Path, tmp_path: Path) -> None:
    """The same gate with the row flagged ready passes: the bound value is the parameter, matched exactly."""
    url = warehouse(tmp_path / "wh.db")
    with sqlite3.connect(tmp_path / "wh.db") as conn:
        conn.execute("UPDATE flags SET ok = 1")
    from datetime import UTC, datetime

    dag = load_dag(dags_folder, "injected-gate", spec(url))
    run = dag.test(logical_date=datetime(2026, 3, 8, tzinfo=UTC), run_conf={"dt": INJECTION})  # type: ignore[attr-defined]
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]
    assert states == {"once": "success", "waiting": "success"}
