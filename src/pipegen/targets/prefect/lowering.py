"""Lowering a resolved pipeline to the View the flow module template lays out.

User strings reach the module only through py() (Python literals) and escaped_json() (a step's spec as JSON
text, braces escaped as on KFP); names reach it only through Names (checked identifiers).

Steps share tasks: one @task per runtime action and settings (retries, delays, timeout), each task run named
after its step (task_run_name) and given the step's request as an argument, so that a 1,000-step module builds
a handful of Task objects at import, not a thousand (its import time stays near a hand-written flow's).
"""

from __future__ import annotations

from typing import Any

from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.targets.base import gate_deadline_seconds, header_lines
from pipegen.targets.kfp.checks import skip_conditions
from pipegen.targets.kfp.names import escaped_json
from pipegen.targets.prefect import kubernetes
from pipegen.targets.prefect.checks import prefect_delays
from pipegen.targets.prefect.names import Names, flow_function
from pipegen.targets.prefect.steps import install_extras, start_run_request, step_request
from pipegen.targets.prefect.view import TaskDef, View

_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}
# The helpers the template defines, by role; each gets a name no flow parameter hides.
_HELPERS = (
    "run_context",
    "before_start",
    "passed",
    "finish",
    "infrastructure_only",
    "wait_started",
    "notify",
    "notify_failed",
    "notify_succeeded",
)


