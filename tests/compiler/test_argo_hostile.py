"""Hostile text in every string field, compiled for Argo: no `{{` or `$(` that Argo or the kubelet would rewrite
reaches the manifest, and each runtime container's JSON decodes to the spec's strings unchanged (issue 19)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.argo.lint import lint_manifest, strings
from tests.argo.strict import documents, validate_document
from tests.conftest import CliResult
from tests.hostile import BACKEND_TYPES, HOSTILE_LINE, HOSTILE_TEXT, dump, hostile_spec

Cli = Callable[..., CliResult]
# spark and ray: spark-submit and a Ray address run in runtime containers (the other variants: tests/argo).
RUNS = {"kubernetes", "aws_batch", "sagemaker", "local", "spark", "ray"}
LOCATED = re.compile(r"^\S+:\d+:\d+: (error|warning)\[PG\d{3}\]: .+$")
# What pipegen's own references stand for when a runtime argument is read back (any JSON-safe values).
_DUMMY = {
    re.compile(r"\{\{=(?:toJson|replace)\([^}]*\)\}\}"): '"P"',
    re.compile(r"\{\{tasks\.pipegen-clock-[-a-z0-9]+\.outputs\.parameters\.result\}\}"): "1764547200.0",
    re.compile(r"\{\{tasks\.[-a-z0-9]+\.outputs\.parameters\.result\}\}"): '{"experiment_id": "1", "run_id": "r"}',
    re.compile(r"\{\{[^}]*\}\}"): "X",
}


def _decoded_args(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON argument of every runtime task (its template's, with the task's arguments as the inputs), pipegen's
    own references replaced by values."""
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    out = []
    for task in (task for t in doc["spec"]["templates"] for task in t.get("dag", {}).get("tasks", [])):
        container = templates[task["template"]].get("container", {})
        args = container.get("args")
        if not args or container["command"] != ["python", "-m", "pipegen.runtime"]:
            continue
        text = args[1]
        for p in task.get("arguments", {}).get("parameters", []):
            text = text.replace("{{inputs.parameters." + p["name"] + "}}", p["value"])
        for pattern, value in _DUMMY.items():
            text = pattern.sub(value, text)
        out.append(json.loads(text))
    return out


@pytest.mark.parametrize("backend", BACKEND_TYPES)
def test_hostile_spec_reaches_argo_unrewritten_or_is_located(cli: Cli, tmp_path: Path, backend: str) -> None:
    data, _ = hostile_spec(backend, target="argo")
    spec = tmp_path / "h.yaml"
    spec.write_text(dump(data), encoding="utf-8")
    result = cli("compile", str(spec), "-t", "argo", "-o", str(tmp_path / "out"))
    assert "Traceback" not in result.err
    if backend == "kubernetes":
        # A label key is a mapping key, which the hostile filler cannot settle: Argo would substitute it (and
        # Kubernetes refuses braces in labels), so it is a located error; then the rest compiles with a plain one.
        assert result.code == 1 and LOCATED.match(result.err.splitlines()[0]), result.err
        assert "node selector" in result.err
        data["backends"]["b"]["node_selector"] = {"pool": "r-1"}
        spec.write_text(dump(data), encoding="utf-8")
        result = cli("compile", str(spec), "-t", "argo", "-o", str(tmp_path / "out"))
    if backend not in RUNS:
        assert result.code == 1, result.err
        errors = [line for line in result.err.splitlines() if "error[" in line]
        assert errors and all(LOCATED.match(line) for line in errors), result.err
        return
    assert result.code == 0, result.err
    docs = documents((tmp_path / "out" / "argo" / "hostile.yaml").read_text(encoding="utf-8"))
    for doc in docs:
        validate_document(doc)
    # Every {{...}} is one of pipegen's references, and no $(VAR) reaches the kubelet.
    assert lint_manifest(docs) == []
    decoded = _decoded_args(docs[0])
    gate = next(a["spec"]["gate"] for a in decoded if a.get("kind") == "gate" and a["spec"]["gate"]["check"] == "sql")
    step = next(s for s in data["steps"] if s["name"] == "g_sql")
    assert gate["query"] == step["gate"]["query"]
    assert gate["connection"] == step["gate"]["connection"]
    promote = next(a["spec"] for a in decoded if a.get("kind") == "promote")
    ship = next(s for s in data["steps"] if s["name"] == "ship")["promote"]
    assert promote["model"] == ship["model"]
    assert promote["artifact"] == ship["artifact"].replace("${", "$${")
    assert promote["webhooks"] == [n["webhook"] for n in ship["notify"]]
    if backend in ("spark", "ray"):
        # The step's request reaches the runtime's spark / ray kind as written: command, backend settings.
        job = next(a["spec"] for a in decoded if a.get("kind") == backend)
        prep = next(s for s in data["steps"] if s["name"] == "prep")["task"]
        assert job["command"] == prep["command"]
        settings = data["backends"]["b"]
        assert job[backend]["master" if backend == "spark" else "address"] == settings.get(
            "master", settings.get("address")
        )
    # The hostile text did reach the runtime (it was not settled away everywhere).
    texts = [text for a in decoded for _, text in strings(a)]
    assert any(HOSTILE_TEXT in t or HOSTILE_LINE in t for t in texts)
