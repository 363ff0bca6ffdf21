"""A retried waiting gate resumes its wait (issue 19): the wait's start is taken by a clock task before the first
attempt and passed to every attempt, so a gate whose first pod dies mid-wait fails at the original deadline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.argo.executor import Run, run_task
from tests.argo.lint import lint_manifest
from tests.argo.strict import documents, validate_document
from tests.hostile import dump

WAIT = 10  # the gate's wait timeout, seconds
KILL = 5  # the first attempt's pod dies this far into the wait
SLACK = 3  # process start-up and the last check, on a loaded machine


def _manifest(tmp_path: Path) -> dict[str, Any]:
    spec = {
        "pipegen": 1,
        "name": "gate-resume",
        "mlflow": {"experiment": "gate-resume"},
        "steps": [
            {
                "name": "ready_data",
                "retries": 1,
                "retry_delay": "1s",
                "gate": {
                    "check": "partition_exists",
                    "path": f"file://{tmp_path}/never/",
                    "wait": {"timeout": f"{WAIT}s", "interval": "1s"},
                },
            }
        ],
        "targets": {"argo": {"runtime_image": "registry.example.com/pipegen-runtime:1"}},
    }
    checked = check_source(Source("gate.yaml", dump(spec)))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    result = compile_checked(checked, ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    docs = documents(result.outputs[0].text)
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == []
    return docs[0]


def test_a_retried_gate_resumes_its_wait_and_fails_at_the_original_deadline(tmp_path: Path) -> None:
    doc = _manifest(tmp_path)
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    [clock, gate] = doc["spec"]["templates"][0]["dag"]["tasks"]
    assert [clock["name"], gate["name"]] == ["pipegen-clock-ready-data", "ready-data"]
    assert gate["depends"] == "pipegen-clock-ready-data.Succeeded"
    assert templates[gate["template"]]["retryStrategy"]["limit"] == 1
    # The clock's result is a task output: the gate's task passes it to the template it calls.
    [started_arg] = [p for p in gate["arguments"]["parameters"] if p["name"] == "wait-started"]
    assert started_arg["value"] == "{{tasks.pipegen-clock-ready-data.outputs.parameters.result}}"

    run = Run(parameters={})
    assert run_task(run, clock, templates, tmp_path) == 0
    started = float(run.results["pipegen-clock-ready-data"])
    assert abs(time.time() - started) < SLACK
    # The first attempt's pod dies part-way through the wait; Argo retries the task with the same arguments.
    assert run_task(run, gate, templates, tmp_path, kill_after=KILL) == -9
    retried = time.time()
    assert run_task(run, gate, templates, tmp_path) == 1
    ended = time.time()
    # The retry waits only what is left: the gate fails at the original deadline, not KILL seconds after it.
    assert ended - started < WAIT + SLACK, run.logs["ready-data"]
    assert ended - retried < WAIT - KILL + SLACK, run.logs["ready-data"]
    assert "after waiting" in run.logs["ready-data"]


def test_a_retry_past_the_deadline_fails_at_once(tmp_path: Path) -> None:
    doc = _manifest(tmp_path)
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    gate = doc["spec"]["templates"][0]["dag"]["tasks"][1]
    # The wait began longer ago than its timeout (e.g. the retry was scheduled late): no fresh wait starts.
    run = Run(parameters={}, results={"pipegen-clock-ready-data": repr(time.time() - WAIT - 1)})
    began = time.time()
    assert run_task(run, gate, templates, tmp_path) == 1
    assert time.time() - began < SLACK, run.logs["ready-data"]
