"""A training step whose job an Airflow task runs ends its MLflow run when the job left it RUNNING (it crashed, was
killed, or never ended the run), through the tasks' callbacks: FAILED on each failed try and at the end, FINISHED
on success, as the runtime's steps and `pipegen run` end it. A run the job ended keeps its own status."""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest

from tests.airflow.test_gate_wait import load_dag

EVENTS = ("retry", "failure", "success")

BACKENDS = """\
backends:
  local: {type: local}
  pod: {type: kubernetes, namespace: ml, image: "train:1"}
  batch: {type: aws_batch, job_queue: q, job_definition: "d:1"}
  sm: {type: sagemaker, role_arn: "arn:aws:iam::1:role/r", image: img, instance_type: ml.m5.large, output_path: "s3://o/"}
  submit: {type: spark, master: "local[2]"}
  emr: {type: spark, platform: emr, emr: {cluster_id: j-1, region: eu-west-1}}
  glue: {type: spark, platform: glue, glue: {job_name: g}}
  sparkapp: {type: spark, platform: kubernetes, kubernetes: {image: "spark:4", spark_version: 4.0.1, namespace: ml}}
  rayjob: {type: ray, address: "http://head:8265"}
  kuberay:
    type: ray
    cluster:
      image: "ray:2"
      ray_version: 2.60.0
      namespace: ml
      head: {cpus: 2, memory: 8Gi}
      workers: [{name: w, replicas: 1, cpus: 2, memory: 8Gi}]
  indexed: {type: kubernetes, namespace: ml, image: "train:1", distributed_runtime: indexed_job}
  jobset: {type: kubernetes, namespace: ml, image: "train:1", distributed_runtime: jobset}
  trainjob: {type: kubernetes, namespace: ml, image: "train:1", distributed_runtime: trainjob}
"""
MULTI = "distributed: {nodes: 2, launcher: torchrun}, "
STEPS = [
    ("t_local", "local", "[python, t.py]", ""),
    ("t_pod", "pod", "[python, t.py]", ""),
    ("t_batch", "batch", "[python, t.py]", ""),
    ("t_sm", "sm", "[python, t.py]", ""),
    ("t_submit", "submit", "[t.py]", ""),
    ("t_emr", "emr", "[s3://c/t.py]", ""),
    ("t_glue", "glue", "[s3://c/t.py, --day, '1']", ""),
    ("t_sparkapp", "sparkapp", "[local:///t.py]", ""),
    ("t_rayjob", "rayjob", "[python, t.py]", ""),
    ("t_kuberay", "kuberay", "[python, t.py]", ""),
    ("t_indexed", "indexed", "[python, t.py]", MULTI),
    ("t_jobset", "jobset", "[python, t.py]", MULTI),
    ("t_trainjob", "trainjob", "[python, t.py]", MULTI),
]
EVERY_KIND = (
    "pipegen: 1\nname: closing\ndefaults: {retries: 1, timeout: 1h}\n"
    + BACKENDS
    + "steps:\n"
    + "".join(
        f"  - name: {name}\n    after: []\n    train: {{backend: {backend}, command: {command}, {extra}metrics: [m]}}\n"
        for name, backend, command, extra in STEPS
    )
    + "  - name: prep\n    after: []\n    task: {backend: batch, command: [prep]}\n"
)
JOB = {"retry": ("FAILED",), "failure": ("FAILED",), "success": ("FINISHED",)}
# The task whose end is the job's: every failed try, the failure and the success.
JOB_TASK = {event: [(f"_close_run_{s.lower()}", s) for s in statuses] for event, statuses in JOB.items()}
# The status sensor of a create/sensor/teardown group: its retries re-read an object whose job may still run.
SENSOR = {**JOB_TASK, "retry": []}
# A task that creates what the job needs: when it fails for good, no job will end the run.
SETUP = {"retry": [], "failure": [("_close_run_failed", "FAILED")], "success": []}
NONE: dict[str, list[tuple[str, str]]] = {event: [] for event in EVENTS}


def closing_callbacks(task: object) -> tuple[set[str], dict[str, list[tuple[str, str]]]]:
    """(the steps whose run the task's callbacks end, {event: [(callback name, status)]})."""
    steps: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {}
    for event in EVENTS:
        out[event] = []
        for callback in getattr(task, f"on_{event}_callback"):
            bound = inspect.getclosurevars(callback).nonlocals
            steps.add(bound["step"])
            out[event].append((callback.__name__, bound["status"]))
    return steps, out


def test_each_training_task_ends_its_run_as_its_job_ended(dags_folder: Path) -> None:
    dag = load_dag(dags_folder, "closing", EVERY_KIND)
    expected: dict[str, tuple[set[str], dict[str, list[tuple[str, str]]]]] = {}
    for name, backend, _, _ in STEPS:
        expected[f"pipegen_start_run_{name}"] = (set(), NONE)
        if backend == "indexed":
            # Service setup, the Indexed Job (KubernetesJobOperator), the Service's teardown.
            expected |= {f"{name}_service": ({name}, SETUP), name: ({name}, JOB_TASK), f"{name}_cleanup": (set(), NONE)}
        elif backend in ("kuberay", "jobset", "trainjob"):
            expected |= {f"{name}_create": ({name}, SETUP), name: ({name}, SENSOR), f"{name}_cleanup": (set(), NONE)}
        else:
            expected[name] = ({name}, JOB_TASK)
    expected["prep"] = (set(), NONE)  # a task step has no run
    got = {task.task_id: closing_callbacks(task) for task in dag.tasks}  # type: ignore[attr-defined]
    assert got == expected
    kinds = {name: type(dag.get_task(name)).__name__ for name, *_ in STEPS}  # type: ignore[attr-defined]
    assert kinds == {
        "t_local": "_PythonDecoratedOperator",
        "t_pod": "KubernetesPodOperator",
        "t_batch": "BatchOperator",
        "t_sm": "SageMakerTrainingOperator",
        "t_submit": "SparkSubmitOperator",
        "t_emr": "EmrAddStepsOperator",
        "t_glue": "GlueJobOperator",
        "t_sparkapp": "SparkKubernetesOperator",
        "t_rayjob": "_PythonDecoratedOperator",
        "t_kuberay": "DecoratedSensorOperator",
        "t_indexed": "KubernetesJobOperator",
        "t_jobset": "DecoratedSensorOperator",
        "t_trainjob": "DecoratedSensorOperator",
    }


