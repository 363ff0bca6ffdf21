"""Issue 22: a manifest Kubernetes would refuse, or a Workflow Argo would fail as it grows, is a located PG610; the
status estimate is a Workflow Argo's strict API model accepts."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file
from pipegen.targets.argo.size import MAX_OBJECT_BYTES, estimated_workflow, json_bytes, workflow_sizes
from tests.argo.strict import documents, validate_document
from tests.cases import GOLDEN
from tests.conftest import CliResult

Cli = Callable[..., CliResult]
LOCATED = re.compile(r"^(\S+):(\d+):(\d+): error\[PG610\]: (.+); hint: .+$")


def _spec(tmp_path: Path, steps: int, chars: int) -> Path:
    """steps local steps whose command carries chars characters of incompressible text each."""
    lines = ["pipegen: 1", "name: big", "steps:"]
    for i in range(steps):
        # Words, as commands are (pipegen's URL-credential scan is quadratic in the length of one word).
        text = " ".join(hashlib.sha256(f"{i}-{j}".encode()).hexdigest() for j in range(chars // 65 + 1))[:chars]
        lines += [f"  - name: s{i}", f"    task: {{command: [python, -c, '{text}']}}"]
    lines.append("targets: {argo: {runtime_image: registry.example.com/pipegen-runtime:1}}")
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _error(cli: Cli, spec: Path, tmp_path: Path) -> str:
    result = cli("compile", str(spec), "-t", "argo", "-o", str(tmp_path / "out"))
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    [line] = [x for x in result.err.splitlines() if "error[" in x]
    m = LOCATED.match(line)
    assert m is not None, line
    # At the spec's `steps:` key (line 3, column 1).
    assert (m.group(2), m.group(3)) == ("3", "1"), line
    assert not (tmp_path / "out" / "argo").exists()
    return m.group(4)


def test_a_workflow_template_over_1_5_mib_is_located(cli: Cli, tmp_path: Path) -> None:
    message = _error(cli, _spec(tmp_path, 20, 90_000), tmp_path)
    assert "WorkflowTemplate of 1.7" in message and "over the 1.5 MiB" in message


def test_a_workflow_argo_could_not_store_is_located(cli: Cli, tmp_path: Path) -> None:
    # The template fits Kubernetes, but every run holds a copy of it and Argo's packer allows a Workflow 1 MiB.
    spec = _spec(tmp_path, 10, 110_000)
    result = compile_checked(check_file(str(spec)), ["argo"])
    assert [d.code for d in result.diagnostics] == ["PG610"]
    message = _error(cli, spec, tmp_path)
    assert "a Workflow of these 10 steps would grow to about 1." in message and "MAX_WORKFLOW_SIZE" in message


def test_a_smaller_spec_compiles(cli: Cli, tmp_path: Path) -> None:
    result = cli("compile", str(_spec(tmp_path, 10, 40_000)), "-t", "argo", "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err


@pytest.mark.parametrize("name", ["demo", "feed-ranking", "feed-ranking-16gpu", "clickstream", "pricing"])
def test_the_estimate_is_a_workflow_argo_accepts(name: str) -> None:
    """Every field of the estimated run is one of Argo's (strict NodeStatus, Workflow), with one node per task,
    per retry attempt, per DAG and per hook that runs."""
    [template, *_] = documents((GOLDEN / "argo" / f"{name}.yaml").read_text(encoding="utf-8"))
    workflow = estimated_workflow(template)
    model = validate_document(workflow)
    tasks = [t for tm in template["spec"]["templates"] for t in tm.get("dag", {}).get("tasks", [])]
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    retried = [t for t in tasks if "retryStrategy" in templates[t["template"]]]
    dags = 1 + ("onExit" in template["spec"])
    # A training job's task runs its close-finished hook in a run where every task succeeded (argo/closing.py).
    hooked = [t for t in tasks if "close-finished" in t.get("hooks", {})]
    assert len(model.status.nodes) == len(tasks) + len(retried) + dags + len(hooked)
    sizes = workflow_sizes(template)
    assert sizes["nodes"] == json_bytes(workflow["status"]["nodes"])
    assert sizes["stored"] == sizes["workflow"] < MAX_OBJECT_BYTES
