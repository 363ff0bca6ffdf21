"""`pipegen run` with real engines: spark-submit on local[2] (Java 17) and Ray jobs on a real Ray head.

Slow by nature (a Spark JVM starts in ~13-20 s, a Ray head in ~15-30 s): two runs, two spark-submits in all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.cases import REPO
from tests.support_ray import RAY_GROUP

pytestmark = pytest.mark.xdist_group(RAY_GROUP)

SPECS = REPO / "tests" / "specs"


def workdir_with(tmp_path: Path, *specs: str) -> Path:
    """A working directory holding the test specs (at the same relative paths) and their scripts."""
    (tmp_path / "tests" / "specs").mkdir(parents=True)
    for spec in specs:
        shutil.copy(SPECS / spec, tmp_path / "tests" / "specs" / spec)
    shutil.copytree(SPECS / "sparkray", tmp_path / "tests" / "specs" / "sparkray")
    return tmp_path


def pipegen_run(workdir: Path, spec: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipegen", "run", f"tests/specs/{spec}"],
        cwd=workdir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def ray_heads() -> set[str]:
    """The directories of the Ray heads pipegen started on this machine that are still there."""
    return {str(p) for p in Path("/tmp").glob("pgray-*")}


def processes_under(prefix: str, but: set[str]) -> list[str]:
    """Command lines of the processes that run from a directory starting with prefix, except those under but."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and prefix in cmdline and not any(root in cmdline for root in but):
            found.append(cmdline)
    return found


def test_spark_features_and_ray_training_promote_the_model(tmp_path: Path, ray_head: str, ray_client_env: None) -> None:
    """Spark writes the features, a Ray job trains on them into the pipeline's MLflow run, the model is promoted."""
    workdir = workdir_with(tmp_path, "sparkray.yaml")
    result = pipegen_run(workdir, "sparkray.yaml", RAY_ADDRESS=ray_head)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pipeline sparkray: succeeded" in result.stdout
    assert "model pipegen-sparkray: version 1 holds alias 'champion'" in result.stdout
    # The Spark job ran here, on local[2], and wrote its output where the spec said.
    assert list((workdir / "build" / "features").glob("part-*.csv"))
    [log_dir] = (workdir / ".pipegen" / "logs").iterdir()
    assert "wrote 200 feature rows to build/features" in (log_dir / "features.log").read_text()
    # The Ray job got the run through its runtime_env (with the step's own env) and logged into it.
    train_log = (log_dir / "train.log").read_text()
    assert "note=trained on ray" in train_log
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    version = client.get_model_version_by_alias("pipegen-sparkray", "champion")
    run = client.get_run(version.run_id)
    assert f"MLFLOW_RUN_ID={run.info.run_id}" in train_log
    assert run.data.metrics["rows"] == 200 and run.data.metrics["r2"] > 0.99
    assert run.data.tags["trained_on"] == "trained on ray"
    assert run.data.tags["pipegen.pipeline"] == "sparkray"
    assert run.info.status == "FINISHED"


def test_failing_spark_and_ray_jobs_fail_their_steps_with_the_jobs_errors(tmp_path: Path, ray_client_env: None) -> None:
    """Each step fails with its job's own last error; the Ray head `address: local` started is gone afterwards."""
    before = ray_heads()
    workdir = workdir_with(tmp_path, "sparkray-failing.yaml")
    result = pipegen_run(workdir, "sparkray-failing.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pipeline sparkray-failing: FAILED" in result.stdout
    lines = result.stdout.splitlines()
    [features] = [line for line in lines if "features" in line and "failed" in line]
    assert "spark-submit exit code 1" in features
    assert "ValueError: features: the input partition is empty" in features
    [train] = [line for line in lines if "train" in line and "failed" in line]
    assert "Ray job sparkray-failing-train-" in train and "failed" in train
    assert "RuntimeError: training diverged: loss is nan" in train
    # The failed training run was closed as FAILED, not left RUNNING.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name != "Default"]
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    # The local head is stopped and its directory removed; no process runs from it any more.
    assert ray_heads() <= before
    assert processes_under("/tmp/pgray-", but=before) == []
