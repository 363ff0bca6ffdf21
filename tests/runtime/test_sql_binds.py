"""${...} inside gate SQL are bound parameters: a run parameter can never become SQL text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipegen.runtime.gates import check_gate
from pipegen.runtime.sqlparams import SqlTemplateError, bind_sql, render_gate
from pipegen.runtime.templating import Values

INJECTION = "x' UNION SELECT password FROM users --"


def database(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE flags (dt TEXT, ok INTEGER)")
        db.execute("CREATE TABLE users (password TEXT)")
        db.execute("INSERT INTO flags VALUES ('2026-01-02', 1), ('it''s', 1)")
        db.execute("INSERT INTO users VALUES ('hunter2-SECRET')")
    return f"sqlite:///{path}"


def values(**params: object) -> Values:
    return Values(params, "run-1", "2026-01-02", {"PIPEGEN_SECRET_TOKEN": "TOKEN-AAA"})


@pytest.mark.parametrize("check", ["sql", "row_count"])
def test_a_parameter_cannot_inject_sql(tmp_path: Path, check: str) -> None:
    url = database(tmp_path / "w.db")
    query = "SELECT ok FROM flags WHERE dt = '${params.dt}'"
    gate = render_gate({"check": check, "connection": url, "query": query}, values(dt=INJECTION))
    result = check_gate(gate)
    # The UNION is compared as a date string: no row matches, and nothing of users is read.
    assert result["passed"] is False, result
    assert "hunter2" not in result["reason"]
    assert check_gate(render_gate({"check": check, "connection": url, "query": query}, values(dt="2026-01-02")))[
        "passed"
    ]


def test_quoted_literals_keep_their_text_around_values(tmp_path: Path) -> None:
    url = database(tmp_path / "w.db")
    sql, binds = bind_sql("SELECT COUNT(*) FROM flags WHERE dt = 'dt=${run.date}' OR dt = 'it''s'", values())
    assert sql == "SELECT COUNT(*) FROM flags WHERE dt = :pipegen_p0 OR dt = 'it''s'"
    assert binds == {"pipegen_p0": "dt=2026-01-02"}
    # A value holding a quote stays one value; an unquoted reference keeps its parameter's type.
    sql, binds = bind_sql("SELECT ${params.n} + 1 WHERE 'a' = '${params.q}'", values(n=41, q="it's"))
    assert sql == "SELECT :pipegen_p0 + 1 WHERE 'a' = :pipegen_p1" and binds == {"pipegen_p0": 41, "pipegen_p1": "it's"}
    gate = render_gate({"check": "sql", "connection": url, "query": "SELECT ${params.n} + 1"}, values(n=41))
    assert check_gate(gate) == {"passed": True, "reason": f"query on {url} returned 42"}


def test_literal_colons_and_percents_stay_literal(tmp_path: Path) -> None:
    url = database(tmp_path / "w.db")
    query = "SELECT COUNT(*) FROM flags WHERE dt = '${run.date}' AND ':30' = ':30' AND '50%' LIKE '50%'"
    gate = render_gate({"check": "sql", "connection": url, "query": query}, values())
    assert check_gate(gate)["passed"], gate


def test_a_secret_in_a_query_is_bound_not_written(tmp_path: Path) -> None:
    url = database(tmp_path / "w.db")
    gate = render_gate(
        {"check": "sql", "connection": url, "query": "SELECT COUNT(*) FROM flags WHERE dt = '${secret.token}'"},
        values(),
    )
    assert "TOKEN-AAA" not in gate["query"] and gate["query_params"] == {"pipegen_p0": "TOKEN-AAA"}
    assert check_gate(gate)["passed"] is False


@pytest.mark.parametrize(
    "query", ['SELECT "${params.col}" FROM flags', "SELECT 1 -- ${params.dt}", "SELECT 1 /* ${params.dt} */"]
)
def test_references_where_no_value_can_be_bound_are_refused(query: str) -> None:
    with pytest.raises(SqlTemplateError, match="where no value can be bound"):
        bind_sql(query, values(dt="d", col="c"))


def test_queries_without_references_reach_the_driver_as_written() -> None:
    query = "SELECT ':30', '%', 1"
    assert bind_sql(query, values()) == (query, {})
    assert render_gate({"check": "sql", "connection": "sqlite://", "query": query}, values())["query"] == query


@pytest.mark.parametrize("kind", ["gate", "gate_check"])
def test_the_lambda_and_kfp_path_binds(tmp_path: Path, kind: str) -> None:
    """Step Functions' Lambda (`step` action) and KFP components render gates through run_step."""
    from pipegen.runtime.errors import RuntimeFailure
    from pipegen.runtime.lambda_handler import handler

    url = database(tmp_path / "w.db")
    event = {
        "action": "step",
        "args": {
            "kind": kind,
            "spec": {
                "gate": {"check": "sql", "connection": url, "query": "SELECT ok FROM flags WHERE dt = '${params.dt}'"}
            },
            "context": {"params": {"dt": INJECTION}, "run_id": "r", "run_date": "2026-01-02"},
        },
    }
    if kind == "gate":
        with pytest.raises(RuntimeFailure, match="returned no rows"):
            handler(event)
    else:
        assert handler(event) == {"passed": False, "reason": f"query on {url} returned no rows"}


def test_pipegen_run_binds(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = database(tmp_path / "w.db")
    spec = tmp_path / "inject.yaml"
    spec.write_text(
        "pipegen: 1\nname: inject\nparams: {dt: '2026-01-02'}\nsteps:\n"
        f"  - name: ready\n    retries: 0\n    gate: {{check: sql, connection: '{url}', "
        "query: \"SELECT ok FROM flags WHERE dt = '${params.dt}'\"}\n"
    )
    run = [sys.executable, "-m", "pipegen", "run", str(spec)]
    proc = subprocess.run([*run, "--param", f"dt={INJECTION}"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "returned no rows" in proc.stdout, proc.stdout + proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert subprocess.run(run, cwd=tmp_path, capture_output=True, text=True).returncode == 0
