"""A tracking URI from ${secret.X} stays out of XComs, task logs and rendered fields (dag.test, a real MLflow store).

start_run once returned the rendered tracking URI as its XCom: credentials in the URI were stored in Airflow's
database and shown in the UI. The Variable is named so that Airflow's masker would not mask it on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.airflow.test_gate_wait import load_dag

TRAIN = "import mlflow; mlflow.start_run(); mlflow.log_metric('m', 1.0); mlflow.end_run()"
SPEC = f"""\
pipegen: 1
name: secret-uri
defaults: {{retries: 0}}
mlflow: {{tracking_uri: '${{secret.tracking_store}}', experiment: secret-uri}}
steps:
  - name: train
    train: {{command: [python, -c, {json.dumps(TRAIN)}], metrics: [m]}}
  - name: judge
    evaluate: {{run_of: train, thresholds: ["m > 0"], on_fail: fail}}
"""


def test_the_secret_tracking_uri_is_in_no_xcom_log_line_or_rendered_field(
    airflow_db: Path,
    dags_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    distinctive = "store-5e1c7b"
    monkeypatch.setenv("AIRFLOW_VAR_TRACKING_STORE", f"sqlite:///{tmp_path / distinctive}.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    dag = load_dag(dags_folder, "secret-uri", SPEC)
    run = dag.test()  # type: ignore[attr-defined]
    out = capfd.readouterr()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]
    assert states == dict.fromkeys(["pipegen_start_run_train", "train", "judge"], "success")
    assert (tmp_path / f"{distinctive}.db").exists()  # the runs went where the secret said

    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.sdk._shared.secrets_masker import redact
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == "secret-uri", XComModel.run_id == run.run_id)  # type: ignore[attr-defined]
        ).all()
        xcoms = {row.task_id: row.value for row in rows}
    assert "pipegen_start_run_train" in xcoms
    assert [task for task, value in xcoms.items() if distinctive in json.dumps(value, default=str)] == []

    # Airflow's log processor (the supervisor's mask_logs) applies its masker to every line; dag.test prints
    # the lines unprocessed, so the test applies it. The masker knows the value only if the DAG registered it.
    lines = (out.out + out.err).splitlines()
    assert any("Returned value was" in line for line in lines)
    assert [line for line in lines if distinctive in str(redact(line))] == []

    for ti in run.get_task_instances():  # type: ignore[attr-defined]
        fields = RenderedTaskInstanceFields.get_templated_fields(ti)
        assert distinctive not in str(fields), ti.task_id
