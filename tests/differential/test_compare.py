"""The comparison: what is normalised (engine-specific identifiers) and what is not (everything else)."""

from __future__ import annotations

from typing import Any

from tests.differential import compare
from tests.differential.engines import Result, StepResult


def state(
    engine: str, run_id: str, run_key: str, target: str, auc: float = 0.9, experiment: str = "1"
) -> dict[str, str]:
    result = Result(engine, "succeeded", {"train": StepResult("passed", f"{engine} words")}, 1.0, "log")
    run: dict[str, Any] = {
        "id": run_id,
        "status": "FINISHED",
        "tags": {"pipegen.step": "train", "pipegen.run_key": run_key, "pipegen.target": target},
        "params": {},
        "metrics": {"auc": auc},
    }
    models = {"m": {"aliases": {"champion": "1"}, "versions": {"1": {"run": run_id, "tags": {}, "aliases": []}}}}
    env = {"MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment, "PATH": engine, "JOB_X": "1"}
    jobs = [{"argv": ["a"], "env": env, "attempt": 1}]
    mlflow = {"runs": [run], "models": models, "experiment_id": experiment}
    return compare.normalise(engine, result, mlflow, [], jobs, "http://x")


def test_engine_specific_identifiers_are_compared_by_role() -> None:
    a = state("pipegen", "r1", "local__1", "local")
    b = state("airflow", "zz", "manual__2", "airflow", experiment="7")
    assert compare.table({"pipegen": a, "airflow": b}).differing == []


def test_a_metric_a_wrong_target_tag_or_a_job_variable_differs() -> None:
    a = state("pipegen", "r1", "k", "local")
    assert compare.table({"pipegen": a, "airflow": state("airflow", "r2", "k", "airflow", auc=0.8)}).differing == [
        "run 1 (train) metric auc"
    ]
    wrong = compare.table({"pipegen": a, "airflow": state("airflow", "r2", "k", "kfp")})
    assert wrong.differing == ["run 1 (train) tag pipegen.target"]
    assert "! run 1 (train) tag pipegen.target" in wrong.render()
