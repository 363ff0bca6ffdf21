"""`pipegen run` on the local demo spec, end to end: real subprocess training, real sqlite MLflow store."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from pipegen.expr import parse_template
from pipegen.localrun import coerce_param, default_tracking_uri, retry_delays
from pipegen.localrun.tracker import stop_worker, worker_pid
from pipegen.resolve import RetryPolicy
from pipegen.runtime.templating import Values
from tests.cases import REPO

pytestmark = pytest.mark.xdist_group("local_run")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the demo's spec and example folder: the run writes mlflow.db, mlruns/ and .pipegen/ here."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path


def pipegen_run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipegen", "run", "specs/demo.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def champion_version(workdir: Path) -> str | None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        return str(client.get_model_version_by_alias("pipegen-demo", "champion").version)
    except mlflow.exceptions.MlflowException:
        return None


def test_demo_promotion_sequence(workdir: Path) -> None:
    """One store, four runs: first promotes, not-better and failing runs leave the alias, a better run moves it."""
    # A heavily regularised model: passes the thresholds, leaves room for a better one later.
    first = pipegen_run(workdir, "--param", "alpha=50")
    assert first.returncode == 0, first.stderr
    assert "pipeline demo: succeeded" in first.stdout
    assert "model pipegen-demo: version 1 holds alias 'champion'" in first.stdout
    assert "[4/4] promote (promote) ok" in first.stderr
    # Only pipegen's own lines: none of MLflow's console output (store migrations, registry chatter).
    for noise in ("Registered model", "Created version", "no artifacts at artifact path", "INFO mlflow"):
        assert noise not in first.stdout + first.stderr, noise
    assert champion_version(workdir) == "1"

    not_better = pipegen_run(workdir, "--param", "alpha=120")
    assert not_better.returncode == 0, not_better.stderr
    assert "does not beat version 1 of pipegen-demo@champion" in not_better.stdout
    assert "nothing was promoted" in not_better.stdout
    assert champion_version(workdir) == "1"

    failing = pipegen_run(workdir, "--param", "alpha=100000")
    assert failing.returncode == 0, failing.stderr
    assert "r2 >= 0.8: failed" in failing.stdout
    assert champion_version(workdir) == "1"

    better = pipegen_run(workdir)
    assert better.returncode == 0, better.stderr
    assert "model pipegen-demo: version 2 holds alias 'champion'" in better.stdout
    assert champion_version(workdir) == "2"
    version = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}").get_model_version(
        "pipegen-demo", "2"
    )
    assert version.tags["pipegen.pipeline"] == "demo"
    assert version.tags["pipegen.target"] == "local"
    assert version.tags["pipegen.spec_sha256"] == hashlib.sha256((REPO / "specs/demo.yaml").read_bytes()).hexdigest()


# The whole `pipegen run`, in a process that reports afterwards which modules it had imported.
_RUN_AND_REPORT_IMPORTS = """
import json, sys
from pipegen.cli import main
code = main(["run", "specs/demo.yaml", *sys.argv[1:]])
print(json.dumps({"exit": code, "mlflow_imported": sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")}))
"""


def test_the_orchestrator_never_imports_mlflow_and_the_next_run_finds_the_worker_warm(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's import and the store's opening (seconds) happen once, in the worker, not in every run."""
    monkeypatch.setenv("PIPEGEN_RUN_WORKER_IDLE", "120")  # outlives this test's own look at the store
    uri = default_tracking_uri(workdir)
    try:
        first = subprocess.run(
            [sys.executable, "-c", _RUN_AND_REPORT_IMPORTS, "--param", "alpha=50"],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        report = json.loads(first.stdout.splitlines()[-1])
        assert report == {"exit": 0, "mlflow_imported": []}, first.stderr
        assert "model pipegen-demo: version 1 holds alias 'champion'" in first.stdout
        assert champion_version(workdir) == "1"
        worker = worker_pid(workdir, uri)
        assert worker is not None

        second = pipegen_run(workdir, "--param", "alpha=120")  # the same store, the same worker
        assert second.returncode == 0, second.stderr
        assert "does not beat version 1 of pipegen-demo@champion" in second.stdout
        assert worker_pid(workdir, uri) == worker
    finally:
        stop_worker(workdir, uri)


# One training step that logs nothing: what a run costs pipegen itself, with the worker it leaves behind.
TINY = """\
pipegen: 1
name: tiny
mlflow: {experiment: tiny}
backends: {here: {type: local}}
steps:
  - name: fit
    train: {backend: here, command: [python, -c, "print('fitted')"]}
"""


def run_tiny(directory: Path, idle: str) -> subprocess.CompletedProcess[str]:
    """`pipegen run tiny.yaml` in directory, its MLflow worker kept `idle` seconds after the run."""
    spec = directory / "tiny.yaml"
    spec.write_text(TINY)
    return subprocess.run(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=directory,
        env={**os.environ, "PIPEGEN_RUN_WORKER_IDLE": idle},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_worker_ends_once_idle_and_a_later_run_starts_another(tmp_path: Path) -> None:
    """No process outlives its idle time; a run after that starts a new worker, and its run is closed as before."""
    uri = default_tracking_uri(tmp_path)
    pids = []
    for _ in range(2):
        proc = run_tiny(tmp_path, idle="1")
        assert proc.returncode == 0, proc.stderr
        assert "pipeline tiny: succeeded" in proc.stdout
        pid = worker_pid(tmp_path, uri)  # it answers after the run: within its idle second
        deadline = time.monotonic() + 30
        while worker_pid(tmp_path, uri) is not None:
            assert time.monotonic() < deadline, "the worker outlived its idle time"
            time.sleep(0.2)
        pids.append(pid)
    assert None not in pids and pids[0] != pids[1]
    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("tiny").experiment_id]
    )
    # The job never ended its run: pipegen closed both, through the worker, as FINISHED.
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]


def test_a_store_deleted_between_runs_is_created_afresh_not_written_through_the_old_worker(tmp_path: Path) -> None:
    """`rm mlflow.db` to start afresh: the warm worker's connections reach the deleted file; it must not be used."""
    uri = default_tracking_uri(tmp_path)
    try:
        run_ids = []
        for _ in range(2):
            proc = run_tiny(tmp_path, idle="120")
            assert proc.returncode == 0, proc.stderr
            run_ids += re.findall(r"MLflow run ([0-9a-f]{32})", proc.stdout)
            if len(run_ids) == 1:
                assert worker_pid(tmp_path, uri) is not None
                (tmp_path / "mlflow.db").unlink()  # the worker of the first run still warm, its file gone
        # The second run created the store afresh and its run is there, closed (not in the deleted file).
        assert (tmp_path / "mlflow.db").exists()
        client = mlflow.MlflowClient(tracking_uri=uri)
        [run] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
        assert run.info.run_id == run_ids[1] and run.info.status == "FINISHED"
    finally:
        stop_worker(tmp_path, uri)


def test_a_new_store_is_a_copy_of_one_migrated_once_and_its_default_experiment_is_its_own(tmp_path: Path) -> None:
    """The first run in a directory copies an empty store migrated once per MLflow version (store_seed)."""
    from mlflow.version import VERSION

    cache = tmp_path / "cache"
    template = cache / f"mlflow-{VERSION}-empty.sqlite"
    os.environ["PIPEGEN_CACHE_DIR"] = str(cache)  # the worker a run starts inherits it
    try:
        for name in ("one", "two"):
            directory = tmp_path / name
            directory.mkdir()
            made = template.stat().st_mtime_ns if template.exists() else None
            proc = run_tiny(directory, idle="0.5")
            assert proc.returncode == 0, proc.stderr
            assert template.exists() and (made is None or template.stat().st_mtime_ns == made)
            client = mlflow.MlflowClient(tracking_uri=default_tracking_uri(directory))
            # MLflow's Default experiment, added when the copy was opened, lies in this directory, not the cache.
            default = client.get_experiment("0")
            assert default.name == "Default"
            assert default.artifact_location == str(directory / "mlruns" / "0")
            [run] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
            assert run.info.status == "FINISHED"
        # The template itself holds no experiment (so no directory's paths).
        with sqlite3.connect(template) as db:
            assert db.execute("SELECT count(*) FROM experiments").fetchone() == (0,)
    finally:
        del os.environ["PIPEGEN_CACHE_DIR"]


def test_failing_command_is_retried_then_fails(workdir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text((REPO / "specs" / "demo.yaml").read_text().replace("examples/train_demo.py", "examples/missing.py"))
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "run", str(spec)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "train: attempt 1 failed" in proc.stderr  # the demo sets retries: 1
    assert "pipeline demo: FAILED" in proc.stdout
    assert "quality     not run  train failed" in proc.stdout


def test_backends_that_need_a_cluster_are_refused_with_a_located_diagnostic() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "run", "specs/feed-ranking.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert (
        "specs/feed-ranking.yaml:47:16: error[PG602]: `pipegen run` cannot run step 'train' on backend 'gpu-cluster' "
        "(kubernetes); it runs local, aws_batch, sagemaker, spark and ray steps; hint: compile for the orchestrator "
        "that runs this backend: pipegen compile SPEC -t airflow|kfp|stepfunctions|prefect|argo"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--param", "nope=1"],
        ["--param", "alpha=abc"],
        ["--param", "alpha"],
        ["--date", "yesterday"],
        ["--parallelism", "0"],
    ],
)
def test_bad_run_arguments_are_usage_errors(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "run", "specs/demo.yaml", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("pipegen: error:")


def test_param_coercion_follows_the_default_type() -> None:
    assert coerce_param("n", "7", 1) == 7
    assert coerce_param("lr", "0.1", 0.5) == 0.1
    assert coerce_param("flag", "yes", False) is True
    assert coerce_param("s", "x", "y") == "x"
    with pytest.raises(ValueError, match="is a int"):
        coerce_param("n", "1.5", 1)


def test_retry_delays_follow_backoff_and_cap() -> None:
    assert retry_delays(RetryPolicy(3, 60, "fixed", None, None)) == [60, 60, 60]
    assert retry_delays(RetryPolicy(4, 60, "exponential", 300, None)) == [60, 120, 240, 300]


def test_values_render_params_run_env_and_secrets() -> None:
    values = Values(
        {"lr": 0.1, "on": True}, "run-1", "2026-01-02", {"HOME_DIR": "/h", "PIPEGEN_SECRET_DB_URL": "sqlite://"}
    )
    text = "${params.lr} ${params.on} ${run.id} ${run.date} ${env.HOME_DIR} ${secret.db_url} {{ ds }}"
    assert values.text(parse_template(text)) == "0.1 true run-1 2026-01-02 /h sqlite:// {{ ds }}"
