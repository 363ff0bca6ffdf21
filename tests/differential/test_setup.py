"""The suite's own set-up: what its report says about a fan-out, and how its KFP components stand in for the image."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from tests.differential import compare
from tests.differential.engines import Result, StepResult
from tests.differential.engines.kfp import IMAGE
from tests.differential.harness import ONE_TASK_AT_A_TIME, ROOT, SpecRun, independent_jobs

SCENARIOS = Path(__file__).parent / "scenarios"


def report_with_spans(scenario: str, spans: dict[str, str]) -> str:
    spec = str(SCENARIOS / f"{scenario}.yaml")
    results = {e: Result(e, "succeeded", {"x": StepResult("passed")}, 1.0, "") for e in spans}
    table = compare.table({e: {"pipeline status": "succeeded"} for e in spans})
    return SpecRun(spec, table, results, {}, spans).report()


def test_a_fanout_report_says_why_kfp_and_airflow_show_no_parallelism_here() -> None:
    spans = {e: "2 jobs spanned 9.0s, the longest took 4.5s (2.00x)" for e in ("pipegen", "kfp", "airflow")}
    report = report_with_spans("fanout", spans)
    assert f"    kfp: {ONE_TASK_AT_A_TIME['kfp']}" in report
    assert f"    airflow: {ONE_TASK_AT_A_TIME['airflow']}" in report
    assert "    pipegen:" not in report  # `pipegen run` runs the branches side by side: nothing to excuse
    assert "enhanced_dag_orchestrator.py run_enhanced_dag" in report and "no dependentTasks edge" in report


def test_the_reason_is_printed_only_under_a_fanout() -> None:
    # always_fail's two jobs are one step's attempts (a retry), not branches.
    assert independent_jobs(str(SCENARIOS / "fanout.yaml"))
    assert not independent_jobs(str(SCENARIOS / "always_fail.yaml"))
    report = report_with_spans("always_fail", {"kfp": "2 jobs spanned 9.0s, the longest took 4.5s (2.00x)"})
    assert ONE_TASK_AT_A_TIME["kfp"] not in report


def absent_in_image() -> list[str]:
    """ABSENT of engines/image/sitecustomize.py, read without importing it (importing it hides pandas here)."""
    tree = ast.parse((IMAGE / "sitecustomize.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ABSENT" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("no ABSENT in sitecustomize.py")


def test_the_kfp_components_lack_only_what_the_runtime_image_lacks() -> None:
    """The components hide pandas & co. only because workers' runtime (.venv-runtime) does not have them."""
    absent = absent_in_image()
    assert "pandas" in absent
    runtime = ROOT / ".venv-runtime" / "bin" / "python"
    if not runtime.exists():
        pytest.skip(".venv-runtime (what workers install) is not set up: `make envs`")
    probe = "import importlib.util, sys; print([n for n in sys.argv[1:] if importlib.util.find_spec(n)])"
    found = subprocess.run([str(runtime), "-c", probe, *absent], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]", f"the runtime image has {found.stdout.strip()}: do not hide it from KFP"


def test_a_kfp_component_process_runs_the_runtime_without_them_and_its_children_get_the_path_back() -> None:
    python = ROOT / ".venv-kfp" / "bin" / "python"
    if not python.exists():
        pytest.skip(".venv-kfp is not set up: `make envs`")
    probe = (
        "import json, os, sys\n"
        "from pipegen.runtime.tracking import client\n"
        "import mlflow\n"
        "hidden = [n for n in sys.argv[1:] if n in sys.modules and sys.modules[n] is not None]\n"
        "print(json.dumps({'loaded': hidden, 'path': os.environ['PYTHONPATH']}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{IMAGE}:{ROOT}"}
    proc = subprocess.run(
        [str(python), "-c", probe, *absent_in_image()], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"loaded": [], "path": str(ROOT)}
