"""targets.kfp.runtime_components: container: one container component per runtime action, the smallest IR.

kfp.local runs container components only with its DockerRunner, and no container runs here. So the demo's IR
(compiled by kfp) runs task by task as the KFP backend's launcher would run it: each task's executor input
built from the IR, its command resolved by kfp.local's own placeholder resolver, then run as a process with
this environment's Python standing in for the runtime image, against a real MLflow store; the outputs a task
writes are the inputs its consumers get, and dsl.If reads the evaluate task's `passed` output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.cases import REPO
from tests.kfp.test_compile import all_tasks, compile_ir, executor_of, step_tasks

JOB_ID = "0d1f6c2e-job"
# What the KFP backend substitutes for a run no schedule started: the epoch, and the run's creation time.
SCHEDULED, CREATED = "1970-01-01T00:00:00Z", "2026-03-08T23:59:30Z"


def container_module(tmp_path: Path, text: str, name: str) -> Path:
    """The spec compiled with runtime_components: container; the module's path."""
    text = text.replace("  kfp:\n", "  kfp:\n    runtime_components: container\n", 1)
    result = compile_checked(check_source(Source(f"{name}.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / f"{name}.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    return module


def test_each_action_is_defined_once_and_no_task_embeds_code_or_installs(tmp_path: Path) -> None:
    module = container_module(tmp_path, (REPO / "specs" / "pricing.yaml").read_text(), "pricing")
    source = module.read_text()
    ir = compile_ir(module, tmp_path / "pricing.yaml")
    names = re.findall(r"^def (\w+)\(", source, flags=re.M)
    assert len(names) == len(set(names))
    for name, task in all_tasks(ir).items():
        container = executor_of(ir, task)["container"]
        text = " ".join([*container.get("command", []), *container.get("args", [])])  # type: ignore[list-item]
        assert "pip install" not in text and "kfp.dsl.executor_main" not in text, name
        if "pipegen.runtime" in text:
            assert container["command"][:3] == ["python", "-m", "pipegen.runtime.kfp_executor"], name  # type: ignore[index]
            assert len(text) < 250, (name, text)  # no embedded source, no spec text: that is in the inputs
    # Every step's task shows the step's name (kfp names a task after its shared component).
    spec_steps = re.findall(r"^  - name: (\w+)", (REPO / "specs" / "pricing.yaml").read_text(), flags=re.M)
    assert set(spec_steps) <= set(step_tasks(ir))


def resolve(
    ir: dict[str, Any], name: str, task: dict[str, Any], values: dict[str, Any], tmp: Path, job: str
) -> list[str]:
    """The task's command line as the launcher makes it: kfp's placeholders resolved by kfp.local's resolver."""
    from kfp.local import placeholder_utils

    container = executor_of(ir, task)["container"]
    outputs = ir["components"][task["componentRef"]["name"]].get("outputDefinitions", {}).get("parameters", {})
    executor_input = {
        "inputs": {"parameterValues": values},
        "outputs": {
            "outputFile": str(tmp / name / "executor_output.json"),
            "parameters": {k: {"outputFile": str(tmp / name / k)} for k in outputs},
        },
    }
    command = [
        part.replace("{{$.pipeline_job_schedule_time_utc}}", SCHEDULED).replace(
            "{{$.pipeline_job_create_time_utc}}", CREATED
        )
        for part in [*container["command"], *container["args"]]  # type: ignore[misc]
    ]
    return placeholder_utils.replace_placeholders(
        full_command=command,
        executor_input_dict=executor_input,
        pipeline_resource_name="demo-job",
        task_resource_name=name,
        pipeline_root=str(tmp / "root"),
        unique_pipeline_id=job,
    )


def run_pipeline(
    ir: dict[str, Any], arguments: dict[str, Any], tmp: Path, job: str = JOB_ID
) -> dict[str, dict[str, Any]]:
    """Run every task whose dependencies succeeded, in dependency order, inside true dsl.If groups only."""
    declared = ir["root"].get("inputDefinitions", {}).get("parameters", {})
    defaults = {k: v.get("defaultValue") for k, v in declared.items()}
    params = defaults | arguments
    outputs: dict[str, dict[str, Any]] = {}
    ran: dict[str, str] = {}

    def value(spec: dict[str, Any], scope: dict[str, Any]) -> Any:
        if "runtimeValue" in spec:
            return spec["runtimeValue"]["constant"]
        if "taskOutputParameter" in spec:
            out = spec["taskOutputParameter"]
            return outputs[out["producerTask"]][out["outputParameterKey"]]
        return scope[spec["componentInputParameter"]]

    def run_dag(dag: dict[str, Any], scope: dict[str, Any]) -> None:
        pending = dict(dag["tasks"])
        while pending:
            name, task = next((n, t) for n, t in pending.items() if set(t.get("dependentTasks", [])) <= set(ran))
            del pending[name]
            values = {k: value(v, scope) for k, v in task.get("inputs", {}).get("parameters", {}).items()}
            component = ir["components"][task["componentRef"]["name"]]
            if "dag" in component:
                condition = task["triggerPolicy"]["condition"]
                channel = re.fullmatch(r"inputs\.parameter_values\['([^']+)'\] == true", condition)
                assert channel, condition
                ran[name] = "SUCCEEDED"
                if values[channel[1]] is True:
                    run_dag(component["dag"], values)
                continue
            (tmp / name).mkdir(parents=True)
            command = resolve(ir, name, task, values, tmp, job)
            command[0] = sys.executable  # the runtime image's python: this environment's, with pipegen installed
            proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, (name, proc.stdout[-2000:], proc.stderr[-4000:])
            ran[name] = "SUCCEEDED"
            produced = tmp / name / "executor_output.json"
            outputs[name] = json.loads(produced.read_text())["parameterValues"] if produced.exists() else {}

    run_dag(ir["root"]["dag"], params)
    return outputs


def test_the_demo_promotes_then_failing_thresholds_promote_nothing(demo_workdir: Path) -> None:
    import mlflow

    module = container_module(demo_workdir, (REPO / "specs" / "demo.yaml").read_text(), "demo")
    ir = compile_ir(module, demo_workdir / "demo.yaml")
    tasks = step_tasks(ir)

    outputs = run_pipeline(ir, {}, demo_workdir / "run1")
    quality = next(n for n, t in all_tasks(ir).items() if t is tasks["quality"])
    assert outputs[quality] == {"passed": True}
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("pipegen-demo", "champion")
    assert str(version.version) == "1"
    run = client.get_run(version.run_id)
    assert run.data.tags["pipegen.target"] == "kfp"

    outputs = run_pipeline(ir, {"alpha": 100000.0}, demo_workdir / "run2", job="second-job")
    assert outputs[quality] == {"passed": False}
    assert [str(v.version) for v in client.search_model_versions("name = 'pipegen-demo'")] == ["1"]


def test_run_date_is_the_runs_creation_date_in_every_task(tmp_path: Path) -> None:
    """A run no schedule started: ${run.date} is its creation's date in the schedule's zone, in every task."""
    text = (
        "pipegen: 1\nname: dated\nschedule: {cron: '0 6 * * *', timezone: Asia/Tokyo}\nsteps:\n"
        f'  - name: a\n    task: {{command: [\'{sys.executable}\', -c, \'open("a.txt", "w").write("${{run.date}}")\']}}\n'
        f'  - name: b\n    task: {{command: [\'{sys.executable}\', -c, \'open("b.txt", "w").write("${{run.id}}")\']}}\n'
        "targets:\n  kfp:\n    base_image: registry.example.com/ml/pipegen-runtime:0.1\n"
    )
    module = container_module(tmp_path, text, "dated")
    ir = compile_ir(module, tmp_path / "dated.yaml")
    work = tmp_path / "work"
    work.mkdir()
    import os

    old = Path.cwd()
    os.chdir(work)
    try:
        run_pipeline(ir, {}, tmp_path / "run")
    finally:
        os.chdir(old)
    # 2026-03-08T23:59:30Z is already 2026-03-09 in Tokyo.
    assert (work / "a.txt").read_text() == "2026-03-09"
    assert (work / "b.txt").read_text() == JOB_ID


def test_hostile_text_stays_data_in_the_container_form(tmp_path: Path) -> None:
    """The hostile spec (tests.hostile) in the container form: no kfp placeholder forms from spec text.

    Every runtime container's command is fixed text plus kfp's own placeholders; spec text only travels in input
    values, which kfp.local's resolver hands over unchanged inside the executor input.
    """
    from tests.hostile import HOSTILE_LINE, dump, hostile_spec
    from tests.kfp.test_placeholders import channel_value, input_values, tasks

    data, _ = hostile_spec("aws_batch", target="kfp")
    data["targets"]["kfp"]["runtime_components"] = "container"
    result = compile_checked(check_source(Source("hostile.yaml", dump(data))), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "hostile.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    ir = compile_ir(module, tmp_path / "hostile.yaml")
    deliberate = {
        "{{$.pipeline_job_uuid}}": JOB_ID,
        "{{$.pipeline_job_schedule_time_utc}}": SCHEDULED,
        "{{$.pipeline_job_create_time_utc}}": CREATED,
    }
    checked = 0
    for name, task, around in tasks(ir):
        container = executor_of(ir, task)["container"]
        command = [*container["command"], *container["args"]]  # type: ignore[misc]
        if "pipegen.runtime.kfp_executor" not in command:
            continue
        assert not any(HOSTILE_LINE[:8] in part for part in command), name
        values = input_values(ir, task, around)
        expected = {k: channel_value(v, values) for k, v in values.items()}
        (tmp_path / name).mkdir()
        resolved = resolve(ir, name, task, values, tmp_path, JOB_ID)
        for before, after in zip(command, resolved, strict=True):
            if before == "{{$}}":
                assert json.loads(after)["inputs"]["parameterValues"] == expected, name
            else:
                assert after == deliberate.get(before, before), (name, before)
        checked += 1
    assert checked >= 5


def test_a_thousand_step_pipeline_fits_the_kubernetes_object_limit(tmp_path: Path) -> None:
    """The benchmark's Batch chain (benchmarks/synth.py), 100 steps: at this IR per step, 1,000 fit in 1.5 MiB."""
    from benchmarks.synth import spec_text

    n, limit = 100, 1536 * 1024
    text = spec_text("chain", n).replace("  kfp: {base_image:", "  kfp: {runtime_components: container, base_image:")
    result = compile_checked(check_source(Source("chain.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "chain.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    compile_ir(module, tmp_path / "chain.yaml")
    per_step = (tmp_path / "chain.yaml").stat().st_size / n
    assert per_step * 1000 < limit, per_step
