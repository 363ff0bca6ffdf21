"""Spark and Ray steps run for real in dag.test(): SparkSubmitOperator runs spark-submit on local[2] (Java 17,
pyspark's spark-submit), the Ray step submits a job to the session's Ray head through the runtime and it logs
into the pipeline's MLflow run; the model is promoted. A failing Spark job fails its task with the job's error.

Slow by nature (a Spark JVM starts in ~13-20 s, a Ray head in ~15-30 s): two DAG runs, two spark-submits.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import mlflow
import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file, check_source
from pipegen.loader import Source
from tests.cases import GOLDEN, REPO
from tests.support_ray import RAY_GROUP

pytestmark = pytest.mark.xdist_group(RAY_GROUP)

LOCAL_SPARK = json.dumps({"conn_type": "spark", "host": "local[2]", "extra": {"deploy-mode": "client"}})

FAILING = """\
pipegen: 1
name: spark-failing
defaults: {retries: 0, timeout: 10m}
backends:
  spark-local: {type: spark, master: "local[2]", conf: {spark.ui.enabled: "false"}}
steps:
  - name: features
    task: {backend: spark-local, command: [tests/specs/sparkray/failing_features.py]}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test specs' scripts in a scratch directory the tasks run from, an sqlite MLflow store there, the Spark
    connection the DAGs read their master from, and this environment's spark-submit (and python3) on PATH."""
    shutil.copytree(REPO / "tests" / "specs" / "sparkray", tmp_path / "tests" / "specs" / "sparkray")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("AIRFLOW_CONN_PIPEGEN_SPARK_SPARK_LOCAL", LOCAL_SPARK)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    return tmp_path


def load(dags_folder: Path, name: str, text: str) -> object:
    from airflow.dag_processing.dagbag import DagBag

    (dags_folder / f"{name}.py").write_text(text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag.dags[name]


def states(run: object) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def test_spark_features_and_ray_training_promote_the_model(
    airflow_db: Path,
    dags_folder: Path,
    workdir: Path,
    ray_head: str,
    ray_client_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    # The golden DAG, as `pipegen compile tests/specs/sparkray.yaml -t airflow` writes it.
    dag = load(dags_folder, "sparkray", (GOLDEN / "airflow" / "sparkray.py").read_text(encoding="utf-8"))
    features = dag.get_task("features")  # type: ignore[attr-defined]
    assert type(features).__name__ == "SparkSubmitOperator"
    run = dag.test(run_conf={"rows": 200})  # type: ignore[attr-defined]
    assert str(run.state) == "success", states(run)
    assert states(run) == dict.fromkeys(
        ["features", "pipegen_start_run_train", "train", "quality", "promote"], "success"
    )
    # spark-submit ran here, on the connection's local[2] master, and wrote what the spec's arguments said.
    assert list((workdir / "build" / "features").glob("part-*.csv"))
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("pipegen-sparkray", "champion")
    assert version.tags["pipegen.target"] == "airflow"
    mlrun = client.get_run(version.run_id)
    # The Ray job got the run (with the step's own env) through its runtime_env and logged into it.
    assert mlrun.data.metrics["rows"] == 200 and mlrun.data.metrics["r2"] > 0.99
    assert mlrun.data.tags["trained_on"] == "trained on ray"
    assert mlrun.data.tags["pipegen.pipeline"] == "sparkray"
    # The job's logs reached the task log.
    assert f"MLFLOW_RUN_ID={mlrun.info.run_id} note=trained on ray" in capfd.readouterr().out


def test_a_failing_spark_job_fails_its_task_with_the_jobs_error(
    airflow_db: Path, dags_folder: Path, workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = compile_checked(check_source(Source("spark-failing.yaml", FAILING)), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    dag = load(dags_folder, "spark-failing", result.outputs[0].text)
    run = dag.test()  # type: ignore[attr-defined]
    assert str(run.state) == "failed"
    assert states(run) == {"features": "failed"}
    # The task's error (what the task log ends with) names spark-submit's exit code, then the job's own exception.
    out = capfd.readouterr().out
    error = out[out.index("AirflowException: Cannot execute: spark-submit --master local[2] ") :]
    assert "Error code is: 1." in error
    assert "ValueError: features: the input partition is empty" in error


def test_the_golden_is_what_the_compiler_writes() -> None:
    result = compile_checked(check_file("tests/specs/sparkray.yaml"), ["airflow"])
    assert result.outputs[0].text == (GOLDEN / "airflow" / "sparkray.py").read_text(encoding="utf-8")
