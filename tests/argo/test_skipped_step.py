"""A step an `on_fail: skip` evaluation skips runs none of its tasks on Argo, its start_run included: no MLflow run
is left RUNNING for a training that never ran (as on the other engines, which skip the whole step)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.argo.executor import Run, run_workflow
from tests.argo.strict import documents, validate_document
from tests.conftest import CliResult
from tests.support_mlflow import MlflowServer

Cli = Callable[..., CliResult]

LOG_M = "import mlflow, os; mlflow.MlflowClient().log_metric(os.environ['MLFLOW_RUN_ID'], 'm', 0.1)"


def _spec(tmp_path: Path, experiment: str) -> str:
    spec = {
        "pipegen": 1,
        "name": "skipping",
        "mlflow": {"tracking_uri": "${env.MLFLOW_TRACKING_URI}", "experiment": experiment},
        "backends": {"here": {"type": "local"}},
        "steps": [
            {"name": "first", "train": {"backend": "here", "command": ["python", "-c", LOG_M], "metrics": ["m"]}},
            {"name": "judge", "evaluate": {"run_of": "first", "thresholds": ["m > 0.5"], "on_fail": "skip"}},
            {"name": "second", "train": {"backend": "here", "command": ["python", "-c", LOG_M], "metrics": ["m"]}},
        ],
        "targets": {
            "argo": {
                "runtime_image": "registry.example.com/ml/pipegen-runtime:0.1",
                "mlflow_config_map": {"name": "mlflow", "keys": ["MLFLOW_TRACKING_URI"]},
            }
        },
    }
    path = tmp_path / "skipping.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


def test_a_skipped_training_step_starts_no_run(cli: Cli, tmp_path: Path, mlflow_server: MlflowServer) -> None:
    import mlflow

    experiment = f"argo-skip-{uuid.uuid4().hex[:8]}"
    result = cli("compile", _spec(tmp_path, experiment), "-t", "argo", "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    [template, *_] = documents((tmp_path / "out" / "argo" / "skipping.yaml").read_text(encoding="utf-8"))
    validate_document(template)
    tasks = {t["name"]: t for t in template["spec"]["templates"][0]["dag"]["tasks"]}
    assert tasks["pipegen-run-second"]["when"] == tasks["second"]["when"]

    run = Run({}, config_maps={"mlflow": {"MLFLOW_TRACKING_URI": mlflow_server.uri}}, name="skipping-1")
    work = tmp_path / "work"
    work.mkdir()
    assert run_workflow(run, template, work) == "Succeeded", run.phases
    assert run.phases == {
        "pipegen-run-first": "Succeeded",
        "first": "Succeeded",
        "judge": "Succeeded",
        "pipegen-run-second": "Skipped",
        "second": "Omitted",  # what Argo marks a task whose `depends` is not met
    }
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert [(r.data.tags["pipegen.step"], r.info.status) for r in runs] == [("first", "FINISHED")]
