"""${secret.X} reaches runtime tasks from the Airflow Variable X: its value never shows in logs or rendered fields."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.airflow.test_gate_wait import load_dag


def test_a_secret_is_masked_in_task_logs_and_rendered_fields(
    airflow_db: Path,
    dags_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A Variable whose name Airflow's masker does not find sensitive ("warehouse_url" holds no "password",
    # "secret", "token", ...): the spec says it is a secret, so it must be masked all the same.
    db = tmp_path / "warehouse-7f3a9c.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE ready (ok INTEGER)")
        conn.execute("INSERT INTO ready VALUES (1)")
    url = f"sqlite:///{db}"
    monkeypatch.setenv("AIRFLOW_VAR_WAREHOUSE_URL", url)
    text = (
        "pipegen: 1\nname: masked\ndefaults: {retries: 0}\nsteps:\n"
        "  - name: ready\n    gate: {check: sql, connection: '${secret.warehouse_url}', query: SELECT ok FROM ready}\n"
    )
    dag = load_dag(dags_folder, "masked", text)
    run = dag.test()  # type: ignore[attr-defined]
    (ti,) = run.get_task_instances()  # type: ignore[attr-defined]
    assert str(ti.state) == "success"

    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.sdk._shared.secrets_masker import redact

    # What the UI shows as the task's rendered arguments (Airflow redacts them with its masker).
    fields = RenderedTaskInstanceFields.get_templated_fields(ti)
    assert fields is not None and fields["op_kwargs"]["gate"]["query"] == "SELECT ok FROM ready"
    assert "warehouse-7f3a9c" not in str(fields)
    # What the task's log processor applies to every log line (dag.test prints them unprocessed).
    assert redact(f"query on {url} returned 1") == "query on *** returned 1"
