"""Every golden KFP pipeline compiles with the real kfp compiler; literal text stays data in the IR."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.targets.kfp.names import kfp_text
from tests.cases import GOLDEN, REPO

RUNTIME_IMAGE = "registry.example.com/ml/pipegen-runtime:0.1"
GOLDEN_MODULES = sorted((GOLDEN / "kfp").glob("*.py"))


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"pipegen_golden_{path.stem.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_ir(path: Path, out: Path) -> dict[str, object]:
    from kfp import compiler

    compiler.Compiler().compile(load(path).pipeline, package_path=str(out))
    if out.suffix == ".json":
        return dict(json.loads(out.read_text()))
    return dict(next(yaml.safe_load_all(out.read_text())))


@pytest.mark.parametrize("path", GOLDEN_MODULES, ids=lambda p: p.stem)
def test_golden_pipeline_compiles(path: Path, tmp_path: Path) -> None:
    ir = compile_ir(path, tmp_path / "pipeline.yaml")
    assert ir["pipelineInfo"]["name"] == path.stem  # type: ignore[index]
    tasks = all_tasks(ir)
    assert tasks
    for name, task in tasks.items():
        assert task.get("cachingOptions") == {}, f"caching must be off for {name}"


def all_tasks(ir: dict[str, object]) -> dict[str, dict[str, object]]:
    """Every task that runs a container, at any depth (inside dsl.If, and the exit handler notifications add)."""
    components: dict[str, dict[str, object]] = ir["components"]  # type: ignore[assignment]
    found: dict[str, dict[str, object]] = {}

    def walk(dag: dict[str, object]) -> None:
        for name, task in dag["tasks"].items():  # type: ignore[attr-defined]
            component = components[task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"])  # type: ignore[arg-type]
            else:
                found[name] = task

    walk(ir["root"]["dag"])  # type: ignore[index]
    return found


def step_tasks(ir: dict[str, object]) -> dict[str, dict[str, object]]:
    """Every container task by its display name (a step's name: runtime steps share their action's component, and
    kfp names a task after its component)."""
    return {str(task["taskInfo"]["name"]): task for task in all_tasks(ir).values()}  # type: ignore[index]


def executor_of(ir: dict[str, object], task: dict[str, object]) -> dict[str, object]:
    """The executor a task runs: its component's."""
    component = ir["components"][task["componentRef"]["name"]]  # type: ignore[index]
    return ir["deploymentSpec"]["executors"][component["executorLabel"]]  # type: ignore[index,no-any-return]


def shown_executors(ir: dict[str, object]) -> dict[str, str]:
    """Each executor label -> the display name of the task that runs it."""
    return {
        str(ir["components"][task["componentRef"]["name"]]["executorLabel"]): str(task["taskInfo"]["name"])  # type: ignore[index]
        for task in all_tasks(ir).values()
    }


def test_goldens_cover_every_spec() -> None:
    # specs/ and tests/specs/sparkray.yaml (Spark and Ray steps: cases.TARGETED_SPECS).
    assert [p.stem for p in GOLDEN_MODULES] == [
        "clicks",
        "clickstream",
        "demo",
        "feed-ranking-16gpu",
        "feed-ranking",
        "pricing",
        "sparkray",
    ]


