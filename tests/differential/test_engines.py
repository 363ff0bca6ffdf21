"""Each engine module runs one tiny spec on its real engine and reports it in RESULT.json.

The spec trains (a job logging `score` into the run the orchestrator started, and the run date it was
given), judges the run with a threshold the run-time param makes fail, and would promote: so the mapping each module does from its
engine's own view (Airflow's short-circuit, KFP's dsl.If, Step Functions' Choice) to the harness's
outcomes is checked on the case where the engines differ most: train passed, the evaluation rejected with
the runtime's reason, promotion skipped, and the run succeeded. The engines run as the harness runs them:
`<venv>/bin/python -m tests.differential.engines.<engine> REQUEST.json`, against a real `mlflow server`
(and, for Step Functions, the harness's moto server whose Batch jobs really run).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cases import REPO
from tests.differential.engines import VENVS, Request, Result
from tests.differential.harness import Services
from tests.support_mlflow import MlflowServer

# One xdist worker runs them all: they share one MLflow server, one migrated Airflow DB and one moto server.
pytestmark = pytest.mark.xdist_group("differential-engines")

# Logs the score it is given into the run the orchestrator started (MLFLOW_RUN_ID), and tags the run date it got.
JOB = (
    "import os, sys, mlflow; c = mlflow.MlflowClient(); run = os.environ['MLFLOW_RUN_ID']; "
    "c.log_metric(run, 'score', float(sys.argv[1])); c.set_tag(run, 'job.run_date', sys.argv[2]); "
    "print('logged score', sys.argv[1])"
)
# 20:00Z on 15 January is 05:00 on the 16th in Tokyo (UTC+9, no DST): the scheduled run's ${run.date}.
SCHEDULED_TIME = "2026-01-15T20:00:00Z"
RUN_DATE = "2026-01-16"
BACKENDS = {
    "local": "here: {type: local}",
    "aws_batch": "here: {type: aws_batch, job_queue: engine-queue, job_definition: 'engine-job:1'}",
}


def spec_text(name: str, backend: str) -> str:
    """A three-step spec scheduled in Tokyo: train (score from a param), evaluate (on_fail: skip), promote."""
    return f"""\
pipegen: 1
name: {name}
schedule: {{cron: "0 5 * * *", timezone: Asia/Tokyo}}
params: {{score: 0.9}}
defaults: {{retries: 0, timeout: 5m}}
mlflow: {{experiment: {name}}}
backends:
  {BACKENDS[backend]}
steps:
  - name: train
    train:
      backend: here
      command: [python, -c, {json.dumps(JOB)}, "${{params.score}}", "${{run.date}}"]
      metrics: [score]
  - name: quality
    evaluate: {{run_of: train, thresholds: ["score >= 0.5"], on_fail: skip}}
  - name: promote
    promote: {{model: {name}, run_of: train, alias: champion}}
targets:
  kfp: {{base_image: registry.example.com/ml/pipegen-runtime:0.1}}
