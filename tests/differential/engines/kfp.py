"""The KFP engine: the compiled pipeline run once with kfp.local's SubprocessRunner (run with .venv-kfp).

The pipeline runs as KFP stores it: compiled to IR with the real kfp compiler, loaded back, then run by
kfp.local (each component a subprocess of this venv's Python, no docker, no `pip install`). Outcomes are
read from kfp.local itself: which tasks ran and with what status and outputs, and which dsl.If conditions
held (a task inside a false condition is skipped; one that never ran otherwise is not_run).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.differential.engines import Request, Result, StepResult, load_pipeline, settle_evaluations
from tests.differential.engines.supervise import Progress, engine_main, log_path, scheduled_instant, typed_params

# Put on the components' PYTHONPATH: its sitecustomize makes their Python the runtime image's.
IMAGE = Path(__file__).resolve().parent / "image"
# What the KFP backend puts in PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER for a run that no schedule started.
MANUAL_SCHEDULE_TIME = "1970-01-01T00:00:00Z"


def step_tasks(ir: dict[str, Any]) -> dict[str, str]:
    """Each step -> the IR task (at any depth) that runs it: the task whose display name is the step's name.

    kfp names a task after its component, and a runtime step calls its action's shared component.
    """
    found: dict[str, str] = {}

    def walk(dag: dict[str, Any]) -> None:
        for name, task in dag.get("tasks", {}).items():
            found.setdefault(task.get("taskInfo", {}).get("name", name), name)
            inner = ir.get("components", {}).get(task["componentRef"]["name"], {}).get("dag")
            if inner is not None:
                walk(inner)

    walk(ir["root"]["dag"])
    return found


def enclosing_conditions(ir: dict[str, Any]) -> dict[str, list[str]]:
    """Each task of the IR (at any depth) -> the dsl.If condition expressions around it, outermost first."""
    components = ir.get("components", {})
    found: dict[str, list[str]] = {}

    def walk(dag: dict[str, Any], around: list[str]) -> None:
        for name, task in dag.get("tasks", {}).items():
            found[name] = around
            condition = task.get("triggerPolicy", {}).get("condition")
            inner = components.get(task["componentRef"]["name"], {}).get("dag")
            if inner is not None:
                walk(inner, [*around, condition] if condition else around)

    walk(ir["root"]["dag"], [])
    return found


def compile_pipeline(request: Request, workdir: Path) -> tuple[Any, dict[str, Any]]:
    """The compiled pipeline module -> IR YAML (real kfp compiler; tasks sharing components, as `pipegen compile
    --ir` writes it) -> the pipeline loaded back, and the IR."""
    import yaml
    from kfp import compiler, components

    from pipegen.targets.kfp.ir_share import shared_ir

    source = request.compiled_file("kfp", ".py")
    spec = importlib.util.spec_from_file_location(f"pipegen_diff_{source.stem.replace('-', '_')}", source)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ir_path = workdir / f"{source.stem}.ir.yaml"
    compiler.Compiler().compile(module.pipeline, package_path=str(ir_path))
    ir_path.write_text(shared_ir(ir_path.read_text()))
    ir = next(yaml.safe_load_all(ir_path.read_text()))
    return components.load_component_from_file(str(ir_path)), ir


class Observed:
    """What kfp.local did, seen by wrapping its own task executor, condition evaluator and failure report."""

    def __init__(self, progress: Progress, steps_by_task: dict[str, str]) -> None:
        self.tasks: dict[str, tuple[str, dict[str, Any]]] = {}
        self.conditions: dict[str, bool] = {}
        self.failed: list[str] | None = None
        self.progress = progress
        self.steps_by_task = steps_by_task

    def install(self, schedule_time: str) -> None:
        """Wrap kfp.local's functions (module attributes, looked up at each call)."""
        from kfp import dsl
        from kfp.local import pipeline_orchestrator, placeholder_utils, status
        from kfp.local.orchestrator import enhanced_dag_orchestrator, task_executor

        execute: Callable[..., tuple[dict[str, Any], Any]] = task_executor.execute_single_task

        def execute_single_task(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
            outputs, task_status = execute(*args, **kwargs)
            name = str(kwargs["task_name"])
            self.tasks[name] = (task_status.name, dict(outputs or {}))
            if name in self.steps_by_task:
                outcome = "passed" if task_status == status.Status.SUCCESS else "failed"
                self.progress.record(self.steps_by_task[name], StepResult(outcome))
            return outputs, task_status

        evaluate = enhanced_dag_orchestrator.ConditionEvaluator.evaluate_condition

        def evaluate_condition(condition: str, io_store: Any) -> bool:
            held = bool(evaluate(condition, io_store))
            self.conditions[condition] = held
            return held

        resolve = placeholder_utils.resolve_individual_placeholder

        def resolve_individual_placeholder(element: str, *args: Any, **kwargs: Any) -> Any:
            # kfp.local leaves the schedule-time placeholder as text; the KFP backend substitutes it.
            return resolve(
                element.replace(dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER, schedule_time), *args, **kwargs
            )

        report = pipeline_orchestrator.log_and_maybe_raise_for_failure

        def log_and_maybe_raise_for_failure(pipeline_name: str, raise_on_error: bool, fail_stack: list[str]) -> None:
            self.failed = list(fail_stack)
            report(pipeline_name=pipeline_name, raise_on_error=raise_on_error, fail_stack=fail_stack)

        task_executor.execute_single_task = execute_single_task
        enhanced_dag_orchestrator.ConditionEvaluator.evaluate_condition = staticmethod(evaluate_condition)
        placeholder_utils.resolve_individual_placeholder = resolve_individual_placeholder
        pipeline_orchestrator.log_and_maybe_raise_for_failure = log_and_maybe_raise_for_failure


def step_outcomes(
    request: Request, observed: Observed, around: dict[str, list[str]], tasks: dict[str, str]
) -> dict[str, StepResult]:
    """Each spec step's outcome: its task's status, or why it never ran."""
    steps: dict[str, StepResult] = {}
    for step in load_pipeline(request.spec).steps:
        name = tasks[step.name]
        if name in observed.tasks:
            task_status, outputs = observed.tasks[name]
            if task_status != "SUCCESS":
                steps[step.name] = StepResult("failed")  # settle_evaluations tells a failed judgement apart
            elif step.kind == "evaluate" and step.body.on_fail == "skip" and outputs.get("Output") is False:
                steps[step.name] = StepResult("rejected")  # the dsl.If around its downstream is false
            else:
                steps[step.name] = StepResult("passed")
        elif any(observed.conditions.get(c) is False for c in around.get(name, [])):
            steps[step.name] = StepResult("skipped")
        else:
            steps[step.name] = StepResult("not_run")
    return steps


def run(request: Request, progress: Progress) -> Result:
    """Run the compiled pipeline once on kfp.local, params as pipeline arguments."""
    workdir = Path(request.workdir)
    pipeline_spec = load_pipeline(request.spec)
    params = typed_params(request)
    os.environ.update(request.env)
    # The components read the tracking server from their environment (a config map or secret on a cluster).
    os.environ["MLFLOW_TRACKING_URI"] = request.tracking_uri
    # ...and run as in the runtime image, without the packages it lacks (engines/image/sitecustomize.py).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(IMAGE), os.environ.get("PYTHONPATH", "")) if p)
    os.chdir(workdir)

    from kfp import local

    pipeline, ir = compile_pipeline(request, workdir)
    around = enclosing_conditions(ir)
    tasks = step_tasks(ir)
    missing = sorted(s.name for s in pipeline_spec.steps if tasks.get(s.name) not in around)
    steps_by_task = {tasks[s.name]: s.name for s in pipeline_spec.steps if s.name in tasks}
    if missing:
        raise RuntimeError(f"steps without a task in the IR: {missing} (tasks: {sorted(around)})")
    when = scheduled_instant(request)
    observed = Observed(progress, steps_by_task)
    observed.install(when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else MANUAL_SCHEDULE_TIME)
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "kfp-root"), raise_on_error=False
    )
    started = time.monotonic()
    pipeline(**params)
    wall = time.monotonic() - started
    print(f"kfp.local ended after {wall:.1f}s; failed: {observed.failed}", flush=True)
    steps = step_outcomes(request, observed, around, tasks)
    status = "failed" if observed.failed is not None else "succeeded"
    log = str(log_path(request))
    progress.engine_ended(Result(request.engine, status, steps, round(wall, 2), log))
    return Result(request.engine, status, settle_evaluations(request, steps), round(wall, 2), log)


if __name__ == "__main__":
    sys.exit(engine_main(run))