def test_a_dag_without_training_steps_has_no_closing_helper(dags_folder: Path) -> None:
    spec = (
        "pipegen: 1\nname: tasks-only\n"
        + BACKENDS
        + "steps:\n  - name: prep\n    task: {backend: batch, command: [p]}\n"
    )
    dag = load_dag(dags_folder, "tasks-only", spec)
    assert "_close_run" not in (dags_folder / "tasks-only.py").read_text()
    assert closing_callbacks(dag.get_task("prep")) == (set(), NONE)  # type: ignore[attr-defined]


def test_a_run_that_cannot_be_ended_leaves_the_task_as_it_was_and_prints_no_credentials(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tracking server is unreachable when the callback runs: a redacted line, no exception to Airflow."""
    spec = (
        "pipegen: 1\nname: unreachable\nmlflow: {tracking_uri: '${env.PIPEGEN_TEST_TRACKING}', experiment: e}\n"
        + BACKENDS
        + "steps:\n  - name: fit\n    train: {backend: batch, command: [fit], metrics: [m]}\n"
    )
    monkeypatch.setenv("PIPEGEN_TEST_TRACKING", "http://trainer:pa55w0rd-7c1e@127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    dag = load_dag(dags_folder, "unreachable", spec)
    (callback,) = dag.get_task("fit").on_failure_callback  # type: ignore[attr-defined]
    pulled: list[str] = []

    def xcom_pull(task_ids: str) -> dict[str, str]:
        pulled.append(task_ids)
        return {"run_id": "0123456789abcdef", "experiment_id": "1"}

    callback({"ti": SimpleNamespace(xcom_pull=xcom_pull)})
    out = capsys.readouterr().out
    assert pulled == ["pipegen_start_run_fit"]
    assert "pipegen: could not end the MLflow run of step fit as FAILED" in out
    assert "127.0.0.1:9" in out and "pa55w0rd" not in out


# ---- dag.test(): BatchOperator on moto's Batch, whose jobs run here as processes (tests/differential/aws.py) -----
CRASH_SPEC = """\
pipegen: 1
name: crashing
defaults: {timeout: 5m}
mlflow: {experiment: crashing}
backends:
  batch: {type: aws_batch, job_queue: crash-q, job_definition: "crash-train:1"}
steps:
  - name: crashes
    train:
      backend: batch
      command: [python, -m, tests.differential.jobs.train, --crash-times, "9", --key, crashes, --metric, auc=0.9]
      metrics: [auc]
  - name: quiet
    after: []
    train: {backend: batch, command: [python, -c, "print('trained')"], metrics: [auc]}
"""


@pytest.fixture
def batch_on_moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """moto's server with Batch jobs played here, reached by Airflow's aws_default connection; yields the jobs' dir."""
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
    from moto.server import ThreadedMotoServer

    from tests.differential.aws import configure, hook_batch
    from tests.support_aws import batch_queue

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        configure(endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        conn = {"conn_type": "aws", "login": "testing", "password": "testing"}
        conn["extra"] = {"endpoint_url": endpoint, "region_name": "us-east-1"}  # type: ignore[assignment]
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
        jobs = tmp_path / "jobs"
        jobs.mkdir()
        hook_batch(monkeypatch, jobs)
        batch_queue("crash-q", "crash-train:1")
        # The provider's documented knob: it polls a job every 1-10 s (random) otherwise.
        monkeypatch.setattr(BatchClientHook, "DEFAULT_DELAY_MIN", 0)
        monkeypatch.setattr(BatchClientHook, "DEFAULT_DELAY_MAX", 1)
        # The jobs run `python` (this environment's, with mlflow) from the repository root.
        monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        monkeypatch.setenv("PIPEGEN_DIFF_STATE", str(tmp_path / "attempts"))
        yield jobs
    finally:
        server.stop()


def test_a_batch_job_that_dies_leaves_no_run_running(
    airflow_db: Path, dags_folder: Path, batch_on_moto: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the worker's: the DAG's TRACKING_URI is '' (the spec names none)
    dag = load_dag(dags_folder, "crashing", CRASH_SPEC)
    run = dag.test()  # type: ignore[attr-defined]
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}  # type: ignore[attr-defined]
    assert states == {
        "pipegen_start_run_crashes": "success",
        "crashes": "failed",
        "pipegen_start_run_quiet": "success",
        "quiet": "success",
    }, sorted(p.read_text() for p in batch_on_moto.glob("*.log"))
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = {
        r.data.tags["pipegen.step"]: (r.info.status, r.data.metrics)
        for r in client.search_runs([client.get_experiment_by_name("crashing").experiment_id])
    }
    assert runs == {
        # Logged, then os._exit: the job never ended its run; the task's on_failure_callback did.
        "crashes": ("FAILED", {"auc": 0.9}),
        # Succeeded without touching MLflow: on_success_callback.
        "quiet": ("FINISHED", {}),
    }
