"""The demo DAG runs end to end with dag.test() against a real MLflow store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow

from tests.cases import GOLDEN


def load_demo(dags_folder: Path) -> object:
    from airflow.dag_processing.dagbag import DagBag

    shutil.copy(GOLDEN / "airflow" / "demo.py", dags_folder / "demo.py")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag.dags["demo"]


def states(run: object) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def test_demo_promotes_then_failing_thresholds_promote_nothing(
    airflow_db: Path, dags_folder: Path, demo_workdir: Path
) -> None:
    dag = load_demo(dags_folder)
    first = dag.test()  # type: ignore[attr-defined]
    assert str(first.state) == "success", states(first)
    assert states(first) == dict.fromkeys(
        ["data_ready", "pipegen_start_run_train", "train", "quality", "promote"], "success"
    )
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("pipegen-demo", "champion")
    assert str(version.version) == "1"
    assert version.tags["pipegen.target"] == "airflow"
    assert version.tags["pipegen.pipeline"] == "demo"

    failing = dag.test(run_conf={"alpha": 100000})  # type: ignore[attr-defined]
    assert str(failing.state) == "success", states(failing)
    assert states(failing)["quality"] == "success"
    assert states(failing)["promote"] == "skipped"
    # sqlite stores return versions as int, HTTP as str: compare as strings.
    assert [str(v.version) for v in client.search_model_versions("name = 'pipegen-demo'")] == ["1"]
    assert str(client.get_model_version_by_alias("pipegen-demo", "champion").version) == "1"
    assert os.path.exists(demo_workdir / "mlflow.db")
