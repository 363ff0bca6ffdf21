"""Every golden DAG loads in a real Airflow 3.3 DagBag with no import errors."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.cases import GOLDEN


def test_golden_dags_load(dags_folder: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    files = sorted((GOLDEN / "airflow").glob("*.py"))
    assert files
    for path in files:
        shutil.copy(path, dags_folder / path.name)
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(p.stem for p in files)
    feed = bag.dags["feed-ranking"]
    assert [t.task_id for t in feed.topological_sort()] == [
        "engagement_ready",
        "pipegen_start_run_train",
        "train",
        "quality",
        "promote",
    ]
    train = feed.get_task("train")
    assert type(train).__name__ == "KubernetesPodOperator"
    assert train.retries == 3 and train.retry_exponential_backoff == 2.0
    sensor = feed.get_task("engagement_ready")
    assert sensor.mode == "reschedule" and sensor.poke_interval == 600 and sensor.timeout == 21600
    assert type(bag.dags["pricing"].get_task("train")).__name__ == "BatchOperator"
    assert feed.schedule == "0 2 * * *" if hasattr(feed, "schedule") else True
