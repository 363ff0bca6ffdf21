"""Literal text reaches KFP components unchanged, proven with kfp's own placeholder resolver (issue 15).

kfp resolves `{{$...}}` placeholders in a component's command and args and, in kfp.local, inside every string
input value too (and replaces the text /kfp-workspace). Every string that reaches a component of a hostile spec
(generated from the models, see tests.hostile) goes through `kfp.local.placeholder_utils.replace_placeholders`
here; container steps' resolved command then runs in a real sh, with a program named like the spec's argv[0].
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.expr import Lit, parse_template
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.hostile import HOSTILE_LINE, dump, hostile_spec
from tests.kfp.test_compile import compile_ir

RUN_ID, RUN_DATE = "RUN-ID-OUTPUT", "RUN-DATE-OUTPUT"
# The placeholders pipegen passes on purpose (dsl.PIPELINE_JOB_ID_PLACEHOLDER, ..._SCHEDULE_TIME_UTC_...), and
# what they become. kfp.local cannot resolve the schedule time (an IndexError in its resolver), so the tests
# put the value in as KFP's backend does.
JOB_ID, SCHEDULE_TIME = "JOB-UUID", "2026-01-01T00:00:00Z"
DELIBERATE = {"{{$.pipeline_job_uuid}}": JOB_ID}
# What kfp.local hands an exit task's PipelineTaskFinalStatus input (the KFP backend's has the same keys).
FINAL_STATUS = {"state": "FAILED", "pipeline_job_resource_name": "hostile-job", "error": {"code": 1, "message": "x"}}
WHOLE_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def compiled(tmp_path: Path, backend: str, program: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hostile spec for backend (settled for kfp) and its IR, compiled by kfp from the generated module.

    program: the argv[0] of the command steps instead of the hostile one.
    """
    data, _ = hostile_spec(backend, target="kfp")
    for step in data["steps"]:
        body = step.get("task") or step.get("train")
        if program and body:
            body["command"][0] = program
    result = compile_checked(check_source(Source("hostile.yaml", dump(data))), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "hostile.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    return data, compile_ir(module, tmp_path / "hostile.yaml")


def output_value(producer: str, key: str) -> str:
    """What an upstream task's output holds in these tests."""
    if producer == "pipegen-context":
        return {"run_id": RUN_ID, "run_date": RUN_DATE}[key]
    return f"OUTPUT-{producer}-{key}"


def tasks(ir: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(name, task, enclosing group tasks, innermost first) for every task that runs a container, at any depth
    (inside dsl.If, and inside the dsl.ExitHandler that notifications wrap the steps in)."""
    out: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []

    def walk(dag: dict[str, Any], around: list[dict[str, Any]]) -> None:
        for name, task in dag["tasks"].items():
            component = ir["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"], [task, *around])
            else:
                out.append((name, task, around))

    walk(ir["root"]["dag"], [])
    return out


def input_values(ir: dict[str, Any], task: dict[str, Any], around: list[dict[str, Any]]) -> dict[str, Any]:
    """A task's input values as kfp hands them to it: constants, pipeline defaults, upstream outputs, final status."""
    defaults = {k: v.get("defaultValue") for k, v in ir["root"]["inputDefinitions"]["parameters"].items()}

    def value(spec: dict[str, Any], scopes: list[dict[str, Any]]) -> Any:
        if "runtimeValue" in spec:
            constant = spec["runtimeValue"]["constant"]
            return SCHEDULE_TIME if constant == "{{$.pipeline_job_schedule_time_utc}}" else constant
        if "taskOutputParameter" in spec:
            out = spec["taskOutputParameter"]
            return output_value(out["producerTask"], out["outputParameterKey"])
        if "taskFinalStatus" in spec:
            return dict(FINAL_STATUS, pipeline_task_name=spec["taskFinalStatus"]["producerTask"])
        name = spec["componentInputParameter"]
        if not scopes:
            return defaults[name]
        return value(scopes[0]["inputs"]["parameters"][name], scopes[1:])

    return {k: value(v, around) for k, v in task.get("inputs", {}).get("parameters", {}).items()}


def resolve(
    ir: dict[str, Any], name: str, task: dict[str, Any], values: dict[str, Any], tmp: Path
) -> tuple[list[str], list[str], dict[str, Any]]:
    """The task's command + args before and after kfp.local's resolver, and the executor input it resolved."""
    from kfp.local import placeholder_utils

    component = ir["components"][task["componentRef"]["name"]]
    container = ir["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    command = [*container.get("command", []), *container.get("args", [])]
    outputs = component.get("outputDefinitions", {}).get("parameters", {})
    executor_input = {
        "inputs": {"parameterValues": copy.deepcopy(values)},
        "outputs": {
            "outputFile": str(tmp / "executor_output.json"),
            "parameters": {k: {"outputFile": str(tmp / k)} for k in outputs},
        },
    }
    resolved = placeholder_utils.replace_placeholders(
        full_command=command,
        executor_input_dict=executor_input,
        pipeline_resource_name="hostile-job",
        task_resource_name=name,
        pipeline_root=str(tmp / "root"),
        unique_pipeline_id=JOB_ID,
    )
    return command, resolved, executor_input


def channel_value(value: Any, values: dict[str, Any]) -> Any:
    """A constant that is exactly one pipeline channel (an f-string over a parameter) is that channel's value;
    a deliberate placeholder, its value."""
    if isinstance(value, str) and value in DELIBERATE:
        return DELIBERATE[value]
    match = WHOLE_INPUT.fullmatch(value) if isinstance(value, str) else None
    return values[match[1]] if match and match[1].startswith("pipelinechannel--") else value


@pytest.mark.parametrize("backend", ["kubernetes", "aws_batch", "sagemaker", "local", "spark", "ray"])
def test_every_input_and_command_string_survives_kfps_resolver(tmp_path: Path, backend: str) -> None:
    _, ir = compiled(tmp_path, backend)
    checked = 0
    for name, task, around in tasks(ir):
        values = input_values(ir, task, around)
        command, resolved, executor_input = resolve(ir, name, task, values, tmp_path)
        expected_values = {k: channel_value(v, values) for k, v in values.items()}
        # kfp.local resolves placeholders inside input values: none may change (but a deliberate channel).
        assert executor_input["inputs"]["parameterValues"] == expected_values, name
        assert len(resolved) == len(command), name
        for before, after in zip(command, resolved, strict=True):
            whole = WHOLE_INPUT.fullmatch(before)
            if whole:
                assert after == expected_values[whole[1]], (name, before)
            elif before == "{{$}}":
                assert json.loads(after)["inputs"]["parameterValues"] == expected_values
            else:
                assert after == before, (name, before[:200])  # component source, sh script: never substituted
            checked += 1
    assert checked > 20
    # The spec has notify.on_failure / on_success: its exit task's inputs and source are among those checked.
    assert "pipegen-notify" in {name for name, _, _ in tasks(ir)}


def test_user_text_never_reaches_a_pod_command_where_the_kubelet_expands_it(tmp_path: Path) -> None:
    """`$(VAR)` in a pod's command, args or env is expanded by the kubelet: user text only travels as input values."""
    _, ir = compiled(tmp_path, "kubernetes")
    for label, executor in ir["deploymentSpec"]["executors"].items():
        container = executor["container"]
        texts = [*container.get("command", []), *container.get("args", [])]
        texts += [str(e) for e in container.get("env", [])]
        assert not any(HOSTILE_LINE[:8] in t for t in texts), label
        if label in ("exec-prep", "exec-fit"):
            assert not any("$(HOME)" in t for t in texts), label


def expected_text(text: str, params: dict[str, Any]) -> str:
    """What a spec string means in the container: literal text as written, references replaced."""
    out = []
    for part in parse_template(text).parts:
        if isinstance(part, Lit):
            out.append(part.text)
        elif part.namespace == "params":
            out.append(str(params[part.name]))
        else:
            out.append(RUN_ID if part.name == "id" else RUN_DATE)
    return "".join(out)


@pytest.mark.parametrize("step", ["prep", "fit"])
def test_container_steps_run_with_every_argument_and_env_value_as_written(tmp_path: Path, step: str) -> None:
    data, ir = compiled(tmp_path, "kubernetes", program="pipegen-report")
    (name, task, around) = next(t for t in tasks(ir) if t[0] == step)
    values = input_values(ir, task, around)
    _, resolved, _ = resolve(ir, name, task, values, tmp_path)
    spec_step = next(s for s in data["steps"] if s["name"] == step)
    body = spec_step.get("task") or spec_step["train"]
    argv = [expected_text(a, data["params"]) for a in body["command"]]
    env = {
        k: expected_text(v, data["params"])
        for k, v in {**data["backends"]["b"].get("env", {}), **body.get("env", {})}.items()
    }
    # The spec's program, on PATH, reports what it got.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / argv[0]
    program.write_text(
        f"#!{sys.executable}\nimport json, os, sys\nprint(json.dumps([sys.argv[1:], dict(os.environ)]))\n",
        encoding="utf-8",
    )
    program.chmod(0o755)
    assert resolved[:2] == ["sh", "-c"]
    run = subprocess.run(
        resolved, env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, capture_output=True, text=True, check=True
    )
    got_argv, got_env = json.loads(run.stdout)
    assert got_argv == argv[1:]
    assert {k: got_env.get(k) for k in env} == env
    if step == "fit":
        # The spec's URI as written (start_run hands on no URI): literal text through kfp's resolver and sh.
        assert got_env["MLFLOW_TRACKING_URI"] == expected_text(data["mlflow"]["tracking_uri"], data["params"])


@pytest.mark.parametrize("default", ["{{$}}", "x{{$.pipeline_job_uuid}}", "/kfp-workspace/data"])
def test_a_default_kfp_would_substitute_is_a_located_diagnostic(default: str) -> None:
    text = (
        f"pipegen: 1\nname: defaults\nparams:\n  p: {json.dumps(default)}\n"
        "steps:\n  - {name: t, task: {command: [echo, '${params.p}']}}\n"
        "targets: {kfp: {base_image: registry.example.com/ml/pipegen-runtime:0.1}}\n"
    )
    result = compile_checked(check_source(Source("defaults.yaml", text)), ["kfp"])
    assert [d.format() for d in result.diagnostics if d.severity.name == "ERROR"] == [
        "defaults.yaml:4:6: error[PG602]: target 'kfp' cannot pass the default of parameter 'p' unchanged: kfp "
        "substitutes '{{$' and '/kfp-workspace' in every string parameter value it hands a task; hint: kfp has no "
        "escape for its placeholders: write the value without them, or pass it when submitting"
    ]


@pytest.mark.parametrize(
    ("cpu", "wanted"), [("'1Gi'", "1073741824"), ("'1k'", "1000"), ("'250m'", "0.25"), ("1.5", "1.5")]
)
def test_every_cpu_quantity_the_spec_takes_reaches_kfp(tmp_path: Path, cpu: str, wanted: str) -> None:
    """kfp's set_cpu_request takes a number or 'Nm' only; the spec takes any Kubernetes quantity."""
    text = (
        "pipegen: 1\nname: cpu\nbackends:\n  pods: {type: kubernetes, image: img}\n"
        f"steps:\n  - {{name: t, task: {{backend: pods, command: [run], resources: {{cpu: {cpu}}}}}}}\n"
    )
    result = compile_checked(check_source(Source("cpu.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "cpu.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    ir = compile_ir(module, tmp_path / "cpu.yaml")
    resources = ir["deploymentSpec"]["executors"]["exec-t"]["container"]["resources"]
    assert float(resources["cpuRequest"]) == float(wanted)


@pytest.mark.parametrize("backend", ["spark", "ray"])
def test_spark_and_ray_settings_reach_the_runtime_as_written(tmp_path: Path, backend: str) -> None:
    """A hostile spark/ray backend and step: after kfp's resolver, the task's spec holds every string as written
    (the runtime renders the spec's references itself, pipegen.runtime.step)."""
    data, ir = compiled(tmp_path, backend)
    settings = data["backends"]["b"]
    for name, task, around in tasks(ir):
        if name not in ("prep", "fit"):
            continue
        _, _, executor_input = resolve(ir, name, task, input_values(ir, task, around), tmp_path)
        spec = json.loads(executor_input["inputs"]["parameterValues"]["pipegen_spec"])
        body = next(s for s in data["steps"] if s["name"] == name)["task" if name == "prep" else "train"]
        assert spec["command"] == body["command"] and spec.get("env", {}) == body.get("env", {})
        if backend == "spark":
            sent = spec["spark"]
            assert (sent["master"], sent["conf"]) == (settings["master"], settings["conf"])
            assert (sent["py_files"], sent["jars"], sent["packages"]) == (
                settings["py_files"],
                settings["jars"],
                settings["packages"],
            )
            assert (sent["driver"], sent["executors"]) == (settings["driver"], settings["executors"])
        else:
            sent = spec["ray"]
            assert (sent["address"], sent["runtime_env"]) == (settings["address"], settings["runtime_env"])
            assert sent["job_name"] == f"hostile-{name}"
        assert HOSTILE_LINE.split(" ")[0] in json.dumps(sent, ensure_ascii=False)
