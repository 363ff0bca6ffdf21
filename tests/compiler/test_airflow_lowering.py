"""Airflow lowering: user strings stay string literals in the DAG's AST and literal text under Jinja."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import jinja2
from hypothesis import given, settings
from hypothesis import strategies as st

from pipegen.expr import parse_template
from pipegen.targets.airflow_expr import jinja_string_literal, templated
from tests.conftest import CliResult
from tests.hostile import BENIGN, HOSTILE, literal_value, spec_text

Cli = Callable[..., CliResult]


def compile_spec(cli: Cli, tmp_path: Path, text: str, name: str) -> str:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text, encoding="utf-8")
    result = cli("compile", str(spec), "-t", "airflow", "-o", str(tmp_path / name))
    assert result.code == 0, result.err
    return (tmp_path / name / "airflow" / "hostile.py").read_text(encoding="utf-8")


def shape(source: str) -> tuple[str, list[str]]:
    """The module's AST with every string constant replaced by one placeholder, and those constants."""
    constants: list[str] = []

    class Strip(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            if isinstance(node.value, str):
                constants.append(node.value)
                return ast.Constant("S")
            return node

    return ast.dump(Strip().visit(ast.parse(source))), constants


def test_hostile_strings_are_only_string_constants(cli: Cli, tmp_path: Path) -> None:
    hostile_shape, constants = shape(compile_spec(cli, tmp_path, spec_text(HOSTILE), "h"))
    benign_shape, _ = shape(compile_spec(cli, tmp_path, spec_text(BENIGN), "b"))
    # Same code whatever the strings: no user text became code.
    assert hostile_shape == benign_shape
    # Plain fields keep the text as written; template fields read `$${` as a literal `${`.
    assert HOSTILE in constants
    assert literal_value(HOSTILE) in constants


def render_jinja(source: str, **context: object) -> str:
    # As Airflow configures it (DAG.get_template_env): trailing newlines are kept.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source).render(**context)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_jinja_string_literal_round_trips(text: str) -> None:
    assert render_jinja("{{ " + jinja_string_literal(text) + " }}") == text


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40),
    st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40),
)
def test_mixed_templates_render_literal_text_exactly(before: str, after: str) -> None:
    source = ast.literal_eval(templated(parse_template(before + "${run.date}" + after)))
    dated = render_jinja(source, pipegen_run_date=lambda dag_run: dag_run["date"], dag_run={"date": "2026-01-02"})
    assert dated == before + "2026-01-02" + after


def test_references_lower_to_airflow_context() -> None:
    source = ast.literal_eval(templated(parse_template("${params.lr}|${run.id}|${run.date}")))
    assert source == "{{ params['lr'] }}|{{ run_id }}|{{ pipegen_run_date(dag_run) }}"