def test_ir_flag_writes_compiled_yaml(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pipegen", "compile", "specs/demo.yaml", "-t", "kfp", "-o", str(tmp_path), "--ir"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    ir = next(yaml.safe_load_all((tmp_path / "kfp" / "demo.yaml").read_text()))
    assert ir["pipelineInfo"]["name"] == "demo"


def test_placeholder_lookalikes_stay_data(tmp_path: Path) -> None:
    """A spec string that looks like a KFP placeholder never lands in a command template."""
    # It even names an input of the generated container component.
    lookalike = "{{$.inputs.parameters['arg_2']}}"
    text = (
        "pipegen: 1\nname: lookalike\nbackends:\n  pods: {type: kubernetes, image: img}\nsteps:\n"
        f'  - name: job\n    task:\n      backend: pods\n      command: [echo, "{lookalike}", x]\n'
        f'      env: {{LOOK: "{lookalike}"}}\n'
        f'  - name: ready\n    gate: {{check: partition_exists, path: "/data/{lookalike}/"}}\n'
        f"targets: {{kfp: {{base_image: {RUNTIME_IMAGE}}}}}\n"
    )
    result = compile_checked(check_source(Source("lookalike.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "lookalike.py"
    module.write_text(result.outputs[0].text)
    ir = compile_ir(module, tmp_path / "lookalike.yaml")
    executors = ir["deploymentSpec"]["executors"]  # type: ignore[index]
    for executor in executors.values():
        container = executor["container"]
        # Input names avoid any the spec's text mentions, so substitution cannot reach into a value.
        assert lookalike not in " ".join(container.get("command", []) + container.get("args", []))
    job_inputs = ir["root"]["dag"]["tasks"]["job"]["inputs"]["parameters"]  # type: ignore[index]
    constants = [v["runtimeValue"]["constant"] for v in job_inputs.values() if "runtimeValue" in v]
    # The argument and the env value, as data (percent-encoded so kfp finds no placeholder; sh decodes them).
    assert constants.count(kfp_text(lookalike)) == 2


def test_hostile_spec_compiles_with_kfp(tmp_path: Path) -> None:
    from tests.hostile import HOSTILE, spec_text

    single_line = HOSTILE.replace("\n", " ").replace("\t", " ")
    image = "registry.example.com/feed/train:1"  # kfp reads braces in an image as a placeholder (PG602)
    text = spec_text(HOSTILE, param=single_line, image=image) + f"targets: {{kfp: {{base_image: {RUNTIME_IMAGE}}}}}\n"
    result = compile_checked(check_source(Source("hostile.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "hostile.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    ir = compile_ir(module, tmp_path / "hostile.yaml")
    constants = [
        v["runtimeValue"]["constant"]
        for v in all_tasks(ir)["prep"]["inputs"]["parameters"].values()  # type: ignore[index,union-attr]
        if "runtimeValue" in v
    ]
    assert kfp_text(HOSTILE.replace("$${", "${")) in constants


def test_evaluate_is_not_retried_by_kfp(tmp_path: Path) -> None:
    """set_retry cannot tell a failed judgement from an outage: evaluate retries outages in the runtime only."""
    ir = compile_ir(GOLDEN / "kfp" / "pricing.py", tmp_path / "pricing.yaml")
    tasks = step_tasks(ir)
    assert "retryPolicy" not in tasks["quality"]
    assert tasks["train"]["retryPolicy"]["maxRetryCount"] == 2  # type: ignore[index]
    # The runtime's retry policy travels in the step's spec input, which the shared evaluate component reads.
    spec = json.loads(tasks["quality"]["inputs"]["parameters"]["pipegen_spec"]["runtimeValue"]["constant"])  # type: ignore[index]
    assert spec["retry"] == {"backoff": 2.0, "delay_seconds": 120, "max_delay_seconds": 1800, "retries": 2}
    source = " ".join(executor_of(ir, tasks["quality"])["container"]["command"])  # type: ignore[index]
    # ... and pipegen.runtime.kfp_executor hands to run_step as its retry policy (evaluate only).
    assert "run_python('evaluate', arguments)" in source


def test_mlflow_settings_reach_every_task_that_talks_to_mlflow(tmp_path: Path) -> None:
    """targets.kfp.mlflow_secret: the tracking URI and credentials are in the pod's environment, where the runtime reads them."""
    ir = compile_ir(GOLDEN / "kfp" / "feed-ranking.py", tmp_path / "feed.yaml")
    documents = list(yaml.safe_load_all((tmp_path / "feed.yaml").read_text()))
    executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounted = {
        name
        for name, config in executors.items()
        for secret in config.get("secretAsEnv", [])
        if secret["secretName"] == "mlflow-tracking"
        and {m["envVar"] for m in secret["keyToEnv"]} == {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"}
    }
    assert {shown_executors(ir)[name] for name in mounted} == {
        "train run",
        "train",
        "train close",
        "quality",
        "promote",
    }
