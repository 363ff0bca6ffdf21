"""Every templated field of every task of a DAG compiled from a spec with hostile text in every string field
(generated from the models, options included; see tests.hostile) renders that text literally (issue 15)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.airflow.test_template_injection import strings
from tests.hostile import HOSTILE_TEXT, dump, hostile_spec

# What Airflow would put in place of the hostile text's Jinja if it evaluated it: {{ 7*7 }} and a Variable.
LEAK = "VAR-LEAK-VALUE"
# The part of the hostile text every literal rendering keeps whole.
CORE = "{{ 7*7 }}{{ var.value.HIDDEN }}{% raw %} {{$}}"
PARAM = "P!"


def rendered_tasks(dags_folder: Path, backend: str) -> list[tuple[str, dict[str, Any]]]:
    """(task id, templated field -> rendered value) for every task of the hostile DAG."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.execution_time.context import MacrosAccessor

    data, _ = hostile_spec(backend, target="airflow")
    if backend == "spark.glue":
        # A Glue run takes `--key value` arguments (the same hostile values, each after a plain key) and none of the
        # settings the job itself holds.
        for key in ("conf", "driver", "executors", "packages"):
            data["backends"]["b"].pop(key, None)
        for step in data["steps"]:
            body = step.get("task") or step.get("train")
            if body is not None:
                head, *args = body["command"]
                body["command"] = [head, *(x for i, a in enumerate(args) for x in (f"--k{i}", a))]
    if backend == "ray.cluster":
        # KubeRay's submitter reads runtime_env on a bash command line: Airflow refuses '$' in it (located; the
        # hostile filler cannot settle its mapping keys), so it is plain here.
        data["backends"]["b"]["runtime_env"] = {"env_vars": {"R": "r"}}
    result = compile_checked(check_source(Source("hostile.yaml", dump(data))), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (dags_folder / "hostile.py").write_text(result.outputs[0].text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    dag = bag.dags["hostile"]
    logical = datetime(2026, 1, 2, 12, tzinfo=UTC)
    out = []
    for task in dag.tasks:
        context = {
            "dag_run": SimpleNamespace(logical_date=logical, run_after=logical),
            "run_id": "manual__1",
            "params": {"p": PARAM},
            # What an upstream task handed on (start_run's run): the value never holds user text here.
            "ti": SimpleNamespace(
                xcom_pull=lambda *a, **k: {"run_id": "r", "experiment_id": "e", "tracking_uri": "t"}, try_number=1
            ),
            # What a worker's context holds too: object names use macros.uuid (a digest of the run).
            "macros": MacrosAccessor(),
            "dag": dag,
            "task": task,
        }
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        out.append((task.task_id, {f: getattr(task, f) for f in task.template_fields}))
    return out


@pytest.mark.parametrize(
    "backend",
    [
        "kubernetes",
        "aws_batch",
        "sagemaker",
        "local",
        "spark",
        "spark.emr",
        "spark.emr_serverless",
        "spark.emr_on_eks",
        "spark.glue",
        "spark.kubernetes",
        "ray",
        "ray.cluster",
    ],
)
def test_every_templated_field_renders_hostile_text_literally(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # Airflow reads Variables from AIRFLOW_VAR_<NAME> first: an evaluated {{ var.value.HIDDEN }} would show it.
    monkeypatch.setenv("AIRFLOW_VAR_HIDDEN", LEAK)
    assert HOSTILE_TEXT.count(CORE) == 1
    seen = 0
    for task_id, fields in rendered_tasks(dags_folder, backend):
        for field, value in fields.items():
            for text in strings(value):
                assert LEAK not in text, (task_id, field, text)
                if "7*7" in text:
                    # The Jinja, placeholders and raw block arrive as written, not evaluated or swallowed
                    # (in URLs the generator wrote spaces as %20).
                    # A container's argument or env value has each '$' doubled: the kubelet reads '$$' as '$'.
                    kubelet = text.replace("$$", "$")
                    assert CORE in text.replace("%20", " ") or CORE in kubelet, (task_id, field, text)
                    seen += 1
    assert seen >= 5
    assert os.environ["AIRFLOW_VAR_HIDDEN"] == LEAK


# A gate reaches its task as written (airflow.sdk.literal): no templated field holds its query's values, and
# the task binds them (tests/airflow/test_gate_sql_injection.py runs that through dag.test()).
@pytest.mark.parametrize("value", ["x' UNION SELECT password FROM users --", "it's {{ 7*7 }}"])
def test_gate_sql_binds_a_hostile_parameter(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from pipegen.runtime import airflow_values
    from pipegen.runtime.gates import check_gate
    from tests.runtime.test_hostile_sql import compiled, database

    url = database(tmp_path / "w.db")
    with sqlite3.connect(tmp_path / "w.db") as db:
        db.execute("INSERT INTO t VALUES (?)", (value,))
    (dags_folder / "sqlgate.py").write_text(compiled(url, "airflow"), encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    dag = bag.dags["sqlgate"]
    logical = datetime(2026, 1, 2, 12, tzinfo=UTC)
    # The task's own context (get_current_context) holds these when it runs.
    values = airflow_values.Values({"p": value}, "manual__1", "2026-01-02")
    monkeypatch.setattr(airflow_values, "task_values", lambda timezone: values)
    for task_id in ("quoted", "bare"):
        task = dag.get_task(task_id)
        context = {"dag_run": SimpleNamespace(logical_date=logical, run_after=logical), "run_id": "manual__1"}
        task.render_template_fields({**context, "params": {"p": value}, "dag": dag, "task": task})
        gate = task.op_kwargs["gate"]
        assert value not in str(gate)  # rendering put no value into the gate: the task binds it
        # What the generated gate task does with it: its context's params, bound into the query.
        result = check_gate(airflow_values.rendered_gate(gate, "UTC"))
        assert result["passed"] is True, result
        assert "hunter2" not in str(result)
