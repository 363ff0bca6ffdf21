"""A kubernetes training step on KFP ends the MLflow run its container left RUNNING (targets.kfp.close_run).

kfp's own compiler proves the wiring (the closer runs after the step's task whatever its outcome, and reads that
outcome as a final status). kfp.local's SubprocessRunner runs lightweight components only, not the step's container:
there the container is stood in for by a lightweight component running the same command with the same MLflow run,
and everything else (start_run, the closer, their wiring) runs as compiled, against a real sqlite MLflow store. The
container form's closer runs as the KFP backend's launcher would run it: `python -m pipegen.runtime.kfp_executor`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.runtime import kfp_executor
from tests.cases import GOLDEN, REPO
from tests.kfp.test_compile import RUNTIME_IMAGE, all_tasks, compile_ir
from tests.kfp.test_container_form import container_module

# The training job: logs a metric into the pipeline's run, then dies as an OOM kill would (no end_run, no atexit);
# or, told "quiet", succeeds without touching MLflow.
TRAIN = """\
import os, sys
if sys.argv[1] == "quiet":
    sys.exit(0)
import mlflow
mlflow.start_run()
mlflow.log_metric("auc", 0.5)
os._exit(137)
"""

SPEC = f"""\
pipegen: 1
name: crashing
params: {{mode: crash}}
defaults: {{retries: 0}}
mlflow: {{experiment: crashing}}
backends:
  pods: {{type: kubernetes, image: "registry.example.com/train:1"}}
steps:
  - name: train
    train: {{backend: pods, command: [python, train.py, "${{params.mode}}"], metrics: [auc]}}
targets:
  kfp: {{base_image: {RUNTIME_IMAGE}}}
"""


def closers(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: task for name, task in all_tasks(ir).items() if task["taskInfo"]["name"].endswith(" close")}


def assert_wired(ir: dict[str, Any]) -> None:
    [closer] = closers(ir).values()
    # After the training task only, whatever its outcome, told that outcome: kfp refuses a second upstream task.
    assert closer["dependentTasks"] == ["train"] and closer["taskInfo"]["name"] == "train close"
    assert closer["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert closer["inputs"]["parameters"]["pipegen_status"] == {"taskFinalStatus": {"producerTask": "train"}}
    assert "taskOutputParameter" not in json.dumps(closer["inputs"])


def test_the_closer_runs_after_the_training_task_whatever_its_outcome(tmp_path: Path) -> None:
    assert_wired(compile_ir(GOLDEN / "kfp" / "feed-ranking.py", tmp_path / "feed-ranking.yaml"))
    module = container_module(tmp_path, (REPO / "specs" / "feed-ranking.yaml").read_text(), "feed-ranking")
    assert_wired(compile_ir(module, tmp_path / "container.yaml"))


def test_only_a_training_container_gets_a_closer(tmp_path: Path) -> None:
    """A kubernetes task step has no run; runtime steps end theirs in the runtime (step.ending_run)."""
    text = SPEC.replace("    train: {backend: pods,", "    task: {backend: pods,").replace(", metrics: [auc]}", "}")
    result = compile_checked(check_source(Source("untracked.yaml", text)), ["kfp"])
    assert result.ok and "pipegen_close_run" not in result.outputs[0].text
    for golden in ("pricing", "sparkray"):
        assert "pipegen_close_run" not in (GOLDEN / "kfp" / f"{golden}.py").read_text()


def stood_in(module: str) -> str:
    """The module with its training container replaced by a lightweight component running the same command."""
    start = module.index("@dsl.container_component\ndef train(")
    end = module.index("\n\n\n", start)
    inputs = re.findall(r"^    (\w+): str,$", module[start:end], flags=re.M)
    stand_in = (
        "@dsl.component(base_image=BASE_IMAGE)\n"
        f"def train({', '.join(f'{n}: str' for n in inputs)}) -> None:\n"
        "    import os, subprocess, sys\n"
        "    env = {**os.environ, 'MLFLOW_RUN_ID': pipegen_mlflow_run_id,"
        " 'MLFLOW_EXPERIMENT_ID': pipegen_mlflow_experiment_id}\n"
        "    command = [arg_0_0, arg_1_0, arg_2_0]\n"
        "    subprocess.run([sys.executable, *command[1:]], env=env, check=True)\n"
    )
    return module[:start] + stand_in + module[end:]


@pytest.mark.parametrize(("mode", "status"), [("crash", "FAILED"), ("quiet", "FINISHED")])
def test_kfp_local_ends_the_run_the_job_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, status: str
) -> None:
    import mlflow
    from kfp import components, local

    result = compile_checked(check_source(Source("crashing.yaml", SPEC)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(stood_in(result.outputs[0].text), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"))
    ir = compile_ir(tmp_path / "pipeline.py", tmp_path / "pipeline.yaml")
    assert_wired(ir)
    pipeline = components.load_component_from_file(str(tmp_path / "pipeline.yaml"))
    if mode == "crash":
        with pytest.raises(RuntimeError, match="failed"):
            pipeline(mode=mode)
    else:
        pipeline(mode=mode)
    [run] = mlflow.search_runs(experiment_names=["crashing"], output_format="list")
    assert run.info.status == status
    assert run.data.metrics == ({"auc": 0.5} if mode == "crash" else {})


def close(state: str, job: str = "job-1") -> None:
    """The container form's closer, as the KFP backend's launcher runs it."""
    spec = {"experiment": "closing", "pipeline": "closing", "step": "train", "tracking_uri": ""}
    executor_input = {
        "inputs": {"parameterValues": {"pipegen_spec": json.dumps(spec), "pipegen_status": {"state": state}}}
    }
    args = ["close_run", json.dumps(executor_input), job, "1970-01-01T00:00:00Z", "2026-03-08T23:59:30Z"]
    assert kfp_executor.main(args) == 0


@pytest.mark.parametrize(
    ("state", "status"),
    [("FAILED", "FAILED"), ("SUCCEEDED", "FINISHED"), ("COMPLETE", "FINISHED"), ("CANCELLED", "KILLED")],
)
def test_the_container_forms_closer_ends_the_run_as_the_task_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state: str, status: str
) -> None:
    from mlflow import MlflowClient

    from pipegen.runtime.start_run import start_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    started = start_run(
        pipeline="closing", step="train", spec_sha256="0", target="kfp", run_key="job-1", experiment="closing"
    )
    client = MlflowClient()
    other = client.create_run(started["experiment_id"]).info.run_id  # another pipeline run's: left alone
    close(state)
    assert client.get_run(started["run_id"]).info.status == status
    assert client.get_run(other).info.status == "RUNNING"
    close(state)  # a retried closer (the same task state) changes nothing
    assert client.get_run(started["run_id"]).info.status == status
    close("FAILED", job="job-2")  # a run whose steps never reached start_run: nothing to end
    assert "made no MLflow run" in capsys.readouterr().out


def test_a_run_the_job_ended_keeps_its_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    from pipegen.runtime.start_run import start_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    started = start_run(
        pipeline="closing", step="train", spec_sha256="0", target="kfp", run_key="job-1", experiment="closing"
    )
    MlflowClient().set_terminated(started["run_id"], "KILLED")
    close("FAILED")
    assert MlflowClient().get_run(started["run_id"]).info.status == "KILLED"
