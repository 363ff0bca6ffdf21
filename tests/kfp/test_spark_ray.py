"""Spark and Ray steps in kfp.local: spark-submit on local[2] (Java 17) and Ray jobs on the session's real Ray head.

The pipeline runs as KFP stores it (compiled to IR, loaded back) with the SubprocessRunner: each task is a
process running the shared runtime component, which submits the job and waits for it. Slow by nature (a Spark JVM
starts in ~13-20 s, the Ray head in ~15-30 s once per session): one run that promotes, one spark-submit that fails
and one Ray job that fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.cases import REPO
from tests.kfp.test_compile import RUNTIME_IMAGE, load
from tests.support_ray import RAY_GROUP

pytestmark = pytest.mark.xdist_group(RAY_GROUP)

SPECS = REPO / "tests" / "specs"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding the test specs' scripts at their relative paths, run from; MLflow's store in it."""
    work = tmp_path / "work"
    shutil.copytree(SPECS / "sparkray", work / "tests" / "specs" / "sparkray")
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    return work


@pytest.fixture
def ray_address(ray_head: str, ray_client_env: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's Ray head, as the specs' ${env.RAY_ADDRESS} reads it."""
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    return ray_head


def run_pipeline(data: dict[str, Any], work: Path) -> None:
    """Compile the spec for KFP, compile the module to IR with kfp, load it back and run it in kfp.local."""
    from kfp import compiler, components, local

    result = compile_checked(check_source(Source("sparkray.yaml", json.dumps(data))), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = work.parent / f"{data['name']}.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    ir = work.parent / f"{data['name']}.yaml"
    compiler.Compiler().compile(load(module).pipeline, package_path=str(ir))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(work.parent / "kfp-root"))
    components.load_component_from_file(str(ir))()


def test_spark_features_and_ray_training_promote_the_model(workdir: Path, ray_address: str) -> None:
    """Spark writes the features, a Ray job trains on them into the pipeline's MLflow run, the model is promoted."""
    from ray.job_submission import JobSubmissionClient

    run_pipeline(yaml.safe_load((SPECS / "sparkray.yaml").read_text()), workdir)
    # The Spark job ran in the task, on local[2], and wrote its output where the spec said.
    assert list((workdir / "build" / "features").glob("part-*.csv"))
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("pipegen-sparkray", "champion")
    run = client.get_run(version.run_id)
    assert run.data.metrics["rows"] == 200 and run.data.metrics["r2"] > 0.99
    # The Ray job got the step's env and the run (MLFLOW_RUN_ID...) through its runtime_env and logged into it.
    assert run.data.tags["trained_on"] == "trained on ray"
    assert run.data.tags["pipegen.target"] == "kfp"
    assert version.tags["pipegen.target"] == "kfp"
    # Its submission id comes from the run key and the step, as on every target: a retried task finds it again.
    run_key = run.data.tags["pipegen.run_key"]
    jobs = [
        j for j in JobSubmissionClient(ray_address).list_jobs() if (j.metadata or {}).get("pipegen.run_key") == run_key
    ]
    assert [(j.submission_id, j.metadata["pipegen.step"], str(j.status)) for j in jobs] == [
        (f"sparkray-train-{run_key}-1", "sparkray-train", "SUCCEEDED")
    ]


def failing_spec(step: str) -> dict[str, Any]:
    """tests/specs/sparkray-failing.yaml with one of its two steps, on the session's Ray head, compiled for KFP."""
    data = yaml.safe_load((SPECS / "sparkray-failing.yaml").read_text())
    data["backends"]["ray-here"]["address"] = "${env.RAY_ADDRESS}"  # `local` is a Ray only `pipegen run` starts
    data["steps"] = [s for s in data["steps"] if s["name"] == step]
    data["targets"] = {"kfp": {"base_image": RUNTIME_IMAGE}}
    return data


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (
            "features",
            "Spark application tests/specs/sparkray/failing_features.py failed (spark-submit exit code 1): "
            "ValueError: features: the input partition is empty",
        ),
        ("train", "RuntimeError: training diverged: loss is nan"),
    ],
)
def test_a_failing_job_fails_its_task_with_the_jobs_own_error(
    workdir: Path, step: str, said: str, capfd: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    if step == "train":
        request.getfixturevalue("ray_address")  # the Spark step needs no Ray head
    with pytest.raises(RuntimeError, match=r"finished with status .*FAILURE"):
        run_pipeline(failing_spec(step), workdir)
    out = capfd.readouterr().out
    assert said in out
    if step == "train":
        assert "Ray job sparkray-failing-train-" in out


def test_the_container_form_hands_spark_and_ray_steps_to_the_runtime(tmp_path: Path) -> None:
    """runtime_components: container: the spark and ray tasks run `python -m pipegen.runtime.kfp_executor spark|ray`
    on the runtime image; the ray task, run as the launcher would run it, reaches Ray's job client with its spec."""
    from pipegen.runtime.kfp_executor import ACTIONS
    from tests.kfp.test_compile import compile_ir, executor_of, step_tasks
    from tests.kfp.test_container_form import resolve
    from tests.support_tools import free_port

    data = yaml.safe_load((SPECS / "sparkray.yaml").read_text())
    data["targets"]["kfp"]["runtime_components"] = "container"
    result = compile_checked(check_source(Source("sparkray.yaml", json.dumps(data))), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "sparkray.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    ir = compile_ir(module, tmp_path / "sparkray.yaml")
    tasks = step_tasks(ir)
    for step, action in (("features", "spark"), ("train", "ray")):
        command = executor_of(ir, tasks[step])["container"]["command"]  # type: ignore[index]
        assert command[:4] == ["python", "-m", "pipegen.runtime.kfp_executor", action] and action in ACTIONS
    # No Ray here: the task must fail with the job client's own words about the address its spec named.
    values = {
        "pipegen_spec": tasks["train"]["inputs"]["parameters"]["pipegen_spec"]["runtimeValue"]["constant"],  # type: ignore[index]
        "rows": 200,
        "pipegen_mlflow_run_id": "0123456789abcdef",
        "pipegen_mlflow_experiment_id": "1",
    }
    command = resolve(ir, "train", tasks["train"], values, tmp_path, "job-1")
    command[0] = sys.executable  # the runtime image's python: this environment's, with pipegen installed
    address = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "RAY_ADDRESS": address, "MLFLOW_TRACKING_URI": "http://127.0.0.1:1", "HOME": str(tmp_path)}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cannot reach the Ray job server at {address}" in proc.stderr, proc.stderr
