"""The comparison: what is normalised (engine-specific identifiers) and what is not (everything else)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.differential import compare, expected
from tests.differential.engines import Result, StepResult
from tests.differential.expected import Expected, parse_diagnostics
from tests.differential.harness import compile_targets


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


def job_rows(env: dict[str, str]) -> dict[str, str]:
    result = Result("x", "succeeded", {}, 1.0, "log")
    mlflow: dict[str, Any] = {"runs": [], "models": {}, "experiment_id": "1"}
    return compare.normalise("x", result, mlflow, [], [{"argv": ["a"], "env": env, "attempt": 1}], "http://own")


def test_a_task_jobs_inherited_mlflow_variables_are_not_compared_a_training_jobs_are() -> None:
    """A Spark task's driver inherits MLFLOW_TRACKING_URI from an Airflow worker, not from `pipegen run`."""
    inherited = {"MLFLOW_TRACKING_URI": "http://own", "JOB_X": "1", "PATH": "p"}
    assert job_rows(inherited)["job 1"] == job_rows({"JOB_X": "1"})["job 1"]
    assert job_rows(inherited)["job 1"] != job_rows({"JOB_X": "2"})["job 1"]
    training = {"MLFLOW_RUN_ID": "r1", "MLFLOW_TRACKING_URI": "http://own"}
    assert job_rows(training)["job 1"] != job_rows({"MLFLOW_RUN_ID": "r1"})["job 1"]


# A spec whose failure webhook one target cannot send: its notify.on_failure value is at line 6, column 15.
NOTIFY_SPEC = """\
pipegen: 1
name: diff-expected
mlflow: {experiment: diff-expected}
backends: {here: {type: local}}
notify:
  on_failure: [{webhook: "http://127.0.0.1:9/failed"}]
steps:
  - name: train
    train: {backend: here, command: [python, -c, "pass"], metrics: [auc]}
"""
ON_FAILURE_PG702 = (
    "{spec}:6:15: warning[PG702]: target 'kfp' does not send notify.on_failure: no webhook is posted when the run "
    "fails; hint: alert from Kubeflow Pipelines v2's own run notifications"
)
NO_WEBHOOK = Expected("kfp", "PG702", "notify.on_failure", ("webhooks", "webhook *"), "no failure webhook on kfp")


def webhook_table(kfp_webhooks: int = 0, kfp_status: str = "failed") -> compare.Table:
    """pipegen and airflow posted the failure webhook; kfp posted kfp_webhooks of them."""
    hook = '{"event": "failed"}'
    rows = {
        "pipeline status": {"pipegen": "failed", "airflow": "failed", "kfp": kfp_status},
        "webhooks": {"pipegen": "1", "airflow": "1", "kfp": str(kfp_webhooks)},
        "webhook 1": {"pipegen": hook, "airflow": hook, **({"kfp": hook} if kfp_webhooks else {})},
    }
    return compare.Table(["pipegen", "airflow", "kfp"], rows)


@pytest.fixture
def notify_spec(tmp_path: Path) -> str:
    path = tmp_path / "expected.yaml"
    path.write_text(NOTIFY_SPEC)
    return str(path)


def test_a_located_diagnostic_excuses_the_difference_it_names(notify_spec: str) -> None:
    diagnostics = {"kfp": parse_diagnostics(ON_FAILURE_PG702.format(spec=notify_spec)), "airflow": []}
    assert expected.problems(notify_spec, webhook_table(), diagnostics, [NO_WEBHOOK]) == []


def test_a_difference_without_its_located_diagnostic_fails(notify_spec: str) -> None:
    none = expected.problems(notify_spec, webhook_table(), {"kfp": []}, [NO_WEBHOOK])
    assert "has no PG702 at expected.yaml:6:15 (`notify.on_failure`)" in none[0]
    # Unexcused, the difference itself fails too.
    assert none[1:] == ["DIFFERS: webhooks", "DIFFERS: webhook 1"]
    # The right code at another setting (the mlflow block, 3:9) excuses nothing either.
    elsewhere = parse_diagnostics(ON_FAILURE_PG702.format(spec=notify_spec).replace(":6:15:", ":3:9:"))
    moved = expected.problems(notify_spec, webhook_table(), {"kfp": elsewhere}, [NO_WEBHOOK])
    assert "has no PG702 at expected.yaml:6:15" in moved[0] and len(moved) == 3


def test_an_expected_difference_excuses_only_its_rows_and_must_still_be_seen(notify_spec: str) -> None:
    diagnostics = {"kfp": parse_diagnostics(ON_FAILURE_PG702.format(spec=notify_spec))}
    other_row = expected.problems(notify_spec, webhook_table(kfp_status="succeeded"), diagnostics, [NO_WEBHOOK])
    assert other_row == ["DIFFERS: pipeline status"]
    stale = expected.problems(notify_spec, webhook_table(kfp_webhooks=1), diagnostics, [NO_WEBHOOK])
    assert stale == [
        "expected difference on kfp (no failure webhook on kfp) is not seen any more: remove it from KNOWN"
    ]
    bad_setting = Expected("kfp", "PG702", "notify.on_success", ("webhooks",), "x")
    assert expected.problems(notify_spec, webhook_table(), diagnostics, [bad_setting])[0] == (
        "expected difference on kfp: expected.yaml has no setting `notify.on_success`"
    )


def test_with_no_expected_differences_every_difference_fails(notify_spec: str) -> None:
    diagnostics = {"kfp": parse_diagnostics(ON_FAILURE_PG702.format(spec=notify_spec))}
    assert expected.problems(notify_spec, webhook_table(), diagnostics, []) == [
        "DIFFERS: webhooks",
        "DIFFERS: webhook 1",
    ]
    assert expected.problems(notify_spec, webhook_table(kfp_webhooks=1), diagnostics, []) == []


def test_the_harness_reads_located_warnings_from_pipegen_compile(tmp_path: Path) -> None:
    """`pipegen compile`'s own output (here PG701, an unused parameter, at its key's value) parses."""
    spec = tmp_path / "unused.yaml"
    spec.write_text(NOTIFY_SPEC.replace("notify:\n", "params: {unused: 1}\nnotify:\n"))
    _, diagnostics = compile_targets(str(spec), tmp_path / "out")
    found = [(d.code, d.line, d.column, d.severity) for d in diagnostics["airflow"]]
    assert ("PG701", 5, 10, "warning") in found, diagnostics
