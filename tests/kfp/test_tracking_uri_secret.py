"""The tracking URI never leaves a KFP task: no output parameter or input carries it (issue 15).

start_run's output parameter `tracking_uri` (stored in ML Metadata, shown in the UI) once held the rendered
URI, ${secret.X} credentials included, and training components took it as an input. Now every task renders the
spec's URI itself; a container gets it as literal text, from the Kubernetes secret, or from the mounted
mlflow_secret / mlflow_config_map, and anything else is a located diagnostic.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.kfp.test_compile import RUNTIME_IMAGE, compile_ir, shown_executors

BACKENDS = {
    "pods": "{type: kubernetes, image: 'registry.example.com/train:1'}",
    "batch": "{type: aws_batch, job_queue: q, job_definition: 'd:1'}",
    "sm": "{type: sagemaker, image: 'registry.example.com/train:1', role_arn: 'arn:aws:iam::1:role/r', "
    "instance_type: ml.m5.large, output_path: 's3://b/out'}",
    "laptop": "{type: local}",
}


def spec(uri: str, backend: str, options: str = "", command: str = "[train]") -> str:
    return (
        "pipegen: 1\nname: uri\ndefaults: {retries: 0}\n"
        f"mlflow: {{tracking_uri: {json.dumps(uri)}, experiment: uri}}\n"
        f"backends:\n  {backend}: {BACKENDS[backend]}\n"
        "steps:\n"
        f"  - name: train\n    train: {{backend: {backend}, command: {command}, metrics: [auc]}}\n"
        "  - name: judge\n    evaluate: {run_of: train, thresholds: ['auc > 0.5'], on_fail: fail}\n"
        f"targets: {{kfp: {{base_image: '{RUNTIME_IMAGE}'{options}}}}}\n"
    )


def compiled(text: str) -> tuple[list[str], str]:
    result = compile_checked(check_source(Source("uri.yaml", text)), ["kfp"])
    errors = [d.format() for d in result.diagnostics if d.severity.name == "ERROR"]
    return errors, result.outputs[0].text if result.ok else ""


SECRET_IN_JOB = (
    "uri.yaml:4:24: error[PG602]: target 'kfp' can pass a secret in mlflow.tracking_uri to training step 'train' on "
    "{backend} only as a Kubernetes secret: the whole URI must be ${{secret.NAME}} on a kubernetes pod; hint: keep "
    "the credentials out of the URI (e.g. MLFLOW_TRACKING_TOKEN from a secret), or make the whole tracking_uri "
    "${{secret.NAME}} and train on kubernetes"
)


@pytest.mark.parametrize(
    ("uri", "backend", "wanted"),
    [
        ("https://u:${secret.mlflow_pw}@mlflow.example.com", "batch", SECRET_IN_JOB.format(backend="aws_batch")),
        ("${secret.mlflow_uri}", "sm", SECRET_IN_JOB.format(backend="sagemaker")),
        ("https://u:${secret.mlflow_pw}@mlflow.example.com", "pods", SECRET_IN_JOB.format(backend="kubernetes")),
        (
            "http://${env.MLFLOW_HOST}:5000",
            "pods",
            "uri.yaml:4:24: error[PG602]: target 'kfp' cannot give container training step 'train' the tracking URI: "
            "its pod does not see the environment ${env.MLFLOW_HOST} would come from; hint: make the whole "
            "tracking_uri ${env.MLFLOW_HOST} and list MLFLOW_HOST in the keys of targets.kfp.mlflow_secret or "
            "mlflow_config_map (it is mounted as MLFLOW_TRACKING_URI), or write the URI literally, or as exactly "
            "${secret.NAME}",
        ),
    ],
    ids=["batch-secret-inside", "sagemaker-whole-secret", "pod-secret-inside", "pod-env-inside"],
)
def test_a_uri_a_training_job_cannot_take_is_a_located_diagnostic(uri: str, backend: str, wanted: str) -> None:
    errors, _ = compiled(spec(uri, backend))
    assert errors == [wanted]


def test_an_env_uri_a_pod_cannot_see_is_a_diagnostic_unless_mounted(tmp_path: Path) -> None:
    errors, _ = compiled(spec("${env.MLFLOW_URL}", "pods"))
    assert errors == [
        "uri.yaml:4:24: error[PG602]: target 'kfp' cannot give container training step 'train' the tracking URI: "
        "its pod does not see the environment ${env.MLFLOW_URL} would come from; hint: list MLFLOW_URL in the keys "
        "of targets.kfp.mlflow_secret or mlflow_config_map (it is mounted as MLFLOW_TRACKING_URI), or write the URI "
        "literally, or as exactly ${secret.NAME}"
    ]
    options = ", mlflow_config_map: {name: mlflow, keys: [MLFLOW_URL]}"
    errors, module = compiled(spec("${env.MLFLOW_URL}", "pods", options))
    assert errors == []
    executors = platform_executors(module, tmp_path)
    # The config map's key becomes the container's MLFLOW_TRACKING_URI (and MLFLOW_URL, for the runtime tasks).
    mounted = {
        (c["configMapName"], k["configMapKey"], k["envVar"])
        for c in executors["exec-train"]["configMapAsEnv"]
        for k in c["keyToEnv"]
    }
    assert mounted == {("mlflow", "MLFLOW_URL", "MLFLOW_URL"), ("mlflow", "MLFLOW_URL", "MLFLOW_TRACKING_URI")}


def platform_executors(module: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "uri.py"
    path.write_text(module, encoding="utf-8")
    compile_ir(path, tmp_path / "uri.yaml")
    documents = list(yaml.safe_load_all((tmp_path / "uri.yaml").read_text()))
    executors: dict[str, Any] = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return executors


def test_a_whole_secret_uri_reaches_the_pod_from_the_kubernetes_secret(tmp_path: Path) -> None:
    errors, module = compiled(spec("${secret.mlflow_uri}", "pods"))
    assert errors == []
    path = tmp_path / "uri.py"
    path.write_text(module, encoding="utf-8")
    ir = compile_ir(path, tmp_path / "uri.yaml")
    components = ir["components"]
    # No output parameter nor input holds a tracking URI.
    assert set(components["comp-pipegen-start-run"]["outputDefinitions"]["parameters"]) == {  # type: ignore[index]
        "run_id",
        "experiment_id",
    }
    for component in components.values():  # type: ignore[attr-defined]
        assert "tracking_uri" not in json.dumps(component.get("inputDefinitions", {}))
    executors = platform_executors(module, tmp_path)
    mounts = {
        name: {(s["secretName"], k["secretKey"], k["envVar"]) for s in e.get("secretAsEnv", []) for k in s["keyToEnv"]}
        for name, e in executors.items()
    }
    assert mounts["exec-train"] == {("mlflow-uri", "mlflow_uri", "MLFLOW_TRACKING_URI")}
    # The runtime tasks that talk to MLflow render the URI themselves, from PIPEGEN_SECRET_<NAME>.
    shown = {name: label for label, name in shown_executors(ir).items()}
    for task in ("train run", "judge"):
        assert mounts[shown[task]] == {("mlflow-uri", "mlflow_uri", "PIPEGEN_SECRET_MLFLOW_URI")}


def test_a_secret_uri_run_with_kfp_local_is_in_no_task_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from kfp import compiler, components, local

    distinctive = f"store-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PIPEGEN_SECRET_MLFLOW_STORE", f"{tmp_path}/{distinctive}.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    train = "import mlflow; mlflow.start_run(); mlflow.log_metric('auc', 0.9); mlflow.end_run()"
    command = json.dumps([sys.executable, "-c", train])
    errors, module = compiled(spec("sqlite:///${secret.mlflow_store}", "laptop", command=command))
    assert errors == []
    path = tmp_path / "uri.py"
    path.write_text(module, encoding="utf-8")
    from tests.kfp.test_compile import load

    root = tmp_path / "kfp-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    compiler.Compiler().compile(load(path).pipeline, package_path=str(tmp_path / "uri.yaml"))
    components.load_component_from_file(str(tmp_path / "uri.yaml"))()
    assert (tmp_path / f"{distinctive}.db").exists()  # the runs went where the secret said

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/{distinctive}.db")
    (run,) = client.search_runs([client.get_experiment_by_name("uri").experiment_id])
    assert run.data.metrics == {"auc": 0.9} and run.data.tags["pipegen.evaluation"] == "passed"
    # kfp.local writes each task's outputs under the pipeline root and prints them.
    written = [p for p in root.rglob("*") if p.is_file() and distinctive in p.read_text(errors="replace")]
    assert written == []
    out = capfd.readouterr()
    assert distinctive not in out.out + out.err