def test_unsupported_backend_is_a_located_diagnostic(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "ray.yaml"
    spec.write_text(
        "pipegen: 1\nname: rayish\nbackends:\n  cluster: {type: ray, address: local}\n"
        "steps:\n  - name: features\n    task:\n      backend: cluster\n      command: [python, job.py]\n"
    )
    result = cli("compile", str(spec), "-t", "airflow", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert (
        f"{spec}:4:33: error[PG602]: target 'airflow' cannot run ray backend 'cluster' at address 'local'" in result.err
    )
    assert "hint: give the job server of a running Ray cluster" in result.err
    assert not (tmp_path / "out").exists()


def test_secret_in_a_pod_command_is_a_located_diagnostic(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "secret.yaml"
    spec.write_text(
        "pipegen: 1\nname: s\nbackends:\n  pods: {type: kubernetes, image: i}\n"
        "steps:\n  - name: t\n    task:\n      backend: pods\n      command: [run, '--key=${secret.api_key}']\n"
    )
    result = cli("compile", str(spec), "-t", "airflow", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert f"{spec}:9:22: error[PG602]: target 'airflow' cannot pass a secret in the command of step 't'" in result.err


def test_long_tag_is_a_located_diagnostic(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "tags.yaml"
    spec.write_text(
        f"pipegen: 1\nname: t\ntags: [ok, {'x' * 101}]\nsteps:\n  - {{name: a, task: {{command: [echo]}}}}\n"
    )
    result = cli("compile", str(spec), "-t", "airflow", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert f"{spec}:3:12: error[PG602]: target 'airflow' limits DAG tags to 100 characters; tag 2 has 101" in result.err


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_literal_text_survives_rendering(text: str) -> None:
    """A string without references is either wrapped in literal() or renders to itself under Jinja."""
    source = templated(parse_template(text))
    if source.startswith("literal("):
        assert ast.literal_eval(source[len("literal(") : -1]) == text
    else:
        assert render_jinja(ast.literal_eval(source)) == text


def _airflow(text: str) -> tuple[list[str], str]:
    """(error diagnostics, DAG source) for a spec compiled for Airflow."""
    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_source
    from pipegen.loader import Source

    result = compile_checked(check_source(Source("s.yaml", text)), ["airflow"])
    errors = [d.format() for d in result.diagnostics if "error[" in d.format()]
    return errors, (result.outputs[0].text if result.ok else "")


def _trained_on(backend: str, uri: str) -> str:
    return (
        f"pipegen: 1\nname: s\nmlflow: {{tracking_uri: '{uri}'}}\nbackends:\n  b: {backend}\n"
        "steps:\n  - name: fit\n    train: {backend: b, command: [python, t.py], metrics: [m]}\n"
    )


POD = "{type: kubernetes, image: img}"
BATCH = "{type: aws_batch, job_queue: q, job_definition: d}"


def test_a_secret_tracking_uri_reaches_a_pod_as_a_kubernetes_secret_not_through_xcom() -> None:
    errors, dag = _airflow(_trained_on(POD, "${secret.mlflow_uri}"))
    assert errors == []
    assert "Secret('env', 'MLFLOW_TRACKING_URI', 'mlflow-uri', 'mlflow_uri')" in dag
    assert "'tracking_uri'" not in dag  # nothing reads a tracking URI from start_run's XCom
    assert "'MLFLOW_TRACKING_URI': " not in dag  # nor renders the secret into the pod's env


def test_a_tracking_uri_holding_a_secret_inside_text_is_refused_for_jobs_and_pods() -> None:
    for backend in (POD, BATCH):
        errors, _ = _airflow(_trained_on(backend, "https://u:${secret.pw}@mlflow"))
        assert len(errors) == 1 and errors[0].startswith(
            "s.yaml:3:24: error[PG602]: target 'airflow' can pass a secret"
        )
    errors, _ = _airflow(_trained_on(BATCH, "${secret.mlflow_uri}"))
    assert len(errors) == 1 and "error[PG602]" in errors[0]


def test_a_gate_reaches_its_task_as_written() -> None:
    query = "SELECT ok FROM flags WHERE dt = '${params.dt}' AND d = '${run.date}'"
    text = (
        "pipegen: 1\nname: s\nparams: {dt: x}\nsteps:\n"
        f"  - name: ready\n    gate: {{check: sql, connection: '${{secret.db}}', query: \"{query}\"}}\n"
    )
    errors, dag = _airflow(text)
    assert errors == []
    # No Jinja in it: the runtime renders the references in the task, the query's as bind parameters.
    gate = {"check": "sql", "connection": "${secret.db}", "query": query}
    assert f"gate=literal({gate!r})" in dag.replace("\n", "")
    assert "{{" not in dag.split("with DAG(")[1]


def test_a_secret_in_a_backend_image_or_output_path_is_refused() -> None:
    text = (
        "pipegen: 1\nname: s\nbackends:\n"
        "  pod: {type: kubernetes, image: '${secret.registry}/train:1'}\n"
        "  sm: {type: sagemaker, role_arn: r, image: i, instance_type: ml.m5.large, output_path: 's3://${secret.b}/o'}\n"
        "steps:\n"
        "  - name: a\n    task: {backend: pod, command: [x]}\n"
        "  - name: b\n    task: {backend: sm, command: [x]}\n"
    )
    errors, _ = _airflow(text)
    assert [e.split(": error[")[0] for e in errors] == ["s.yaml:4:34", "s.yaml:5:89"]
    assert all("error[PG602]: target 'airflow' cannot pass a secret in the" in e for e in errors)