"""


@pytest.fixture
def mlflow_server(services: Services) -> MlflowServer:
    """The session's tracking server (tests/differential/conftest.py); each engine's spec has its own experiment
    and model."""
    return services.mlflow["pipegen"]


def compiled(tmp_path: Path, name: str, backend: str, target: str) -> tuple[Path, Path]:
    """The spec written and compiled for one target with `pipegen compile`; returns (spec, out dir)."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(spec_text(name, backend))
    out = tmp_path / "compiled"
    pipegen = REPO / VENVS["pipegen"] / "bin" / "pipegen"
    proc = subprocess.run([str(pipegen), "compile", str(spec), "-t", target, "-o", str(out)], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return spec, out


def run_engine(request: Request) -> tuple[Result, float]:
    """Run the engine module as the harness does; returns its RESULT.json and how long the module took."""
    path = Path(request.workdir) / "REQUEST.json"
    Path(request.workdir).mkdir(parents=True, exist_ok=True)
    request.write(path)
    python = REPO / VENVS[request.engine] / "bin" / "python"
    started = time.monotonic()
    proc = subprocess.run(
        [str(python), "-m", f"tests.differential.engines.{request.engine}", str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=600,
    )
    took = time.monotonic() - started
    log = Path(request.workdir) / "engine.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no engine.log)"
    assert proc.returncode == 0, f"{proc.stderr.decode()}\n{tail}"
    return Result.read(request.result_path), took


def assert_rejected_and_skipped(result: Result, engine: str, tracking_uri: str) -> None:
    """train passed, quality rejected with the runtime's reason, promote skipped, the run succeeded.

    And the job ran for the scheduled date: the engine got the scheduled time the way its target reads it.
    """
    log = Path(result.log)
    assert log.exists() and log.stat().st_size > 0, "the engine's output went nowhere"
    outcomes = {name: (step.outcome, step.reason) for name, step in result.steps.items()}
    assert result.engine == engine
    assert outcomes == {
        "train": ("passed", None),
        "quality": ("rejected", "score >= 0.5: failed (score = 0.2)"),
        "promote": ("skipped", None),
    }, log.read_text(errors="replace")[-3000:]
    assert result.status == "succeeded"
    assert result.wall_seconds > 0
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(f"engine-{engine}")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["pipegen.target"] == engine
    assert run.data.tags["job.run_date"] == RUN_DATE


def local_request(tmp_path: Path, engine: str, target: str, server: MlflowServer, **extra: object) -> Request:
    spec, out = compiled(tmp_path, f"engine-{engine}", "local", target)
    env = {"PYTHONPATH": str(REPO), **dict(extra.pop("env", {}))}  # type: ignore[call-overload]
    return Request(
        engine=engine,
        spec=str(spec),
        compiled=str(out),
        workdir=str(tmp_path / "work" / engine),
        tracking_uri=server.uri,
        params={"score": "0.2"},
        scheduled_time=SCHEDULED_TIME,
        env=env,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def airflow_db(services: Services) -> Path:
    """The session's migrated Airflow metadata DB, which the engine copies."""
    assert services.airflow_db is not None
    return services.airflow_db


def test_airflow_reports_a_short_circuit_as_rejected_and_skipped(
    tmp_path: Path, mlflow_server: MlflowServer, airflow_db: Path
) -> None:
    request = local_request(tmp_path, "airflow", "airflow", mlflow_server, airflow_db=str(airflow_db))
    result, _ = run_engine(request)
    assert_rejected_and_skipped(result, "airflow", mlflow_server.uri)


def test_kfp_reports_a_false_dsl_if_as_rejected_and_skipped(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    request = local_request(tmp_path, "kfp", "kfp", mlflow_server)
    result, _ = run_engine(request)
    assert_rejected_and_skipped(result, "kfp", mlflow_server.uri)


@pytest.fixture
def moto(services: Services) -> str:
    """The session's moto server (tests/differential/aws.py): Batch jobs run, Lambda reaches pipegen's handler."""
    return services.endpoint


def test_stepfunctions_reports_a_declined_choice_as_rejected_and_skipped(
    tmp_path: Path, mlflow_server: MlflowServer, moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = {
        "AWS_ENDPOINT_URL": moto,
        "MOTO_PORT": moto.rsplit(":", 1)[1],
        "AWS_ACCESS_KEY_ID": "diffstepfunctions",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    from tests.support_aws import batch_queue

    batch_queue("engine-queue", "engine-job:1")
    spec, out = compiled(tmp_path, "engine-stepfunctions", "aws_batch", "stepfunctions")
    request = Request(
        engine="stepfunctions",
        spec=str(spec),
        compiled=str(out),
        workdir=str(tmp_path / "work" / "stepfunctions"),
        tracking_uri=mlflow_server.uri,
        params={"score": "0.2"},
        scheduled_time=SCHEDULED_TIME,
        env={"PYTHONPATH": str(REPO), **aws},
    )
    result, _ = run_engine(request)
    assert_rejected_and_skipped(result, "stepfunctions", mlflow_server.uri)


def test_a_hung_engine_fails_its_result_and_leaves_no_job_behind(tmp_path: Path) -> None:
    """The watchdog: past PIPEGEN_DIFF_ENGINE_TIMEOUT the module writes a failed RESULT.json, exits 0, kills its jobs."""
    spec = tmp_path / "hung.yaml"
    spec.write_text(spec_text("hung", "local"))
    request = Request(
        engine="kfp",
        spec=str(spec),
        compiled=str(tmp_path / "compiled"),
        workdir=str(tmp_path / "work"),
        tracking_uri="http://127.0.0.1:9",
        env={"PIPEGEN_DIFF_ENGINE_TIMEOUT": "3"},
    )
    Path(request.workdir).mkdir(parents=True)
    request.write(tmp_path / "REQUEST.json")
    marker = tmp_path / "still-running"
    # An "engine" that starts a job in its own session (as the runtime starts jobs) and never returns.
    job = f"import time; time.sleep(8); open({str(marker)!r}, 'w')"
    hang = (
        "import subprocess, sys, time\n"
        "from tests.differential.engines.supervise import engine_main\n"
        "def run(request, progress):\n"
        f"    subprocess.Popen([sys.executable, '-c', {job!r}], start_new_session=True)\n"
        "    time.sleep(3600)\n"
        "sys.exit(engine_main(run))\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", hang, str(tmp_path / "REQUEST.json")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert time.monotonic() - started < 30
    assert b"timed out after 3s" in proc.stderr
    result = Result.read(request.result_path)
    assert result.status == "failed"
    assert {name: step.outcome for name, step in result.steps.items()} == dict.fromkeys(
        ["train", "quality", "promote"], "not_run"
    )
    assert all(step.reason == "engine timed out after 3s" for step in result.steps.values())
    time.sleep(9)
    assert not marker.exists(), "the engine's job outlived the timed-out engine"


def test_an_engine_that_ended_keeps_its_verdict_when_reading_mlflow_hangs(tmp_path: Path) -> None:
    """Past the deadline after the engine ended (the module was still reading MLflow): the engine's verdict stands."""
    spec = tmp_path / "ended.yaml"
    spec.write_text(spec_text("ended", "local"))
    request = Request(
        engine="kfp",
        spec=str(spec),
        compiled=str(tmp_path / "compiled"),
        workdir=str(tmp_path / "work"),
        tracking_uri="http://127.0.0.1:9",
        env={"PIPEGEN_DIFF_ENGINE_TIMEOUT": "3"},
    )
    Path(request.workdir).mkdir(parents=True)
    request.write(tmp_path / "REQUEST.json")
    ended = (
        "import sys, time\n"
        "from tests.differential.engines import Result, StepResult\n"
        "from tests.differential.engines.supervise import engine_main\n"
        "def run(request, progress):\n"
        "    steps = {'train': StepResult('passed'), 'quality': StepResult('failed'), 'promote': StepResult('not_run')}\n"
        "    progress.engine_ended(Result(request.engine, 'failed', steps, 1.5, 'engine.log'))\n"
        "    time.sleep(3600)\n"
        "sys.exit(engine_main(run))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", ended, str(tmp_path / "REQUEST.json")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = Result.read(request.result_path)
    assert (result.status, result.wall_seconds) == ("failed", 1.5)
    assert {name: step.outcome for name, step in result.steps.items()} == {
        "train": "passed",
        "quality": "failed",
        "promote": "not_run",
    }


def test_the_mlflow_servers_start_no_job_runner(services: Services) -> None:
    """MLflow 3's server starts ~7 huey consumers (each importing mlflow, then polling) unless told not to:
    for jobs pipegen never submits, they took half of the suite's 2 cores (tests/support_mlflow.py)."""
    from tests.differential.engines.supervise import descendants

    for engine, server in services.mlflow.items():
        commands = []
        for pid in descendants(server.process.pid):
            with contextlib.suppress(OSError):
                commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        assert commands, f"the {engine} server has no worker process: is it running?"
        assert not [c for c in commands if "huey" in c or "_job_runner" in c], commands
