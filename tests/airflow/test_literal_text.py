"""Literal spec text reaches the running task unchanged, while ${run.date} and ${params.X} become values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.hostile import HOSTILE, literal_value, spec_text


def load_hostile(dags_folder: Path) -> object:
    from airflow.dag_processing.dagbag import DagBag

    result = compile_checked(check_source(Source("hostile.yaml", spec_text(HOSTILE))), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (dags_folder / "hostile.py").write_text(result.outputs[0].text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag.dags["hostile"]


def rendered(dag: object, task_id: str) -> object:
    """The task after Airflow renders its templated fields for a run on 2026-01-02."""
    task = dag.get_task(task_id)  # type: ignore[attr-defined]
    logical = datetime(2026, 1, 2, 12, tzinfo=UTC)
    dag_run = SimpleNamespace(logical_date=logical, run_after=logical)
    context = {"dag_run": dag_run, "run_id": "manual__1", "params": {"p": "P!"}, "dag": dag, "task": task}
    task.render_template_fields(context, jinja_env=dag.get_template_env())  # type: ignore[attr-defined]
    return task


def test_hostile_dag_loads(dags_folder: Path) -> None:
    dag = load_hostile(dags_folder)
    assert dag.description == HOSTILE.splitlines()[0]  # type: ignore[attr-defined]


def test_literal_text_stays_literal_in_pod_fields(dags_folder: Path) -> None:
    text = literal_value(HOSTILE)
    prep = rendered(load_hostile(dags_folder), "prep")
    assert prep.cmds == [text]  # type: ignore[attr-defined]
    assert prep.arguments == ["2026-01-02", text + "P!"]  # type: ignore[attr-defined]
    assert prep.image == text  # type: ignore[attr-defined]
    # Plain (expression-free) spec fields keep `$${` as written.
    assert prep.namespace == HOSTILE  # type: ignore[attr-defined]
    assert prep.node_selector == {"pool": HOSTILE}  # type: ignore[attr-defined]
    env = {e.name: e.value for e in prep.env_vars}  # type: ignore[attr-defined]
    assert env == {"A_VAR": text, "B_VAR": text, "C_VAR": "2026-01-02/" + text}


def test_literal_text_stays_literal_in_runtime_task_arguments(dags_folder: Path) -> None:
    from pipegen.runtime.sqlparams import render_gate
    from pipegen.runtime.templating import Values

    ready = rendered(load_hostile(dags_folder), "ready")
    # The gate reaches the task as the spec wrote it (Jinja leaves it alone); the runtime renders it there.
    gate = ready.op_kwargs["gate"]  # type: ignore[attr-defined]
    assert gate == {"check": "partition_exists", "path": HOSTILE}
    assert render_gate(gate, Values({"p": "P!"}, "manual__1", "2026-01-02"))["path"] == literal_value(HOSTILE)
