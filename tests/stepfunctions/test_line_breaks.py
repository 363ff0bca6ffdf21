"""Strings asl-validator 4 cannot read where it checks a pattern (empty, a line break, a leading '{% '): every
definition stays valid in both query languages, and moto's executor hands the job the text byte-identical (issue 15).

The validator reads `^(?!\\{% )(.+)(?! %\\})$` on each string inside a JSONPath payload's arrays and on each string
of a JSONata template; JavaScript's `.` stops at a line terminator. pipegen writes the runtime request's spec as
one JSON string in JSONPath ("spec_json", decoded by the Lambda handler), sends a job whose literal command holds
such a string through its prepare Lambda, and writes such a string in JSONata as a JSONata string literal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipegen.runtime.lambda_handler import arguments, handler
from pipegen.targets.asl import plain_string
from tests.cases import GOLDEN
from tests.stepfunctions.asl import compile_text, load, validate
from tests.stepfunctions.support import history, play_batch_jobs, run_state_machine
from tests.support_aws import batch_queue

# Each a string the validator's pattern refuses, or one right at its edges.
AWKWARD = ["print(1)\nprint(2)", "", "{% x %}", "a\u2028b", "c\rd", "e\u2029", "\n", " {% y %}", "tab\there"]
ENV = {"E_LF": "x\ny", "E_EMPTY": "", "E_JSONATA": "{% $states %}", "E_LS": "p\u2028q"}


def spec_text(language: str, pod: bool = True) -> str:
    """Batch jobs with a literal command, a native (States.Array) one and a ${...} one, and a pod, all awkward."""
    awkward = json.dumps(AWKWARD, ensure_ascii=False)
    env = json.dumps(ENV, ensure_ascii=False)
    return (
        "pipegen: 1\nname: lines\nparams: {p: 7}\n"
        "backends:\n"
        "  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"
        '  pods: {type: kubernetes, image: "img:1", namespace: ml}\n'
        "steps:\n"
        f"  - name: literal\n    task: {{backend: jobs, command: {awkward}, env: {env}}}\n"
        '  - name: native\n    task: {backend: jobs, command: ["echo", "${run.id}", "", "${params.p}"]}\n'
        f'  - name: templated\n    task: {{backend: jobs, command: ["${{params.p}}", {awkward[1:-1]}], env: {env}}}\n'
        + (f"  - name: pod\n    task: {{backend: pods, command: {awkward}, env: {env}}}\n" if pod else "")
        + "targets:\n  stepfunctions:\n"
        f"    query_language: {language}\n"
        '    eks_cluster: {name: c, endpoint: "https://e", certificate_authority: ca}\n'
    )


def compiled(tmp_path: Path, language: str, pod: bool = True) -> tuple[str, Path]:
    outputs, diags = compile_text(spec_text(language, pod), tmp_path, "lines.yaml")
    assert outputs, diags
    text = outputs["stepfunctions/lines.asl.json"]
    path = tmp_path / "lines.asl.json"
    path.write_text(text, encoding="utf-8")
    return text, path


def unreadable_list_strings(value: Any, in_list: bool = False, where: str = "") -> list[str]:
    """Every string inside a list of a JSONPath definition that the validator's pattern refuses (all, not the first)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in unreadable_list_strings(v, False, f"{where}/{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in unreadable_list_strings(v, True, f"{where}/{i}")]
    return [f"{where}: {value!r}"] if in_list and isinstance(value, str) and not plain_string(value) else []


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_awkward_strings_make_a_valid_definition(tmp_path: Path, language: str) -> None:
    text, path = compiled(tmp_path, language)
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    if language == "JSONPath":
        assert unreadable_list_strings(load(text)) == []


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("stepfunctions/*.asl.json")), ids=lambda p: p.name)
def test_golden_definitions_hold_no_unreadable_list_string(path: Path) -> None:
    doc = load(path.read_text(encoding="utf-8"))
    if doc.get("QueryLanguage", "JSONPath") == "JSONPath":
        assert unreadable_list_strings(doc) == []


def test_jsonpath_runtime_requests_carry_their_spec_as_one_json_string(tmp_path: Path) -> None:
    text, _ = compiled(tmp_path, "JSONPath")
    states = load(text)["States"]
    args = states["templated"]["Parameters"]["Payload"]["args"]
    assert "spec" not in args
    spec = json.loads(args["spec_json"])
    # The prepare request holds the command and env as the spec wrote them (templates, rendered at run time).
    assert spec["command"] == ["${params.p}", *AWKWARD]
    assert spec["env"] == dict(sorted(ENV.items()))
    # A literal command the validator cannot read in a list goes through the prepare Lambda as well.
    assert states["literal"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert json.loads(states["literal"]["Parameters"]["Payload"]["args"]["spec_json"])["command"] == AWKWARD
    assert states["pod"]["Resource"] == "arn:aws:states:::lambda:invoke"
    # A native command keeps building its list in the state machine.
    assert states["native"]["Resource"] == "arn:aws:states:::batch:submitJob.sync"


def test_handler_decodes_spec_json() -> None:
    spec = {"command": AWKWARD, "env": ENV}
    event = {"action": "step", "args": {"kind": "prepare", "spec_json": json.dumps(spec), "context": {}}}
    assert arguments(event) == {"kind": "prepare", "spec": spec, "context": {}}
    assert arguments({"action": "step", "args": {"kind": "x", "spec": spec}}) == {"kind": "x", "spec": spec}
    with pytest.raises(ValueError, match="not both"):
        handler({"action": "step", "args": {"spec_json": "{}", "spec": {}}})
    with pytest.raises(ValueError, match="must be a JSON string"):
        handler({"action": "step", "args": {"spec_json": {"a": 1}}})


def test_jobs_receive_awkward_text_byte_identical(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """moto's executor runs the JSONPath machine; each Batch job gets its command and env exactly as written."""
    batch_queue("ml-cpu-64", "pricing-train:3")
    jobs = play_batch_jobs(monkeypatch, lambda env: None)
    text, path = compiled(tmp_path, "JSONPath", pod=False)  # moto runs no EKS jobs
    assert validate(path).returncode == 0
    result = run_state_machine(text, name, {})
    assert result["status"] == "SUCCEEDED", (result, history(result["executionArn"])[-3:])
    literal, native, templated = jobs
    for job in jobs:  # what the service adds to a job it starts, as AWS Step Functions does
        assert job["environment"].pop("MANAGED_BY_AWS") == "STARTED_BY_STEP_FUNCTIONS"
    assert literal["command"] == AWKWARD
    assert literal["environment"] == ENV
    assert native["command"] == ["echo", f"{name}-run", "", "7"]
    assert templated["command"] == ["7", *AWKWARD]
    assert templated["environment"] == ENV
    # Every runtime request the Lambda got carried its spec as JSON text, which it read back whole.
    assert all("spec_json" in e["args"] and "spec" not in e["args"] for e in sfn)
