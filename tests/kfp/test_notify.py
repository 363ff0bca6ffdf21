"""notify.on_failure / notify.on_success from KFP: an exit handler posts how the run ended (issue 16).

Compiled pipelines run with kfp.local (SubprocessRunner, offline) against a real MLflow store and a local HTTP
receiver; the message is the one `pipegen run` and the Airflow DAG send: {"pipeline", "event", "run"}, where
"run" is the run key every other task gets (the MLflow run's pipegen.run_key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.differential.receiver import Receiver
from tests.kfp.test_compile import RUNTIME_IMAGE, compile_ir
from tests.support_tools import free_port

# A training job: one metric and a model (an MLmodel file is enough to register) into the pipeline's MLflow run.
TRAIN = """\
import pathlib, sys, tempfile
import mlflow
with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
    mlflow.log_metric("auc", float(sys.argv[1]))
    pathlib.Path(tmp, "MLmodel").write_text(f"artifact_path: model\\nflavors: {{}}\\nrun_id: {run.info.run_id}\\n")
    mlflow.log_artifacts(tmp, "model")
"""


def judged_spec(on_fail: str) -> str:
    """Train, judge (auc >= 0.9, on_fail as given), promote; both notifications to the receiver."""
    return f"""\
pipegen: 1
name: notified
params: {{auc: 0.95}}
defaults: {{retries: 0}}
mlflow: {{experiment: notified}}
backends:
  here: {{type: local}}
steps:
  - name: train
    train: {{backend: here, command: [python, train.py, "${{params.auc}}"], metrics: [auc]}}
  - name: quality
    evaluate: {{run_of: train, thresholds: ["auc >= 0.9"], on_fail: {on_fail}}}
  - name: promote
    promote: {{model: notified, run_of: train, alias: champion}}
notify:
  on_failure: [{{webhook: "${{env.HOOKS}}/failed"}}]
  on_success: [{{webhook: "${{env.HOOKS}}/succeeded"}}]
targets:
  kfp: {{base_image: {RUNTIME_IMAGE}}}
"""


def module_text(name: str, text: str) -> str:
    """The generated KFP module for a spec, with no warning about notifications left."""
    result = compile_checked(check_source(Source(name, text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    assert not [d.format() for d in result.diagnostics if "notify" in d.message]
    return result.outputs[0].text


def loaded(module: str, workdir: Path) -> Any:
    """The pipeline as KFP stores it: the module compiled to IR by kfp, loaded back."""
    from kfp import components

    (workdir / "pipeline.py").write_text(module, encoding="utf-8")
    compile_ir(workdir / "pipeline.py", workdir / "pipeline.yaml")
    return components.load_component_from_file(str(workdir / "pipeline.yaml"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.stop()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Path:
    """A scratch directory the components run in, with an sqlite MLflow store and the receiver's URL in HOOKS."""
    from kfp import local

    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HOOKS", receiver.url("kfp"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"))
    return tmp_path


def run_key() -> str:
    """The pipegen.run_key of the pipeline's one MLflow run."""
    import mlflow

    runs = mlflow.search_runs(experiment_names=["notified"], output_format="list")
    assert len(runs) == 1
    return str(runs[0].data.tags["pipegen.run_key"])


@pytest.mark.parametrize(
    ("on_fail", "auc", "outcome"),
    [("fail", 0.7, "failed"), ("fail", 0.95, "succeeded"), ("skip", 0.7, "succeeded")],
    ids=["rejected-fails", "passes", "rejected-skips"],
)
def test_the_run_posts_one_message_for_how_it_ended(
    workdir: Path, receiver: Receiver, on_fail: str, auc: float, outcome: str
) -> None:
    import mlflow

    pipeline = loaded(module_text("notified.yaml", judged_spec(on_fail)), workdir)
    if outcome == "failed":
        with pytest.raises(RuntimeError, match="failed"):
            pipeline(auc=auc)
    else:
        pipeline(auc=auc)
    message = {"event": outcome, "pipeline": "notified", "run": run_key()}
    assert receiver.take("kfp") == [{"path": f"/{outcome}", "body": message}]
    promoted = [str(v.version) for v in mlflow.MlflowClient().search_model_versions("name = 'notified'")]
    assert promoted == (["1"] if auc > 0.9 else [])


SECRET_SPEC = """\
pipegen: 1
name: hooked
defaults: {retries: 0}
backends:
  here: {type: local}
steps:
  - name: work
    task: {backend: here, command: [python, -c, "print('working')"]}
notify:
  on_success:
    - {webhook: "http://127.0.0.1:DEAD/down"}
    - {webhook: "${env.HOOKS}/ok?token=${secret.hook_token}&text=$${literal}"}
targets:
  kfp: {base_image: %s}
"""


