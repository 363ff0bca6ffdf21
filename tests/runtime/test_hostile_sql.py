"""A gate query's ${params.p} holding hostile text reaches SQLite as a bound value, through the request each
target writes for the shared runtime (issue 15): the KFP component's embedded spec and the Step Functions
Lambda payload. (Airflow's path: tests/airflow/test_hostile_fields.py.)"""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.runtime.lambda_handler import handler
from pipegen.runtime.step import run_step
from tests.hostile import HOSTILE_TEXT, literal_value

INJECTION = "x' UNION SELECT password FROM users --"
VALUES = [literal_value(HOSTILE_TEXT), INJECTION, "it''s", "%s :p ? $1 {}"]


def database(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("CREATE TABLE users (password TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in VALUES])
        db.execute("INSERT INTO users VALUES ('hunter2-SECRET')")
    return f"sqlite:///{path}"


def spec(url: str, query_language: str = "JSONPath") -> str:
    # Quoted and bare references; the gate passes only when p arrives as exactly one of the stored values.
    return (
        "pipegen: 1\nname: sqlgate\nparams: {p: x}\nsteps:\n"
        f"  - name: quoted\n    gate: {{check: sql, connection: {json.dumps(url)}, "
        "query: \"SELECT COUNT(*) FROM t WHERE v = '${params.p}'\"}\n"
        f"  - name: bare\n    gate: {{check: row_count, connection: {json.dumps(url)}, "
        'query: "SELECT v FROM t WHERE v = ${params.p}", min_rows: 1}\n'
        "targets:\n  kfp: {base_image: registry.example.com/ml/pipegen-runtime:0.1}\n"
        f"  stepfunctions: {{query_language: {query_language}}}\n"
    )


def compiled(url: str, target: str, query_language: str = "JSONPath") -> str:
    result = compile_checked(check_source(Source("sqlgate.yaml", spec(url, query_language))), [target])
    assert result.ok, [d.format() for d in result.diagnostics]
    return next(o.text for o in result.outputs if o.path.endswith((".py", ".asl.json")))


def kfp_gate_specs(module: str) -> list[str]:
    """The spec JSON each gate task hands the shared gate component (its constant `pipegen_spec` input), read from
    the generated module's source: what the component passes on to run_step."""
    found = []
    for node in ast.walk(ast.parse(module)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "pipegen_gate":
            found += [k.value.value for k in node.keywords if k.arg == "pipegen_spec"]  # type: ignore[attr-defined]
    return found


def asl_gate_payloads(asl: str) -> list[dict[str, Any]]:
    """The Lambda payload of each gate state, as the state machine writes it."""
    found = []

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            body = state.get("Arguments") or state.get("Parameters") or {}
            payload = body.get("Payload")
            if isinstance(payload, dict) and "gate" in str(payload.get("args", {}).get("kind", "")):
                found.append(payload)
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(json.loads(asl)["States"])
    return found


@pytest.mark.parametrize("value", VALUES)
def test_kfp_gate_binds_the_parameter(tmp_path: Path, value: str) -> None:
    url = database(tmp_path / "w.db")
    specs = kfp_gate_specs(compiled(url, "kfp"))
    assert len(specs) == 2
    for spec_json in specs:
        result = run_step("gate", spec_json, params={"p": value}, run_id="r", run_date="2026-01-02")
        assert result["passed"] is True, result
        assert "hunter2" not in json.dumps(result)


@pytest.mark.parametrize("query_language", ["JSONPath", "JSONata"])
@pytest.mark.parametrize("value", VALUES)
def test_step_functions_gate_binds_the_parameter(tmp_path: Path, value: str, query_language: str) -> None:
    url = database(tmp_path / "w.db")
    payloads = asl_gate_payloads(compiled(url, "stepfunctions", query_language))
    assert len(payloads) == 2
    for payload in payloads:
        # What the state machine's context ($pipegen / $.pipegen) holds for a run given p.
        args = {k.removesuffix(".$"): v for k, v in payload["args"].items()}
        args["context"] = {"params": {"p": value}, "run_id": "r", "run_date": "2026-01-02"}
        result = handler({"action": payload["action"], "args": args})
        assert result["passed"] is True, result
        assert "hunter2" not in json.dumps(result)


def test_a_value_that_is_not_stored_fails_the_gate_without_reading_other_tables(tmp_path: Path) -> None:
    url = database(tmp_path / "w.db")
    for spec_json in kfp_gate_specs(compiled(url, "kfp")):
        with pytest.raises(Exception) as failed:
            run_step("gate", spec_json, params={"p": "' OR 1=1 UNION SELECT password FROM users --"}, run_id="r")
        assert "hunter2" not in str(failed.value)
