"""JSONata-mode definitions, evaluated with the reference JSONata implementation (jsonata 2.2.2 on npm).

moto's executor cannot run JSONata, so the expressions are checked one by one: every one compiles
and evaluates, literal text reads back as itself, and the run context is what the JSONPath form gives.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.cases import GOLDEN, REPO
from tests.hostile import HOSTILE, literal_value
from tests.stepfunctions.asl import compile_text, hostile_spec, load, strings

EVALUATOR = REPO / "tools" / "node" / "jsonata-eval.mjs"
FEED = GOLDEN / "stepfunctions" / "feed-ranking.asl.json"


def evaluate(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate [{"expr", "bindings"}] with jsonata; each result is {"value"} or {"error"}."""
    proc = subprocess.run(
        ["node", str(EVALUATOR)], input=json.dumps(cases), capture_output=True, text=True, check=True, timeout=120
    )
    return list(json.loads(proc.stdout))


def expressions(doc: Any) -> list[str]:
    return [v[2:-2].strip() for _, v in strings(doc) if v.startswith("{%") and v.endswith("%}")]


def _generic_bindings(exprs: list[str]) -> dict[str, Any]:
    """A plausible value for every variable the expressions read, and for $states."""
    value = {"passed": True, "count": 1, "reason": "r", "reasons": ["x"], "run": {"run_id": "r1"}, "job": {}}
    # Variables, not functions ($merge(...)): a name followed by "(" is a call.
    names = {n for e in exprs for n in re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()", e)} - {"states"}
    bindings: dict[str, Any] = {n: dict(value) for n in names}
    bindings["failure"] = {"Error": "E", "Cause": "C"}
    bindings["states"] = {
        "input": {},
        "context": {"Execution": {"Name": "run-1", "StartTime": "2026-11-22T02:00:00.000Z"}},
        "result": {"Payload": value},
        "errorOutput": {"Error": "E", "Cause": "C"},
    }
    return bindings


def test_every_expression_of_the_golden_evaluates() -> None:
    exprs = expressions(load(FEED.read_text()))
    assert len(exprs) > 10
    bindings = _generic_bindings(exprs)
    results = evaluate([{"expr": e, "bindings": bindings} for e in exprs])
    assert [(e, r) for e, r in zip(exprs, results, strict=True) if "error" in r] == []
    # The check can fail: a broken expression is reported.
    assert "error" in evaluate([{"expr": "$merge([", "bindings": {}}])[0]


def test_run_context_merges_params_and_dates_the_run() -> None:
    context = load(FEED.read_text())["States"]["pipegen.context"]["Assign"]["pipegen"]
    exprs = {k: v[2:-2].strip() for k, v in context.items()}
    start = {"Execution": {"Name": "manual-1", "StartTime": "2026-11-22T09:30:00.000Z"}}
    scheduled = {"params": {"epochs": 3}, "scheduled_time": "2026-11-21T02:00:00Z"}
    cases = [
        {"expr": exprs["params"], "bindings": {"states": {"input": {}, "context": start}}},
        {"expr": exprs["params"], "bindings": {"states": {"input": scheduled, "context": start}}},
        {"expr": exprs["run_date"], "bindings": {"states": {"input": {}, "context": start}}},
        {"expr": exprs["run_date"], "bindings": {"states": {"input": scheduled, "context": start}}},
        {"expr": exprs["run_id"], "bindings": {"states": {"input": {}, "context": start}}},
    ]
    assert [r.get("value", r) for r in evaluate(cases)] == [
        {"epochs": 10, "learning_rate": 0.01},
        {"epochs": 3, "learning_rate": 0.01},
        "2026-11-22",
        "2026-11-21",
        "manual-1",
    ]


def test_hostile_literals_read_back_as_written(tmp_path: Path) -> None:
    text = hostile_spec(HOSTILE, "JSONata")
    outputs, diags = compile_text(text, tmp_path, "hostile.yaml")
    assert outputs, diags
    doc = load(outputs["stepfunctions/hostile.asl.json"])
    exprs = expressions(doc)
    results = evaluate([{"expr": e, "bindings": _generic_bindings(exprs)} for e in exprs])
    assert [(e, r) for e, r in zip(exprs, results, strict=True) if "error" in r] == []
    written = {v for _, v in strings(yaml.safe_load(text))}
    written |= {w.replace("${", "$${") for w in written} | {literal_value(w) for w in written}
    literals = [r["value"] for e, r in zip(exprs, results, strict=True) if e.startswith('"')]
    assert literals and all(v in written for v in literals)
    assert HOSTILE in literals
    # The params default (hostile too) survives the merge expression.
    context = doc["States"]["pipegen.context"]["Assign"]["pipegen"]["params"][2:-2].strip()
    start = {"Execution": {"Name": "x", "StartTime": "2026-11-22T00:00:00Z"}}
    (merged,) = evaluate([{"expr": context, "bindings": {"states": {"input": {}, "context": start}}}])
    assert merged == {"value": {"p": HOSTILE}}


def test_a_batch_command_is_built_in_jsonata(tmp_path: Path) -> None:
    """${run.*} and ${params.X} in a Batch command: one JSONata array, any literal text as a string literal."""
    command = [HOSTILE, "--date=${run.date}", "${params.p}", "${run.id}/${params.flag}"]
    text = (
        "pipegen: 1\nname: native\nparams: {p: 7, flag: true}\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: q, job_definition: d}\n"
        f"steps:\n  - name: t\n    task: {{backend: jobs, command: {json.dumps(command, ensure_ascii=False)}}}\n"
        "targets:\n  stepfunctions: {query_language: JSONata}\n"
    )
    outputs, diags = compile_text(text, tmp_path, "native.yaml")
    assert outputs, diags
    state = load(outputs["stepfunctions/native.asl.json"])["States"]["t"]
    assert state["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    expr = state["Arguments"]["ContainerOverrides"]["Command"][2:-2].strip()
    context = {"params": {"p": 7, "flag": True}, "run_id": "run-1", "run_date": "2026-11-22"}
    (result,) = evaluate([{"expr": expr, "bindings": {"pipegen": context}}])
    assert result == {"value": [literal_value(HOSTILE), "--date=2026-11-22", "7", "run-1/true"]}
