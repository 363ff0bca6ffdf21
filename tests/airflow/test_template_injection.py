"""No spec string becomes a Jinja template in Airflow: every templated field of every operator renders it as written.

`MARK{{ 7*7 }}{{ var.value.SECRET }}` in any plain field (backend settings, names, options) once rendered as
`MARK49VAR-LEAK`: Jinja ran user text and read an Airflow Variable the spec never named as a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source

MARK = "MARK{{ 7*7 }}{{ var.value.SECRET }}"
M = json.dumps(MARK)


def spec(extra: str = "") -> str:
    return f"""\
pipegen: 1
name: injected
params: {{p: 1}}
backends:
  pods: {{type: kubernetes, image: {M}, namespace: {M}, service_account: {M}, node_selector: {{pool: {M}}}, env: {{A: {M}}}}}
  batch: {{type: aws_batch, job_queue: {M}, job_definition: {M}, region: {M}}}
  sm: {{type: sagemaker, role_arn: {M}, image: {M}, instance_type: {M}, output_path: {M}, region: {M}}}
  here: {{type: local, working_dir: {M}, env: {{B: {M}}}}}
steps:
  - name: ready
    gate: {{check: sql, connection: {M}, query: {M}}}
  - name: pod
    task: {{backend: pods, command: [{M}, {M}], env: {{C: {M}}}, resources: {{cpu: 1, memory: 1Gi}}}}
  - name: job
    task: {{backend: batch, command: [{M}], env: {{D: {M}}}}}
  - name: fit
    train: {{backend: sm, command: [{M}, {M}], metrics: [m], env: {{E: {M}}}}}
  - name: local
    task: {{backend: here, command: [{M}]}}
  - name: podfit
    train: {{backend: pods, command: [{M}], metrics: [m]}}
  - name: judge
    evaluate: {{run_of: fit, thresholds: ["m > 0"], champion: {{metric: m}}}}
  - name: ship
    promote: {{model: m, run_of: fit, artifact: {M}, notify: [{{webhook: {json.dumps("https://example.com/" + MARK)}}}]}}
{extra}"""


def strings(value: object) -> Iterator[str]:
    """Every string inside a rendered field: containers, and Kubernetes objects through their dicts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from strings(v)
    elif hasattr(value, "to_dict"):
        yield from strings(value.to_dict())


def render_all(dags_folder: Path) -> dict[str, dict[str, object]]:
    """Each task's templated fields after Airflow renders them (DagBag-loaded DAG, the DAG's Jinja environment)."""
    from airflow.dag_processing.dagbag import DagBag

    result = compile_checked(check_source(Source("injected.yaml", spec())), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (dags_folder / "injected.py").write_text(result.outputs[0].text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    dag = bag.dags["injected"]
    logical = datetime(2026, 1, 2, 12, tzinfo=UTC)
    ti = SimpleNamespace(xcom_pull=lambda **_: {"run_id": "r1", "experiment_id": "e1", "tracking_uri": "http://mlflow"})
    fields: dict[str, dict[str, object]] = {}
    for task in dag.tasks:
        context = {
            "dag_run": SimpleNamespace(logical_date=logical, run_after=logical),
            "run_id": "manual__1",
            "params": {"p": 1},
            "dag": dag,
            "task": task,
            "ti": ti,
            # What `var.value.X` reads in a task: had any spec text been rendered, this would show.
            "var": {"value": {"SECRET": "VAR-LEAK"}},
        }
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        fields[task.task_id] = {name: getattr(task, name) for name in task.template_fields}
    return fields


def test_no_spec_text_is_rendered_by_jinja_in_any_templated_field(dags_folder: Path) -> None:
    fields = render_all(dags_folder)
    rendered = [(task, name, s) for task, values in fields.items() for name, v in values.items() for s in strings(v)]
    leaks = [(task, name, s) for task, name, s in rendered if "VAR-LEAK" in s or "MARK49" in s]
    assert leaks == []
    # And the text arrives as written where the spec put it.
    sm = fields["fit"]["config"]
    assert isinstance(sm, dict)
    assert sm["ResourceConfig"]["InstanceType"] == MARK
    assert sm["RoleArn"] == MARK
    assert sm["AlgorithmSpecification"]["TrainingImage"] == MARK
    assert sm["OutputDataConfig"]["S3OutputPath"] == MARK
    assert fields["fit"]["region_name"] == MARK
    assert (fields["job"]["job_queue"], fields["job"]["job_definition"], fields["job"]["region_name"]) == (MARK,) * 3
    assert fields["pod"]["namespace"] == MARK and fields["pod"]["node_selector"] == {"pool": MARK}
    assert fields["ship"]["op_kwargs"]["artifact"] == MARK  # type: ignore[index]
    assert fields["ready"]["op_kwargs"] == {"gate": {"check": "sql", "connection": MARK, "query": MARK}}
    assert sum(s == MARK for _, _, s in rendered) >= 20


@pytest.mark.parametrize("option", ["aws_conn_id", "kubernetes_conn_id"])
def test_a_connection_id_airflow_would_refuse_is_a_located_error(option: str) -> None:
    text = spec(f"targets:\n  airflow:\n    {option}: {M}\n")
    checked = check_source(Source("injected.yaml", text))
    errors = [d.format() for d in checked.diagnostics if "error[" in d.format()]
    line = text.splitlines().index(f"    {option}: {M}") + 1
    assert errors == [
        f"injected.yaml:{line}:{len(option) + 7}: error[PG203]: '{MARK}' is not an Airflow connection id; hint: "
        "Airflow connection ids are 1 to 250 letters, digits and the characters _ - . : / \\ # ! ( )"
    ]


def test_a_connection_id_airflow_accepts_compiles(dags_folder: Path) -> None:
    text = spec("targets:\n  airflow: {aws_conn_id: 'aws.prod/ml-(eu)', kubernetes_conn_id: 'k8s_prod:1'}\n")
    result = compile_checked(check_source(Source("injected.yaml", text)), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    assert "aws_conn_id='aws.prod/ml-(eu)'" in result.outputs[0].text
    assert "kubernetes_conn_id='k8s_prod:1'" in result.outputs[0].text


def test_the_operators_read_no_template_files() -> None:
    """A templated string ending in an operator's template_ext would be read as a file: none of ours has one."""
    from airflow.providers.amazon.aws.operators.batch import BatchOperator
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
    from airflow.providers.standard.decorators.sensor import DecoratedSensorOperator
    from airflow.providers.standard.decorators.short_circuit import _ShortCircuitDecoratedOperator

    operators = [
        BatchOperator,
        SageMakerTrainingOperator,
        KubernetesPodOperator,
        _PythonDecoratedOperator,
        DecoratedSensorOperator,
        _ShortCircuitDecoratedOperator,
    ]
    assert {op.__name__: tuple(op.template_ext) for op in operators} == {op.__name__: () for op in operators}