def test_webhooks_render_in_the_task_and_a_failed_one_does_not_fail_the_run(
    workdir: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    token = "tok-" + "7" * 12
    dead = free_port()
    module = module_text("hooked.yaml", SECRET_SPEC.replace("DEAD", str(dead)) % RUNTIME_IMAGE)
    # The secret is a Kubernetes secret mounted where the runtime reads it, never a value in the module.
    assert token not in module
    assert (
        "kubernetes.use_secret_as_env(pipegen_notify_task, secret_name='hook-token', "
        "secret_key_to_env={'hook_token': 'PIPEGEN_SECRET_HOOK_TOKEN'})"
    ) in module
    monkeypatch.setenv("PIPEGEN_SECRET_HOOK_TOKEN", token)  # what the mounted secret gives the pod
    pipeline = loaded(module, workdir)
    platform = list(yaml.safe_load_all((workdir / "pipeline.yaml").read_text()))[1]["platforms"]["kubernetes"]
    (mounted,) = platform["deploymentSpec"]["executors"]["exec-pipegen-notify"]["secretAsEnv"]
    assert (mounted["secretName"], mounted["keyToEnv"]) == (
        "hook-token",
        [{"envVar": "PIPEGEN_SECRET_HOOK_TOKEN", "secretKey": "hook_token"}],
    )
    pipeline()  # the first webhook is down: said in the exit task's log, and the run still succeeds
    (hook,) = receiver.take("kfp")
    # `$${literal}` is the literal text ${literal} (requests percent-encodes its braces in the URL).
    assert unquote(hook["path"]) == f"/ok?token={token}&text=${{literal}}"
    assert hook["body"]["event"] == "succeeded"
    assert (
        f"pipeline notification failed: webhook notification failed after 4 retries: http://127.0.0.1:{dead}/down"
        in capfd.readouterr().out
    )


def test_the_exit_task_takes_nothing_from_the_steps(tmp_path: Path) -> None:
    """KFP runs an exit task that depends on no task; the run key is the job id the other tasks also get."""
    module = module_text("notified.yaml", judged_spec("skip"))
    (tmp_path / "notified.py").write_text(module, encoding="utf-8")
    ir = compile_ir(tmp_path / "notified.py", tmp_path / "notified.yaml")
    root = ir["root"]["dag"]["tasks"]  # type: ignore[index]
    assert sorted(root) == ["exit-handler-1", "pipegen-notify"]
    exit_task = root["pipegen-notify"]
    assert exit_task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert exit_task["dependentTasks"] == ["exit-handler-1"]
    inputs = exit_task["inputs"]["parameters"]
    assert inputs["pipegen_status"] == {"taskFinalStatus": {"producerTask": "exit-handler-1"}}
    assert inputs["pipegen_run_key"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    inner = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]  # type: ignore[index]
    assert "condition-2" in inner
    assert {"train run", "train", "quality"} <= {task["taskInfo"]["name"] for task in inner.values()}
    assert json.dumps(ir).count("{{$.pipeline_job_uuid}}") >= 2


def test_a_pipeline_without_notifications_has_no_exit_handler() -> None:
    text = judged_spec("skip").split("notify:")[0] + f"targets:\n  kfp: {{base_image: {RUNTIME_IMAGE}}}\n"
    module = module_text("plain.yaml", text)
    assert "ExitHandler" not in module and "pipegen_notify" not in module


def test_a_notification_needs_the_runtime_image_even_without_runtime_steps() -> None:
    """The exit task runs pipegen's runtime: with only container steps, base_image is still required."""
    text = (
        "pipegen: 1\nname: pods\nbackends:\n  pods: {type: kubernetes, image: 'registry.example.com/x:1'}\n"
        "steps:\n  - name: job\n    task: {backend: pods, command: [run]}\n"
        "notify:\n  on_failure: [{webhook: 'https://example.com/f'}]\n"
    )
    result = compile_checked(check_source(Source("pods.yaml", text)), ["kfp"])
    assert [d.format() for d in result.diagnostics if d.severity.name == "ERROR"] == [
        "pods.yaml:9:3: error[PG604]: target 'kfp' needs targets.kfp.base_image: the notify exit task runs "
        "pipegen's runtime in a KFP component, and no public image has it; hint: build an image with "
        "pipegen-ml[runtime] installed and set targets: {kfp: {base_image: "
        "registry.example.com/ml/pipegen-runtime:0.1}} (your image's name)"
    ]