class Lowering:
    """Builds the View of one pipeline's flow module."""

    def __init__(self, pipeline: Pipeline, kubernetes_block: str | None = None) -> None:
        self.p = pipeline
        self.kubernetes_block = kubernetes_block
        self.params = sorted(pipeline.spec.params)
        self.flow = flow_function(pipeline.name)
        names = Names(self.params, self.flow)
        self.names = {role: names.claim(f"_{role}") for role in _HELPERS}
        self.module_names = names
        # Shared tasks by their definition: the TaskDef, and the function name each step's submit calls.
        self.shared: dict[str, TaskDef] = {}
        self.task_of: dict[str, str] = {}
        self.helpers: set[str] = set()
        # Each step's request (its spec as escaped JSON), by step (and pipegen_start_run_<step>): data, not code.
        self.requests: dict[str, str] = {}

    def view(self) -> View:
        """The module's View."""
        spec = self.p.spec
        for step in self.p.steps:
            if step.kind == "train":
                self._start_run_task(step)
            self._step_task(step)
        tasks = list(self.shared.values())
        constants = [("PIPELINE", py(self.p.name)), ("TIMEZONE", py(self._timezone()))]
        requests = "".join(f"\n    {py(k)}: {py(v)}," for k, v in self.requests.items())
        constants.append(("REQUESTS", "{" + requests + "\n}"))
        decorator = [("name", py(self.p.name))]
        if spec.description:
            decorator.append(("description", py(spec.description)))
        decorator.append(("log_prints", "True"))
        for event, key in (("failed", "on_failure"), ("succeeded", "on_success")):
            webhooks = [n.webhook for n in getattr(spec.notify, key)]
            if not webhooks:
                continue
            hook = f"notify_{event}"
            request = {"webhooks": webhooks, "message": {"pipeline": self.p.name, "event": event}}
            constants.append((f"{event.upper()}_NOTIFY", py(escaped_json(request))))
            self.helpers |= {"notify", hook}
            if event == "failed":
                decorator += [("on_failure", f"[{self.names[hook]}]"), ("on_crashed", f"[{self.names[hook]}]")]
            else:
                decorator.append(("on_completion", f"[{self.names[hook]}]"))
        if "notify" in self.helpers:
            # A hook renders webhook URLs with the run's parameters: the defaults, then what the run was given.
            constants.append(("PARAMS", py(dict(spec.params))))
        if self.p.schedule is not None and self.p.schedule.start is not None:
            constants.append(("START", py(self.p.schedule.start.isoformat())))
        extras, notes = install_extras(self.p)
        return View(
            header=header_lines(self.p),
            extras=extras,
            install_notes=notes,
            docstring=py(spec.description or f"The {self.p.name} pipeline."),
            constants=constants,
            names=self.names,
            helpers=self.helpers,
            tasks=tasks,
            flow_name=self.flow,
            flow_decorator=decorator,
            flow_params=[f"{n}: {_TYPES[type(v)]} = {py(v)}" for n, v in sorted(spec.params.items())],
            flow_doc=py(f"Run pipeline {self.p.name!r}: each step a task, independent steps side by side."),
            flow_body=self._flow_body(),
        )

    def _timezone(self) -> str:
        """The zone ${run.date} is a date in: the schedule's (UTC without a schedule)."""
        return self.p.schedule.timezone if self.p.schedule is not None else "UTC"

    # ---- tasks -----------------------------------------------------------------------------------
    def _decorator(self, step: ResolvedStep, final_verdicts: bool, timeout: int | None) -> list[tuple[str, str]]:
        # The task run is named after the step ("{step}": the task's `step` argument).
        out = [("task_run_name", py("{step}"))]
        delays = prefect_delays(step)
        if delays is not None:
            out += [("retries", str(step.policy.retries)), ("retry_delay_seconds", py(delays))]
            if final_verdicts:
                self.helpers.add("infrastructure_only")
                out.append(("retry_condition_fn", self.names["infrastructure_only"]))
        if timeout is not None:
            out.append(("timeout_seconds", str(timeout)))
        # Every run of a step runs it: a task's result is never taken from an earlier run (KFP: caching off).
        out.append(("cache_policy", "NO_CACHE"))
        return out

    def _inputs(self, mlflow: bool) -> list[tuple[str, str]]:
        inputs = [("step", "str"), ("request", "str"), ("params", "dict"), ("run_key", "str"), ("run_date", "str")]
        return inputs + ([("mlflow_run", "dict")] if mlflow else [])

    def _share(self, key: str, kind: str, task: TaskDef) -> None:
        """Define the task once per distinct definition; `key` (a step's, or its start_run's) calls it."""
        identity = repr((task.decorator, task.inputs, task.body))
        if identity not in self.shared:
            same_kind = sum(1 for t in self.shared.values() if t.decorator[0] == ("name", py(kind)))
            name = kind if same_kind == 0 else f"{kind}_{same_kind + 1}"
            task.name = self.module_names.claim(f"_{name}")
            task.decorator = [("name", py(name)), *task.decorator]
            self.shared[identity] = task
        self.task_of[key] = self.shared[identity].name

    def _step_task(self, step: ResolvedStep) -> None:
        kind, spec = step_request(self.p, step)
        waits = step.kind == "gate" and "wait" in (step.gate or {})
        # A failed judgement and a gate whose wait ran out are final; a gate checked once is retried like any step
        # (its data may land before the next try), as on Airflow, KFP and `pipegen run`.
        final_verdicts = step.kind == "evaluate" or waits
        timeout = gate_deadline_seconds(step) if step.kind == "gate" else step.policy.timeout
        mlflow = step.kind in ("train", "evaluate", "promote")
        extra = []
        if mlflow:
            extra.append("mlflow_run=mlflow_run,")
        if waits:
            self.helpers.add("wait_started")
            extra.append(f"wait_started={self.names['wait_started']}(),")
        self.requests[step.name] = escaped_json(spec)
        if kind == kubernetes.KIND:
            doc = f"Run a step of pipeline '{self.p.name}' as a Kubernetes Job: `request` is its spec."
            body = kubernetes.task_body(mlflow, self.kubernetes_block)
            task = TaskDef("", self._decorator(step, False, timeout), self._inputs(mlflow), py(doc), body)
            self._share(step.name, kind, task)
            return
        body = [
            "from pipegen.runtime.step import run_step",
            "",
            "return run_step(",
            f"    {py(kind)},",
            "    request,",
            "    params=params,",
            "    run_id=run_key,",
            "    run_date=run_date,",
            *(f"    {line}" for line in extra),
            "    target='prefect',",
            ")",
        ]
        doc = (
            f"Run a step of pipeline '{self.p.name}' through pipegen.runtime's {kind!r} action: `request` is its spec."
        )
        task = TaskDef("", self._decorator(step, final_verdicts, timeout), self._inputs(mlflow), py(doc), body)
        self._share(step.name, kind, task)

    def _start_run_task(self, step: ResolvedStep) -> None:
        key = f"pipegen_start_run_{step.name}"
        self.requests[key] = escaped_json(start_run_request(self.p, step))
        body = [
            "from pipegen.runtime.step import run_step",
            "",
            "run = run_step('start_run', request, params=params, run_id=run_key, run_date=run_date, target='prefect')",
            "# Not the tracking URI: it may hold credentials, and a task's result may be stored.",
            "return {'run_id': run['run_id'], 'experiment_id': run['experiment_id']}",
        ]
        doc = "Create (or, on a retry, find) the MLflow run a training step logs into."
        # Retried with the training step's policy: start_run finds the run it made before.
        self._share(
            key,
            "pipegen_start_run",
            TaskDef("", self._decorator(step, False, None), self._inputs(False), py(doc), body),
        )

    # ---- the flow ----------------------------------------------------------------------------------
    def _submit(self, step: ResolvedStep) -> list[str]:
        args = ["params", "run_key", "run_date"]
        lines = []

        def call(key: str, extra: list[str]) -> str:
            head = [py(key), f"REQUESTS[{py(key)}]"]
            return (
                f"steps[{py(key)}] = {self.task_of[key]}.submit({', '.join([*head, *args, *extra])}{self._wait(step)})"
            )

        if step.kind == "train":
            run_key = f"pipegen_start_run_{step.name}"
            lines.append(call(run_key, []))
            lines.append(call(step.name, [f"steps[{py(run_key)}]"]))
            return lines
        extra = (
            [f"steps[{py('pipegen_start_run_' + step.body.run_of)}]"] if step.kind in ("evaluate", "promote") else []
        )
        lines.append(call(step.name, extra))
        return lines

    def _wait(self, step: ResolvedStep) -> str:
        if not step.upstream:
            return ""
        return ", wait_for=[" + ", ".join(f"steps[{py(u)}]" for u in step.upstream) + "]"

    def _flow_body(self) -> list[str]:
        n = self.names
        params = "{" + ", ".join(f"{py(p)}: {p}" for p in self.params) + "}"
        lines = [f"params = {params}", f"run_key, run_date = {n['run_context']}()"]
        self.helpers |= {"run_context", "passed", "finish"}
        if self.p.schedule is not None and self.p.schedule.start is not None:
            self.helpers.add("before_start")
            lines += [
                f"if {n['before_start']}(run_date):",
                "    return Completed(message=f'scheduled for {run_date}, before the schedule starts on {START}: no step ran')",
            ]
        lines.append("steps = {}")
        conditions = skip_conditions(self.p)
        # Steps no evaluation can skip go first, so that waiting for an evaluation never delays them.
        ordered = [s for s in self.p.steps if not conditions[s.name]] + [s for s in self.p.steps if conditions[s.name]]
        opened: list[str] | None = None
        for step in ordered:
            wanted = conditions[step.name]
            if wanted and wanted != opened:
                lines.append(f"if {n['passed']}(steps, {', '.join(py(e) for e in wanted)}):")
            opened = wanted
            lines += [("    " if wanted else "") + line for line in self._submit(step)]
        lines.append(f"return {n['finish']}(steps, {py(self._skipped())})")
        return lines

    def _skipped(self) -> dict[str, Any]:
        """For each skip-on-fail evaluation, the steps it keeps from running when it does not pass."""
        conditions = skip_conditions(self.p)
        out: dict[str, list[str]] = {}
        for step in self.p.steps:
            if step.kind == "evaluate" and step.body.on_fail == "skip":
                out[step.name] = [s.name for s in self.p.steps if step.name in conditions[s.name]]
        return dict(out)
